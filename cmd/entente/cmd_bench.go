package main

import (
	"fmt"
	"os"
	"runtime"
	"time"

	"github.com/entente-net/entente/testnet"
)

func init() {
	register(&command{
		name: "bench",
		summary: "measure ingest on this machine: records checked, stored durably and logged per second\n\n" +
			"Starts a one-node federation in a temporary directory, signs N accreditations, submits them\n" +
			"from 256 concurrent callers, and compares the rate with bare Ed25519 verification on the\n" +
			"same cores, taking turns with it: crypto/ed25519's, and the node's own verifier (the same\n" +
			"verdicts, faster for keys it has seen). The full set of benchmarks is `go test -bench`\n" +
			"(docs/performance.md).",
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
	fmt.Fprintf(w, "ingesting from 256 concurrent callers, in rounds with bare Ed25519 verification between them...\n")
	r, err := testnet.MeasureIngest(env.ctx, net.Nodes[0], recs, 256)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "ingest                  %8.0f records/s (%d records in %s, durable, indexed, logged)\n", r.IngestRate(), r.Records, r.IngestTime.Round(time.Millisecond))
	fmt.Fprintf(w, "bare verify             %8.0f crypto/ed25519 verifications/s on %d cores\n", r.StdVerifyRate(), runtime.GOMAXPROCS(0))
	fmt.Fprintf(w, "ingest / verify         %8.2f\n", r.IngestRate()/r.StdVerifyRate())
	fmt.Fprintf(w, "node verifier           %8.0f verifications/s of a key seen before (same verdicts, precomputed tables)\n", r.KeysVerifyRate())
	fmt.Fprintf(w, "ingest / node verifier  %8.2f\n", r.IngestRate()/r.KeysVerifyRate())
	return nil
}
