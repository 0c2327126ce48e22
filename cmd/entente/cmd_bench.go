package main

import (
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/entente-net/entente/testnet"
)

func init() {
	register(&command{
		name: "bench",
		summary: "measure ingest on this machine: records checked, stored durably and logged per second\n\n" +
			"Starts a one-node federation in a temporary directory, signs N accreditations, submits them\n" +
			"from 256 concurrent callers, and compares the rate with bare Ed25519 verification on the\n" +
			"same cores. The full set of benchmarks is `go test -bench` (docs/performance.md).",
		usage: "bench [--records N]",
		run:   runBench,
	})
}

func runBench(env *cliEnv, args []string) error {
	c := findCommand("bench")
	flags := newFlags(env, c)
	n := flags.Int("records", 20000, "how many records to ingest")
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
	dir, err := os.MkdirTemp("", "entente-bench-*")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	net, err := testnet.Start(testnet.Options{Nodes: 1, Jurisdictions: []string{"DE"}, Dir: dir})
	if err != nil {
		return err
	}
	defer net.Close()
	w := env.stdout
	fmt.Fprintf(w, "signing %d accreditations...\n", *n)
	recs, err := net.SignAccreditations("DE", *n)
	if err != nil {
		return err
	}
	verify := testnet.BareVerifyRate(20000)
	m := net.Nodes[0]
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Value
	start := time.Now()
	for g := 0; g < 256; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1) - 1; i < int64(len(recs)); i = next.Add(1) - 1 {
				if _, err := m.SubmitRecord(env.ctx, recs[i]); err != nil {
					failed.Store(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err, _ := failed.Load().(error); err != nil {
		return err
	}
	rate := float64(*n) / elapsed.Seconds()
	fmt.Fprintf(w, "ingest            %8.0f records/s (%d records in %s, durable, indexed, logged)\n", rate, *n, elapsed.Round(time.Millisecond))
	fmt.Fprintf(w, "bare verify       %8.0f Ed25519 verifications/s on %d cores\n", verify, runtime.GOMAXPROCS(0))
	fmt.Fprintf(w, "ingest / verify   %8.2f\n", rate/verify)
	return nil
}
