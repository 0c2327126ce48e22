package service_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/entente-net/entente/node/service"
)

// TestPeerLimiter: a peer past its concurrent streams or its rate is
// refused with ErrThrottled and counted by reason, another peer is not
// affected, a released stream frees its place, and a token due within
// MaxWait is waited for.
func TestPeerLimiter(t *testing.T) {
	reg := prometheus.NewRegistry()
	ctx := context.Background()
	a, b := peer.ID("peer-a"), peer.ID("peer-b")

	conc, err := service.NewPeerLimiter("/test/conc", service.PeerLimit{Concurrent: 1}, reg)
	if err != nil {
		t.Fatal(err)
	}
	release, err := conc.Admit(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conc.Admit(ctx, a); !errors.Is(err, service.ErrThrottled) {
		t.Fatalf("a second stream at once: %v, want ErrThrottled", err)
	}
	if r, err := conc.Admit(ctx, b); err != nil {
		t.Fatalf("another peer: %v", err)
	} else {
		r()
	}
	release()
	release() // idempotent
	if r, err := conc.Admit(ctx, a); err != nil {
		t.Fatalf("after release: %v", err)
	} else {
		r()
	}

	// The second limiter shares the metric with the first.
	rl, err := service.NewPeerLimiter("/test/rate", service.PeerLimit{Rate: 1, Burst: 2}, reg)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		r, err := rl.Admit(ctx, a)
		if err != nil {
			t.Fatalf("stream %d within the burst: %v", i, err)
		}
		r()
	}
	if _, err := rl.Admit(ctx, a); !errors.Is(err, service.ErrThrottled) {
		t.Fatalf("a stream over the burst: %v, want ErrThrottled", err)
	}

	wait, err := service.NewPeerLimiter("/test/wait", service.PeerLimit{Rate: 20, Burst: 1, MaxWait: time.Second}, reg)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for i := 0; i < 3; i++ {
		r, err := wait.Admit(ctx, a)
		if err != nil {
			t.Fatalf("stream %d, due within MaxWait: %v", i, err)
		}
		r()
	}
	if d := time.Since(start); d < 90*time.Millisecond {
		t.Fatalf("3 streams at 20/s with a burst of 1 took %s; the limiter did not pace them", d)
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := wait.Admit(canceled, a); err == nil {
		t.Fatal("a wait with an ended context was admitted")
	}

	for _, c := range []struct {
		proto, reason string
		want          float64
	}{{"/test/conc", "concurrency", 1}, {"/test/rate", "rate", 1}, {"/test/wait", "rate", 0}} {
		if got := throttled(t, reg, c.proto, c.reason); got != c.want {
			t.Errorf("throttled{%s,%s} = %v, want %v", c.proto, c.reason, got, c.want)
		}
	}
}

// throttled reads entente_p2p_streams_throttled_total{protocol, reason}.
func throttled(t *testing.T, reg *prometheus.Registry, proto, reason string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "entente_p2p_streams_throttled_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, lp := range m.GetLabel() {
				labels[lp.GetName()] = lp.GetValue()
			}
			if labels["protocol"] == proto && labels["reason"] == reason {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}
