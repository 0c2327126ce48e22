// Package node is a running entente node: a libp2p host whose connection
// gate admits only federation members, and the composition root that
// builds, wires, starts and stops the node's services. The services are
// packages of their own, each with its own goroutines, Close, metrics and
// tests, depending on the others only through the small interfaces it
// declares:
//
//	ingest      the one road into the store, whatever a record's source
//	gossip      the federation's gossipsub topic, and the outbox of the
//	            node's own records
//	fetch       records by CID, asked of peers and served to them
//	reconcile   set reconciliation with each peer (sync, sync-all)
//	checkpoint  the log's signed checkpoints and the cosignatures kept on them
//	witness     peers' checkpoints verified, cosigned, and equivocation
//	verify      transfer decisions, receipts and receipt bundles
//	api         the HTTP API of DESIGN.md §8, over the services
//
// and two shared rooms: service (goroutine ownership, the errors and data
// types that cross between services) and trust (the node's view of the
// federation: the federation file it recognises and the records it
// holds). compose.go is the one place that knows every service;
// docs/design-notes.md has the map of who owns which goroutines and who
// calls whom.
//
// # Membership
//
// The connection gater admits the founding nodes of the recognised
// jurisdictions (their bootstrap entries in the federation file) and any key
// holding a live node accreditation; everything else is refused at the
// security handshake. The node dials every member it knows an address of
// (members.go); when a node accreditation is revoked, connections to that
// peer are closed.
package node
