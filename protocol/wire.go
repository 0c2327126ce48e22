package protocol

// libp2p protocol IDs spoken between nodes. The version is part of the ID:
// an incompatible change gets a new ID, and nodes may speak both.
const (
	// FetchProtocolID asks a peer for records by CID.
	FetchProtocolID = "/entente/fetch/1.0.0"
	// SyncProtocolID reconciles two nodes' record sets.
	SyncProtocolID = "/entente/sync/1.0.0"
	// CheckpointProtocolID exchanges and cosigns log checkpoints.
	CheckpointProtocolID = "/entente/checkpoint/1.0.0"
)

// RecordsTopic is the gossipsub topic on which a federation's nodes spread
// records. A message's data is exactly one encoded record and its message
// ID is the record's CID; the record's own signature authenticates it.
func RecordsTopic(federation string) string {
	return "/entente/" + federation + "/records/1"
}
