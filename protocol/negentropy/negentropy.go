package negentropy

import (
	"errors"
	"fmt"
)

// MinFrameSizeLimit is the smallest frame size limit New accepts (other than
// 0, no limit): every message must have room for at least one full range
// answer besides the closing Fingerprint range.
const MinFrameSizeLimit = 4096

const (
	// buckets is how many Fingerprint ranges a mismatched range splits into.
	buckets = 16
	// frameReserve is kept free below the frame size limit for the closing
	// Skip and Fingerprint ranges (at most 44 + 19 bytes) and one IdList
	// header, as in the reference implementation.
	frameReserve = 200
	// idListOverhead bounds an IdList range's bytes besides its IDs: the
	// bound (≤ 10 + 1 + 32), the mode and the count varint.
	idListOverhead = 10 + 1 + 32 + 1 + 10
)

type role int

const (
	roleUnset role = iota
	roleInitiator
	roleResponder
)

// Negentropy is one side of one reconciliation session over a [Vector].
// It is not safe for concurrent use; the Vector may be shared.
type Negentropy struct {
	v              *Vector
	frameSizeLimit int
	role           role
	// reported holds the IDs the initiator has returned as have or need.
	// With a frame size limit a region can be reconciled twice (a side
	// that stops early covers the rest, settled or not, with one
	// Fingerprint), and an ID is reported only the first time.
	reported map[ID]struct{}
}

// New returns a session over v. frameSizeLimit is the largest message, in
// bytes, that this side builds and accepts; 0 means no limit, otherwise it
// must be at least [MinFrameSizeLimit].
func New(v *Vector, frameSizeLimit int) (*Negentropy, error) {
	if v == nil {
		return nil, errors.New("negentropy: New: nil Vector")
	}
	if frameSizeLimit < 0 || (frameSizeLimit != 0 && frameSizeLimit < MinFrameSizeLimit) {
		return nil, fmt.Errorf("negentropy: New: frameSizeLimit %d: want 0 (no limit) or at least %d", frameSizeLimit, MinFrameSizeLimit)
	}
	return &Negentropy{v: v, frameSizeLimit: frameSizeLimit}, nil
}

// Initiate makes this side the initiator and returns the first message: the
// whole set as one range to infinity, sent as an IdList if it has fewer than
// 32 items and as 16 Fingerprint ranges otherwise (at most about 1 KB, so
// within any allowed frame size limit). It returns an error wrapping
// [ErrRole] if this side has already initiated or responded.
func (n *Negentropy) Initiate() ([]byte, error) {
	if n.role != roleUnset {
		return nil, fmt.Errorf("%w: Initiate on a side that already initiated or responded", ErrRole)
	}
	n.role = roleInitiator
	e := newEncoder()
	n.split(e, 0, n.v.Len(), infinityBound)
	return e.buf, nil
}

// Reconcile makes this side the responder (if it is not yet) and answers
// msg, an initiator's message. On success the reply is never nil: it is at
// least the version byte, and it fits the frame size limit. If msg carries
// another protocol version in 0x60..0x6f, the reply is the single byte
// 0x61, as the protocol prescribes, asking the initiator to downgrade. A
// malformed msg yields an error wrapping [ErrMalformed], a msg over the
// frame size limit [ErrMessageTooLarge], and a call on the initiator
// [ErrRole].
func (n *Negentropy) Reconcile(msg []byte) ([]byte, error) {
	if n.role == roleInitiator {
		return nil, fmt.Errorf("%w: Reconcile on the initiator (use ReconcileInitiator)", ErrRole)
	}
	n.role = roleResponder
	reply, _, _, err := n.reconcile(msg)
	if err != nil {
		return nil, err
	}
	return reply, nil
}

// ReconcileInitiator processes msg, the responder's reply, on the side that
// called Initiate. have lists IDs this side holds and the responder lacks
// (in this side's item order), need IDs the responder holds and this side
// lacks (in the responder's order), both discovered in this round; across
// the rounds of a session each ID is reported at most once, in have or in
// need. If done, the reconciliation is complete and reply is nil; otherwise
// reply is the next message to send (within the frame size limit). Errors
// are as for Reconcile, plus [ErrUnsupportedVersion] if the responder asks
// for another protocol version and [ErrMalformed] if an IdList names an ID
// twice; on error no IDs are returned and none count as reported.
//
// have and need are what the responder's messages imply: a responder that
// lies can make need name an ID this side holds at another timestamp, or
// keep IDs out of both lists. Callers validate what they fetch.
func (n *Negentropy) ReconcileInitiator(msg []byte) (reply []byte, have, need []ID, done bool, err error) {
	if n.role != roleInitiator {
		return nil, nil, nil, false, fmt.Errorf("%w: ReconcileInitiator on a side that did not Initiate", ErrRole)
	}
	reply, have, need, err = n.reconcile(msg)
	if err != nil {
		return nil, nil, nil, false, err
	}
	have, need = n.firstReports(have), n.firstReports(need)
	if len(reply) == 1 { // the version byte alone: every range was Skip
		return nil, have, need, true, nil
	}
	return reply, have, need, false, nil
}

// firstReports filters ids in place down to those not reported before and
// records them as reported.
func (n *Negentropy) firstReports(ids []ID) []ID {
	if len(ids) == 0 {
		return nil
	}
	if n.reported == nil {
		n.reported = make(map[ID]struct{}, len(ids))
	}
	out := ids[:0]
	for _, id := range ids {
		if _, dup := n.reported[id]; !dup {
			n.reported[id] = struct{}{}
			out = append(out, id)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// reconcile answers msg in this side's role. It streams msg's ranges,
// keeping at most one range decoded at a time.
func (n *Negentropy) reconcile(msg []byte) (out []byte, have, need []ID, err error) {
	initiator := n.role == roleInitiator
	limit := n.frameSizeLimit
	if limit > 0 && len(msg) > limit {
		return nil, nil, nil, fmt.Errorf("%w: %d bytes, limit %d", ErrMessageTooLarge, len(msg), limit)
	}
	if len(msg) > 0 && msg[0] != ProtocolVersion && msg[0] >= 0x60 && msg[0] <= 0x6f {
		if initiator {
			return nil, nil, nil, fmt.Errorf("%w: it answered with version byte 0x%02x", ErrUnsupportedVersion, msg[0])
		}
		return []byte{ProtocolVersion}, nil, nil, nil
	}
	d, err := newDecoder(msg)
	if err != nil {
		return nil, nil, nil, err
	}

	items := n.v.items
	e := newEncoder()
	var (
		prevBound bound // lower bound of the range being processed
		prevIndex int   // index of its first item
		// pendingSkip: the ranges since the last bound written, up to
		// prevBound, are all answered Skip; the Skip is written lazily so
		// adjacent ones coalesce and a trailing one stays implicit.
		pendingSkip bool
	)
	flushSkip := func() {
		if pendingSkip {
			e.skip(prevBound)
			pendingSkip = false
		}
	}

	for d.more() {
		rg, err := d.next()
		if err != nil {
			return nil, nil, nil, err
		}
		lower := prevIndex
		upper := n.v.lowerBound(lower, rg.upper)
		before, skipBefore := e.mark(), pendingSkip

		switch rg.mode {
		case modeSkip:
			pendingSkip = true

		case modeFingerprint:
			if rg.fingerprint == n.v.fingerprint(lower, upper) {
				pendingSkip = true
			} else {
				flushSkip()
				n.split(e, lower, upper, rg.upper)
			}

		case modeIDList:
			if initiator {
				h, nd, err := diffIDList(&rg, items[lower:upper])
				if err != nil {
					return nil, nil, nil, err
				}
				have, need = append(have, h...), append(need, nd...)
				pendingSkip = true
				break
			}
			flushSkip()
			cut := upper
			if limit > 0 {
				room := max(0, (limit-frameReserve-idListOverhead-len(e.buf))/len(ID{}))
				cut = min(upper, lower+room)
			}
			if cut == upper {
				e.idList(rg.upper, items[lower:upper])
				break
			}
			// The frame is full: list what fits, then hand the rest,
			// from the first unlisted item to infinity, to a later round.
			cutBound := itemBound(items[cut])
			e.idList(cutBound, items[lower:cut])
			e.fingerprint(infinityBound, n.v.fingerprint(cut, len(items)))
			return e.buf, have, need, nil
		}

		if limit > 0 && len(e.buf) > limit-frameReserve {
			// This range's answer does not fit: drop it and close the
			// message with one Fingerprint over everything from its lower
			// bound on.
			e.reset(before)
			pendingSkip = skipBefore
			flushSkip()
			e.fingerprint(infinityBound, n.v.fingerprint(lower, len(items)))
			return e.buf, have, need, nil
		}
		prevIndex, prevBound = upper, rg.upper
	}
	return e.buf, have, need, nil
}

// split writes this side's items[lower:upper], a range ending at upper
// bound ub, as one IdList if there are fewer than 2*buckets of them and as
// buckets Fingerprint ranges otherwise.
func (n *Negentropy) split(e *encoder, lower, upper int, ub bound) {
	items := n.v.items
	count := upper - lower
	if count < 2*buckets {
		e.idList(ub, items[lower:upper])
		return
	}
	per, extra := count/buckets, count%buckets
	cur := lower
	for i := range buckets {
		size := per
		if i < extra {
			size++
		}
		fp := n.v.fingerprint(cur, cur+size)
		cur += size
		next := ub
		if cur != upper {
			next = minimalBound(items[cur-1], items[cur])
		}
		e.fingerprint(next, fp)
	}
}

// diffIDList compares the peer's IdList rg with ours, this side's items in
// the same range: have is ours that the list lacks (in our order), need is
// the listed IDs we lack (in the list's order). A list naming an ID twice
// is malformed.
func diffIDList(rg *msgRange, ours []Item) (have, need []ID, err error) {
	count := rg.idCount()
	theirs := make(map[ID]bool, count) // ID -> also held by us
	for i := range count {
		id := rg.id(i)
		if _, dup := theirs[id]; dup {
			return nil, nil, malformed(rg.idsAt+i*len(id), "IdList names %s twice", id)
		}
		theirs[id] = false
	}
	for i := range ours {
		if _, ok := theirs[ours[i].ID]; ok {
			theirs[ours[i].ID] = true
		} else {
			have = append(have, ours[i].ID)
		}
	}
	for i := range count {
		if id := rg.id(i); !theirs[id] {
			need = append(need, id)
		}
	}
	return have, need, nil
}
