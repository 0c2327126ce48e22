package protocol

// LaterNotice reports whether incident notice r supersedes notice l as
// the state of their incident (DESIGN.md §5): the greatest issued_at; on
// a tie a notice beats the notices it follows, then the lowest binary CID
// wins. follows(a, b) reports whether a follows b, directly or through
// other notices of the chain. Every path that derives an incident's state
// (the transfer decision, the node's incident read model) asks this.
func LaterNotice(r, l *Record, follows func(a, b *Record) bool) bool {
	switch {
	case r.IssuedAt() != l.IssuedAt():
		return r.IssuedAt() > l.IssuedAt()
	case follows(r, l):
		return true
	case follows(l, r):
		return false
	}
	return r.CID().KeyString() < l.CID().KeyString()
}
