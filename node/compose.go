package node

import (
	"fmt"
	"log/slog"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/entente-net/entente/node/access"
	"github.com/entente-net/entente/node/api"
	"github.com/entente-net/entente/node/checkpoint"
	"github.com/entente-net/entente/node/deliver"
	"github.com/entente-net/entente/node/fetch"
	"github.com/entente-net/entente/node/gossip"
	"github.com/entente-net/entente/node/incidents"
	"github.com/entente-net/entente/node/ingest"
	"github.com/entente-net/entente/node/notices"
	"github.com/entente-net/entente/node/reconcile"
	"github.com/entente-net/entente/node/rejoin"
	"github.com/entente-net/entente/node/trust"
	"github.com/entente-net/entente/node/verify"
	"github.com/entente-net/entente/node/witness"
	"github.com/entente-net/entente/protocol"
	"github.com/entente-net/entente/store"
)

// compose builds, wires and starts n's parts in order, each registering
// how to close it (closers run in reverse): the store, the core services
// that need no network, the host, the network services, the API, and
// last the dialling. The services meet only through the interfaces their
// packages declare; this is the one place that knows them all.
func compose(n *Node) error {
	if err := composeCore(n); err != nil {
		return err
	}
	if err := composeNetwork(n); err != nil {
		return err
	}
	if n.cfg.APIAddr != "" {
		if err := composeAPI(n); err != nil {
			return err
		}
	}
	n.members.start(n.cfg.ReconnectInterval)
	return nil
}

// closeWith adds a service's Close to the node's closers.
func closeWith(n *Node, close func()) {
	n.closers = append(n.closers, func() error { close(); return nil })
}

// composeCore opens the store and builds ingest and checkpoints.
func composeCore(n *Node) error {
	cfg := &n.cfg
	n.outbox = gossip.NewOutbox()
	st, err := store.Open(store.Options{Dir: cfg.DataDir, InMemory: cfg.InMemory,
		Logger: component(n, "store"), OnCommit: n.outbox.Committed})
	if err != nil {
		return fmt.Errorf("node: open store: %w", err)
	}
	n.store = st
	n.closers = append(n.closers, st.Close)
	n.trust = trust.NewView(n.fed, st)
	registerNodeMetrics(n)
	if n.members, err = newMembers(n.id, n.fed, n.trust, cfg.Now, component(n, "members")); err != nil {
		return fmt.Errorf("node: reading node accreditations: %w", err)
	}
	index, err := reconcile.LoadIndex(st)
	if err != nil {
		return fmt.Errorf("node: reading the sync set: %w", err)
	}
	n.index = index
	n.svc.Notices = notices.New(notices.Config{Store: st, Blocks: n.trust, Jurisdiction: cfg.Jurisdiction, Now: cfg.Now, Logger: component(n, "notices")})
	if n.svc.Ingest, err = ingest.New(ingest.Config{
		Store: st, Trust: n.trust, Outbox: n.outbox, Now: cfg.Now, MaxRecordAge: cfg.MaxRecordAge, Logger: component(n, "ingest"),
		Registerer: n.reg, MaxPending: cfg.MaxPendingIngest,
		OnAccept: []func(*protocol.Record){index.Add, n.members.accepted, n.deliverAccepted, n.svc.Notices.Accepted},
	}); err != nil {
		return err
	}
	closeWith(n, n.svc.Ingest.Close)
	if n.svc.Checkpoints, err = checkpoint.New(checkpoint.Config{
		Store: st, Key: cfg.Key, Federation: cfg.Federation.Name, Interval: cfg.CheckpointInterval,
		Logger: component(n, "checkpoints"), Registerer: n.reg,
	}); err != nil {
		return err
	}
	closeWith(n, n.svc.Checkpoints.Close)
	return nil
}

// composeNetwork starts the host and the services that speak to peers,
// and the decisions, which fetch from them.
func composeNetwork(n *Node) error {
	cfg := &n.cfg
	if err := checkConnLimits(cfg.Connections, n.members.others()); err != nil {
		return err
	}
	gate := newGater(n.id, n.members.isMember, cfg.Gate, component(n, "gate"))
	n.reg.MustRegister(gate.refused)
	h, err := newHost(cfg, gate)
	if err != nil {
		return err
	}
	n.host, n.members.h = h, h
	n.closers = append(n.closers, h.Close)
	n.members.protectConnected()
	closeWith(n, func() { n.members.close() }) // the dialling stops before the host closes
	s := &n.svc
	// Delivery first: from here on records may arrive, and a TLP:RED one
	// must find its outbox.
	if s.Deliver, err = deliver.New(deliver.Config{Host: h, Store: n.store, Trust: n.trust, Ingest: s.Ingest,
		Directory: n.members, IsMember: n.members.isMember, Key: cfg.Key, Jurisdiction: cfg.Jurisdiction,
		MinBackoff: cfg.DeliverBackoff.Min, MaxBackoff: cfg.DeliverBackoff.Max, Now: cfg.Now,
		Logger: component(n, "deliver"), Registerer: n.reg}); err != nil {
		return err
	}
	n.deliver.Store(s.Deliver)
	closeWith(n, s.Deliver.Close)
	if s.Fetch, err = fetch.New(fetch.Config{Host: h, Store: n.store, Trust: n.trust, Ingest: s.Ingest,
		Now: cfg.Now, Logger: component(n, "fetch"), Registerer: n.reg}); err != nil {
		return err
	}
	closeWith(n, s.Fetch.Close)
	s.Ingest.SetFetcher(s.Fetch)
	if s.Gossip, err = gossip.New(gossip.Config{Host: h, Federation: cfg.Federation.Name, Ingest: s.Ingest,
		Outbox: n.outbox, IsMember: n.members.isMember, DirectPeers: n.members.founding(),
		OnGraylist: func(p peer.ID) {
			// A member sending invalid records is cut off, and refused by
			// the gate until its score recovers (it decays over an hour).
			if len(h.Network().ConnsToPeer(p)) > 0 {
				component(n, "gate").Warn("closing connections to a graylisted member", "peer", p.String())
				h.Network().ClosePeer(p)
			}
		},
		Logger: component(n, "gossip"), Registerer: n.reg}); err != nil {
		return fmt.Errorf("node: %w", err)
	}
	graylisted := s.Gossip.Graylisted
	gate.graylisted.Store(&graylisted)
	closeWith(n, s.Gossip.Close)
	if s.Sync, err = reconcile.New(reconcile.Config{Host: h, Store: n.store, Index: n.index, Ingest: s.Ingest,
		Download: s.Fetch, Interval: cfg.SyncInterval, Disabled: cfg.DisableSync, Now: cfg.Now,
		Logger: component(n, "sync"), Registerer: n.reg}); err != nil {
		return err
	}
	closeWith(n, s.Sync.Close)
	if s.Witness, err = witness.New(witness.Config{Host: h, Store: n.store, Checkpoints: s.Checkpoints,
		Ingest: s.Ingest, Key: cfg.Key, Federation: cfg.Federation.Name, Jurisdiction: cfg.Jurisdiction,
		IsMember: n.members.isMember, Interval: cfg.WitnessInterval, Now: cfg.Now,
		Logger: component(n, "witness"), Registerer: n.reg}); err != nil {
		return err
	}
	closeWith(n, s.Witness.Close)
	// After a restore, signing waits for what the peers hold (DESIGN.md §6).
	if s.Rejoin, err = rejoin.New(rejoin.Config{Self: n.id, Checkpoints: s.Checkpoints, Witness: s.Witness, Log: n.store,
		Members:   n.members.otherNodes,
		Connected: func(p peer.ID) bool { return h.Network().Connectedness(p) == network.Connected },
		Logger:    component(n, "rejoin")}); err != nil {
		return err
	}
	closeWith(n, s.Rejoin.Close)
	if s.Verify, err = verify.New(verify.Config{Store: n.store, Trust: n.trust, Key: cfg.Key, Fetch: s.Fetch,
		Receipts: s.Ingest, Checkpoints: s.Checkpoints, Now: cfg.Now, MaxRecordAge: cfg.MaxRecordAge,
		Logger: component(n, "verify"), Registerer: n.reg}); err != nil {
		return err
	}
	closeWith(n, s.Verify.Close)
	return nil
}

// deliverAccepted hands a new record to direct delivery, once it runs
// (ingest is built before the host, delivery after it; nothing that
// delivery must see is accepted in between: the network is not up yet).
func (n *Node) deliverAccepted(r *protocol.Record) {
	if d := n.deliver.Load(); d != nil {
		d.Accepted(r)
	}
}

// composeAPI starts the HTTP API over the services.
func composeAPI(n *Node) error {
	cfg := &n.cfg
	acc, err := access.New(access.Config{Path: cfg.AccessFile, OperatorToken: cfg.APIToken, Trust: n.trust,
		Jurisdiction: cfg.Jurisdiction, Now: cfg.Now, Logger: component(n, "access")})
	if err != nil {
		return fmt.Errorf("node: %w", err)
	}
	closeWith(n, acc.Close)
	n.svc.Access = acc
	inc, err := incidents.New(incidents.Config{Store: n.store, Deliveries: n.svc.Deliver})
	if err != nil {
		return err
	}
	a, err := api.New(api.Config{
		Access: acc, Blocks: n.trust, Records: n.svc.Ingest, Store: n.store, Verifier: n.svc.Verify,
		Checkpoints: n.svc.Checkpoints, Status: func(partial bool, caller *api.CallerView) any {
			st := n.Status(partial)
			st.Caller = caller
			return st
		},
		Ready:   n.Ready,
		Peers:   func() int { return len(n.host.Network().Peers()) },
		Metrics: n.reg, Logger: component(n, "api"),
		Limits: api.Limits{
			MaxConcurrentRequests: cfg.MaxConcurrentRequests, MaxStreams: cfg.MaxStreams, MaxBatch: cfg.MaxBatch, MaxBatchBytes: cfg.MaxBatchBytes,
			ReadHeaderTimeout: cfg.HTTPTimeouts.ReadHeader, ReadTimeout: cfg.HTTPTimeouts.Read,
			WriteTimeout: cfg.HTTPTimeouts.Write, IdleTimeout: cfg.HTTPTimeouts.Idle,
		},
		Incidents: inc, Accepted: n.svc.Ingest.Accepted, Notices: n.svc.Notices,
		Streams: api.Streams{Keepalive: cfg.StreamKeepalive},
		Guard: api.Guard{Hosts: cfg.APIHosts, CORSOrigins: cfg.APICORSOrigins,
			MaxConnections: cfg.MaxConnections, MaxConnectionsPerClient: cfg.MaxConnectionsPerClient,
			Rate: cfg.Rate, Burst: cfg.Burst, PublicRate: cfg.PublicRate},
		Registerer: n.reg,
	})
	if err != nil {
		return err
	}
	if err := a.Listen(cfg.APIAddr); err != nil {
		return fmt.Errorf("node: %w", err)
	}
	n.api = a
	n.closers = append(n.closers, a.Shutdown)
	return nil
}

// component is the logger of one of the node's parts.
func component(n *Node, name string) *slog.Logger { return n.log.With("component", name) }
