package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/pelletier/go-toml/v2"

	"github.com/entente-net/entente/config"
	"github.com/entente-net/entente/node/api"
	"github.com/entente-net/entente/protocol"
	"github.com/entente-net/entente/store"
)

func init() {
	register(&command{
		name: "record sign",
		summary: "sign a record whose body is a DAG-JSON or TOML file, and write its DAG-CBOR bytes\n\n" +
			"Lists of strings in the body are sets: they are sorted and de-duplicated for you.\n" +
			"In TOML, dates (2026-11-24T10:00:00Z) stand for Unix-millisecond times, a link is\n" +
			"written {\"/\" = \"bafy...\"} and bytes {\"/\" = {bytes = \"<base64>\"}}.",
		usage: "record sign --kind KIND --key FILE --body FILE --out FILE [--issued-at TIME]",
		run:   runRecordSign,
	})
	register(&command{
		name: "record submit",
		summary: "submit signed records (DAG-CBOR files) to a node\n\n" +
			"A record must be fresh: issued at most limits.max_record_age (10m) ago and at most\n" +
			"5 minutes ahead. With --import, the operator's token imports older records (a\n" +
			"migration): they are stored and served by sync, but not gossiped.",
		usage: "record submit FILE... [--import] [--api HOST:PORT] [--home DIR] [--token-file FILE]",
		run:   runRecordSubmit,
	})
	register(&command{
		name:    "record show",
		summary: "show a record, from a file or by CID from a node, and check its signature",
		usage:   "record show CID|FILE [--api HOST:PORT] [--home DIR] [--token-file FILE] [--json]",
		run:     runRecordShow,
	})
	register(&command{
		name: "record list",
		summary: "list the records a node holds, in the order it accepted them, one a line: CID, kind, issuer, signing time\n\n" +
			"An accreditation's line ends with its subject, jurisdiction and roles. A caller sees what its\n" +
			"token lets it read (docs/operating.md, \"Access\"). With --limit the listing stops there\n" +
			"and says which --after continues it.",
		usage: "record list [--kind KIND] [--issuer PEERID] [--jurisdiction CODE] [--limit N] [--after CURSOR] [--json] " +
			"[--api HOST:PORT] [--home DIR] [--token-file FILE]",
		run: runRecordList,
	})
}

func runRecordSign(env *cliEnv, args []string) error {
	c := findCommand("record sign")
	flags := newFlags(env, c)
	kind := flags.String("kind", "", "record kind: "+kindList())
	keyFile := flags.String("key", "", "the issuer's key file")
	bodyFile := flags.String("body", "", "the body, as DAG-JSON (.json) or TOML (.toml); - for DAG-JSON on stdin")
	out := flags.String("out", "", "file to write the signed record to")
	issuedAt := flags.String("issued-at", "", "signing time, RFC 3339 (default now)")
	rest, err := parseFlags(flags, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usagef("unexpected argument %q", rest[0])
	}
	switch {
	case *kind == "":
		return usagef("--kind is required (%s)", kindList())
	case !protocol.Kind(*kind).Known():
		return usagef("--kind %q is not a record kind (%s)", *kind, kindList())
	case *keyFile == "":
		return usagef("--key is required")
	case *bodyFile == "":
		return usagef("--body is required")
	case *out == "":
		return usagef("--out is required")
	}
	at := time.Now()
	if *issuedAt != "" {
		if at, err = time.Parse(time.RFC3339, *issuedAt); err != nil {
			return usagef("--issued-at: %v", err)
		}
	}
	key, err := config.LoadKey(*keyFile)
	if err != nil {
		return err
	}
	raw, err := readFileOrStdin(*bodyFile)
	if err != nil {
		return err
	}
	var generic any
	if strings.HasSuffix(*bodyFile, ".toml") {
		if err := toml.Unmarshal(raw, &generic); err != nil {
			return fmt.Errorf("%s: %w", *bodyFile, err)
		}
	} else {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(&generic); err != nil {
			return fmt.Errorf("%s: %w", *bodyFile, err)
		}
	}
	j, err := json.Marshal(normaliseBody(generic))
	if err != nil {
		return err
	}
	body, err := protocol.BodyFromJSON(protocol.Kind(*kind), j)
	if err != nil {
		return withHint(fmt.Errorf("%s: %w", *bodyFile, err), "see the body of kind "+*kind+" in docs/records.md, \"Bodies\"")
	}
	rec, err := protocol.Sign(key, at.UnixMilli(), body)
	if err != nil {
		return err
	}
	if err := config.WriteFileAtomic(*out, rec.Bytes(), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "%s\n", rec.CID())
	fmt.Fprintf(env.stderr, "signed %s by %s, %d bytes, written to %s\n", rec.Kind(), rec.Issuer(), len(rec.Bytes()), *out)
	return nil
}

func kindList() string {
	var s []string
	for _, k := range protocol.Kinds {
		s = append(s, string(k))
	}
	return strings.Join(s, ", ")
}

// normaliseBody makes a decoded TOML or JSON body ready for DAG-JSON:
// dates become Unix milliseconds, and lists of strings (sets, in every
// record kind) are sorted and de-duplicated.
func normaliseBody(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = normaliseBody(e)
		}
		return x
	case []any:
		strs := make([]string, 0, len(x))
		for i, e := range x {
			x[i] = normaliseBody(e)
			if s, ok := x[i].(string); ok {
				strs = append(strs, s)
			}
		}
		if len(strs) == len(x) && len(x) > 0 {
			sort.Strings(strs)
			out := []any{}
			for i, s := range strs {
				if i == 0 || strs[i-1] != s {
					out = append(out, s)
				}
			}
			return out
		}
		return x
	case time.Time:
		return x.UnixMilli()
	case toml.LocalDateTime:
		return x.AsTime(time.UTC).UnixMilli()
	case toml.LocalDate:
		return x.AsTime(time.UTC).UnixMilli()
	}
	return v
}

func runRecordSubmit(env *cliEnv, args []string) error {
	c := findCommand("record submit")
	flags := newFlags(env, c)
	var af apiFlags
	af.register(flags)
	imp := flags.Bool("import", false, "import: the operator's submission of records of any age, not gossiped")
	files, err := parseFlags(flags, args)
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return usagef("name at least one record file")
	}
	path := "/v1/records"
	if *imp {
		path += "?import=true"
	}
	cl, err := af.client(env, true)
	if err != nil {
		return err
	}
	var failed int
	for _, f := range files {
		b, err := readFileOrStdin(f)
		if err != nil {
			return err
		}
		resp, data, err := cl.do(http.MethodPost, path, api.MediaDagCBOR, "application/json", b)
		var ae *apiError
		if errors.As(err, &ae) {
			fmt.Fprintf(env.stdout, "%s: refused: %s: %s\n", f, ae.Code, ae.Message)
			failed++
			continue
		}
		if err != nil {
			return err
		}
		var ok struct {
			CID string `json:"cid"`
		}
		_ = json.Unmarshal(data, &ok)
		what := "accepted"
		if resp.StatusCode == http.StatusOK {
			what = "already held"
		}
		fmt.Fprintf(env.stdout, "%s: %s %s\n", f, what, ok.CID)
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d records refused", failed, len(files))
	}
	return nil
}

func runRecordShow(env *cliEnv, args []string) error {
	c := findCommand("record show")
	flags := newFlags(env, c)
	var af apiFlags
	af.register(flags)
	asJSON := flags.Bool("json", false, "print the record's DAG-JSON view only")
	rest, err := parseFlags(flags, args)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return usagef("name one record: a CID or a file")
	}
	var raw []byte
	if _, statErr := os.Stat(rest[0]); statErr == nil || rest[0] == "-" {
		if raw, err = readFileOrStdin(rest[0]); err != nil {
			return err
		}
		if t := bytes.TrimSpace(raw); len(t) > 0 && t[0] == '{' {
			if raw, err = protocol.JSONToCBOR(t); err != nil {
				return err
			}
		}
	} else {
		id, err := protocol.ParseCID(rest[0])
		if err != nil {
			return withHint(fmt.Errorf("%q is neither a file nor a record CID", rest[0]), "give a file path or a bafy... CID")
		}
		cl, err := af.client(env, false)
		if err != nil {
			return err
		}
		if _, raw, err = cl.do(http.MethodGet, "/v1/records/"+id.String(), "", api.MediaDagCBOR, nil); err != nil {
			return err
		}
	}
	rec, perr := protocol.Decode(raw)
	if perr != nil {
		return perr
	}
	if *asJSON {
		j, err := rec.JSON()
		if err != nil {
			return err
		}
		fmt.Fprintln(env.stdout, string(j))
		return nil
	}
	return printRecord(env, rec)
}

// printRecord is the human view of a record.
func printRecord(env *cliEnv, rec *protocol.Record) error {
	w := env.stdout
	sig := "valid"
	if err := rec.VerifySignature(); err != nil {
		sig = "INVALID: " + err.Error()
	}
	fmt.Fprintf(w, "%s %s\n", rec.Kind(), rec.CID())
	fmt.Fprintf(w, "  issuer     %s\n", rec.Issuer())
	fmt.Fprintf(w, "  issued at  %s\n", fmtMillis(rec.IssuedAt()))
	fmt.Fprintf(w, "  signature  %s\n", sig)
	fmt.Fprintf(w, "  size       %d bytes\n", len(rec.Bytes()))
	bj, err := rec.BodyJSON()
	if err != nil {
		return err
	}
	var body map[string]json.RawMessage
	if err := json.Unmarshal(bj, &body); err != nil {
		return err
	}
	keys := make([]string, 0, len(body))
	for k := range body {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	fmt.Fprintln(w, "  body")
	for _, k := range keys {
		v := string(body[k])
		if isTimeField(k) {
			var ms int64
			if json.Unmarshal(body[k], &ms) == nil {
				v += "  (" + fmtMillis(ms) + ")"
			}
		}
		fmt.Fprintf(w, "    %-20s %s\n", k, v)
	}
	return nil
}

func isTimeField(k string) bool {
	return strings.HasSuffix(k, "_at") || strings.HasPrefix(k, "valid_") || k == "effective_from"
}

func fmtMillis(ms int64) string {
	return time.UnixMilli(ms).UTC().Format(time.RFC3339Nano)
}

func runRecordList(env *cliEnv, args []string) error {
	c := findCommand("record list")
	flags := newFlags(env, c)
	var af apiFlags
	af.register(flags)
	kind := flags.String("kind", "", "only records of this kind: "+kindList())
	issuer := flags.String("issuer", "", "only records signed by this peer ID")
	jurisdiction := flags.String("jurisdiction", "", "only records of this jurisdiction (alpha-2 code)")
	limit := flags.Int("limit", 0, "at most this many records (default all)")
	after := flags.Uint64("after", 0, "start after this cursor, as a listing cut short by --limit printed it")
	asJSON := flags.Bool("json", false, "print each record as JSON, {cid, record} (DAG-JSON), one a line")
	rest, err := parseFlags(flags, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usagef("unexpected argument %q", rest[0])
	}
	q := url.Values{}
	switch {
	case *kind != "" && !protocol.Kind(*kind).Known():
		return usagef("--kind %q is not a record kind (%s)", *kind, kindList())
	case *jurisdiction != "" && !protocol.ValidJurisdiction(*jurisdiction):
		return usagef("--jurisdiction %q is not an upper-case alpha-2 code", *jurisdiction)
	case *limit < 0:
		return usagef("--limit must not be negative")
	}
	if *issuer != "" {
		if _, err := peer.Decode(*issuer); err != nil {
			return usagef("--issuer: not a peer ID: %v", err)
		}
		q.Set("issuer", *issuer)
	}
	for k, v := range map[string]string{"kind": *kind, "jurisdiction": *jurisdiction} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if *after > 0 {
		q.Set("after", strconv.FormatUint(*after, 10))
	}
	cl, err := af.readClient(env)
	if err != nil {
		return err
	}
	printed := 0
	for {
		page := store.MaxListLimit // the most the API gives a page
		if *limit > 0 {
			page = min(page, *limit-printed)
		}
		q.Set("limit", strconv.Itoa(page))
		var p api.ListPage
		if err := cl.getJSON("/v1/records?"+q.Encode(), &p); err != nil {
			return err
		}
		for _, v := range p.Records {
			if err := printListed(env, v, *asJSON); err != nil {
				return err
			}
			printed++
		}
		switch {
		case p.Next == "":
			if printed == 0 {
				fmt.Fprintln(env.stderr, "no records")
			}
			return nil
		case *limit > 0 && printed >= *limit:
			fmt.Fprintf(env.stderr, "more records follow: continue with --after %s\n", p.Next)
			return nil
		}
		q.Set("after", p.Next)
	}
}

// printListed prints one record of a listing: its view as JSON, or a
// line of its CID, kind, issuer and signing time, each whole, and for an
// accreditation its subject, jurisdiction and roles.
func printListed(env *cliEnv, v api.RecordView, asJSON bool) error {
	if asJSON {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(env.stdout, "%s\n", b)
		return err
	}
	raw, err := protocol.JSONToCBOR(v.Record)
	if err != nil {
		return fmt.Errorf("record %s: %w", v.CID, err)
	}
	rec, perr := protocol.Decode(raw)
	if perr != nil {
		return fmt.Errorf("record %s: %w", v.CID, perr)
	}
	if rec.CID().String() != v.CID {
		return fmt.Errorf("the node listed record %s under the CID %s", rec.CID(), v.CID)
	}
	var about string // what an accreditation is about: whom it accredits, as what
	if a, ok := rec.Accreditation(); ok {
		about = fmt.Sprintf("  subject %s %s %s", a.Subject, a.Jurisdiction, joinRoles(a.Roles, ","))
	}
	_, err = fmt.Fprintf(env.stdout, "%s  %-13s  %s  %s%s\n", v.CID, rec.Kind(), rec.Issuer(), time.UnixMilli(rec.IssuedAt()).UTC().Format(time.RFC3339), about)
	return err
}
