package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/entente-net/entente/store"
	"github.com/entente-net/entente/testnet"
)

func init() {
	register(&command{
		name: "bench",
		summary: "measure ingest and transfer verification on this machine, each against its baseline\n\n" +
			"Starts a two-jurisdiction federation of one node in a temporary directory. Ingest: signs N\n" +
			"accreditations, submits them from 256 concurrent callers, and compares the rate with bare\n" +
			"Ed25519 verification on the same cores, taking turns with it: crypto/ed25519's, and the\n" +
			"node's own verifier (the same verdicts, faster for keys it has seen). Verify: --verifies\n" +
			"POSTs of /v1/transfers/verify from 32 clients against a bare handler doing the same HTTP,\n" +
			"JSON, store reads, signature and durable write; batches of 64; and a tier-3 resale against\n" +
			"a tier-1 transfer. The full set of benchmarks is `go test -bench` (docs/performance.md).",
		usage: "bench [--records N] [--verifies N]",
		run:   runBench,
	})
}

func runBench(env *cliEnv, args []string) error {
	c := findCommand("bench")
	flags := newFlags(env, c)
	n := flags.Int("records", 20000, "how many records to ingest")
	verifies := flags.Int("verifies", 5000, "how many single verifies to send (0: skip the verify measures)")
	rest, err := parseFlags(flags, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usagef("unexpected argument %q", rest[0])
	}
	if *n < 1000 || *n > 10_000_000 {
		return usagef("--records must be from 1000 to 10000000")
	}
	if *verifies != 0 && (*verifies < 500 || *verifies > 1_000_000) {
		return usagef("--verifies must be 0 or from 500 to 1000000")
	}
	started := time.Now()
	dir, err := os.MkdirTemp("", "entente-bench-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	net, err := testnet.Start(testnet.Options{Nodes: 1, Jurisdictions: []string{"DE", "BR"}, Dir: dir, API: true})
	if err != nil {
		return err
	}
	defer net.Close()
	w := env.stdout
	// Progress goes to stderr, the table to stdout.
	ctx := testnet.WithProgress(env.ctx, func(measure string, done, total int) {
		fmt.Fprintf(env.stderr, "  %s: round %d of %d done (%s)\n", measure, done, total, time.Since(started).Round(time.Second))
	})
	fmt.Fprintf(w, "signing %d accreditations...\n", *n)
	recs, err := net.SignAccreditations("DE", *n)
	if err != nil {
		return err
	}
	disk, err := store.OpenBaseline(filepath.Join(dir, "baseline"))
	if err != nil {
		return err
	}
	defer disk.Close()
	fmt.Fprintf(w, "ingesting from 256 concurrent callers, in rounds with bare Ed25519 verification and bare synced Badger writes between them...\n")
	r, err := testnet.MeasureIngest(ctx, net.Nodes[0], recs, 256, disk)
	if err != nil {
		return err
	}
	limit, name := r.Limit()
	fmt.Fprintf(w, "ingest                  %8.0f records/s (%d records in %s, durable, indexed, logged)\n", r.IngestRate(), r.Records, r.IngestTime.Round(time.Millisecond))
	fmt.Fprintf(w, "bare verify             %8.0f crypto/ed25519 verifications/s on %d cores\n", r.StdVerifyRate(), runtime.GOMAXPROCS(0))
	fmt.Fprintf(w, "ingest / verify         %8.2f\n", r.IngestRate()/r.StdVerifyRate())
	fmt.Fprintf(w, "node verifier           %8.0f verifications/s of a key seen before (same verdicts, precomputed tables)\n", r.KeysVerifyRate())
	fmt.Fprintf(w, "ingest / node verifier  %8.2f\n", r.IngestRate()/r.KeysVerifyRate())
	fmt.Fprintf(w, "bare disk               %8.0f records/s (the same records' bytes and keys, synced Badger commits)\n", r.DiskRate())
	fmt.Fprintf(w, "ingest / disk           %8.2f\n", r.IngestRate()/r.DiskRate())
	fmt.Fprintf(w, "ingest / limit          %8.2f (the limit: %s, %.0f records/s; CPU busy %.2f of %d cores)\n", r.OverLimit(), name, limit, r.CoresBusy(), runtime.GOMAXPROCS(0))
	fmt.Fprintf(w, "ingest / shared limit   %8.2f (%.0f records/s: both baselines' CPU per record on the same cores, at most bare disk)\n", r.IngestRate()/r.SharedLimit(), r.SharedLimit())
	if *verifies == 0 {
		return nil
	}
	return benchVerify(ctx, env, net, *verifies)
}

// benchVerify prints MeasureVerify's and MeasureLineage's readings.
func benchVerify(ctx context.Context, env *cliEnv, net *testnet.Net, verifies int) error {
	w := env.stdout
	world, err := testnet.NewTransferWorld(ctx, net)
	if err != nil {
		return err
	}
	m := net.Nodes[0]
	fmt.Fprintf(w, "verifying from 32 clients, in rounds with a bare handler and with batches of 64...\n")
	v, err := testnet.MeasureVerify(ctx, world, m, verifies, 32, 64)
	if err != nil {
		return err
	}
	ms := func(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }
	fmt.Fprintf(w, "verify                  %8.0f requests/s, p50 %s, p99 %s (each decided, signed, stored durably)\n",
		v.Verify.Rate(), ms(v.Verify.Percentile(50)), ms(v.Verify.Percentile(99)))
	fmt.Fprintf(w, "bare handler            %8.0f requests/s, p50 %s, p99 %s (same HTTP, JSON, reads, signature and write)\n",
		v.Bare.Rate(), ms(v.Bare.Percentile(50)), ms(v.Bare.Percentile(99)))
	fmt.Fprintf(w, "verify / bare           %8.2f\n", v.VerifyOverBare())
	fmt.Fprintf(w, "verify / bare+block     %8.2f (the bare handler storing a decision block with each receipt)\n", v.VerifyOverBareBlock())
	fmt.Fprintf(w, "verify-batch            %8.0f decisions/s (64 a call, one receipt each)\n", v.BatchRate())
	fmt.Fprintf(w, "batch / single          %8.2f\n", v.BatchOverSingle())
	fmt.Fprintf(w, "deciding tier-1 transfers and tier-3 resales in process, in rounds...\n")
	l, err := testnet.MeasureLineage(ctx, world, m, max(verifies/2, 500))
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "decide tier 1           %8.1f µs (in process)\n", float64(l.Tier1.Nanoseconds())/1000)
	fmt.Fprintf(w, "decide tier 3           %8.1f µs (two ancestors held)\n", float64(l.Tier3.Nanoseconds())/1000)
	fmt.Fprintf(w, "tier 3 / tier 1         %8.2f\n", l.Tier3OverTier1())
	return nil
}
