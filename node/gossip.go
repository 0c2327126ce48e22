package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/entente-net/entente/protocol"
)

func (n *Node) startGossip() error {
	params := pubsub.DefaultGossipSubParams()
	// Dial direct peers at once: the library's 1s delay is a bare sleep in
	// a goroutine that outlives Close.
	params.DirectConnectInitialDelay = 0
	// Pubsub has a context of its own, cancelled by Close once the outbox's
	// publisher has stopped: PublishBatch does not wait on a context, and
	// would block for ever on a router that had stopped first.
	psCtx, psCancel := context.WithCancel(context.Background())
	n.psCancel = psCancel
	ps, err := pubsub.NewGossipSub(psCtx, n.host,
		pubsub.WithGossipSubParams(params),
		pubsub.WithMessageSignaturePolicy(pubsub.StrictNoSign),
		pubsub.WithNoAuthor(),
		pubsub.WithMessageIdFn(messageID),
		// The origin sends a new record to every member on the topic, not
		// only its mesh: records are few and matter, and a mesh forms only
		// at the heartbeat after peers connect.
		pubsub.WithFloodPublish(true),
		// Founding nodes are direct peers: every record a node accepts is
		// forwarded to all of them, mesh or no mesh, so a record that
		// arrives before the mesh forms still goes on.
		pubsub.WithDirectPeers(n.directPeers()),
		pubsub.WithMaxMessageSize(protocol.MaxRecordSize+4<<10),
		// Records come in bursts (a client's batch, a commit's worth from
		// the outbox, a peer catching up), and pubsub drops what does not
		// fit its queues: 32 messages to each peer, and 32 waiting for
		// validation, by default. A dropped record waits for the next sync.
		pubsub.WithPeerOutboundQueueSize(gossipQueue),
		pubsub.WithValidateQueueSize(gossipQueue),
		pubsub.WithPeerFilter(func(id peer.ID, _ string) bool { return n.trust.isMember(id, n.cfg.Now().UnixMilli()) }),
		pubsub.WithLogger(n.log.With("component", "pubsub")),
	)
	if err != nil {
		return fmt.Errorf("node: gossipsub: %w", err)
	}
	n.ps = ps
	name := protocol.RecordsTopic(n.cfg.Federation.Name)
	if err := ps.RegisterTopicValidator(name, n.validateGossip); err != nil {
		return fmt.Errorf("node: gossip validator: %w", err)
	}
	if n.topic, err = ps.Join(name); err != nil {
		return fmt.Errorf("node: join %s: %w", name, err)
	}
	// Relay, not Subscribe: the node joins the topic's mesh and forwards
	// what its validator accepts, and the validator has already ingested
	// every record, so a subscription would only hand each message to a
	// goroutine that drops it.
	if n.unrelay, err = n.topic.Relay(); err != nil {
		return fmt.Errorf("node: relay %s: %w", name, err)
	}
	n.wg.Add(1)
	go n.publishLoop()
	return nil
}

// gossipQueue is the depth of pubsub's queues, to each peer and before
// validation: a burst of records this long goes out and comes in whole.
const gossipQueue = 1024

// messageID is the record's CID: the same record gossiped twice is one
// message, whoever forwards it.
func messageID(m *pb.Message) string {
	return protocol.RecordCID(m.GetData()).KeyString()
}

// validateGossip is the topic validator (see the package doc for the
// Accept / Reject / Ignore policy). It stores the record before accepting,
// so the node forwards only what it keeps.
func (n *Node) validateGossip(ctx context.Context, from peer.ID, m *pubsub.Message) pubsub.ValidationResult {
	if m.Local || from == n.id {
		// Published by this node after its own ingest.
		n.metrics.gossip.WithLabelValues("local").Inc()
		return pubsub.ValidationAccept
	}
	res, reason := n.judgeGossip(ctx, m.GetData())
	n.metrics.gossip.WithLabelValues(reason).Inc()
	if res != pubsub.ValidationAccept && n.log.Enabled(ctx, slog.LevelDebug) {
		n.log.Debug("gossip message not accepted", "from", from.String(), "result", reason)
	}
	return res
}

func (n *Node) judgeGossip(ctx context.Context, data []byte) (pubsub.ValidationResult, string) {
	r, err := protocol.Decode(data)
	if err != nil {
		n.metrics.ingest.WithLabelValues(string(SourceGossip), string(protocol.CodeOf(err))).Inc()
		return pubsub.ValidationReject, string(protocol.CodeOf(err))
	}
	if !protocol.AudienceOf(r).Gossiped() {
		// Not for every member (a TLP:RED notice, a receipt): no honest
		// node gossips it.
		n.metrics.ingest.WithLabelValues(string(SourceGossip), "not_gossiped").Inc()
		return pubsub.ValidationReject, "not_gossiped"
	}
	acc, err := n.ingestCounted(ctx, r, SourceGossip)
	switch code := protocol.CodeOf(err); {
	case err == nil && acc.New:
		return pubsub.ValidationAccept, "accepted"
	case err == nil:
		return pubsub.ValidationIgnore, "duplicate"
	case code == protocol.CodeBadSignature:
		return pubsub.ValidationReject, string(code)
	case code == protocol.CodeUnauthorizedIssuer || code == protocol.CodeUnknownReference:
		// This node may lack what the sender holds: keep the record until
		// it arrives (parked.go).
		if !n.parked.park(r, n.cfg.Now()) {
			n.log.Warn("parking is full; dropping a record that waits for its dependencies", "cid", r.CID().String())
		}
		// What it waits for may have been accepted while this was being
		// judged: retry once now (a retry that fails does not wake again).
		n.parked.due()
		return pubsub.ValidationIgnore, string(code)
	case code != "":
		// clock_skew: the clocks disagree; the sender did no wrong.
		return pubsub.ValidationIgnore, string(code)
	case errors.Is(err, ErrClosed) || ctx.Err() != nil:
		return pubsub.ValidationIgnore, "closing"
	default:
		n.log.Warn("gossip ingest failed", "cid", r.CID().String(), "err", err)
		return pubsub.ValidationIgnore, "error"
	}
}

// GossipPeers lists the peers known to be on the federation's topic.
func (n *Node) GossipPeers() []peer.ID { return n.topic.ListPeers() }

// directPeers are the founding nodes of the recognised jurisdictions, but
// this node.
func (n *Node) directPeers() []peer.AddrInfo {
	var out []peer.AddrInfo
	for _, ai := range n.fed.BootstrapAddrs() {
		if ai.ID != n.id {
			out = append(out, ai)
		}
	}
	return out
}
