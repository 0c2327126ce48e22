package node

import (
	"context"
	"sync"

	"github.com/libp2p/go-libp2p/core/network"
	libp2pprotocol "github.com/libp2p/go-libp2p/core/protocol"
)

// serveStreams registers handle for a protocol and makes the node own the
// handlers: libp2p runs them on goroutines of its own, which Close would
// not wait for. Each handler runs only while the node is open; its stream
// is reset when the node closes; and the node's Close waits for it.
func (n *Node) serveStreams(proto libp2pprotocol.ID, handle func(network.Stream)) {
	var (
		mu      sync.Mutex
		closing bool
		running sync.WaitGroup
	)
	n.host.SetStreamHandler(proto, func(s network.Stream) {
		mu.Lock()
		if closing {
			mu.Unlock()
			s.Reset()
			return
		}
		running.Add(1)
		mu.Unlock()
		defer running.Done()
		stop := context.AfterFunc(n.ctx, func() { s.Reset() })
		defer stop()
		handle(s)
	})
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		<-n.ctx.Done()
		n.host.RemoveStreamHandler(proto)
		mu.Lock()
		closing = true
		mu.Unlock()
		running.Wait()
	}()
}
