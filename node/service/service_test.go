package service_test

import (
	"context"
	"errors"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"go.uber.org/goleak"

	"github.com/entente-net/entente/node/internal/nodetest"
	"github.com/entente-net/entente/node/service"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestGroupOwnsGoroutinesAndHandlers: Close cancels, resets the streams
// being served, and returns only once every goroutine and handler has;
// it is idempotent; a stream opened after it is refused.
func TestGroupOwnsGoroutinesAndHandlers(t *testing.T) {
	hosts := nodetest.Hosts(t, 2)
	g := service.NewGroup()
	var done atomic.Int32
	g.Go(func(ctx context.Context) {
		<-ctx.Done()
		done.Add(1)
	})
	started := make(chan struct{})
	g.ServeStreams(hosts[0], "/test/1", func(s network.Stream) {
		close(started)
		buf := make([]byte, 16)
		for { // reads until the group resets the stream
			if _, err := s.Read(buf); err != nil {
				done.Add(1)
				return
			}
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := service.OpenStream(ctx, hosts[1], hosts[0].ID(), "/test/1", "test", 1024)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	<-started
	g.Close()
	g.Close()
	if done.Load() != 2 || !g.Closed() {
		t.Fatalf("Close returned with %d of 2 owned goroutines ended", done.Load())
	}
	s.Finish(errors.New("done"))
	// libp2p negotiates the protocol lazily: the refusal shows on use.
	if late, err := hosts[1].NewStream(ctx, hosts[0].ID(), "/test/1"); err == nil {
		late.Write([]byte("x"))
		if _, err := late.Read(make([]byte, 1)); err == nil {
			t.Error("a stream opened after Close was served")
		}
		late.Reset()
	}
}

func TestReadMessageLimit(t *testing.T) {
	if _, err := service.ReadMessage(bytesReader("abcd"), 3); err == nil {
		t.Error("read a message over the limit")
	}
	if b, err := service.ReadMessage(bytesReader("abc"), 3); err != nil || string(b) != "abc" {
		t.Errorf("ReadMessage: %q %v", b, err)
	}
}

type reader struct{ s string }

func bytesReader(s string) *reader { return &reader{s} }

func (r *reader) Read(p []byte) (int, error) {
	if r.s == "" {
		return 0, io.EOF
	}
	n := copy(p, r.s)
	r.s = r.s[n:]
	return n, nil
}
