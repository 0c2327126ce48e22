package testnet

import (
	"context"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

var growthTo = flag.Int("growth", 100_000, "BenchmarkGrowth fills one node up to this many records, reporting at 10^5 and each power of ten after it")

// growthChunk is how many records are signed and then ingested at a time:
// records must be fresh when they arrive (DESIGN.md §4), so they are
// signed just before.
const growthChunk = 100_000

// BenchmarkGrowth fills one node (a data directory on disk) with
// accreditations, and at 10^5 records and each power of ten after it up
// to -growth reports: ingest rate over the last 10^5 records and its ratio
// to bare crypto/ed25519 verification in the same rounds, verify p50/p99
// at 32 clients, the process's resident memory and Go heap, and the bytes
// of the data directory. Run it once with -growth 10000000 (about half an
// hour on 2 cores); docs/performance.md has the figures.
func BenchmarkGrowth(b *testing.B) {
	w := newTransferWorld(b, Options{Nodes: 1, Jurisdictions: []string{"DE", "BR"}, API: true, Node: Unbounded})
	m := w.Net.Nodes[0]
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Hour)
	defer cancel()
	b.ResetTimer()
	filled := 0
	for milestone := 100_000; milestone <= max(*growthTo, 100_000); milestone *= 10 {
		var last IngestReading
		for filled < milestone {
			recs, err := w.Net.SignAccreditations("DE", min(growthChunk, milestone-filled))
			if err != nil {
				b.Fatal(err)
			}
			if last, err = MeasureIngest(ctx, m, recs, 64); err != nil {
				b.Fatal(err)
			}
			filled += len(recs)
			fmt.Fprintf(os.Stderr, "growth: %d records, last 10^5 at %.0f/s (÷ bare ed25519 %.2f), RSS %d MiB\n",
				filled, last.IngestRate(), last.IngestRate()/last.StdVerifyRate(), selfRSS(b)>>20)
		}
		v, err := MeasureVerify(ctx, w, m, 4000, 32, 64)
		if err != nil {
			b.Fatal(err)
		}
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		disk := dirBytes(b, m.DataDir)
		rss := selfRSS(b)
		tag := fmt.Sprintf("1e%d", len(strconv.Itoa(milestone))-1)
		b.ReportMetric(last.IngestRate(), "ingest-rec/s-"+tag)
		b.ReportMetric(last.IngestRate()/last.StdVerifyRate(), "ingest/verify-"+tag)
		b.ReportMetric(float64(v.Verify.Percentile(99).Microseconds()), "verify-p99-µs-"+tag)
		b.ReportMetric(float64(rss>>20), "rss-MiB-"+tag)
		b.ReportMetric(float64(disk)/float64(filled), "disk-B/record-"+tag)
		fmt.Fprintf(os.Stderr, "growth: %d records: ingest %.0f/s (÷ bare ed25519 %.2f, cores busy %.2f); verify p50 %v p99 %v; RSS %d MiB, heap %d MiB; disk %d MiB (%.0f B/record)\n",
			filled, last.IngestRate(), last.IngestRate()/last.StdVerifyRate(), last.CoresBusy(),
			v.Verify.Percentile(50), v.Verify.Percentile(99), rss>>20, ms.HeapInuse>>20, disk>>20, float64(disk)/float64(filled))
		b.Logf("%d records: ingest %.0f/s (÷ bare ed25519 %.2f, cores busy %.2f); verify p50 %v p99 %v; RSS %d MiB, heap %d MiB; disk %d MiB (%.0f B/record)",
			filled, last.IngestRate(), last.IngestRate()/last.StdVerifyRate(), last.CoresBusy(),
			v.Verify.Percentile(50), v.Verify.Percentile(99), rss>>20, ms.HeapInuse>>20, disk>>20, float64(disk)/float64(filled))
	}
	b.ReportMetric(0, "ns/op")
}

// dirBytes is the size of the files under dir.
func dirBytes(tb testing.TB, dir string) int64 {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return n
}

// selfRSS is this process's resident memory, in bytes (0 off Linux).
func selfRSS(tb testing.TB) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			return kb << 10
		}
	}
	return 0
}
