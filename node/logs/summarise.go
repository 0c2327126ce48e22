// Package logs holds the node's slog handlers that shape what reaches an
// operator: Summarise, which keeps a library's repeated messages to one
// line and a count.
package logs

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// DefaultEvery is how often Summarise lets a repeated message through.
const DefaultEvery = 10 * time.Minute

// maxTracked bounds the messages a summariser remembers: past it, messages
// not yet seen pass through untracked (a library that logs ever-new text
// is not one to summarise).
const maxTracked = 1024

// Summarise wraps next so that a message repeated at one level, from one
// logger (the same attributes given by With), is logged the first time,
// then at most once every period: the occurrence that ends a period is
// logged with "repeated", how many times the message came since it was
// last logged (that one included), and "over", the time they came in.
// Records between are dropped. Flush logs what the last period held back
// (at Close of whoever owns the logger). now is the clock; nil is
// time.Now. A period of 0 is DefaultEvery.
func Summarise(next slog.Handler, every time.Duration, now func() time.Time) *Summariser {
	if every <= 0 {
		every = DefaultEvery
	}
	if now == nil {
		now = time.Now
	}
	return &Summariser{next: next, state: &summaryState{every: every, now: now, seen: map[summaryKey]*summaryEntry{}}}
}

// Summariser is the handler Summarise returns.
type Summariser struct {
	next  slog.Handler
	scope string // the attributes and groups of With, as text: part of a message's identity
	state *summaryState
}

type summaryState struct {
	every time.Duration
	now   func() time.Time
	mu    sync.Mutex
	seen  map[summaryKey]*summaryEntry
}

type summaryKey struct {
	level      slog.Level
	scope, msg string
}

// summaryEntry is a message's current period: when it was last logged,
// and the records dropped since (the last of them kept, for Flush).
type summaryEntry struct {
	logged  time.Time
	dropped int
	last    slog.Record
	next    slog.Handler
}

// Enabled reports whether next takes records of level.
func (s *Summariser) Enabled(ctx context.Context, level slog.Level) bool {
	return s.next.Enabled(ctx, level)
}

// Handle logs r, drops it, or logs it with the count of those dropped
// before it, as Summarise says.
func (s *Summariser) Handle(ctx context.Context, r slog.Record) error {
	st := s.state
	key := summaryKey{level: r.Level, scope: s.scope, msg: r.Message}
	now := st.now()
	st.mu.Lock()
	e, ok := st.seen[key]
	switch {
	case !ok:
		var swept []*summaryEntry
		if len(st.seen) >= maxTracked {
			swept = st.sweep(now)
		}
		if len(st.seen) < maxTracked {
			st.seen[key] = &summaryEntry{logged: now, next: s.next}
		}
		st.mu.Unlock()
		st.emit(ctx, swept, now)
		return s.next.Handle(ctx, r)
	case now.Sub(e.logged) < st.every:
		e.dropped++
		e.last, e.next = r.Clone(), s.next
		st.mu.Unlock()
		return nil
	}
	dropped, since := e.dropped, now.Sub(e.logged)
	e.logged, e.dropped, e.last = now, 0, slog.Record{}
	st.mu.Unlock()
	if dropped > 0 {
		r = r.Clone()
		r.AddAttrs(slog.Int("repeated", dropped+1), slog.Duration("over", since.Round(time.Second)))
	}
	return s.next.Handle(ctx, r)
}

// sweep forgets the messages whose period has ended, and returns those
// of them with records dropped, for emit; st.mu is held.
func (st *summaryState) sweep(now time.Time) []*summaryEntry {
	var out []*summaryEntry
	for k, e := range st.seen {
		if now.Sub(e.logged) >= st.every {
			if e.dropped > 0 {
				out = append(out, e)
			}
			delete(st.seen, k)
		}
	}
	return out
}

// emit logs, for each entry, the last record it dropped with their count.
func (st *summaryState) emit(ctx context.Context, entries []*summaryEntry, now time.Time) {
	for _, e := range entries {
		r := e.last
		r.AddAttrs(slog.Int("repeated", e.dropped), slog.Duration("over", now.Sub(e.logged).Round(time.Second)))
		_ = e.next.Handle(ctx, r)
	}
}

// Flush logs, for each message with records dropped since it was last
// logged, the last of them with their count ("repeated", "over"), and
// forgets every message.
func (s *Summariser) Flush(ctx context.Context) {
	st := s.state
	now := st.now()
	st.mu.Lock()
	var out []*summaryEntry
	for k, e := range st.seen {
		if e.dropped > 0 {
			out = append(out, e)
		}
		delete(st.seen, k)
	}
	st.mu.Unlock()
	st.emit(ctx, out, now)
}

// WithAttrs is a summariser over next.WithAttrs, sharing this one's
// state; the attributes are part of a message's identity.
func (s *Summariser) WithAttrs(attrs []slog.Attr) slog.Handler {
	var b strings.Builder
	b.WriteString(s.scope)
	for _, a := range attrs {
		b.WriteString(" " + a.String())
	}
	return &Summariser{next: s.next.WithAttrs(attrs), scope: b.String(), state: s.state}
}

// WithGroup is a summariser over next.WithGroup, sharing this one's state.
func (s *Summariser) WithGroup(name string) slog.Handler {
	return &Summariser{next: s.next.WithGroup(name), scope: s.scope + " " + name + ".", state: s.state}
}
