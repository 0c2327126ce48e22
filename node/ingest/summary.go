package ingest

import (
	"context"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/entente-net/entente/node/service"
	"github.com/entente-net/entente/protocol"
)

// DefaultSummaryEvery is how often the pipeline logs what it received.
const DefaultSummaryEvery = time.Minute

// tally counts what the pipeline did with the records it was offered
// since the last summary.
type tally struct {
	mu         sync.Mutex
	accepted   map[protocol.Kind]int
	from       map[service.Source]int
	duplicates int
	refused    map[string]int // by code
	parked     int
	expired    int // parked records dropped, what they waited for never came
}

func newTally() *tally {
	return &tally{accepted: map[protocol.Kind]int{}, from: map[service.Source]int{}, refused: map[string]int{}}
}

// accept counts a new record of kind from src.
func (t *tally) accept(kind protocol.Kind, src service.Source) {
	t.mu.Lock()
	t.accepted[kind]++
	t.from[src]++
	t.mu.Unlock()
}

// duplicate counts a record already held.
func (t *tally) duplicate() {
	t.mu.Lock()
	t.duplicates++
	t.mu.Unlock()
}

// refuse counts a refusal under its code.
func (t *tally) refuse(code string) {
	t.mu.Lock()
	t.refused[code]++
	t.mu.Unlock()
}

// park moves a record just refused under code to the parked: it waits
// for what authorises it, and is counted as accepted if that comes.
func (t *tally) park(code string) {
	t.mu.Lock()
	t.unrefuse(code)
	t.parked++
	t.mu.Unlock()
}

// repark takes back the refusal under code of a parked record's retry
// that parked it again: it still waits, for something else now, and was
// counted as parked when it first was.
func (t *tally) repark(code string) {
	t.mu.Lock()
	t.unrefuse(code)
	t.mu.Unlock()
}

// expire counts a parked record dropped after waiting its time.
func (t *tally) expire() {
	t.mu.Lock()
	t.expired++
	t.mu.Unlock()
}

func (t *tally) unrefuse(code string) {
	if t.refused[code] > 0 { // not if a summary was taken in between
		if t.refused[code]--; t.refused[code] == 0 {
			delete(t.refused, code)
		}
	}
}

// take returns the summary's attributes, counts by kind, source and code
// in sorted order, and starts counting afresh; ok is false when nothing
// was offered since the last.
func (t *tally) take() (attrs []any, ok bool) {
	t.mu.Lock()
	accepted, from, dups, refused, parked, expired := t.accepted, t.from, t.duplicates, t.refused, t.parked, t.expired
	t.accepted, t.from, t.duplicates, t.refused, t.parked, t.expired = map[protocol.Kind]int{}, map[service.Source]int{}, 0, map[string]int{}, 0, 0
	t.mu.Unlock()
	total := func(m map[string]int) (n int) {
		for _, c := range m {
			n += c
		}
		return n
	}
	kinds, sources := map[string]int{}, map[string]int{}
	for k, c := range accepted {
		kinds[string(k)] = c
	}
	for s, c := range from {
		sources[string(s)] = c
	}
	if total(kinds) == 0 && dups == 0 && total(refused) == 0 && parked == 0 && expired == 0 {
		return nil, false
	}
	attrs = append(attrs, "accepted", total(kinds))
	if len(kinds) > 0 {
		attrs = append(attrs, countsGroup("kind", kinds), countsGroup("from", sources))
	}
	attrs = append(attrs, "duplicates", dups, "refused", total(refused))
	if len(refused) > 0 {
		attrs = append(attrs, countsGroup("refused_as", refused))
	}
	if parked > 0 {
		attrs = append(attrs, "parked", parked)
	}
	if expired > 0 {
		attrs = append(attrs, "expired", expired)
	}
	return attrs, true
}

// countsGroup is an slog group of counts by name, sorted.
func countsGroup(name string, counts map[string]int) slog.Attr {
	names := make([]string, 0, len(counts))
	for n := range counts {
		names = append(names, n)
	}
	sort.Strings(names)
	var attrs []any
	for _, n := range names {
		attrs = append(attrs, slog.Int(n, counts[n]))
	}
	return slog.Group(name, attrs...)
}

// summarise logs, at INFO, every SummaryEvery while anything arrives, what
// the pipeline did since the last time: records accepted, by kind and by
// source (api, gossip, fetch: fetched and synced, deliver, parked: retried
// once authorised, local, import), duplicates, refusals by code, records
// parked; and once more as it closes.
func (p *Pipeline) summarise(ctx context.Context) {
	t := time.NewTicker(p.cfg.SummaryEvery)
	defer t.Stop()
	since := p.cfg.Now()
	for {
		select {
		case <-ctx.Done():
			p.logSummary(since)
			return
		case <-t.C:
			since = p.logSummary(since)
		}
	}
}

// logSummary logs what the tally counted since since, if anything, and
// returns the time it took the tally.
func (p *Pipeline) logSummary(since time.Time) time.Time {
	now := p.cfg.Now()
	if attrs, ok := p.tally.take(); ok {
		p.log.Info("records received", append([]any{"over", now.Sub(since).Round(time.Second)}, attrs...)...)
	}
	return now
}
