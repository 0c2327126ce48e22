package config_test

import (
	"strings"
	"testing"

	"github.com/entente-net/entente/config"
	"github.com/entente-net/entente/protocol"
)

// TestLimitsFollowTheProtocol: the limits config cannot import from
// protocol agree with it: the default body limit holds the largest
// record, and a verify-batch is at most one receipt's decisions.
func TestLimitsFollowTheProtocol(t *testing.T) {
	d := config.Defaults()
	if d.Limits.MaxBodyBytes < protocol.MaxRecordSize {
		t.Errorf("default max_body_bytes %d is below the record limit %d", d.Limits.MaxBodyBytes, protocol.MaxRecordSize)
	}
	if d.Limits.MaxBatch != protocol.MaxDecisions {
		t.Errorf("default max_batch %d, a receipt signs at most %d decisions", d.Limits.MaxBatch, protocol.MaxDecisions)
	}
	n := config.Defaults()
	n.Federation, n.Jurisdiction = "/etc/entente/federation.toml", "DE"
	if err := n.Validate(); err != nil {
		t.Fatal(err)
	}
	n.Limits.MaxBatch = protocol.MaxDecisions + 1
	if err := n.Validate(); err == nil || !strings.Contains(err.Error(), "limits.max_batch") {
		t.Errorf("max_batch beyond a receipt: %v", err)
	}
}
