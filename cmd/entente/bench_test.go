package main

import (
	"regexp"
	"testing"
)

// TestBenchCommand: entente bench ingests its records and prints the rate
// and the ratio to bare verification.
func TestBenchCommand(t *testing.T) {
	closeDefaultIdle(t)
	out := newCLI(t).ok("bench", "--records", "1000")
	for _, re := range []string{`ingest +\d+ records/s \(1000 records in`, `bare verify +\d+ crypto/ed25519`, `ingest / verify +\d\.\d\d`,
		`node verifier +\d+ verifications/s`, `ingest / node verifier +\d\.\d\d`} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("bench output lacks %q:\n%s", re, out)
		}
	}
	wantError(t, newCLI(t).fails(2, "bench", "--records", "5"), true, "--records")
}
