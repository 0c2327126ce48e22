package logs

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// lines is a handler that keeps each record as "LEVEL msg k=v ...".
type lines struct {
	mu    sync.Mutex
	attrs []slog.Attr
	out   *[]string
}

func newLines() *lines { return &lines{out: new([]string)} }

func (l *lines) Enabled(context.Context, slog.Level) bool { return true }
func (l *lines) Handle(_ context.Context, r slog.Record) error {
	parts := []string{r.Level.String(), r.Message}
	for _, a := range l.attrs {
		parts = append(parts, a.String())
	}
	r.Attrs(func(a slog.Attr) bool { parts = append(parts, a.String()); return true })
	l.mu.Lock()
	*l.out = append(*l.out, strings.Join(parts, " "))
	l.mu.Unlock()
	return nil
}
func (l *lines) WithAttrs(a []slog.Attr) slog.Handler {
	return &lines{attrs: append(append([]slog.Attr{}, l.attrs...), a...), out: l.out}
}
func (l *lines) WithGroup(string) slog.Handler { return l }

func (l *lines) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := *l.out
	*l.out = nil
	return out
}

// clock is a test clock moved by hand.
type clock struct{ t time.Time }

func (c *clock) now() time.Time      { return c.t }
func (c *clock) add(d time.Duration) { c.t = c.t.Add(d) }
func wantLines(t *testing.T, got []string, want ...string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("logged\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestSummarise: the libp2p warning that repeats every 75 s (gossipsub's
// GRAFT from a peer it takes as direct, three peers at a time) is logged
// once, then once per period with its count.
func TestSummarise(t *testing.T) {
	out := newLines()
	clk := &clock{t: time.Date(2026, 12, 5, 20, 0, 0, 0, time.UTC)}
	s := Summarise(out, 10*time.Minute, clk.now)
	log := slog.New(s).With("library", "go-libp2p-pubsub")
	graft := func(peer string) { log.Warn("GRAFT: ignoring request from direct peer", "peer", peer) }

	graft("A")
	graft("B")
	graft("C")
	wantLines(t, out.take(), "WARN GRAFT: ignoring request from direct peer library=go-libp2p-pubsub peer=A")
	for range 7 { // 7 more rounds of three, over 8 m 45 s
		clk.add(75 * time.Second)
		graft("A")
		graft("B")
		graft("C")
	}
	wantLines(t, out.take())
	clk.add(75 * time.Second) // 10 m since it was logged
	graft("A")
	wantLines(t, out.take(), "WARN GRAFT: ignoring request from direct peer library=go-libp2p-pubsub peer=A repeated=24 over=10m0s")
	graft("B")
	wantLines(t, out.take())

	// Other messages, levels and loggers are their own.
	log.Info("GRAFT: ignoring request from direct peer", "peer", "A")
	log.Warn("another warning")
	slog.New(s).With("library", "go-libp2p").Warn("GRAFT: ignoring request from direct peer")
	wantLines(t, out.take(),
		"INFO GRAFT: ignoring request from direct peer library=go-libp2p-pubsub peer=A",
		"WARN another warning library=go-libp2p-pubsub",
		"WARN GRAFT: ignoring request from direct peer library=go-libp2p")

	// Flush logs what the period held back, and forgets it.
	clk.add(time.Minute)
	graft("C")
	s.Flush(context.Background())
	wantLines(t, out.take(), "WARN GRAFT: ignoring request from direct peer library=go-libp2p-pubsub peer=C repeated=2 over=1m0s")
	s.Flush(context.Background())
	graft("A")
	wantLines(t, out.take(), "WARN GRAFT: ignoring request from direct peer library=go-libp2p-pubsub peer=A")

	// A message logged once per period or less is never held back.
	log.Warn("rare")
	clk.add(10 * time.Minute)
	log.Warn("rare")
	wantLines(t, out.take(), "WARN rare library=go-libp2p-pubsub", "WARN rare library=go-libp2p-pubsub")
}

// TestSummariseIsBounded: ever-new messages pass through, untracked once
// the summariser remembers maxTracked.
func TestSummariseIsBounded(t *testing.T) {
	out := newLines()
	clk := &clock{t: time.Unix(0, 0)}
	s := Summarise(out, time.Minute, clk.now)
	log := slog.New(s)
	for i := range maxTracked + 10 {
		log.Warn(fmt.Sprintf("dial %d failed", i))
		log.Warn(fmt.Sprintf("dial %d failed", i))
	}
	if n := len(s.state.seen); n != maxTracked {
		t.Errorf("%d messages tracked, want %d", n, maxTracked)
	}
	if got := len(out.take()); got != maxTracked+2*10 {
		t.Errorf("%d lines logged, want %d (one of each tracked message, both of the others)", got, maxTracked+20)
	}
	// Once their periods end, tracked messages make room, each logging
	// the repeat it held back as it goes.
	clk.add(time.Minute)
	log.Warn("new")
	log.Warn("new")
	got := out.take()
	if len(got) != maxTracked+1 || got[0] != "WARN dial 0 failed repeated=1 over=1m0s" && !strings.HasSuffix(got[0], "failed repeated=1 over=1m0s") ||
		got[len(got)-1] != "WARN new" {
		t.Errorf("after the periods ended, a new message repeated logged %d lines (first %q, last %q), want %d: the held-back repeats, then it once",
			len(got), got[0], got[len(got)-1], maxTracked+1)
	}
}
