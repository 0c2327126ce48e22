// Package gossip spreads records over the federation's gossipsub topic
// (protocol.RecordsTopic).
//
// The topic validator answers as go-libp2p-pubsub expects: Reject (which
// penalises the sender) for what no honest node would forward — bad
// encoding, bad signature, a record not for every member (a TLP:RED
// incident, a receipt); Ignore for what an honest node could forward but
// this node cannot accept now — a record it already holds, one whose
// issuer it cannot yet authorise because it lacks an accreditation or a
// referenced record (ingest parks it, counted against the peer that sent
// it), one that is not fresh (clock_skew: issued more than
// limits.max_record_age ago or more than five minutes ahead, which ingest
// judges for every record new from gossip);
// Accept as soon as the record passes every check — decoded, signature
// verified, issuer authorised, fresh, new — while ingest stores it
// alongside (ingest.Pipeline.Forward): each hop forwards without waiting
// for its disk. A node that then fails to store a record it forwarded
// logs it and counts it, and sync brings it back, as after a crash; no
// node answers from a record before it is durable (docs/design-notes.md).
// Messages carry no pubsub signature (StrictNoSign): the record's own
// signature authenticates it, and the message ID is its CID.
//
// Records from the node's own clients go out through the Outbox, a
// commit's worth at a time (outbox.go).
//
// # Peer scoring
//
// Gossipsub's peer score (score.go) is tuned for a federation of a few
// tens of nodes, all members, admitted by key, each connected to every
// other, where records are few, bursty and matter. Every peer on the
// topic is a member (the gate and the peer filter see to it), so the
// score is not there to choose among strangers; it is there to stop a
// member — a compromised or broken node — that floods the topic with what
// no honest node forwards.
//
//   - P4, invalid messages: weight -1 on the square of the peer's count
//     of Rejected records (undecodable, bad signature, not gossiped),
//     decaying to nothing over an hour. This is the defence.
//   - P5, application-specific: +10 for a member (founding node or live
//     node accreditation), -1000 for a peer that is no member any more
//     (its accreditation revoked while it was connected): at once below
//     every threshold. Weight 1; cached for a second, as pubsub asks at
//     every RPC.
//   - P7, behaviour: weight -1 on the square of broken IHAVE promises
//     and early re-grafts beyond 6, decaying over ten minutes.
//   - Off: P1 (time in mesh) and P2 (first deliveries), which reward
//     traffic, and a member earns nothing by sending more records; P3 and
//     P3b (mesh delivery deficits), which punish a quiet peer, and an
//     honest node is quiet most of the time (sync repairs what gossip
//     misses); P6 (IP colocation), since members are admitted by key and
//     one operator may run several nodes behind one address.
//
// Thresholds: gossip -10, publish -50, graylist -80. A member starts at
// +10, so 5 invalid records stop gossip (IHAVE/IWANT) with it, 8 stop
// flood publishing to it, and 10 graylist it: its RPCs are dropped
// unread. An honest node that once forwarded 3 (a version skew) stays at
// +1. A graylisted peer comes back above -80 after about 40 s without
// further offence (its count decays from 10 below 9.5), and its next
// invalid record graylists it again: past the first ten, it gets about
// one invalid record a minute processed. Scores survive a reconnection
// for an hour.
//
// Pubsub never graylists a direct peer (the founding nodes are direct
// peers, so that every record goes on before the mesh forms): the
// validator does it for them, from a copy of the scores taken every
// quarter second, dropping their messages unread (result "graylisted"). Flood
// publishing is on: a node sends its own records to every member on the
// topic whose score is above the publish threshold.
//
// A peer below the graylist threshold is reported to the node
// (Config.OnGraylist) at every inspection while it stays there, after the
// copy the gate reads is updated: the node closes its connections, and its
// gate refuses the peer while Graylisted says so. A flooder then costs
// the node no more than its attempts to reconnect.
package gossip

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/entente-net/entente/node/logs"
	"github.com/entente-net/entente/node/service"
	"github.com/entente-net/entente/protocol"
)

// Ingester is what gossip hands records to (the ingest pipeline).
type Ingester interface {
	// Forward checks r, sent by peer from, parking it when it waits for
	// what authorises it, and answers once the checks pass, storing it
	// alongside.
	Forward(ctx context.Context, r *protocol.Record, from peer.ID) (service.Accepted, bool, error)
	Refused(src service.Source, code string)
}

// Config configures the gossip service. A zero field means the documented
// default.
type Config struct {
	Host       host.Host // required
	Federation string    // required: names the topic
	Ingest     Ingester  // required
	Outbox     *Outbox   // required: what the node's own clients publish
	// IsMember says whether a peer may take part in the topic.
	IsMember func(peer.ID) bool // required
	// DirectPeers are always forwarded every record (the founding nodes).
	DirectPeers []peer.AddrInfo
	// OnGraylist, when set, is called (from the service's goroutine) for
	// each peer below the graylist threshold, at every inspection while it
	// stays there (a quarter second): the node closes any connection it
	// still has — one whose handshake passed the gate just before — and
	// the gate refuses new ones.
	OnGraylist func(peer.ID)
	Logger     *slog.Logger          // default discards
	Registerer prometheus.Registerer // nil registers no metrics
}

// queueLen is the depth of pubsub's queues, to each peer and before
// validation: a burst of records this long goes out and comes in whole.
// Records come in bursts (a client's batch, a commit's worth from the
// outbox, a peer catching up), and pubsub drops what does not fit its
// queues (32 by default); a dropped record waits for the next sync.
const queueLen = 1024

// Service is the node's gossip. Make one with New; Close stops it.
type Service struct {
	cfg      Config
	log      *slog.Logger
	g        *service.Group
	ps       *pubsub.PubSub
	topic    *pubsub.Topic
	unrelay  pubsub.RelayCancelFunc
	psCancel context.CancelFunc
	messages *prometheus.CounterVec
	scores   *scores
	// libLog is pubsub's logger: a warning it repeats (a GRAFT from a
	// peer this node takes as direct, every minute per founding node, on
	// a node that is not one) is logged once, then with a count.
	libLog *logs.Summariser
}

// New joins the federation's topic and starts the outbox's publisher.
func New(cfg Config) (_ *Service, err error) {
	if cfg.Host == nil || cfg.Ingest == nil || cfg.Outbox == nil || cfg.IsMember == nil {
		return nil, errors.New("gossip: Host, Ingest, Outbox and IsMember are required")
	}
	service.Defaults(nil, &cfg.Logger)
	s := &Service{cfg: cfg, log: cfg.Logger, g: service.NewGroup(),
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "entente_gossip_messages_total",
			Help: "Gossip messages validated, by result.",
		}, []string{"result"}),
	}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	s.scores = &scores{isMember: cfg.IsMember, app: map[peer.ID]appScore{}, onGraylist: func(p peer.ID, v float64, newly bool) {
		if newly {
			s.log.Warn("gossip: a peer is graylisted: its score fell below the graylist threshold (invalid records); its messages are dropped unread",
				"peer", p.String(), "score", v, "threshold", graylistThreshold)
		}
		if cfg.OnGraylist != nil {
			cfg.OnGraylist(p)
		}
	}}
	graylisted := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "entente_gossip_graylisted_peers",
		Help: "Peers whose gossip score is below the graylist threshold: their gossip is dropped unread.",
	}, func() float64 { return float64(s.scores.graylisted()) })
	if err := service.Register(cfg.Registerer, "gossip", s.messages, graylisted); err != nil {
		return nil, err
	}
	s.libLog = logs.Summarise(cfg.Logger.With("library", "go-libp2p-pubsub").Handler(), logs.DefaultEvery, nil)
	name := protocol.RecordsTopic(cfg.Federation)
	scoreParams, thresholds := scoreParams(name, s.scores.appScore)
	params := pubsub.DefaultGossipSubParams()
	// Dial direct peers at once: the library's 1s delay is a bare sleep in
	// a goroutine that outlives Close.
	params.DirectConnectInitialDelay = 0
	// Pubsub has a context of its own, cancelled by Close once the
	// outbox's publisher has stopped: PublishBatch does not wait on a
	// context, and would block for ever on a router that had stopped
	// first.
	var psCtx context.Context
	psCtx, s.psCancel = context.WithCancel(context.Background())
	s.ps, err = pubsub.NewGossipSub(psCtx, cfg.Host,
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
		pubsub.WithDirectPeers(cfg.DirectPeers),
		pubsub.WithMaxMessageSize(protocol.MaxRecordSize+4<<10),
		pubsub.WithPeerOutboundQueueSize(queueLen),
		pubsub.WithValidateQueueSize(queueLen),
		pubsub.WithPeerFilter(func(id peer.ID, _ string) bool { return cfg.IsMember(id) }),
		pubsub.WithPeerScore(scoreParams, thresholds),
		pubsub.WithPeerScoreInspect(pubsub.PeerScoreInspectFn(s.scores.inspect), inspectEvery),
		pubsub.WithLogger(slog.New(s.libLog)),
	)
	if err != nil {
		return nil, fmt.Errorf("gossipsub: %w", err)
	}
	if err := s.ps.RegisterTopicValidator(name, s.validate); err != nil {
		return nil, fmt.Errorf("gossip validator: %w", err)
	}
	if s.topic, err = s.ps.Join(name); err != nil {
		return nil, fmt.Errorf("join %s: %w", name, err)
	}
	// Relay, not Subscribe: the node joins the topic's mesh and forwards
	// what its validator accepts, and the validator has already ingested
	// every record, so a subscription would only hand each message to a
	// goroutine that drops it.
	if s.unrelay, err = s.topic.Relay(); err != nil {
		return nil, fmt.Errorf("relay %s: %w", name, err)
	}
	s.g.Go(s.publishLoop)
	return s, nil
}

// Close stops relaying and publishing, then pubsub. It is idempotent.
func (s *Service) Close() {
	if s.unrelay != nil {
		s.unrelay()
		s.unrelay = nil
	}
	s.cfg.Outbox.Close()
	s.g.Close()
	if s.psCancel != nil {
		s.psCancel()
	}
	if s.topic != nil {
		s.topic.Close()
	}
	if s.libLog != nil {
		s.libLog.Flush(context.Background())
	}
}

// Peers lists the peers known to be on the federation's topic.
func (s *Service) Peers() []peer.ID { return s.topic.ListPeers() }

// Score is p's gossip score as of the last inspection (at most a quarter
// second old), and whether pubsub scores p at all.
func (s *Service) Score(p peer.ID) (float64, bool) { return s.scores.score(p) }

// Graylisted reports whether p's score is below the graylist threshold:
// its gossip is dropped unread.
func (s *Service) Graylisted(p peer.ID) bool {
	v, ok := s.scores.score(p)
	return ok && v < graylistThreshold
}

// messageID is the record's CID: the same record gossiped twice is one
// message, whoever forwards it.
func messageID(m *pb.Message) string {
	return protocol.RecordCID(m.GetData()).KeyString()
}

// validate is the topic validator (see the package doc).
func (s *Service) validate(ctx context.Context, from peer.ID, m *pubsub.Message) pubsub.ValidationResult {
	if m.Local || from == s.cfg.Host.ID() {
		// Published by this node after its own ingest.
		s.messages.WithLabelValues("local").Inc()
		return pubsub.ValidationAccept
	}
	if s.Graylisted(from) {
		// Pubsub drops a graylisted peer's messages itself, unless it is a
		// direct peer (a founding node): dropped here, unread.
		s.messages.WithLabelValues("graylisted").Inc()
		return pubsub.ValidationIgnore
	}
	res, reason := s.judge(ctx, from, m.GetData())
	s.messages.WithLabelValues(reason).Inc()
	if res != pubsub.ValidationAccept && s.log.Enabled(ctx, slog.LevelDebug) {
		s.log.Debug("gossip message not accepted", "from", from.String(), "result", reason)
	}
	return res
}

func (s *Service) judge(ctx context.Context, from peer.ID, data []byte) (pubsub.ValidationResult, string) {
	r, err := protocol.Decode(data)
	if err != nil {
		s.cfg.Ingest.Refused(service.SourceGossip, string(protocol.CodeOf(err)))
		return pubsub.ValidationReject, string(protocol.CodeOf(err))
	}
	if !protocol.AudienceOf(r).Gossiped() {
		// Not for every member (a TLP:RED notice, a receipt): no honest
		// node gossips it.
		s.cfg.Ingest.Refused(service.SourceGossip, "not_gossiped")
		return pubsub.ValidationReject, "not_gossiped"
	}
	acc, _, err := s.cfg.Ingest.Forward(ctx, r, from)
	switch code := protocol.CodeOf(err); {
	case err == nil && acc.New:
		return pubsub.ValidationAccept, "accepted"
	case err == nil:
		return pubsub.ValidationIgnore, "duplicate"
	case code == protocol.CodeBadSignature:
		return pubsub.ValidationReject, string(code)
	case code != "":
		// unauthorized_issuer, unknown_reference: this node may lack what
		// the sender holds (ingest parked the record); clock_skew: the
		// record is stale or the clocks disagree, and the sender may have
		// judged it fresh a moment ago. The sender did no wrong.
		return pubsub.ValidationIgnore, string(code)
	case errors.Is(err, service.ErrClosed) || ctx.Err() != nil:
		return pubsub.ValidationIgnore, "closing"
	default:
		s.log.Warn("gossip ingest failed", "cid", r.CID().String(), "err", err)
		return pubsub.ValidationIgnore, "error"
	}
}

// publishLoop is the outbox's publisher; Close stops it before pubsub.
func (s *Service) publishLoop(ctx context.Context) {
	for {
		var batch []*protocol.Record
		select {
		case batch = <-s.cfg.Outbox.batches:
		case <-ctx.Done():
			return
		}
		mb := &pubsub.MessageBatch{}
		for _, r := range batch {
			if err := s.topic.AddToBatch(ctx, mb, r.Bytes()); err != nil && ctx.Err() == nil {
				s.log.Warn("gossip publish failed; the record is stored", "cid", r.CID().String(), "err", err)
			}
		}
		if err := s.ps.PublishBatch(mb); err != nil {
			s.log.Warn("gossip publish failed; the records are stored", "records", len(batch), "err", err)
		}
	}
}
