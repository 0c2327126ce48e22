package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/entente-net/entente/config"
	"github.com/entente-net/entente/testnet"
)

func init() {
	register(&command{
		name: "testnet",
		summary: "run a federation of N nodes on this machine (loopback) until interrupted\n\n" +
			"Writes the federation file, the authority keys and each node's API token to --dir\n" +
			"and prints each node's API address, for trying the API and the CLI against.",
		usage: "testnet [--nodes N] [--jurisdictions DE,FR,BR] [--dir DIR] [--quic]",
		run:   runTestnet,
	})
}

func runTestnet(env *cliEnv, args []string) error {
	c := findCommand("testnet")
	flags := newFlags(env, c)
	nodes := flags.Int("nodes", 3, "number of nodes, assigned to the jurisdictions in turn")
	jurs := flags.String("jurisdictions", "DE,FR,BR", "jurisdiction codes, comma-separated")
	dir := flags.String("dir", "", "directory for the federation file, keys, tokens and data (default: a new temporary one, kept)")
	quic := flags.Bool("quic", false, "listen on QUIC as well as TCP")
	rest, err := parseFlags(flags, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usagef("unexpected argument %q", rest[0])
	}
	if *nodes < 1 || *nodes > 64 {
		return usagef("--nodes must be from 1 to 64")
	}
	codes := strings.Split(*jurs, ",")
	if *dir == "" {
		if *dir, err = os.MkdirTemp("", "entente-testnet-*"); err != nil {
			return err
		}
	} else if err := os.MkdirAll(*dir, 0o700); err != nil {
		return err
	}
	if entries, _ := os.ReadDir(*dir); len(entries) > 0 {
		return withHint(fmt.Errorf("%s is not empty", *dir), "give --dir a new or empty directory")
	}
	net, err := testnet.Start(testnet.Options{Nodes: *nodes, Jurisdictions: codes, Dir: *dir, API: true, QUIC: *quic})
	if err != nil {
		return withHint(err, "jurisdictions are upper-case two-letter codes, e.g. --jurisdictions DE,FR,BR")
	}
	defer net.Close()
	for j, k := range net.Authorities {
		if err := config.WriteKey(filepath.Join(*dir, "authority-"+j+".key"), k); err != nil {
			return err
		}
	}
	w := env.stdout
	fmt.Fprintf(w, "federation %q: %d nodes; files in %s\n", net.Federation.Name, len(net.Nodes), *dir)
	fmt.Fprintf(w, "  federation file  %s\n", net.FederationPath)
	for _, m := range net.Nodes {
		token := filepath.Join(*dir, fmt.Sprintf("node%d.token", m.Index))
		if err := config.WriteFileAtomic(token, []byte(m.Token+"\n"), 0o600); err != nil {
			return err
		}
		fmt.Fprintf(w, "  node %d (%s)  %s  API http://%s  token %s\n", m.Index, m.Jurisdiction(), m.ID(), m.APIAddr(), token)
	}
	fmt.Fprintln(w, "Ctrl-C stops the federation.")
	ctx, stop := signalContext(env.ctx)
	defer stop()
	<-ctx.Done()
	fmt.Fprintln(w, "stopping")
	return net.Close()
}
