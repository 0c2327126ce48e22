package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"

	"github.com/entente-net/entente/node"
)

func init() {
	register(&command{
		name:    "status",
		summary: "show a node's state: identity, peers, records held, log",
		usage:   "status [--home DIR | --api HOST:PORT] [--token-file FILE] [--json]",
		run:     runStatus,
	})
}

func runStatus(env *cliEnv, args []string) error {
	c := findCommand("status")
	flags := newFlags(env, c)
	var af apiFlags
	af.register(flags)
	asJSON := flags.Bool("json", false, "print the API's JSON answer")
	rest, err := parseFlags(flags, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usagef("unexpected argument %q", rest[0])
	}
	cl, err := af.client(env, false)
	if err != nil {
		return err
	}
	var st node.Status
	if err := cl.getJSON("/v1/status", &st); err != nil {
		return err
	}
	if *asJSON {
		b, _ := json.MarshalIndent(st, "", "  ")
		fmt.Fprintln(env.stdout, string(b))
		return nil
	}
	printStatus(env.stdout, &st, readiness(cl))
	return nil
}

// readiness is the node's /readyz answer in words: "yes", or "no: " and
// the node's reason, or "" when the node gives neither.
func readiness(cl *apiClient) string {
	_, data, err := cl.do(http.MethodGet, "/readyz", "", "application/json", nil)
	var r struct {
		Ready  bool   `json:"ready"`
		Reason string `json:"reason"`
	}
	var ae *apiError
	if err != nil && (!errors.As(err, &ae) || ae.Status != http.StatusServiceUnavailable) {
		return ""
	}
	if json.Unmarshal(data, &r) != nil {
		return ""
	}
	if r.Ready {
		return "yes"
	}
	return "no: " + r.Reason
}

// printStatus prints st for people; ready is readiness's answer ("" to
// leave the line out).
func printStatus(w io.Writer, st *node.Status, ready string) {
	fmt.Fprintf(w, "node        %s\n", st.PeerID)
	fmt.Fprintf(w, "federation  %s, jurisdiction %s (file %s: the same on every node)\n", st.Federation, st.Jurisdiction, st.FederationDigest)
	switch c := st.Caller; {
	case c == nil:
		fmt.Fprintln(w, "asked as    the public (no token)")
	case c.Name == "":
		fmt.Fprintf(w, "asked as    %s\n", c.Role)
	default:
		fmt.Fprintf(w, "asked as    %s, %s %s\n", c.Name, c.Role, c.PeerID)
	}
	if ready != "" {
		fmt.Fprintf(w, "ready       %s\n", ready)
	}
	if st.Version != "" {
		fmt.Fprintf(w, "version     %s\n", st.Version)
	}
	for _, a := range st.Addrs {
		fmt.Fprintf(w, "listening   %s\n", a)
	}
	held := ""
	if h := st.Log.Held; h != nil {
		// After a restore (docs/operating.md, "Restoring"): no checkpoint, no receipt.
		held = "; signing held: " + h.Reason
	}
	fmt.Fprintf(w, "log         %d records%s\n", st.Log.Size, held)
	if st.Log.VerifierKey != "" {
		fmt.Fprintf(w, "  checkpoints verify with %s\n", st.Log.VerifierKey)
	}
	if h := st.Log.Held; h != nil {
		for _, p := range h.Waiting {
			fmt.Fprintf(w, "  waiting for %s\n", p)
		}
	}
	kinds := make([]string, 0, len(st.Records))
	for k := range st.Records {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		fmt.Fprintf(w, "  %-14s %d\n", k, st.Records[k])
	}
	fmt.Fprintf(w, "peers       %d connected\n", len(st.Peers))
	for _, p := range st.Peers {
		role := "accredited node"
		if p.Founding {
			role = "founding node"
		}
		fmt.Fprintf(w, "  %s  %-2s  %-15s %s %s\n", p.PeerID, p.Jurisdiction, role, p.Direction, p.Addr)
	}
	if len(st.Sync) > 0 {
		fmt.Fprintf(w, "sync        with %d peers\n", len(st.Sync))
	}
	for _, s := range st.Sync {
		state := "idle"
		if s.InProgress {
			state = "running"
		}
		line := fmt.Sprintf("  %s  %-7s %d sessions, last %s: needed %d, fetched %d, peer lacked %d, %d rounds",
			s.PeerID, state, s.Sessions, s.LastEnd, s.Need, s.Fetched, s.Have, s.Rounds)
		if s.LastError != "" {
			line += "; error: " + s.LastError
		}
		fmt.Fprintln(w, line)
	}
	if len(st.Alerts) == 0 {
		fmt.Fprintln(w, "alerts      none")
		return
	}
	fmt.Fprintf(w, "alerts      %d equivocations seen (docs/operating.md, \"Responding to an equivocation alert\"; the two signed checkpoints of each: --json, alerts[].notes)\n", len(st.Alerts))
	for _, a := range st.Alerts {
		line := fmt.Sprintf("  %s  %s", a.PeerID, a.Kind)
		for i := range min(len(a.Sizes), len(a.Roots)) {
			sep := ":"
			if i > 0 {
				sep = " and"
			}
			line += fmt.Sprintf("%s size %d root %s", sep, a.Sizes[i], a.Roots[i])
		}
		line += ", detected " + a.DetectedAt
		if a.Incident != "" {
			line += ", incident " + a.Incident
		}
		fmt.Fprintln(w, line)
	}
}
