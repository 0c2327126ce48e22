package testnet

import (
	"context"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"strconv"
	"strings"
	"testing"
	"time"
)

var (
	growthTo    = flag.Int("growth", 100_000, "BenchmarkGrowth fills one node up to this many records, reporting at 10^5 and each power of ten after it")
	growthHeap  = flag.String("growth-heap", "", "BenchmarkGrowth writes a heap profile at each power of ten to this path with the count appended (PATH.1e6)")
	growthTrace = flag.String("growth-trace", "", "BenchmarkGrowth writes an execution trace of the ingest of the 10^5 records before -growth to this file")
)

// growthChunk is how many records are signed and then ingested at a time:
// records must be fresh when they arrive (DESIGN.md §4), so they are
// signed just before.
const growthChunk = 100_000

// BenchmarkGrowth fills one node (a data directory on disk) with
// accreditations from 128 x GOMAXPROCS submitters (as gossip validation
// runs), and beside it a store.Baseline with the same records; at 10^5
// records and each power of ten after it up to -growth it reports: ingest
// rate over the second half of the decade and its ratios to the two
// limits measured in the same rounds (bare crypto/ed25519 verification,
// bare synced Badger writes), verify p50/p99 at 32 clients, the process's
// resident memory (the baseline's Badger included) and Go heap, and the
// bytes of the node's data directory. Run it once with -growth 10000000
// (about 40 minutes on 2 cores); docs/performance.md has the figures.
func BenchmarkGrowth(b *testing.B) {
	w := newTransferWorld(b, Options{Nodes: 1, Jurisdictions: []string{"DE", "BR"}, API: true, Node: Unbounded})
	m := w.Net.Nodes[0]
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Hour)
	defer cancel()
	bare := openBaseline(b)
	b.ResetTimer()
	filled := 0
	for milestone := 100_000; milestone <= max(*growthTo, 100_000); milestone *= 10 {
		// The milestone's figures are those of the decade's second half
		// (at 10^5, of the one chunk): single chunks swing by half with
		// Badger's compactions.
		var half IngestReading
		for filled < milestone {
			recs, err := w.Net.SignAccreditations("DE", min(growthChunk, milestone-filled))
			if err != nil {
				b.Fatal(err)
			}
			var tf *os.File
			if *growthTrace != "" && filled+len(recs) == *growthTo {
				if tf, err = os.Create(*growthTrace); err == nil {
					err = trace.Start(tf)
				}
				if err != nil {
					b.Fatal(err)
				}
			}
			r, err := MeasureIngest(ctx, m, recs, 128*runtime.GOMAXPROCS(0), bare)
			if err != nil {
				b.Fatal(err)
			}
			if filled >= milestone/2 || milestone == growthChunk {
				half = half.Add(r)
			}
			if tf != nil {
				trace.Stop()
				if err := tf.Close(); err != nil {
					b.Fatal(err)
				}
			}
			filled += len(recs)
			fmt.Fprintf(os.Stderr, "growth: %d records, last 10^5 at %.0f/s (÷ bare ed25519 %.2f, ÷ bare disk %.2f), RSS %d MiB\n",
				filled, r.IngestRate(), r.IngestRate()/r.StdVerifyRate(), r.IngestRate()/r.DiskRate(), selfRSS(b)>>20)
		}
		v, err := MeasureVerify(ctx, w, m, 4000, 32, 64)
		if err != nil {
			b.Fatal(err)
		}
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		tag := fmt.Sprintf("1e%d", len(strconv.Itoa(milestone))-1)
		if *growthHeap != "" {
			writeHeapProfile(b, *growthHeap+"."+tag)
		}
		disk := dirBytes(b, m.DataDir)
		rss := selfRSS(b)
		b.ReportMetric(half.IngestRate(), "ingest-rec/s-"+tag)
		b.ReportMetric(half.IngestRate()/half.StdVerifyRate(), "ingest/verify-"+tag)
		b.ReportMetric(half.IngestRate()/half.DiskRate(), "ingest/disk-"+tag)
		b.ReportMetric(half.OverLimit(), "ingest/limit-"+tag)
		b.ReportMetric(float64(v.Verify.Percentile(99).Microseconds()), "verify-p99-µs-"+tag)
		b.ReportMetric(float64(rss>>20), "rss-MiB-"+tag)
		b.ReportMetric(float64(disk)/float64(filled), "disk-B/record-"+tag)
		_, limit := half.Limit()
		line := fmt.Sprintf("%d records: ingest %.0f/s (÷ bare ed25519 %.2f, ÷ bare disk %.2f, the limit: %s; cores busy %.2f); verify p50 %v p99 %v; RSS %d MiB, heap %d MiB; disk %d MiB (%.0f B/record)",
			filled, half.IngestRate(), half.IngestRate()/half.StdVerifyRate(), half.IngestRate()/half.DiskRate(), limit, half.CoresBusy(),
			v.Verify.Percentile(50), v.Verify.Percentile(99), rss>>20, ms.HeapInuse>>20, disk>>20, float64(disk)/float64(filled))
		fmt.Fprintln(os.Stderr, "growth: "+line)
		b.Log(line)
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

// writeHeapProfile writes the heap's live objects, after a collection, to
// path.
func writeHeapProfile(tb testing.TB, path string) {
	runtime.GC()
	f, err := os.Create(path)
	if err == nil {
		err = pprof.Lookup("heap").WriteTo(f, 0)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		tb.Fatal(err)
	}
}
