// Package negentropy implements range-based set reconciliation as specified
// by negentropy protocol version 1 (Doug Hoyte, github.com/hoytech/negentropy,
// docs/negentropy-protocol-v1.md; the same protocol NIP-77 carries over
// Nostr). Two sides that each hold a set of items learn, in a few round trips
// and with bytes proportional to the difference, which items one side has
// and the other lacks. Moving the items themselves is the caller's business.
//
// The package is pure: no goroutines, no I/O. A [Negentropy] is one side of
// one session and is not safe for concurrent use.
//
// # Items and order
//
// An item is a 64-bit timestamp and a 32-byte ID. Items are ordered by
// timestamp, then by ID compared as bytes. The timestamp 2^64-1 is reserved
// for "infinity" and is not a valid item timestamp. An ID names at most one
// item in a set.
//
// # Varint
//
// Unsigned base-128 digits, most significant first, as few digits as
// possible; the high bit is set on every byte but the last:
//
//	0      -> 00
//	127    -> 7f
//	128    -> 81 00
//	65535  -> 83 ff 7f
//
// A varint with a leading 0x80 byte (a leading zero digit) or a value above
// 2^64-1 is malformed.
//
// # Message
//
//	Message     := <protocolVersion (byte 0x61)> <Range>*
//	Range       := <upperBound (Bound)> <mode (Varint)> <payload>
//	Bound       := <encodedTimestamp (Varint)> <length (Varint)> <idPrefix (byte)*length>
//	Skip        := mode 0, no payload
//	Fingerprint := mode 1, 16 bytes
//	IdList      := mode 2, <count (Varint)> <ID (32 bytes)>*count
//
// Ranges are adjacent: the first starts at timestamp 0 and the all-zero ID,
// each later one at the previous range's upper bound (inclusive lower,
// exclusive upper). A message whose last range does not end at infinity has
// an implicit Skip range to infinity, so a message of the version byte alone
// means "nothing left to do".
//
// A bound's timestamp is encoded as 0 for infinity and otherwise as
// 1 + (timestamp − previous bound's timestamp in this message), starting from
// 0 at each message. Its ID prefix (0 to 32 bytes) is padded with zero bytes
// to 32; the sender uses the shortest prefix that separates the range's
// first item from the previous item (empty when their timestamps differ).
//
// This package decodes strictly and returns a [*MessageError] rather than
// guessing: a truncated or non-canonical varint, an unknown mode (3, 4, …),
// a prefix longer than 32 bytes, a bound below the one before it, a finite
// timestamp that reaches 2^64-1, an infinity bound with a non-empty prefix,
// a range after the infinity bound, and an IdList count larger than the rest
// of the message could hold (checked before anything is allocated) are all
// errors. Decoding then re-encoding a valid message gives back its bytes.
//
// # Fingerprint
//
// The fingerprint of a range is the first 16 bytes of
//
//	SHA-256( sum of the IDs as little-endian 256-bit integers mod 2^256 (32 bytes, little-endian)
//	         || Varint(number of items) )
//
// For the single item with ID
// eb6b05c2e3b008592ac666594d78ed83e7b9ab30f825b9b08878128f7500008c the sum is
// the ID itself, the count encodes as 01, and the fingerprint is
// 6d74e1212fcafc8a81d090f0ffbde8b0.
//
// # Algorithm
//
// The initiator (client) sends [Negentropy.Initiate]: its whole set as one
// range to infinity, split as below. The responder (server) answers each
// message with [Negentropy.Reconcile], the initiator with
// [Negentropy.ReconcileInitiator], each walking the incoming ranges in order:
//
//   - Skip: answered with Skip (adjacent Skips coalesce; a trailing Skip is
//     left implicit).
//   - Fingerprint: Skip if it equals the fingerprint of this side's items in
//     the range; otherwise this side splits its items in the range: fewer
//     than 32 items go back as one IdList, more as 16 Fingerprint ranges of
//     near-equal item counts (the first n mod 16 buckets one item larger).
//   - IdList: the initiator now knows the range completely: IDs it holds that
//     the list lacks are "have", listed IDs it lacks are "need", and it
//     answers Skip. The responder answers with its own IdList of the range.
//
// The initiator is done when its answer would hold only Skip ranges.
//
// # Worked example
//
// An initiator holding three items,
//
//	1678011277 eb6b05c2e3b008592ac666594d78ed83e7b9ab30f825b9b08878128f7500008c
//	1678011278 39b916432333e069a4386917609215cc688eb99f06fed01aadc29b1b4b92d6f0
//	1678011279 abc81d58ebe3b9a87100d47f58bf15e9b1cbf62d38623f11d0f0d17179f5f3ba
//
// has fewer than 32 items, so its first message is one IdList to infinity:
//
//	61          protocol version 1
//	00 00       upper bound: infinity, empty prefix
//	02 03       mode IdList, 3 IDs
//	eb6b…008c 39b9…d6f0 abc8…f3ba
//
// A 111-item set instead opens with 16 Fingerprint ranges (seven items in
// each of the first 15 buckets, six in the last), the first being
//
//	86 a0 8f b9 6f   1 + 1677974766, the timestamp of the eighth item
//	00               empty prefix: the seventh item's timestamp differs
//	01 e29f…e588     mode Fingerprint, then the first seven items' fingerprint
//
// (testdata/README.md lists these and the other published vectors the tests
// check.)
//
// # Frame size limit
//
// With a frame size limit, every message this side builds is at most that
// many bytes, and every message it receives must be too (so both sides of
// a session use the same limit, or the receiver a larger one). When the
// answer to the next range would not fit in the limit less a 200-byte
// reserve, that answer is dropped, a pending Skip is written, and one
// Fingerprint range from the dropped range's lower bound to infinity covers
// the rest, to be split again in a later round; a responder answering an
// IdList instead lists the items that fit, up to a bound equal to the first
// item left out, before that closing Fingerprint. This costs round trips,
// not correctness. The closing Fingerprint here covers exactly the items of
// the range it declares; the reference implementation fingerprints only the
// items after the dropped range, so that a peer can see a match where the
// sets differ. Because the closing range can also cover regions the
// initiator has already settled, such regions may be reconciled twice; the
// initiator reports each ID at most once per session.
package negentropy
