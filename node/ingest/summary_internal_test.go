package ingest

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/entente-net/entente/node/service"
	"github.com/entente-net/entente/protocol"
)

// TestTally: the summary's attributes, and nothing when nothing came.
func TestTally(t *testing.T) {
	tl := newTally()
	if _, ok := tl.take(); ok {
		t.Error("an empty tally has a summary")
	}
	tl.accept(protocol.KindConsent, service.SourceGossip)
	tl.accept(protocol.KindAccreditation, service.SourceAPI)
	tl.accept(protocol.KindAccreditation, service.SourceFetch)
	tl.duplicate()
	tl.refuse("clock_skew")
	tl.refuse("unauthorized_issuer")
	tl.refuse("unauthorized_issuer")
	tl.park("unauthorized_issuer") // one of those waits for its accreditation
	tl.expire()                    // and one parked earlier expired
	attrs, ok := tl.take()
	if !ok {
		t.Fatal("no summary")
	}
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}})).Info("records received", attrs...)
	want := `level=INFO msg="records received" accepted=3 kind.accreditation=2 kind.consent=1 from.api=1 from.fetch=1 from.gossip=1 ` +
		`duplicates=1 refused=2 refused_as.clock_skew=1 refused_as.unauthorized_issuer=1 parked=1 expired=1`
	if got := strings.TrimSpace(buf.String()); got != want {
		t.Errorf("summary\n%s\nwant\n%s", got, want)
	}
	if _, ok := tl.take(); ok {
		t.Error("a tally just taken has a summary")
	}
	tl.refuse("malformed")
	if attrs, ok := tl.take(); !ok || len(attrs) != 7 { // accepted, duplicates and refused pairs, the refused_as group
		t.Errorf("refusals alone: %v %v", attrs, ok)
	}
}
