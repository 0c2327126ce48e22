package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/entente-net/entente/node/api"
	"github.com/entente-net/entente/protocol"
)

func init() {
	register(&command{
		name: "lineage",
		summary: "show the decisions derived from a consent, as a tree, tier by tier\n" +
			"The decisions the node holds (its own, and those delivered to it because they concern its jurisdiction)\n" +
			"that the caller may read: each with its tier, verdict, jurisdictions, parties, time and receipt.",
		usage: "lineage CONSENT-CID [--home DIR | --api HOST:PORT] [--token-file FILE] [--json]",
		run:   runLineage,
	})
}

func runLineage(env *cliEnv, args []string) error {
	c := findCommand("lineage")
	flags := newFlags(env, c)
	var af apiFlags
	af.register(flags)
	asJSON := flags.Bool("json", false, "print the API's JSON answer")
	rest, err := parseFlags(flags, args)
	if err != nil {
		return err
	}
	switch {
	case len(rest) == 0:
		return usagef("name the consent's CID")
	case len(rest) > 1:
		return usagef("unexpected argument %q", rest[1])
	}
	consent, err := protocol.ParseCID(rest[0])
	if err != nil {
		return usagef("%q is not a record's CID: %v", rest[0], err)
	}
	cl, err := af.client(env, true)
	if err != nil {
		return err
	}
	_, data, err := cl.do("GET", "/v1/consents/"+consent.String()+"/lineage", "", "application/json", nil)
	if err != nil {
		return err
	}
	if *asJSON {
		_, err := env.stdout.Write(data)
		return err
	}
	var l api.Lineage
	if err := json.Unmarshal(data, &l); err != nil {
		return fmt.Errorf("the node's answer: %w", err)
	}
	fmt.Fprintf(env.stdout, "consent %s\n", l.Consent)
	if len(l.Roots) == 0 {
		fmt.Fprintln(env.stdout, "  no decision derived from it that this node holds and you may read")
	}
	printLineage(env.stdout, l.Roots, "")
	return nil
}

// printLineage prints nodes as the branches of a tree under prefix.
func printLineage(w io.Writer, nodes []*api.LineageNode, prefix string) {
	for i, n := range nodes {
		branch, more := "├─ ", "│  "
		if i == len(nodes)-1 {
			branch, more = "└─ ", "   "
		}
		notified := ""
		if n.NotifiedAt != "" {
			notified = "  recipient notified " + n.NotifiedAt
		}
		fmt.Fprintf(w, "%s%stier %d  %-5s  %s → %s  at %s  receipt %s:%d  sender %s  recipient %s%s\n", prefix, branch, n.Tier, strings.ToUpper(n.Verdict),
			n.From, n.To, n.At, n.Receipt, n.Item, n.Sender, n.Recipient, notified)
		printLineage(w, n.Children, prefix+more)
	}
}
