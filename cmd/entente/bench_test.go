package main

import (
	"regexp"
	"testing"
)

// TestBenchCommand: entente bench ingests its records and prints the rate
// and its ratios to bare verification, to bare disk writes and to the
// lower of the two.
func TestBenchCommand(t *testing.T) {
	closeDefaultIdle(t)
	r := newCLI(t).run("bench", "--records", "1000", "--verifies", "500")
	if r.code != 0 {
		t.Fatalf("bench: exit %d: %s", r.code, r.stderr)
	}
	out := r.stdout
	// Progress, round by round, on stderr.
	for _, re := range []string{`(?m)^  ingest: round 1 of 10 done \(\d+s\)$`, `(?m)^  ingest: round 10 of 10 done`,
		`(?m)^  verify: round 5 of 5 done`, `(?m)^  lineage: round 5 of 5 done`} {
		if !regexp.MustCompile(re).MatchString(r.stderr) {
			t.Errorf("bench's progress lacks %q:\n%s", re, r.stderr)
		}
	}
	for _, re := range []string{`ingest +\d+ records/s \(1000 records in`, `bare verify +\d+ crypto/ed25519`, `ingest / verify +\d\.\d\d`,
		`node verifier +\d+ verifications/s`, `ingest / node verifier +\d\.\d\d`,
		`bare disk +\d+ records/s`, `ingest / disk +\d\.\d\d`, `ingest / limit +\d\.\d\d \(the limit: (cpu|disk), \d+ records/s; CPU busy \d\.\d\d of \d+ cores\)`,
		`ingest / shared limit +\d\.\d\d \(\d+ records/s: both baselines`,
		`verify +\d+ requests/s, p50 [\d.]+ ms, p99 [\d.]+ ms`, `bare handler +\d+ requests/s`, `verify / bare +\d\.\d\d`,
		`verify-batch +\d+ decisions/s`, `batch / single +\d+\.\d\d`, `tier 3 / tier 1 +\d+\.\d\d`} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("bench output lacks %q:\n%s", re, out)
		}
	}
	wantError(t, newCLI(t).fails(2, "bench", "--records", "5"), true, "--records")
	wantError(t, newCLI(t).fails(2, "bench", "--verifies", "5"), true, "--verifies")
}
