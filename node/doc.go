// Package node is a running entente node: a libp2p host whose connection
// gate admits only federation members, a gossipsub topic on which records
// spread, the ingest path every record goes through whatever its source,
// and the HTTP API of DESIGN.md §8.
//
// # Ingest
//
// A record from any source (HTTP, gossip) is accepted by the same steps,
// cheapest first: size; canonical decoding and schema (protocol.Decode);
// clock skew; already held (then it is a duplicate and nothing changes);
// signature; authorisation against what the node holds (protocol.Authorize);
// durable store (store.Put returns after fsync); then the post-accept
// effects (membership, notifications) and, for records from the node's own
// clients (HTTP, its own incident notices), publication on the gossip
// topic, a commit's worth at a time, as soon as the commit is durable
// (outbox.go). TLP:RED incidents are stored but never gossiped.
//
// # Gossip validation
//
// The topic validator answers as go-libp2p-pubsub expects: Reject (which
// penalises the sender) for what no honest node would forward — bad
// encoding, bad signature, a TLP:RED incident; Ignore for what an honest
// node could forward but this node cannot accept now — a record it already
// holds, one whose issuer it cannot yet authorise because it lacks an
// accreditation or a referenced record, one from a clock that runs ahead;
// Accept only once the record is durably stored, so a node forwards only
// what it keeps. Messages carry no pubsub signature (StrictNoSign): the
// record's own signature authenticates it, and the message ID is its CID.
//
// # Membership
//
// The connection gater admits the founding nodes of the recognised
// jurisdictions (their bootstrap entries in the federation file) and any key
// holding a live node accreditation; everything else is refused at the
// security handshake. When a node accreditation is revoked, connections to
// that peer are closed.
package node
