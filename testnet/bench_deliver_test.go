package testnet

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/entente-net/entente/protocol"
)

// BenchmarkRedDelivery: a DE regulator publishes TLP:RED notices for FR
// and BR, one at a time, on the DE node of a DE–FR–BR testnet; each is
// timed from its submission to the acknowledgement of the last recipient
// jurisdiction (the acknowledgement's time, signed by the receiving node
// on the same clock, in ms). Reports p50 and p99.
func BenchmarkRedDelivery(b *testing.B) {
	net, err := Start(Options{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer net.Close()
	ctx, cancel := context.WithTimeout(b.Context(), 10*time.Minute)
	defer cancel()
	if err := net.WaitConnected(ctx); err != nil {
		b.Fatal(err)
	}
	de := net.NodeOf("DE")
	reg, err := net.NewParty(ctx, "DE", "regulator", protocol.RoleRegulator)
	if err != nil {
		b.Fatal(err)
	}
	if err := net.WaitAll(ctx, reg.Accreditation.CID()); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	var lat []time.Duration
	for i := range b.N {
		red, err := Sign(reg.Key, &protocol.Incident{Ref: "DE-RED-" + string(rune('a'+i%26)), Jurisdiction: "DE", Severity: protocol.SeverityHigh,
			Status: protocol.StatusOpen, TLP: protocol.TLPRed, Affected: []string{}, Categories: []string{"breach"},
			DetectedAt: time.Now().UnixMilli() - int64(i), Summary: "for FR's and BR's eyes only", Recipients: []string{"BR", "FR"}})
		if err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		if err := net.Submit(ctx, de, red); err != nil {
			b.Fatal(err)
		}
		var last time.Time
		for _, j := range []string{"FR", "BR"} {
			if err := net.WaitDelivered(ctx, de, red.CID(), j); err != nil {
				b.Fatal(err)
			}
			if at := de.Deliveries(red.CID())[j].AckedAt; at.After(last) {
				last = at
			}
		}
		// The ack's time is in ms: a delivery within the submission's
		// millisecond counts as 0.
		lat = append(lat, max(last.Sub(t0.Truncate(time.Millisecond)), 0))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[min(len(lat)-1, len(lat)*99/100)].Microseconds())/1000, "p99-ms")
	b.ReportMetric(0, "ns/op")
}
