package node

import (
	"strings"
	"testing"
)

// TestReadiness is the decision of /readyz over each state.
func TestReadiness(t *testing.T) {
	for _, tc := range []struct {
		r      readiness
		ready  bool
		reason string
	}{
		{readiness{member: true}, true, ""}, // alone in its federation
		{readiness{member: true, closing: true}, false, "shutting down"},
		{readiness{}, false, "no member node connected: this node is neither a founding node"},
		{readiness{member: true, others: 2}, false, "no member node connected (the federation has 2 besides this one)"},
		{readiness{member: true, others: 2, connected: 1}, false, "connected to 1 member nodes, but no sync"},
		{readiness{member: true, others: 2, connected: 1, synced: true}, true, ""},
		{readiness{member: false, others: 2, connected: 1, synced: true}, false, "neither a founding node"},
		{readiness{member: true, others: 2, connected: 0, synced: true}, false, "no member node connected"},
		{readiness{member: true, others: 2, connected: 1, synced: true, held: "restored from a backup: waiting"}, false, "signing held, so transfer verdicts are answered unsigned: restored from a backup: waiting"},
		{readiness{member: true, held: "restored from a backup"}, false, "signing held"},
	} {
		ready, reason := tc.r.ready()
		if ready != tc.ready || !strings.HasPrefix(reason, tc.reason) && !strings.Contains(reason, tc.reason) || tc.reason == "" && reason != "" {
			t.Errorf("%+v: ready %v %q, want %v %q", tc.r, ready, reason, tc.ready, tc.reason)
		}
	}
}
