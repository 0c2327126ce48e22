package main

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/entente-net/entente/config"
	"github.com/entente-net/entente/node/api"
	"github.com/entente-net/entente/protocol"
)

func init() {
	register(&command{
		name: "access grant",
		summary: "give an API caller (a controller, regulator or auditor) a token\n" +
			"The peer must hold a live accreditation of the role (of this node's jurisdiction for a regulator or an auditor; of\n" +
			"any for a controller), checked against the running node's records. The token is printed once; the node keeps only\n" +
			"its SHA-256, in access.toml, and applies the grant from the token's first use.",
		usage: "access grant [--home DIR] --name NAME --role controller|regulator|auditor --peer PEERID [--out FILE]",
		run:   runAccessGrant,
	})
	register(&command{
		name:    "access revoke",
		summary: "take a caller's token away (a running node applies it within a second)",
		usage:   "access revoke [--home DIR] --name NAME",
		run:     runAccessRevoke,
	})
	register(&command{
		name:    "access list",
		summary: "list the node's API callers: name, role, peer, when granted",
		usage:   "access list [--home DIR]",
		run:     runAccessList,
	})
}

// accessHome loads the node home the access commands work on.
func accessHome(env *cliEnv, home string) (*config.Node, error) {
	home = env.homeDir(home)
	if home == "" {
		return nil, usagef("--home DIR is required (or set ENTENTE_HOME)")
	}
	return config.Load(home)
}

func runAccessGrant(env *cliEnv, args []string) error {
	c := findCommand("access grant")
	flags := newFlags(env, c)
	home := flags.String("home", "", "the node's home (default $ENTENTE_HOME)")
	name := flags.String("name", "", "the caller's name, as the node's log shows it")
	role := flags.String("role", "", "controller, regulator or auditor")
	peerFlag := flags.String("peer", "", "the caller's peer ID, which must hold the role's accreditation")
	out := flags.String("out", "", "write the token to this new file (mode 0600) instead of stdout")
	rest, err := parseFlags(flags, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usagef("unexpected argument %q", rest[0])
	}
	switch {
	case *name == "":
		return usagef("--name is required")
	case !slices.Contains(config.CallerRoles, *role):
		return usagef("--role: want one of %s", strings.Join(config.CallerRoles, ", "))
	}
	id, err := peer.Decode(*peerFlag)
	if err != nil {
		return usagef("--peer: not a peer ID: %v", err)
	}
	nc, err := accessHome(env, *home)
	if err != nil {
		return err
	}
	a, err := config.LoadAccess(nc.AccessPath())
	if err != nil {
		return err
	}
	if err := checkGrant(env, nc, id, protocol.Role(*role)); err != nil {
		return err
	}
	token, err := a.Add(*name, *role, id, time.Now())
	if err != nil {
		return err
	}
	if *out != "" {
		// The token file first: a grant whose token was not kept is no use.
		if err := config.WriteTokenFile(*out, token); err != nil {
			return err
		}
	}
	if err := a.Write(nc.AccessPath()); err != nil {
		if *out != "" {
			os.Remove(*out)
		}
		return err
	}
	if *out != "" {
		fmt.Fprintf(env.stdout, "granted %s (%s, %s); its token is in %s (0600), and nowhere else\n", *name, *role, id, *out)
		return nil
	}
	fmt.Fprintf(env.stderr, "granted %s (%s, %s); its token, shown this once:\n", *name, *role, id)
	fmt.Fprintln(env.stdout, token)
	return nil
}

// checkGrant refuses a grant unless id holds role in the jurisdictions the
// node would check on each request, by the records the running node
// holds.
func checkGrant(env *cliEnv, nc *config.Node, id peer.ID, role protocol.Role) error {
	fed, err := nc.LoadFederation()
	if err != nil {
		return err
	}
	cl, err := (&apiFlags{home: nc.Home}).client(env, true)
	if err != nil {
		return err
	}
	var records []*protocol.Record
	for _, kind := range []protocol.Kind{protocol.KindAccreditation, protocol.KindRevocation} {
		rs, err := cl.listRecords(url.Values{"kind": {string(kind)}})
		if err != nil {
			return withHint(fmt.Errorf("reading the node's accreditations: %w", err),
				"a grant is checked against the records of the running node: start it (entente run --home "+nc.Home+")")
		}
		records = append(records, rs...)
	}
	view := protocol.NewRecordView(protocol.StaticAnchors{Authorities: fed.Authorities(), FoundingNodes: fed.FoundingNodes()}, records)
	where := []string{nc.Jurisdiction}
	if role == protocol.RoleController {
		where = fed.Codes()
	}
	now := time.Now().UnixMilli()
	for _, j := range where {
		if _, ok, err := protocol.HasRole(view, id, j, role, now); err != nil || ok {
			return err
		}
	}
	of := "of " + nc.Jurisdiction
	if role == protocol.RoleController {
		of = "in any jurisdiction of the federation (" + strings.Join(where, ", ") + ")"
	}
	return withHint(fmt.Errorf("%s holds no live %s accreditation %s", id, role, of),
		"an authority accredits it first (an accreditation record naming the role); see docs/operating.md, \"Access\"")
}

// listRecords reads every record of the query the caller may see, page by
// page, each as its signed bytes.
func (c *apiClient) listRecords(q url.Values) ([]*protocol.Record, error) {
	var out []*protocol.Record
	for {
		var page api.ListPage
		if err := c.getJSON("/v1/records?"+q.Encode(), &page); err != nil {
			return nil, err
		}
		for _, v := range page.Records {
			_, raw, err := c.do(http.MethodGet, "/v1/records/"+v.CID, "", api.MediaDagCBOR, nil)
			if err != nil {
				return nil, err
			}
			r, err := protocol.Decode(raw)
			if err != nil {
				return nil, fmt.Errorf("record %s: %w", v.CID, err)
			}
			out = append(out, r)
		}
		if page.Next == "" {
			return out, nil
		}
		q.Set("after", page.Next)
	}
}

func runAccessRevoke(env *cliEnv, args []string) error {
	c := findCommand("access revoke")
	flags := newFlags(env, c)
	home := flags.String("home", "", "the node's home (default $ENTENTE_HOME)")
	name := flags.String("name", "", "the caller to revoke")
	rest, err := parseFlags(flags, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usagef("unexpected argument %q", rest[0])
	}
	if *name == "" {
		return usagef("--name is required")
	}
	nc, err := accessHome(env, *home)
	if err != nil {
		return err
	}
	a, err := config.LoadAccess(nc.AccessPath())
	if err != nil {
		return err
	}
	if err := a.Remove(*name); err != nil {
		return withHint(err, "entente access list --home "+nc.Home+" shows the callers")
	}
	if err := a.Write(nc.AccessPath()); err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "revoked %s\n", *name)
	return nil
}

func runAccessList(env *cliEnv, args []string) error {
	c := findCommand("access list")
	flags := newFlags(env, c)
	home := flags.String("home", "", "the node's home (default $ENTENTE_HOME)")
	rest, err := parseFlags(flags, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usagef("unexpected argument %q", rest[0])
	}
	nc, err := accessHome(env, *home)
	if err != nil {
		return err
	}
	a, err := config.LoadAccess(nc.AccessPath())
	if err != nil {
		return err
	}
	if len(a.Callers) == 0 {
		fmt.Fprintln(env.stdout, "no callers granted (the operator's api-token always works)")
		return nil
	}
	tw := tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tROLE\tPEER\tGRANTED")
	for _, g := range a.Callers {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", g.Name, g.Role, g.Peer, g.Created.Format(time.RFC3339))
	}
	return tw.Flush()
}
