package main

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/gologshim"
)

// TestLibp2pLogsRouted: while a node runs, go-libp2p's own loggers write
// to its log, warnings and errors only, a repeated one once; before and
// after, nowhere.
func TestLibp2pLogsRouted(t *testing.T) {
	lib := gologshim.Logger("entente-test")
	var buf syncBuffer
	stop := routeLibp2pLogs(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	lib.Info("dialing")
	lib.Warn("resource limits exceeded", "scope", "peer")
	lib.Warn("resource limits exceeded", "scope", "peer")
	lib.Error("listener failed")
	stop()
	lib.Error("after the node stopped")

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("logged %d lines, want 3 (the warning, the error, and the warning's repeat at stop):\n%s", len(lines), buf.String())
	}
	for i, want := range []string{
		`level=WARN msg="resource limits exceeded" library=go-libp2p logger=entente-test scope=peer`,
		`level=ERROR msg="listener failed" library=go-libp2p logger=entente-test`,
		`level=WARN msg="resource limits exceeded" library=go-libp2p logger=entente-test scope=peer repeated=1 over=0s`,
	} {
		if !strings.Contains(lines[i], want) {
			t.Errorf("line %d is %q, want it to hold %q", i, lines[i], want)
		}
	}
	if out := buf.String(); strings.Contains(out, "dialing") || strings.Contains(out, "after the node stopped") {
		t.Errorf("logged what it should not:\n%s", out)
	}
}
