package gossip

import (
	"maps"
	"sync"
	"sync/atomic"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
)

// The peer score's parameters (the package doc says why).
const (
	// memberScore is a member's application-specific score (P5), its
	// credit; nonMemberScore is that of a peer that is no member (any
	// more: a node whose accreditation was revoked while connected).
	memberScore    = 10
	nonMemberScore = -1000
	// invalidWeight weighs the square of a peer's invalid messages (P4):
	// records the validator Rejects.
	invalidWeight = -1
	// invalidMemory is how long an invalid message counts, decaying.
	invalidMemory = time.Hour
	// behaviourWeight weighs the square of a peer's broken gossip
	// promises and early re-grafts beyond behaviourThreshold (P7).
	behaviourWeight    = -1
	behaviourThreshold = 6
	behaviourMemory    = 10 * time.Minute
	// retainScore is how long the score of a peer that disconnected is
	// kept: reconnecting does not clear it.
	retainScore = time.Hour

	gossipThreshold   = -10
	publishThreshold  = -50
	graylistThreshold = -80

	// inspectEvery is how often the scores are copied for the validator
	// (graylisted) and the metrics.
	inspectEvery = 250 * time.Millisecond
	// appScoreTTL is how long a peer's application-specific score is
	// cached: pubsub asks for it at every RPC, and membership of an
	// accredited node is a store read.
	appScoreTTL = time.Second
)

// scoreParams are the peer score parameters and thresholds of topic.
func scoreParams(topic string, appScore func(peer.ID) float64) (*pubsub.PeerScoreParams, *pubsub.PeerScoreThresholds) {
	params := &pubsub.PeerScoreParams{
		Topics: map[string]*pubsub.TopicScoreParams{topic: {
			TopicWeight: 1,
			// P1, P2, P3, P3b off: see the package doc.
			TimeInMeshQuantum:              time.Second,
			InvalidMessageDeliveriesWeight: invalidWeight,
			InvalidMessageDeliveriesDecay:  pubsub.ScoreParameterDecay(invalidMemory),
		}},
		AppSpecificScore:          appScore,
		AppSpecificWeight:         1,
		BehaviourPenaltyWeight:    behaviourWeight,
		BehaviourPenaltyThreshold: behaviourThreshold,
		BehaviourPenaltyDecay:     pubsub.ScoreParameterDecay(behaviourMemory),
		// P6 (IP colocation) off: members are admitted by key, and one
		// operator may run several nodes behind one address.
		DecayInterval: pubsub.DefaultDecayInterval,
		DecayToZero:   pubsub.DefaultDecayToZero,
		RetainScore:   retainScore,
	}
	thresholds := &pubsub.PeerScoreThresholds{
		GossipThreshold:   gossipThreshold,
		PublishThreshold:  publishThreshold,
		GraylistThreshold: graylistThreshold,
		// Peer exchange is off; no score accepts it.
		AcceptPXThreshold:           2 * memberScore,
		OpportunisticGraftThreshold: memberScore / 2,
	}
	return params, thresholds
}

// scores keeps what the peer score needs from the node and what it gives
// back: members' application-specific scores, cached, and the latest
// copy of every peer's score.
type scores struct {
	isMember func(peer.ID) bool

	mu  sync.Mutex
	app map[peer.ID]appScore

	latest atomic.Pointer[map[peer.ID]float64]
	// onGraylist is called at each inspection for each peer below the
	// graylist threshold, newly when it was not at the one before.
	onGraylist func(p peer.ID, score float64, newly bool)
}

type appScore struct {
	score float64
	at    time.Time
}

// appScore is P5: memberScore for a member, nonMemberScore otherwise.
func (s *scores) appScore(p peer.ID) float64 {
	now := time.Now()
	s.mu.Lock()
	c, ok := s.app[p]
	s.mu.Unlock()
	if ok && now.Sub(c.at) < appScoreTTL {
		return c.score
	}
	score := float64(nonMemberScore)
	if s.isMember(p) {
		score = memberScore
	}
	s.mu.Lock()
	if len(s.app) > 4096 { // members are tens; never grows past a bound
		clear(s.app)
	}
	s.app[p] = appScore{score: score, at: now}
	s.mu.Unlock()
	return score
}

// inspect is pubsub's score inspector: it keeps the copy, then reports
// the peers graylisted — after, so that the gate, which reads the copy,
// already refuses a peer when its connections are closed.
func (s *scores) inspect(now map[peer.ID]float64) {
	cp := maps.Clone(now)
	before := s.latest.Swap(&cp)
	for p, v := range now {
		if v >= graylistThreshold {
			continue
		}
		newly := true
		if before != nil {
			if old, ok := (*before)[p]; ok && old < graylistThreshold {
				newly = false
			}
		}
		s.onGraylist(p, v, newly)
	}
}

// score is p's score at the last inspection.
func (s *scores) score(p peer.ID) (float64, bool) {
	m := s.latest.Load()
	if m == nil {
		return 0, false
	}
	v, ok := (*m)[p]
	return v, ok
}

// graylisted counts the peers below the graylist threshold.
func (s *scores) graylisted() int {
	m := s.latest.Load()
	if m == nil {
		return 0
	}
	n := 0
	for _, v := range *m {
		if v < graylistThreshold {
			n++
		}
	}
	return n
}
