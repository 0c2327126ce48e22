package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/pelletier/go-toml/v2"

	"github.com/entente-net/entente/config"
	"github.com/entente-net/entente/node/api"
	"github.com/entente-net/entente/node/service"
	"github.com/entente-net/entente/protocol"
	"github.com/entente-net/entente/store"
)

func init() {
	register(&command{
		name: "incident publish",
		summary: "sign an incident notice with a regulator's key and submit it to a node; prints its CID\n\n" +
			"The fields come from --file (TOML or JSON, with the body's field names) and from\n" +
			"flags, which win. With --follows CID the notice updates that incident: the fields\n" +
			"not given are the previous notice's (read from the node), and ref, jurisdiction,\n" +
			"tlp and recipients must stay the same. detected_at defaults to now for a new\n" +
			"incident, status to open.",
		usage: "incident publish --key FILE [--file FILE] [--follows CID] [--ref REF] [--jurisdiction CODE] " +
			"[--severity S] [--status S] [--tlp TLP] [--affected PEERID]... [--category C]... " +
			"[--detected-at TIME] [--summary TEXT] [--recipient CODE]... [--api HOST:PORT] [--home DIR] [--token-file FILE]",
		run: runIncidentPublish,
	})
	register(&command{
		name:    "incident list",
		summary: "list the incidents a node holds, one line each, in the order the node learnt of them",
		usage: "incident list [--status S] [--severity S] [--jurisdiction CODE] [--affected PEERID] [--since TIME] " +
			"[--limit N] [--after CURSOR] [--json] [--api HOST:PORT] [--home DIR] [--token-file FILE]",
		run: runIncidentList,
	})
	register(&command{
		name: "incident follow",
		summary: "print incident events as a node accepts notices, until interrupted\n\n" +
			"Each line is the incident as of a new notice. A dropped connection is resumed\n" +
			"after the last event printed (Last-Event-ID), with backoff, so nothing is lost\n" +
			"or printed twice.",
		usage: "incident follow [--status S] [--severity S] [--jurisdiction CODE] [--affected PEERID] [--since TIME] " +
			"[--last-event-id ID] [--json] [--api HOST:PORT] [--home DIR] [--token-file FILE]",
		run: runIncidentFollow,
	})
}

// incidentFile is an incident notice's body in a file: the body's field
// names; detected_at an RFC 3339 time (a TOML date-time) or Unix ms.
type incidentFile struct {
	Ref          string   `toml:"ref" json:"ref"`
	Jurisdiction string   `toml:"jurisdiction" json:"jurisdiction"`
	Severity     string   `toml:"severity" json:"severity"`
	Status       string   `toml:"status" json:"status"`
	TLP          string   `toml:"tlp" json:"tlp"`
	Affected     []string `toml:"affected" json:"affected"`
	Categories   []string `toml:"categories" json:"categories"`
	DetectedAt   any      `toml:"detected_at" json:"detected_at"`
	Summary      string   `toml:"summary" json:"summary"`
	Recipients   []string `toml:"recipients" json:"recipients"`
	Follows      string   `toml:"follows" json:"follows"`
}

func readIncidentFile(path string) (*incidentFile, error) {
	raw, err := readFileOrStdin(path)
	if err != nil {
		return nil, err
	}
	var f incidentFile
	if strings.HasSuffix(path, ".toml") {
		dec := toml.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		err = dec.Decode(&f)
	} else {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		dec.UseNumber()
		err = dec.Decode(&f)
	}
	var strict *toml.StrictMissingError
	if errors.As(err, &strict) {
		var keys []string
		for _, e := range strict.Errors {
			keys = append(keys, strings.Join(e.Key(), "."))
		}
		return nil, withHint(fmt.Errorf("%s: unknown fields: %s", path, strings.Join(keys, ", ")), "see the incident body in docs/records.md, \"Bodies\", and 'entente incident publish --help'")
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &f, nil
}

// millisOf reads a time given as RFC 3339 text, a TOML date-time or Unix
// milliseconds.
func millisOf(v any) (int64, error) {
	switch x := v.(type) {
	case time.Time:
		return x.UnixMilli(), nil
	case toml.LocalDateTime:
		return x.AsTime(time.UTC).UnixMilli(), nil
	case int64:
		return x, nil
	case json.Number:
		return x.Int64()
	case string:
		if ms, err := strconv.ParseInt(x, 10, 64); err == nil {
			return ms, nil
		}
		t, err := time.Parse(time.RFC3339, x)
		if err != nil {
			return 0, fmt.Errorf("%q is neither an RFC 3339 time nor Unix milliseconds", x)
		}
		return t.UnixMilli(), nil
	}
	return 0, fmt.Errorf("%v is not a time", v)
}

// setOf sorts and de-duplicates a list that is a set in the record.
func setOf(list []string) []string {
	out := append([]string{}, list...)
	sort.Strings(out)
	n := 0
	for i, s := range out {
		if i == 0 || out[n-1] != s {
			out[n] = s
			n++
		}
	}
	return out[:n]
}

func runIncidentPublish(env *cliEnv, args []string) error {
	c := findCommand("incident publish")
	flags := newFlags(env, c)
	var af apiFlags
	af.register(flags)
	keyFile := flags.String("key", "", "the issuer's key file (a regulator, or the authority)")
	file := flags.String("file", "", "the notice's fields, TOML (.toml) or JSON; - for JSON on stdin")
	follows := flags.String("follows", "", "CID of the previous notice of the incident this one updates")
	ref := flags.String("ref", "", "the issuer's own incident id")
	jurisdiction := flags.String("jurisdiction", "", "the incident's jurisdiction (alpha-2 code)")
	severity := flags.String("severity", "", "low, medium, high or critical")
	status := flags.String("status", "", "open, contained or resolved (default open)")
	tlp := flags.String("tlp", "", "clear, green, amber, amber+strict or red")
	var affected, categories, recipients multiFlag
	flags.Var(&affected, "affected", "peer ID of an affected party (repeatable)")
	flags.Var(&categories, "category", "a data category concerned (repeatable)")
	flags.Var(&recipients, "recipient", "a recipient jurisdiction of a TLP red notice (repeatable)")
	detectedAt := flags.String("detected-at", "", "when it was detected, RFC 3339 (default now)")
	summary := flags.String("summary", "", "what happened, in a sentence (required for a new incident; a follow-up keeps the last one unless given)")
	rest, err := parseFlags(flags, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usagef("unexpected argument %q", rest[0])
	}
	if *keyFile == "" {
		return usagef("--key is required")
	}
	f := &incidentFile{}
	if *file != "" {
		if f, err = readIncidentFile(*file); err != nil {
			return err
		}
	}
	if *follows != "" {
		f.Follows = *follows
	}
	key, err := config.LoadKey(*keyFile)
	if err != nil {
		return err
	}
	cl, err := af.client(env, true)
	if err != nil {
		return err
	}

	body := &protocol.Incident{Status: protocol.StatusOpen}
	notBefore := int64(0)
	if f.Follows != "" {
		prevID, err := protocol.ParseCID(f.Follows)
		if err != nil {
			return usagef("--follows: %q is not a record CID", f.Follows)
		}
		_, raw, err := cl.do(http.MethodGet, "/v1/records/"+prevID.String(), "", api.MediaDagCBOR, nil)
		if err != nil {
			return withHint(fmt.Errorf("reading the notice it follows: %w", err), "give the CID of a notice the node holds ('entente incident list')")
		}
		prev, perr := protocol.Decode(raw)
		if perr != nil {
			return fmt.Errorf("the notice it follows: %w", perr)
		}
		p, ok := prev.Incident()
		if !ok {
			return withHint(fmt.Errorf("%s is a %s, not an incident notice", prevID, prev.Kind()), "--follows names an incident notice")
		}
		*body = *p
		link := protocol.LinkTo(prevID)
		body.Follows = &link
		notBefore = prev.IssuedAt()
		// What a follow-up must keep, said before it is signed: the
		// node would refuse it, and for tlp by naming recipients.
		for _, k := range []struct{ name, was, now string }{
			{"ref", p.Ref, cmp.Or(*ref, f.Ref)}, {"jurisdiction", p.Jurisdiction, cmp.Or(*jurisdiction, f.Jurisdiction)},
			{"tlp", p.TLP, cmp.Or(*tlp, f.TLP)},
		} {
			if k.now != "" && k.now != k.was {
				return usagef("--%s %s: an incident's %s stays the same along its notices (the one it follows has %s); leave it out", k.name, k.now, k.name, k.was)
			}
		}
	} else {
		body.DetectedAt = time.Now().UnixMilli()
	}
	// The file's fields, then the flags', over the previous notice's.
	for _, s := range []struct {
		dst       *string
		file, flg string
	}{
		{&body.Ref, f.Ref, *ref}, {&body.Jurisdiction, f.Jurisdiction, *jurisdiction},
		{(*string)(&body.Severity), f.Severity, *severity}, {&body.Status, f.Status, *status},
		{&body.TLP, f.TLP, *tlp}, {&body.Summary, f.Summary, *summary},
	} {
		if s.file != "" {
			*s.dst = s.file
		}
		if s.flg != "" {
			*s.dst = s.flg
		}
	}
	for _, s := range []struct {
		dst       *[]string
		file, flg []string
	}{
		{&body.Affected, f.Affected, affected}, {&body.Categories, f.Categories, categories},
		{&body.Recipients, f.Recipients, recipients},
	} {
		if s.file != nil {
			*s.dst = s.file
		}
		if len(s.flg) > 0 {
			*s.dst = s.flg
		}
		*s.dst = setOf(*s.dst)
	}
	if len(body.Recipients) == 0 {
		body.Recipients = nil // left out unless TLP red
	}
	if f.DetectedAt != nil {
		if body.DetectedAt, err = millisOf(f.DetectedAt); err != nil {
			return fmt.Errorf("%s: detected_at: %w", *file, err)
		}
	}
	if *detectedAt != "" {
		t, err := time.Parse(time.RFC3339, *detectedAt)
		if err != nil {
			return usagef("--detected-at: %v", err)
		}
		body.DetectedAt = t.UnixMilli()
	}
	issuedAt := max(time.Now().UnixMilli(), notBefore)
	rec, err := protocol.Sign(key, issuedAt, body)
	if err != nil {
		return withHint(err, "see the incident body in docs/records.md, \"Bodies\", and 'entente incident publish --help'")
	}
	resp, data, err := cl.do(http.MethodPost, "/v1/records", api.MediaDagCBOR, "application/json", rec.Bytes())
	if err != nil {
		return err
	}
	var ok struct {
		CID string `json:"cid"`
	}
	_ = json.Unmarshal(data, &ok)
	fmt.Fprintln(env.stdout, rec.CID())
	what := "published"
	if resp.StatusCode == http.StatusOK {
		what = "already held:"
	}
	if body.Follows != nil {
		fmt.Fprintf(env.stderr, "%s a follow-up of %s (%s, %s)\n", what, body.Follows.Cid, body.Status, body.Severity)
	} else {
		fmt.Fprintf(env.stderr, "%s a new incident %s of %s (%s, %s, TLP %s)\n", what, body.Ref, body.Jurisdiction, body.Status, body.Severity, body.TLP)
	}
	return nil
}

// incidentFilters are the filters the list and the stream share.
type incidentFilters struct {
	status, severity, jurisdiction, affected, since string
}

func (f *incidentFilters) register(fs interface {
	StringVar(*string, string, string, string)
}) {
	fs.StringVar(&f.status, "status", "", "only incidents in this status: open, contained or resolved")
	fs.StringVar(&f.severity, "severity", "", "only incidents of this severity or above")
	fs.StringVar(&f.jurisdiction, "jurisdiction", "", "only incidents of this jurisdiction")
	fs.StringVar(&f.affected, "affected", "", "only incidents naming this peer ID as affected")
	fs.StringVar(&f.since, "since", "", "only incidents updated at or after this time (RFC 3339)")
}

func (f *incidentFilters) query() url.Values {
	v := url.Values{}
	for k, s := range map[string]string{"status": f.status, "severity": f.severity, "jurisdiction": f.jurisdiction, "affected": f.affected, "since": f.since} {
		if s != "" {
			v.Set(k, s)
		}
	}
	return v
}

// readClient is a client for reading: it sends a token when one is at
// hand (callers may see more with one), and needs none.
func (f *apiFlags) readClient(env *cliEnv) (*apiClient, error) {
	if f.tokenFile != "" {
		return f.client(env, true)
	}
	if cl, err := f.client(env, true); err == nil {
		return cl, nil
	}
	return f.client(env, false)
}

func runIncidentList(env *cliEnv, args []string) error {
	c := findCommand("incident list")
	flags := newFlags(env, c)
	var af apiFlags
	af.register(flags)
	var filters incidentFilters
	filters.register(flags)
	limit := flags.Int("limit", 0, "at most this many incidents (default all); says which --after continues")
	after := flags.String("after", "", "continue a listing cut by --limit after this cursor")
	asJSON := flags.Bool("json", false, "print the entries as JSON, one a line")
	rest, err := parseFlags(flags, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usagef("unexpected argument %q", rest[0])
	}
	if *limit < 0 {
		return usagef("--limit must not be negative")
	}
	cl, err := af.readClient(env)
	if err != nil {
		return err
	}
	var all []service.Incident
	q := filters.query()
	if *after != "" {
		if _, err := strconv.ParseUint(*after, 10, 64); err != nil {
			return usagef("--after: %q is not a cursor (a number an earlier listing gave)", *after)
		}
		q.Set("after", *after)
	}
	var more string // the cursor after the last one listed, when --limit cut the listing
	for {
		if *limit > 0 {
			q.Set("limit", strconv.Itoa(min(store.MaxListLimit, *limit-len(all))))
		}
		var page struct {
			Incidents []service.Incident `json:"incidents"`
			Next      string             `json:"next"`
		}
		if err := cl.getJSON("/v1/incidents?"+q.Encode(), &page); err != nil {
			return incidentAPIError(err)
		}
		all = append(all, page.Incidents...)
		if page.Next == "" {
			break
		}
		if *limit > 0 && len(all) >= *limit {
			more = page.Next
			break
		}
		q.Set("after", page.Next)
	}
	if *asJSON {
		enc := json.NewEncoder(env.stdout)
		for i := range all {
			if err := enc.Encode(&all[i]); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tJURISDICTION\tSEVERITY\tSTATUS\tTLP\tNOTICES\tSUMMARY")
	for _, e := range all {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\n", e.ID, e.Jurisdiction, e.Severity, e.Status, e.TLP, len(e.Notices), oneLine(e.Summary, 60))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(all) == 0 {
		fmt.Fprintln(env.stderr, "no incidents")
	}
	if more != "" {
		fmt.Fprintf(env.stderr, "more incidents may follow: continue with --after %s\n", more)
	}
	return nil
}

// incidentAPIError adds a hint to the API's refusals of a filter.
func incidentAPIError(err error) error {
	var ae *apiError
	if errors.As(err, &ae) && ae.Code == "bad_request" {
		return withHint(err, "run 'entente incident list --help' for the filters and their values")
	}
	return err
}

func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// Backoff of incident follow between reconnections.
const (
	followMinBackoff = 250 * time.Millisecond
	followMaxBackoff = 30 * time.Second
)

func runIncidentFollow(env *cliEnv, args []string) error {
	c := findCommand("incident follow")
	flags := newFlags(env, c)
	var af apiFlags
	af.register(flags)
	var filters incidentFilters
	filters.register(flags)
	lastID := flags.String("last-event-id", "", "resume after this event ID (default: from now)")
	asJSON := flags.Bool("json", false, "print each event's incident as JSON, one a line, after its ID")
	rest, err := parseFlags(flags, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usagef("unexpected argument %q", rest[0])
	}
	if *lastID != "" {
		if _, err := strconv.ParseUint(*lastID, 10, 64); err != nil {
			return usagef("--last-event-id: %q is not an event ID", *lastID)
		}
	}
	cl, err := af.readClient(env)
	if err != nil {
		return err
	}
	ctx, stop := signalContext(env.ctx)
	defer stop()
	f := &follower{cl: cl, path: "/v1/incidents/stream?" + filters.query().Encode(), last: *lastID}
	f.emit = func(id, _, data string) error { return printEvent(env.stdout, id, data, *asJSON) }
	backoff := followMinBackoff
	for {
		got, err := f.stream(ctx)
		if ctx.Err() != nil {
			return nil
		}
		var ae *apiError
		if errors.As(err, &ae) && ae.Status < 500 && ae.Status != http.StatusTooManyRequests {
			return incidentAPIError(err) // retrying will not help
		}
		if got {
			backoff = followMinBackoff
		}
		fmt.Fprintf(env.stderr, "entente: stream interrupted (%v); resuming after event %q in %s\n", err, f.last, backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, followMaxBackoff)
	}
}

// follower reads one event stream (incidents, notices) across
// reconnections, handing each event to emit.
type follower struct {
	cl   *apiClient
	path string
	last string // the ID of the last event emitted
	emit func(id, event, data string) error
	// opened, if set, is called once the stream has been answered.
	opened func()
}

// stream reads the stream once, until it ends or fails, and reports
// whether it printed anything.
func (f *follower) stream(ctx context.Context) (got bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.cl.base+f.path, nil)
	if err != nil {
		return false, err
	}
	req.Header.Set("Accept", "text/event-stream")
	if f.last != "" {
		req.Header.Set("Last-Event-ID", f.last)
	}
	if f.cl.token != "" {
		req.Header.Set("Authorization", "Bearer "+f.cl.token)
	}
	resp, err := (&http.Client{}).Do(req) // no timeout: a stream lasts
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		ae := &apiError{Status: resp.StatusCode}
		if json.Unmarshal(data, ae) != nil || ae.Code == "" {
			ae.Code, ae.Message = http.StatusText(resp.StatusCode), strings.TrimSpace(string(data))
		}
		return false, ae
	}
	if f.opened != nil {
		f.opened()
		f.opened = nil
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	var event, id, data string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if event != "" && data != "" {
				if err := f.emit(id, event, data); err != nil {
					return got, err
				}
				got = true
			}
			if id != "" {
				f.last = id
			}
			event, id, data = "", "", ""
		case strings.HasPrefix(line, ":"):
		default:
			k, v, _ := strings.Cut(line, ":")
			v = strings.TrimPrefix(v, " ")
			switch k {
			case "event":
				event = v
			case "id":
				id = v
			case "data":
				data += v
			}
		}
	}
	if err := sc.Err(); err != nil {
		return got, err
	}
	return got, io.ErrUnexpectedEOF
}

// printEvent prints an event as entente incident follow does: its ID and
// the entry as JSON, or a line of its state.
func printEvent(w io.Writer, id, data string, asJSON bool) error {
	if asJSON {
		_, err := fmt.Fprintf(w, "%s %s\n", id, data)
		return err
	}
	var e service.Incident
	if err := json.Unmarshal([]byte(data), &e); err != nil {
		return fmt.Errorf("event %s: %w", id, err)
	}
	_, err := fmt.Fprintf(w, "%s  %s  %s  %s  %s  tlp:%s  notices:%d  %s\n",
		id, e.ID, e.Jurisdiction, e.Severity, e.Status, e.TLP, len(e.Notices), oneLine(e.Summary, 60))
	return err
}
