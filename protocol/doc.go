// Package protocol is the federation's language: what a record is, how
// it is encoded, signed and named, which bodies each kind carries, who may
// issue what, how a refusal is reported, how a transfer is decided, and
// every other byte string that crosses the wire or reaches an auditor
// (the wire protocols between nodes, checkpoints and cosignatures, receipt
// bundles). This comment is the normative specification of format version
// 1 (DESIGN.md §4–§6); the package implements it without I/O, goroutines
// or logging. Golden vectors, valid and invalid, are in testdata/golden
// (records) and testdata/wire (the rest but bundles, whose vectors are the
// tests of bundle.go).
//
// # Records
//
// A record is one DAG-CBOR map of six fields, all required:
//
//	v          int     format version: 1
//	kind       string  accreditation, ruleset, consent, revocation, incident or receipt
//	issuer     string  the issuer's libp2p peer ID (12D3KooW...), naming an Ed25519 key
//	issued_at  int     the issuer's signing time, Unix milliseconds, >= 0
//	body       map     the kind's body (below)
//	sig        bytes   the 64-byte Ed25519 signature
//
// The issuer must be the canonical string form of a peer ID that embeds
// its public key (the identity multihash of an Ed25519 public key), so
// that the signature can be checked from the record alone. Encoded with
// its signature, a record is at most 65536 bytes (MaxRecordSize).
//
// Sign is the one way to make a record: it validates the body, encodes,
// signs and computes the CID. Decode checks encoding and schema; Parse
// also verifies the signature. A Record therefore never disagrees with
// its bytes or its CID.
//
// # Canonical encoding
//
// A record has exactly one encoding, and decoders refuse every other byte
// string, even one that decodes to the same values. The rules are those
// of DAG-CBOR's strict mode:
//
//   - The bytes are one CBOR data item with nothing after it.
//   - Every length (of a map, array, text or byte string) is definite.
//   - Integers and lengths take their shortest form; every integer fits
//     in a signed 64-bit integer.
//   - Map keys are text strings, each present once, sorted length-first:
//     shorter keys first, keys of equal length in bytewise order (RFC
//     7049 §3.9 canonical order). The envelope's keys thus come in the
//     order v, sig, body, kind, issuer, issued_at.
//   - There are no floating-point numbers, no undefined, and no null: no
//     field may be null. The only simple values are true and false
//     (a receipt check's ok).
//   - The only tag is 42, a link; its content is a byte string holding a
//     zero byte (the identity multibase prefix) and the binary CID.
//   - Text strings are valid UTF-8.
//   - Optional fields are left out when unused, never written as null or
//     as an empty list. Required lists are always present, [] when empty.
//   - Lists that are sets are sorted in ascending bytewise order and hold
//     no duplicates; the schemas below say which lists are sets.
//   - Jurisdictions are upper-case ISO 3166-1 alpha-2 codes ("DE"); where
//     a list of destinations or origins allows it, "*" stands for every
//     jurisdiction.
//   - Times are Unix milliseconds.
//
// # Signature
//
// The signature covers the signing input: the ASCII string
// "entente/record/v1" (SignatureDomain), one zero byte, then the canonical
// encoding of the record map without its sig field (five fields: v, body,
// kind, issuer, issued_at, in that order). It is an Ed25519 signature
// (RFC 8032) by the key the issuer's peer ID names.
//
// # Record IDs and links
//
// A record's ID is its CID: CIDv1, codec dag-cbor (0x71), multihash
// sha2-256 (0x12, 32 bytes) of the full encoding, sig included. It is
// written in base32 lower case with the multibase prefix b ("bafyrei...").
// Its binary form is the 36 bytes 01 71 12 20 followed by the digest.
//
// A link to another record is tag 42 around the 37-byte string 00 01 71 12
// 20 <digest>, encoded d8 2a 58 25 00 01 71 12 20 <digest>. Bytes that
// are not a zero byte and one whole binary CID are malformed; a CID that
// does not have the form of a record ID (CIDv1, dag-cbor, sha2-256, such
// as a CIDv0) is invalid_body.
//
// # Value rules
//
// Beyond their CBOR type, the bodies' fields are held to these shapes:
//
//   - code: an upper-case alpha-2 jurisdiction code, two letters A-Z.
//   - peer ID: as the envelope's issuer.
//   - token: 1 to 128 bytes of lower-case ASCII letters, digits and the
//     characters - _ . : /  (purposes, condition and check IDs,
//     incident categories).
//   - name: 1 to 256 bytes of printable UTF-8, on one line. Printable is
//     Go's unicode.IsPrint: letters, marks, numbers, punctuation, symbols
//     and the ASCII space.
//   - text: 1 to 8192 bytes of printable UTF-8; newlines and tabs allowed.
//   - ms: a time, an integer >= 0.
//
// # Bodies
//
// Every field is required unless marked optional. A body holds no field
// but those listed.
//
// accreditation: an authority grants roles to a key in its jurisdiction.
//
//	subject       peer ID   the key granted the roles
//	jurisdiction  code
//	roles         set       non-empty; each one of auditor, controller, node, regulator
//	name          name      who the subject is
//	valid_from    ms
//	valid_until   ms        later than valid_from; the grant holds in [valid_from, valid_until)
//	addrs         set       optional; multiaddr strings, for nodes
//
// ruleset: a jurisdiction's minimum standards for exports and imports.
//
//	jurisdiction    code
//	version         int     > 0; a successor has a higher version
//	effective_from  ms
//	supersedes      link    optional; the ruleset this one replaces
//	export          map     Rules, with destinations: set of codes or "*"
//	import          map     Rules, with origins: set of codes or "*"
//
// Rules (the export and import maps, whose keys are flattened together
// with destinations or origins):
//
//	max_tier             int     >= 0
//	prohibited_purposes  set     of tokens
//	max_retention_days   int     >= 0
//	block_on_incident    string  none, low, medium, high or critical
//	conditions           list    of {id token, description text, expr text};
//	                             ids unique within the list
//
// An expr is a CEL expression over the variables transfer, consent and
// now that must type-check to bool (CompileCondition; docs/rules.md).
// Decode compiles every expr, so a ruleset with one that does not compile
// is invalid_body at body.export.conditions[i].expr (or body.import...).
//
// consent: a platform attests a data subject's consent.
//
//	subject         bytes  exactly 32 bytes: the platform's keyed hash of the person
//	jurisdiction    code   where the consent was collected
//	categories      set    non-empty; each one of derived, face, fingerprint, gait, iris, voice
//	purposes        set    non-empty; tokens
//	max_tier        int    >= 0 (0: the collecting platform only; 1: a direct partner; 2+: resale)
//	destinations    set    codes or "*"
//	retention_days  int    >= 0
//	expires_at      ms
//	method          name   how consent was obtained
//	supersedes      link   optional; the consent this amendment replaces
//
// revocation: withdraws an earlier record from a time on.
//
//	target        link  the revoked record
//	reason        text
//	effective_at  ms    the revocation holds at and after this time
//
// incident: a notice of a breach, suspension or other incident.
//
//	ref           name    the issuer's own incident ID
//	jurisdiction  code
//	severity      string  low, medium, high or critical
//	status        string  open, contained or resolved
//	tlp           string  clear, green, amber, amber+strict or red (TLP 2.0)
//	affected      set     peer IDs
//	categories    set     tokens
//	detected_at   ms
//	summary       text
//	follows       link    optional; the previous notice of the same incident
//	recipients    set     codes; required and non-empty when tlp is red, absent otherwise
//
// receipt: a node's signed verdicts, one or many, under one signature.
//
//	decisions   list    1 to 1000 links to decision blocks, in request order
//	                    (the same block may be named twice)
//	checkpoint  map     {size int >= 0, root bytes: the 32-byte tree hash}: the
//	                    node's log just before the receipt's own leaf
//
// A decision block is not a record: an unsigned DAG-CBOR map, encoded by
// the same strict rules, named by its CID as a record is (CIDv1, dag-cbor,
// sha2-256), at most 65536 bytes (DecisionBlock). The receipt's signature
// covers its links, and so every block. A single verify makes a receipt
// of one decision, a batch one receipt for the whole batch; a decision is
// named by the receipt's CID and its index (item). Blocks are stored and
// travel with their receipt.
//
//	request     map     the transfer request, below
//	verdict     string  allow or deny: allow exactly when every check is ok
//	checks      list    non-empty; of {id token, ok bool, reason token (present exactly
//	                    when ok is false; one of the check's reasons, below),
//	                    evidence link (optional), detail string (at most 8192 bytes,
//	                    may be empty)}
//	evidence    list    links, sorted by binary CID bytewise, without duplicates
//
// testdata/wire holds the golden receipt's decision block ("decision-block")
// and blocks a decoder must refuse.
//
// The transfer request (DESIGN.md §5):
//
//	consent         link   the consent relied on
//	from            code   where the data leaves from
//	to              code   where it goes
//	sender          peer ID the platform that sends the data
//	recipient       peer ID
//	purpose         token
//	categories      set    non-empty; biometric categories as in a consent
//	tier            int    >= 0
//	retention_days  int    >= 0
//	at              ms     the decision time
//	parent          map    optional: {receipt link, item int 0 to 999}, the decision
//	                       that let the sender receive the data (tier 2 and above)
//
// # Decoding order
//
// Decode checks, in this order, and reports the first failure: the size;
// the envelope's encoding (well-formed, the six fields and no others,
// their types, canonical form); v; kind; issuer; issued_at; the
// signature's length; the body's encoding; the body's schema. Parse then
// verifies the signature. The error code of a record that breaks several
// rules is thus determined.
//
// # Authorisation
//
// A record that parses may still not be accepted: its issuer must be
// entitled to issue it. Authorize decides this at the record's issued_at,
// from a TrustView (the federation file's authorities and founding nodes,
// and the records a node holds):
//
//   - accreditation, ruleset: only the authority of the body's
//     jurisdiction. A superseding ruleset must name a held ruleset of the
//     same jurisdiction with a lower version.
//   - consent: a key holding a live controller role in the consent's
//     jurisdiction. An amendment (supersedes) must replace a held consent
//     of the same issuer, subject and jurisdiction.
//   - revocation: the target's issuer, or the authority of the target's
//     jurisdiction. The target must be held; a revocation cannot itself
//     be revoked.
//   - incident: the jurisdiction's authority, or a key holding a live
//     regulator, controller or node role in it. A follow-up must name a
//     held notice of the same incident (same jurisdiction and ref), keep
//     its tlp and recipients, be issued no earlier than it, and come from
//     the chain's first issuer or the authority or a regulator of the
//     jurisdiction.
//   - receipt: a key holding a live node role in any recognised
//     jurisdiction, or a founding node of a recognised jurisdiction.
//
// A key holds a live role in a jurisdiction at time t (HasRole) when an
// accreditation issued by that jurisdiction's authority names it as
// subject with that role, valid_from <= t < valid_until, and no held
// revocation of that accreditation, by its issuer or the jurisdiction's
// authority, has effective_at <= t (RevokedAt). Founding nodes hold the
// node role of their jurisdiction without an accreditation. Jurisdictions
// the view does not recognise are refused.
//
// A refused issuer is unauthorized_issuer; a link the check needs but the
// view does not hold is unknown_reference (Error.Ref names it); a link to
// a record of the wrong kind or of another incident, consent or
// jurisdiction is invalid_body.
//
// # Freshness
//
// CheckClock refuses, with clock_skew, a record whose issued_at is more
// than five minutes (MaxClockSkew) after the receiver's clock; a node
// applies it to every record, whatever its path.
//
// CheckFresh refuses, with clock_skew, a record that is not fresh: one
// whose issued_at lies outside [now - max_age, now + MaxClockSkew], where
// now is the receiver's clock and max_age its limits.max_record_age (10
// minutes by default). A node judges it once, when a record first reaches
// it from a client or from gossip, and never again (a record it parks
// while it waits for its issuer's accreditation is not judged again when
// retried). Records that reach a node by sync, by fetch or by direct
// delivery are exempt (they were judged where they entered), and so are
// those its operator imports. So a key cannot create records dated before
// its revocation and have the federation accept them, except through an
// operator's import, and the importing node's log shows which node logged
// such a record first. For example, at now = 1764000000000 with max_age
// 10 minutes, issued_at 1763999400000 (exactly 10 minutes old) and
// 1764000300000 (exactly 5 minutes ahead) are fresh; 1763999399999 and
// 1764000300001 are clock_skew.
//
// # Transfer decision
//
// Decide answers a transfer request (DESIGN.md §5) from a DecisionView
// (a TrustView with the held rulesets of a jurisdiction and the held
// incident notices naming a key), as things stand at the request's at.
// It evaluates these checks, always all of them, in this order, and
// allows the transfer iff every one passes:
//
//	consent.known         the consent is held (and is a consent)
//	consent.issuer        its issuer held a live controller role in the consent's
//	                      jurisdiction at the consent's issued_at, and still does at at
//	consent.live          no revocation by an entitled issuer with effective_at <= at;
//	                      no held amendment (supersedes) by the same issuer, for the
//	                      same subject and jurisdiction, issued at or before at;
//	                      expires_at > at; issued at or before at
//	consent.scope         purpose among the purposes; categories among the categories;
//	                      tier <= max_tier; to among the destinations (or "*");
//	                      retention_days <= the consent's
//	export.rules          from's ruleset in force allows it: to among the export
//	                      destinations (or "*"), tier <= max_tier, purpose not
//	                      prohibited, retention_days <= max_retention_days, and every
//	                      export condition true
//	import.rules          to's ruleset in force, likewise with the import origins
//	                      (from among them, or "*") and the import conditions
//	sender.accredited     the sender holds a live controller role in from at at
//	recipient.accredited  the recipient holds a live controller role in to at at
//	lineage.parent        tiers 0 and 1: no parent; the sender is the consent's issuer;
//	                      from is the consent's jurisdiction; at tier 0 the recipient is
//	                      the sender. Tier 2 and above: a parent is named; its receipt
//	                      and its decision block are held (a node asks member nodes for
//	                      them first); item is one of the receipt's decisions; the
//	                      receipt's issuer is a founding node of a recognised
//	                      jurisdiction, or held a node accreditation live at the
//	                      receipt's issued_at and not revoked at at; the parent's
//	                      verdict is allow; its consent is this consent or one this
//	                      consent amends (following supersedes, same issuer and
//	                      subject); its recipient is this sender; its to is this from;
//	                      its tier is this tier - 1; its at is not after this at; this
//	                      purpose is its purpose; these categories are among its
//	                      categories; and at + retention_days ends no later than its own
//	                      (days of 86 400 000 ms)
//	incident.clear        no incident blocks the consent's issuer, the sender or the
//	                      recipient
//
// A jurisdiction's ruleset in force at at is, of the held rulesets its
// authority issued with effective_from <= at and not revoked at at, the
// one of highest version (then latest effective_from, then lowest binary
// CID); a jurisdiction without one fails its rules check. A condition
// that is false, errors or goes over RuleCostLimit fails its check.
//
// An incident is a chain of notices linked by follows. Its state at at is
// its latest notice issued at or before at: the greatest issued_at; on a
// tie, a notice beats the notices it follows (directly or not), then the
// lowest binary CID wins. Notices revoked at at and notices their issuer
// could not issue (Authorize) are left out. It blocks a party when that notice's
// status is open or contained, its affected list names the party, and its
// severity is at or above the block_on_incident of either from's export
// rules or to's import rules in force (none never blocks; a missing
// ruleset sets no threshold).
//
// Every failing check carries a reason, a stable code from a closed list
// per check (CheckReasons): the first condition that fails, in the order
// the list states them.
//
//	consent.known         not_held, not_consent
//	consent.issuer        consent_not_held, not_accredited_at_issue, not_accredited_at_at
//	consent.live          consent_not_held, revoked, superseded, expired,
//	                      not_yet (issued after at)
//	consent.scope         consent_not_held, purpose, category, tier, destination, retention
//	export.rules          no_ruleset, destination, tier, purpose, retention, condition:<id>
//	import.rules          no_ruleset, origin, tier, purpose, retention, condition:<id>
//	sender.accredited     not_accredited
//	recipient.accredited  not_accredited
//	lineage.parent        tiers 0 and 1: unexpected_parent, consent_not_held (in place of
//	                      the two conditions that read the consent), sender_not_issuer,
//	                      origin, tier0_recipient; tier 2 and above: missing_parent,
//	                      parent_not_held (the receipt or its block; also a parent that
//	                      is no receipt), parent_item, parent_issuer, parent_denied,
//	                      consent (consent_not_held when this consent is not held),
//	                      recipient, route, tier, time, purpose, category, retention
//	incident.clear        consent_not_held, blocked
//
// condition:<id> names the first condition (by its id) that is false,
// errs, or cannot be evaluated because the consent is not held. Each
// check carries the CID of the record that decided it, where there is
// one, and a detail in words, which is for people: it is not normative,
// names incidents by CID only (incident.clear names the blocking ones,
// each by its first and latest notice, and nothing of their bodies; one
// that does not block is not named), and an offline check compares id, ok,
// reason and evidence, never the detail. The decision's evidence is every
// record the checks relied on, sorted by binary CID without duplicates.
// The view's order never shows: the same request and the same held
// records give the same decision, byte for byte. lineage.parent's
// evidence is the parent receipt (with the accreditation that made its
// issuer a node); the parent's decision block is read through the view
// (DecisionView.DecisionBlock).
//
// # Errors
//
// A refusal is an *Error: a stable Code (DESIGN.md §8), the path of the
// field at fault ("body.purposes[1]", "body.export.conditions[0].expr";
// empty when the record as a whole is at fault) and a message. CodeOf
// extracts the code from a wrapped error.
//
//	malformed            not one well-formed CBOR item, trailing bytes, a wrong field
//	                     type (a link tagged other than 42 among them), an unknown,
//	                     missing or duplicate field, a bad v, issuer, issued_at or
//	                     signature length, a body of another kind
//	non_canonical        well-formed and readable, but not the canonical encoding of
//	                     what was read: key order, integer or length width, indefinite
//	                     lengths, a null or empty optional field, a tag around a value
//	                     that is otherwise of its field's type (tag 42 outside a link
//	                     included)
//	invalid_body         the body breaks its kind's schema or value rules
//	unknown_kind         a kind this format version does not know
//	too_large            over 65536 bytes
//	bad_signature        the signature does not verify against the issuer's key
//	unauthorized_issuer  the issuer may not issue this record (see Authorisation)
//	unknown_reference    a link authorisation needs is not held
//	clock_skew           issued_at more than five minutes ahead (CheckClock), or,
//	                     for a record new from a client or gossip, older than
//	                     max_age (CheckFresh)
//
// Tags 2 and 3 (bignums) are malformed wherever they appear, as is a tag 0
// or 1 around content RFC 8949 does not allow for it.
//
// # Wire protocols
//
// Nodes speak seven libp2p protocols, each under its own ID (wire.go,
// deliver.go), and
// one gossipsub topic, RecordsTopic(federation), whose message data is
// one record. Every parser of these bytes is strict: it accepts exactly
// what its encoder writes, nothing longer, no other spelling.
//
// Unsigned varints are multiformats unsigned varints: LEB128, at most 9
// bytes, minimally encoded (no final 0x00 byte after the first). A frame
// is a varint length n, 1 <= n <= the message's limit, then n bytes.
//
// /entente/fetch/1.0.0 — records by CID. The asker writes one frame whose
// body is the canonical CBOR array (definite length, shortest heads) of
// 1 to 64 byte strings, each the 36-byte binary form of a record ID, at
// most 4 KiB; then it closes its side. The server answers each CID in the
// order asked with one frame: 0x00 and the record's bytes (at most
// MaxRecordSize + 1 in all), or the single byte 0x01 for "not held, or
// not for you" (the audience rule, "Who receives what", decides), then
// closes. The asker checks that each record hashes to the CID it asked
// for. For the golden accreditation and consent (testdata/wire,
// "fetch-request"):
//
//	4d                                   frame of 77 bytes
//	82                                   array(2)
//	58 24 01711220 2c5b0fd8...eef7a8     bytes(36): the accreditation's CID
//	58 24 01711220 1ee09946...1b0ff3     bytes(36): the consent's CID
//
// /entente/sync/1.0.0 — set reconciliation. The initiator and the
// responder exchange frames of negentropy messages (package negentropy),
// the initiator first, one answer per message, each at most 512 KiB and
// at most 1000 rounds, until the initiator has what it needs and closes.
// The items are the records both nodes hold and may exchange, keyed by
// (issued_at, SyncID: the SHA-256 digest of the record ID).
//
// /entente/sync-all/1.0.0 — the whole set, for a node that holds nothing.
// The asker writes nothing and closes its side; the server writes one
// frame per record of its sync set, in (issued_at, CID) order, then
// closes.
//
// /entente/checkpoint/1.0.0 — a peer's latest checkpoint. The witness
// writes one varint, the size of the last checkpoint of that peer it
// verified (0 for none), and closes its side. The peer answers with a
// varint n and n bytes of its latest signed checkpoint note (n = 0 while
// its log is empty; n <= MaxCheckpointNote), then a varint k <= 64 and
// k 32-byte hashes: the consistency proof (tlog.ProveTree) from the asked
// size to the note's, empty when the asked size is 0 or not smaller.
// Nothing follows.
//
//	03                                   request: the witness verified size 3
//	a902 <297 bytes of note> 02 <32> <32> answer: a note and a proof of 2 hashes
//
// /entente/cosign/1.0.0 — a witness returns its cosignature. It writes
// one frame holding the log's checkpoint note with the witness's
// cosignature added, and closes its side; the log answers one byte: 0
// kept (added to its latest checkpoint's note), 1 stale (not its latest
// checkpoint), 2 refused (not a valid cosignature of a member).
//
// /entente/witnessed/1.0.0 — what a witness holds of a log. The asker
// writes one frame holding the binary peer ID (at most 64 bytes; an
// Ed25519 key's, as ParsePeerID accepts its string) of the node whose log
// it asks about, and closes its side; the witness answers with a varint n
// and n bytes: the note it keeps of the latest checkpoint of that log it
// verified, with its cosignature (n <= MaxCheckpointNote; n = 0: none),
// and closes. A node restored from a backup asks each peer for its own
// (DESIGN.md §6), and checks the note's signature itself.
//
//	26 0024 0801 1220 <32-byte key>      request: a frame of the 38-byte peer ID
//	e203 <482 bytes of note>             answer: the example checkpoint, cosigned
//
// /entente/deliver/1.0.0 — direct delivery (DESIGN.md §6) of a record
// only the nodes of some jurisdictions may receive (a TLP:RED notice: the
// nodes of its jurisdiction and of its recipients; Audience.Delivered), or
// that they keep (a receipt).
// A receipt is delivered to the nodes of its decisions' from and to
// jurisdictions (ReceiptAudience), each with the decision blocks that
// concern its jurisdiction. The sender writes one frame holding the record
// (at most MaxRecordSize bytes), then, for a receipt, one frame per
// decision block (at most MaxDecisions frames of at most MaxDecisionBlock
// bytes, DeliverMaxBlocks in all), and closes its side. The receiver checks
// that it may receive the record (MayReceive, for itself; for a receipt,
// that every block is one of its decisions and concerns the receiver's
// jurisdiction), stores it and its blocks durably, and answers either
// the single byte 0x01 (refused: not for it, or not accepted; the sender
// tries again later) or the 76 bytes of an acknowledgement, then closes:
//
//	00                                   status: acknowledged
//	02 4445                              the code's length, 2, and the code ("DE")
//	0000018bcfe56800                     the time, Unix ms, 8 bytes big-endian (1700000000000)
//	<64 bytes>                           the Ed25519 signature by the receiver's node key
//
// The signature (SignDeliveryAck) is over the ack's signing input
// (DeliveryAckInput): the ASCII string "entente/deliver-ack/v1", a zero
// byte, the record's 36-byte binary CID, one byte giving the code's length
// and the code, and the time as 8 bytes big-endian; it is valid exactly
// when Go's crypto/ed25519.Verify accepts it for the key the receiver's
// peer ID embeds. For the golden incident acknowledged by the golden DE
// node for DE at 1700000000000 (testdata/wire, "deliver-ack-input"):
//
//	656e74656e74652f64656c697665722d61636b2f7631   "entente/deliver-ack/v1"
//	00                                             zero byte
//	01711220 <32-byte digest>                      the incident's CID
//	02 4445                                        "DE"
//	0000018bcfe56800                               1700000000000
//
// The answer does not repeat the CID: the request named it. The sender
// accepts an acknowledgement only if it verifies against the peer at the
// other end of the stream and that peer is a node of the code's
// jurisdiction, one of the record's audience.
//
// # Checkpoints and cosignatures
//
// A node signs checkpoints of its log in the C2SP tlog-checkpoint format:
// a signed note (golang.org/x/mod/sumdb/note) whose text is three lines,
// each ending in a newline, and nothing else:
//
//	entente/<federation name>/<node peer ID>   the origin
//	<tree size, canonical decimal>
//	<root hash, padded standard base64>
//
// The note is signed with the node's Ed25519 key under the origin as the
// key name, which is also at most 128 bytes. A verifier needs only the
// federation's name and the node's peer ID: CheckpointVerifierKey derives
// the note verifier key from the public key the peer ID embeds
// (note.NewEd25519VerifierKey). The example node (the key whose seed is
// the bytes 0, 1, ..., 31) of federation eu-latam-pilot, for a tree of
// size 3 with leaves "a", "b", "c":
//
//	entente/eu-latam-pilot/12D3KooWA4Xop1JaT3MHxwYMkCepYsv4iPVopMXwCz5iHYdBfeSB
//	3
//	NmQuc8JUCrEh46a/lUWwokmCzYMOsT080Z3jzmwCHsE=
//
//	— entente/eu-latam-pilot/12D3KooWA4Xop1JaT3MHxwYMkCepYsv4iPVopMXwCz5iHYdBfeSB CtpFQ8rh3NoryvtkIJsDjjwQN8qq4YPA00nFiP53A1Q/eFSBciFqayPGwHDWTEdV4/yIv1FvwSU3eoX8xUlsx0sp1QY=
//
// whose verifier key is
//
//	entente/eu-latam-pilot/12D3KooWA4Xop1JaT3MHxwYMkCepYsv4iPVopMXwCz5iHYdBfeSB+0ada4543+AQOhB7/zzhC+HXDdGOdLwJln5NYwm6UNXx3chmQSVTG4
//
// Witnesses cosign with C2SP tlog-cosignature "cosignature/v1": a note
// signature line
//
//	— <witness origin> base64(key ID (4) || time (8, big-endian Unix seconds) || Ed25519 signature (64))
//
// where the key ID is the first 4 bytes of SHA-256(name || "\n" || 0x04
// || public key) and the signature is over "cosignature/v1\ntime
// <decimal time>\n" followed by the checkpoint's note text. A cosigned
// note keeps the log's own signature line first, then one cosignature per
// witness, the latest, at most 32 (MergeCosignature); note.Open with the
// log's verifier ignores the cosignatures, and
// github.com/transparency-dev/formats/note verifies them
// (VerifyCosignature). testdata/wire holds the example checkpoint, its
// note, its verifier key and the note cosigned by the golden DE node at
// 1700000000; invalid.json lists bytes each decoder must refuse.
//
// # Receipt bundles
//
// A receipt bundle (DESIGN.md §6) is a CAR v1 file that lets anyone
// re-check one decision of a receipt offline, with the federation file
// alone: the receipt, a manifest (the issuing node's checkpoint note, an
// inclusion proof for every record, the consistency proof from the tree
// the receipt names, the ancestors' decision blocks), the decision block,
// its ancestors' decision blocks, and every record the decision and its
// ancestors read (the ancestors' receipts among them). Each ancestor is
// re-checked on its own (lineage.ancestor, by depth) over the records
// issued no later than its receipt. The layout, the
// manifest's encoding and the steps of the check (CheckBundle, by stable
// step IDs) are specified in the doc of type Bundle; ReadBundle refuses
// every framing of the blocks but the one MarshalCAR writes. The check
// needs this package and the federation file only (NewBundleTrust).
// testdata/wire/bundle.car is a bundle that holds: an allowed DE → FR
// transfer decided by the golden DE node (seed 0x03) over records made
// from the golden keys at fixed times.
//
// # DAG-JSON view
//
// Record.JSON gives a record's DAG-JSON view: the same map, keys in the
// same order, links as {"/": "bafy..."} and bytes as {"/": {"bytes":
// "<base64, standard alphabet, unpadded>"}}. The view is lossless:
// RecordFromJSON turns it back into the same bytes and applies Parse's
// checks, and BodyFromJSON builds a body from its view.
//
// # Test vectors
//
// testdata/golden holds one valid record of each kind, made from fixed
// keys (Ed25519 seeds of 32 equal bytes: 0x01 the DE authority, 0x03 a DE
// node, 0x04 a DE controller, 0x05 a DE regulator) and fixed times: for
// each, <kind>.cbor (the record's bytes) and <kind>.json (its DAG-JSON
// view), indexed with CID, kind and issuer in vectors.json. invalid.json
// lists byte strings, in hex, that a decoder must refuse, each with the
// code it must refuse it with. testdata/wire holds the wire messages
// (vectors.json: decision block, checkpoint text, verifier key, note and
// cosigned note, fetch, sync-all, checkpoint, cosign and deliver
// messages, and an acknowledgement's signing input; and invalid.json) and
// bundle.car.
//
// testdata/kit is for other implementations: plain files, hex and peer
// IDs, readable without Go.
//
//	keys.json       every key the vectors use: its name, the 32-byte seed, the key file
//	                (MarshalPrivateKey), the public key, the peer ID's bytes and text
//	signing.json    each golden record with the key that signed it (a name of
//	                keys.json), its signing input, signature, bytes and CID
//	decisions.json  transfer decisions: the federation's authorities and founding
//	                nodes, a table of records and decision blocks (CID → hex), and per
//	                decision the records and blocks the node holds, the request (JSON,
//	                and its CBOR as a decision block holds it) and the expected verdict,
//	                checks (id, ok, reason, evidence; details are not normative) and
//	                evidence. The cases: an allow; the consent not held; a prohibited
//	                purpose; a revoked consent; a recipient not accredited; a blocking
//	                incident; a tier-2 transfer without parent; a tier-2 resale allowed
//	                under its parent; one wider than its parent; a tier-3 resale under
//	                a denied parent
//	bundles.json    bundles with the federation to check them against and the expected
//	                steps (id, ok, depth): wire/bundle.car (tier 1),
//	                kit/bundle-tier3.car (a tier-3 resale and its two ancestors), and
//	                kit/bundle-tier3-tampered.car (one byte of the grandparent's block
//	                changed: bundle.blocks and decision.block fail)
//
// The tests check every file against the code, and read the kit as another
// implementation would, from the files alone (TestKitFromFilesAlone); "go
// test ./protocol -run Golden -update" rewrites them all.
//
// # Worked example
//
// An accreditation: the DE authority makes a platform a controller of DE
// for the year 2026.
//
// The issuer is the DE authority, the Ed25519 key whose seed is 32 bytes of 0x01;
// the subject is the key whose seed is 32 bytes of 0x04:
//
//	issuer   12D3KooWK99VoVxNE7XzyBwXEzW7xhK7Gpv85r9F3V3fyKSUKPH5
//	subject  12D3KooWPT98FXMfDQYavZm66EeVjTqP9Nnehn1gyaydqV8L8BQw
//
// Both issued_at and valid_from are 1767225600000 (2026-01-01T00:00:00Z);
// valid_until is 1798761600000 (2027-01-01T00:00:00Z).
//
// The signing input is 291 bytes: the domain string, a zero byte, and the
// 273-byte encoding of the record map without sig:
//
//	656e74656e74652f7265636f72642f7631                                 # "entente/record/v1"
//	00                                                                 # zero byte
//	a561760164626f6479a6646e616d65754578616d706c6520506c6174666f726d
//	20476d624865726f6c6573816a636f6e74726f6c6c6572677375626a65637478
//	34313244334b6f6f575054393846584d6644515961765a6d36364565566a5471
//	50394e6e65686e3167796179647156384c384251776a76616c69645f66726f6d
//	1b0000019b76daa8006b76616c69645f756e74696c1b000001a2ce8bd4006c6a
//	7572697364696374696f6e624445646b696e646d61636372656469746174696f
//	6e666973737565727834313244334b6f6f574b3939566f56784e4537587a7942
//	7758457a573778684b37477076383572394633563366794b53554b5048356969
//	73737565645f61741b0000019b76daa800
//
// The record is 343 bytes:
//
//	a6617601637369675840629afeb2aebe5e0309f6e8cf1ffcebabfc8e625cc40f
//	124f9f3d7ba22be1fcd53a3dd560a3fb5ca4086385e4ff9093478fec984798e3
//	45114a1e7c89593eec0764626f6479a6646e616d65754578616d706c6520506c
//	6174666f726d20476d624865726f6c6573816a636f6e74726f6c6c6572677375
//	626a6563747834313244334b6f6f575054393846584d6644515961765a6d3636
//	4565566a547150394e6e65686e3167796179647156384c384251776a76616c69
//	645f66726f6d1b0000019b76daa8006b76616c69645f756e74696c1b000001a2
//	ce8bd4006c6a7572697364696374696f6e624445646b696e646d616363726564
//	69746174696f6e666973737565727834313244334b6f6f574b3939566f56784e
//	4537587a79427758457a573778684b37477076383572394633563366794b5355
//	4b504835696973737565645f61741b0000019b76daa800
//
// The same bytes, annotated:
//
//	a6                                           # map(6)
//	  61 76                                      # "v"
//	  01                                         # 1
//	  63 736967                                  # "sig"
//	  5840                                       # bytes(64)
//	    629afeb2aebe5e0309f6e8cf1ffcebabfc8e625cc40f124f9f3d7ba22be1fcd5
//	    3a3dd560a3fb5ca4086385e4ff9093478fec984798e345114a1e7c89593eec07
//	  64 626f6479                                # "body"
//	  a6                                         # map(6)
//	    64 6e616d65                              # "name"
//	    75                                       # text(21) "Example Platform GmbH"
//	      4578616d706c6520506c6174666f726d20476d6248
//	    65 726f6c6573                            # "roles"
//	    81                                       # array(1)
//	      6a 636f6e74726f6c6c6572                # "controller"
//	    67 7375626a656374                        # "subject"
//	    7834                                     # text(52) "12D3KooWPT98FXMfDQYavZm66EeVjTqP9Nnehn1gyaydqV8L8BQw"
//	      313244334b6f6f575054393846584d6644515961765a6d36364565566a547150
//	      394e6e65686e3167796179647156384c38425177
//	    6a 76616c69645f66726f6d                  # "valid_from"
//	    1b0000019b76daa800                       # 1767225600000
//	    6b 76616c69645f756e74696c                # "valid_until"
//	    1b000001a2ce8bd400                       # 1798761600000
//	    6c 6a7572697364696374696f6e              # "jurisdiction"
//	    62 4445                                  # "DE"
//	  64 6b696e64                                # "kind"
//	  6d 61636372656469746174696f6e              # "accreditation"
//	  66 697373756572                            # "issuer"
//	  7834                                       # text(52) "12D3KooWK99VoVxNE7XzyBwXEzW7xhK7Gpv85r9F3V3fyKSUKPH5"
//	    313244334b6f6f574b3939566f56784e4537587a79427758457a573778684b37
//	    477076383572394633563366794b53554b504835
//	  69 6973737565645f6174                      # "issued_at"
//	  1b0000019b76daa800                         # 1767225600000
//
// Its CID, the record ID:
//
//	bafyreidlrijb4tizt4b3te25lsd3tie2vd53bz3mknosdtrovskubogxd4
//
// Its DAG-JSON view (indented here; the view itself has no white space):
//
//	{
//	  "v": 1,
//	  "sig": {
//	    "/": {
//	      "bytes": "Ypr+sq6+XgMJ9ujPH/zrq/yOYlzEDxJPnz17oivh/NU6PdVgo/tcpAhjheT/kJNHj+yYR5jjRRFKHnyJWT7sBw"
//	    }
//	  },
//	  "body": {
//	    "name": "Example Platform GmbH",
//	    "roles": [
//	      "controller"
//	    ],
//	    "subject": "12D3KooWPT98FXMfDQYavZm66EeVjTqP9Nnehn1gyaydqV8L8BQw",
//	    "valid_from": 1767225600000,
//	    "valid_until": 1798761600000,
//	    "jurisdiction": "DE"
//	  },
//	  "kind": "accreditation",
//	  "issuer": "12D3KooWK99VoVxNE7XzyBwXEzW7xhK7Gpv85r9F3V3fyKSUKPH5",
//	  "issued_at": 1767225600000
//	}
package protocol
