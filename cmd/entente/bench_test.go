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
	out := newCLI(t).ok("bench", "--records", "1000", "--verifies", "500")
	for _, re := range []string{`ingest +\d+ records/s \(1000 records in`, `bare verify +\d+ crypto/ed25519`, `ingest / verify +\d\.\d\d`,
		`node verifier +\d+ verifications/s`, `ingest / node verifier +\d\.\d\d`,
		`bare disk +\d+ records/s`, `ingest / disk +\d\.\d\d`, `ingest / limit +\d\.\d\d \(the limit: (cpu|disk), \d+ records/s; CPU busy \d\.\d\d of \d+ cores\)`,
		`verify +\d+ requests/s, p50 [\d.]+ ms, p99 [\d.]+ ms`, `bare handler +\d+ requests/s`, `verify / bare +\d\.\d\d`,
		`verify-batch +\d+ decisions/s`, `batch / single +\d+\.\d\d`, `tier 3 / tier 1 +\d+\.\d\d`} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("bench output lacks %q:\n%s", re, out)
		}
	}
	wantError(t, newCLI(t).fails(2, "bench", "--records", "5"), true, "--records")
	wantError(t, newCLI(t).fails(2, "bench", "--verifies", "5"), true, "--verifies")
}
