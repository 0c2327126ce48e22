package main

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/libp2p/go-libp2p/gologshim"

	"github.com/entente-net/entente/config"
	"github.com/entente-net/entente/node/logs"
)

func newLogger(w io.Writer, lc config.Log) *slog.Logger {
	return slog.New(lc.Handler(w))
}

// libp2pLog is where go-libp2p's own loggers write in this process (it is
// gologshim's default handler): while 'entente run' runs a node, to that
// node's log, warnings and errors only, each repeated message summarised
// (logs.Summarise); otherwise nowhere. Without it they would write JSON
// to the process's stderr, beside the node's own log.
var libp2pLog = &switchHandler{target: new(atomic.Pointer[slog.Handler])}

var routeOnce sync.Once

// routeLibp2pLogs sends go-libp2p's logs to h until the returned function
// is called, which logs what the summary held back.
func routeLibp2pLogs(h slog.Handler) (stop func()) {
	routeOnce.Do(func() { gologshim.SetDefaultHandler(libp2pLog) })
	s := logs.Summarise(minLevel{h.WithAttrs([]slog.Attr{slog.String("library", "go-libp2p")}), slog.LevelWarn}, logs.DefaultEvery, nil)
	var sh slog.Handler = s
	libp2pLog.target.Store(&sh)
	return func() {
		libp2pLog.target.CompareAndSwap(&sh, nil)
		s.Flush(context.Background())
	}
}

// switchHandler hands records to the handler its target holds now, with
// the attributes and groups it was given (gologshim gives them once, at
// a logger's first use, and keeps the handler).
type switchHandler struct {
	target *atomic.Pointer[slog.Handler]
	with   []func(slog.Handler) slog.Handler
}

func (s *switchHandler) current() slog.Handler {
	p := s.target.Load()
	if p == nil {
		return nil
	}
	h := *p
	for _, w := range s.with {
		h = w(h)
	}
	return h
}

func (s *switchHandler) Enabled(ctx context.Context, l slog.Level) bool {
	p := s.target.Load()
	return p != nil && (*p).Enabled(ctx, l)
}

func (s *switchHandler) Handle(ctx context.Context, r slog.Record) error {
	if h := s.current(); h != nil {
		return h.Handle(ctx, r)
	}
	return nil
}

func (s *switchHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return s.derive(func(h slog.Handler) slog.Handler { return h.WithAttrs(attrs) })
}

func (s *switchHandler) WithGroup(name string) slog.Handler {
	return s.derive(func(h slog.Handler) slog.Handler { return h.WithGroup(name) })
}

func (s *switchHandler) derive(w func(slog.Handler) slog.Handler) *switchHandler {
	with := append(append([]func(slog.Handler) slog.Handler{}, s.with...), w)
	return &switchHandler{target: s.target, with: with}
}

// minLevel is h for records at min and above only.
type minLevel struct {
	h   slog.Handler
	min slog.Level
}

func (m minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= m.min && m.h.Enabled(ctx, l)
}
func (m minLevel) Handle(ctx context.Context, r slog.Record) error { return m.h.Handle(ctx, r) }
func (m minLevel) WithAttrs(a []slog.Attr) slog.Handler            { return minLevel{m.h.WithAttrs(a), m.min} }
func (m minLevel) WithGroup(n string) slog.Handler                 { return minLevel{m.h.WithGroup(n), m.min} }
