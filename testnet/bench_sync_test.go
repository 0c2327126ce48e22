package testnet

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// BenchmarkCatchUp: a fresh node syncing 100 000 records from one peer:
// the time, as a ratio to what the node's own ingest rate allows (the same
// records submitted to a fresh node in the same run), and the bytes on the
// wire (reconciliation and fetch), as a ratio to the records' own bytes.
// Targets: time ratio <= 1.3, bytes ratio <= 1.2.
//
// held is how many of the records the node held before it went down: a
// node that holds nothing asks for the peer's whole set in one stream; one
// that holds some reconciles (negentropy) and fetches what it lacks.
func BenchmarkCatchUp(b *testing.B) {
	for _, held := range []int{0, 1000} {
		b.Run(fmt.Sprintf("held=%d", held), func(b *testing.B) { benchCatchUp(b, held) })
	}
}

func benchCatchUp(b *testing.B, held int) {
	const n = 100_000
	for i := 0; i < b.N; i++ {
		net, err := Start(Options{Nodes: 2, Jurisdictions: []string{"DE", "FR"}, Dir: b.TempDir()})
		if err != nil {
			b.Fatal(err)
		}
		a, fresh := net.Nodes[0], net.Nodes[1]
		recs := accreditations(b, net, "DE", n)
		if held > 0 {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			if err := net.WaitConnected(ctx); err != nil {
				b.Fatal(err)
			}
			for _, r := range recs[:held] {
				if _, err := fresh.Services().Ingest.SubmitRecord(ctx, r); err != nil {
					b.Fatal(err)
				}
			}
			cancel()
		}
		if err := fresh.Stop(); err != nil {
			b.Fatal(err)
		}
		var own int64 // of the records the node lacks
		for _, r := range recs[held:] {
			own += int64(len(r.Bytes()))
		}
		t0 := time.Now()
		submitAll(b, a, recs)
		ingest := time.Since(t0)

		t1 := time.Now()
		if err := fresh.Restart(); err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		for fresh.Store().Len() < n {
			select {
			case <-fresh.Services().Ingest.Accepted():
			case <-ctx.Done():
				b.Fatalf("caught up %d of %d", fresh.Store().Len(), n)
			}
		}
		catchUp := time.Since(t1)
		// The session records its figures when it ends, a moment after the
		// last record is stored.
		var wire int64
		for wire == 0 && ctx.Err() == nil {
			for _, st := range fresh.Services().Sync.Status() {
				if st.Sessions > 0 {
					wire += int64(st.BytesIn + st.BytesOut + st.FetchBytes)
				}
			}
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
		b.ReportMetric(catchUp.Seconds(), "catch-up-s")
		b.ReportMetric(ingest.Seconds(), "ingest-s")
		b.ReportMetric(catchUp.Seconds()/ingest.Seconds(), "catch-up/ingest")
		b.ReportMetric(float64(wire)/float64(own), "wire/record-bytes")
		net.Close()
	}
	b.ReportMetric(0, "ns/op")
}
