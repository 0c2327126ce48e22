package node_test

import (
	"strings"
	"testing"

	"github.com/entente-net/entente/config"
	"github.com/entente-net/entente/node"
)

// TestNewRefusesConnLimitsBelowTheFederation: connection limits that
// conflict with each other, or that would not hold a connection to every
// member node, stop the node at start-up with an error naming the field.
func TestNewRefusesConnLimitsBelowTheFederation(t *testing.T) {
	key, self := newKey(t)
	_, authority := newKey(t)
	// Five founding nodes besides this one (no one listens there: the
	// node fails before dialling).
	j := config.Jurisdiction{Code: "DE", Name: "Germany", Authority: authority.String(),
		Bootstrap: []string{"/ip4/127.0.0.1/tcp/1/p2p/" + self.String()}}
	for i := 0; i < 5; i++ {
		_, id := newKey(t)
		j.Bootstrap = append(j.Bootstrap, "/ip4/127.0.0.1/tcp/1/p2p/"+id.String())
	}
	fed := &config.Federation{Name: "limits", Jurisdictions: []config.Jurisdiction{j}}
	for _, c := range []struct {
		name   string
		limits node.ConnLimits
		want   string // "" for a node that starts
	}{
		{"defaults", node.ConnLimits{}, ""},
		{"just enough", node.ConnLimits{Max: 10, Low: 5, High: 5}, ""},
		{"high below the members", node.ConnLimits{Max: 100, Low: 2, High: 4}, "Connections.High (4) is below the 5 other member nodes"},
		{"max below two per member", node.ConnLimits{Max: 9, Low: 5, High: 6}, "Connections.Max (9) is below twice the 5 other member nodes"},
		{"low above high", node.ConnLimits{Max: 100, Low: 50, High: 40}, "Connections.Low (50) is above Connections.High (40)"},
		{"high above max", node.ConnLimits{Max: 20, Low: 5, High: 30}, "Connections.High (30) is above Connections.Max (20)"},
		{"negative", node.ConnLimits{Max: -1}, "Connections has a negative limit"},
	} {
		t.Run(c.name, func(t *testing.T) {
			n, err := node.New(node.Config{Key: key, Federation: fed, Jurisdiction: "DE", InMemory: true,
				Listen: []string{"/ip4/127.0.0.1/tcp/0"}, DisableSync: true, Connections: c.limits})
			if n != nil {
				n.Close()
			}
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("New: %v", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Fatalf("New: %v, want an error containing %q", err, c.want)
			}
		})
	}
}
