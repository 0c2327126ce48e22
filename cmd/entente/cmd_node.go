package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/signal"
	"syscall"

	"github.com/entente-net/entente/config"
	"github.com/entente-net/entente/node"
	"github.com/entente-net/entente/store"
)

func init() {
	register(&command{
		name:    "init",
		summary: "set up a node's home directory: config.toml, node.key and api-token",
		usage:   "init --home DIR --federation FILE --jurisdiction CODE [--key FILE] [--listen MULTIADDR]... [--announce MULTIADDR]... [--api HOST:PORT]",
		run:     runInit,
	})
	register(&command{
		name:    "run",
		summary: "run a node until SIGINT or SIGTERM (a second signal forces the exit)",
		usage:   "run --home DIR [--allow-writable-config]",
		run:     runRun,
	})
	register(&command{
		name:    "key new",
		summary: "make an Ed25519 key file (mode 0600) and print its peer ID",
		usage:   "key new --out FILE",
		run:     runKeyNew,
	})
	register(&command{
		name: "key show",
		summary: "print the peer ID and the public key of a key file\n\n" +
			"A key file that its group or others may read or write is refused, as the node refuses it.",
		usage: "key show [--key] FILE [--json]",
		run:   runKeyShow,
	})
}

func runInit(env *cliEnv, args []string) error {
	c := findCommand("init")
	flags := newFlags(env, c)
	home := flags.String("home", "", "the node's home directory (default $ENTENTE_HOME)")
	fed := flags.String("federation", "", "the federation file (TOML)")
	jur := flags.String("jurisdiction", "", "this node's jurisdiction code, as in the federation file")
	key := flags.String("key", "", "an existing key file to use (default: make a new key)")
	api := flags.String("api", "", "HTTP API address (default "+config.DefaultAPI+")")
	var listen, announce multiFlag
	flags.Var(&listen, "listen", "libp2p listen multiaddr; repeat for several (default TCP and QUIC on port 4101)")
	flags.Var(&announce, "announce", "a multiaddr peers should dial instead of the listen addresses (behind NAT, in a container); repeat for several")
	rest, err := parseFlags(flags, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usagef("unexpected argument %q", rest[0])
	}
	*home = env.homeDir(*home)
	switch {
	case *home == "":
		return usagef("--home is required (or set ENTENTE_HOME)")
	case *fed == "":
		return usagef("--federation is required")
	case *jur == "":
		return usagef("--jurisdiction is required")
	}
	id, err := config.Init(config.InitOptions{Home: *home, Federation: *fed, Jurisdiction: *jur, KeyFile: *key, Listen: listen, Announce: announce, API: *api})
	if errors.Is(err, fs.ErrExist) {
		return withHint(err, "this home is already set up; run it with 'entente run --home "+*home+"', or choose another --home")
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(env.stdout, id.String())
	return nil
}

func runKeyNew(env *cliEnv, args []string) error {
	c := findCommand("key new")
	flags := newFlags(env, c)
	out := flags.String("out", "", "file to write the key to (must not exist)")
	rest, err := parseFlags(flags, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usagef("unexpected argument %q", rest[0])
	}
	if *out == "" {
		return usagef("--out is required")
	}
	k, err := config.GenerateKey()
	if err != nil {
		return err
	}
	if err := config.WriteKey(*out, k); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return withHint(err, "keys are never overwritten; choose another --out")
		}
		return err
	}
	id, err := peerIDOf(k)
	if err != nil {
		return err
	}
	fmt.Fprintln(env.stdout, id.String())
	return nil
}

func runKeyShow(env *cliEnv, args []string) error {
	c := findCommand("key show")
	flags := newFlags(env, c)
	file := flags.String("key", "", "the key file")
	asJSON := flags.Bool("json", false, "print {peer_id, type, public_key} as JSON")
	rest, err := parseFlags(flags, args)
	if err != nil {
		return err
	}
	if len(rest) == 1 && *file == "" {
		*file = rest[0] // entente key show FILE
	} else if len(rest) > 0 {
		return usagef("unexpected argument %q", rest[0])
	}
	if *file == "" {
		return usagef("name the key file: entente key show FILE (or --key FILE)")
	}
	k, err := config.LoadKey(*file)
	if err != nil {
		if fi, serr := os.Stat(*file); serr == nil && fi.Mode().Perm()&0o077 != 0 {
			return withHint(err, "a key must be its owner's alone, as the node requires: chmod 600 "+*file)
		}
		return err
	}
	id, err := peerIDOf(k)
	if err != nil {
		return err
	}
	raw, err := k.GetPublic().Raw()
	if err != nil {
		return err
	}
	pub := base64.StdEncoding.EncodeToString(raw)
	if *asJSON {
		b, _ := json.Marshal(map[string]string{"peer_id": id.String(), "type": "ed25519", "public_key": pub})
		fmt.Fprintln(env.stdout, string(b))
		return nil
	}
	fmt.Fprintf(env.stdout, "peer id     %s\npublic key  ed25519 %s\n", id, pub)
	return nil
}

// loadNodeConfig turns a home directory into a node.Config.
func loadNodeConfig(env *cliEnv, home string, opts config.LoadOptions) (node.Config, *config.Node, error) {
	if home == "" {
		return node.Config{}, nil, usagef("--home is required (or set ENTENTE_HOME)")
	}
	nc, err := config.LoadWith(home, opts)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return node.Config{}, nil, withHint(err, "set the home up first with 'entente init --home "+home+" --federation FILE --jurisdiction CODE'")
		}
		return node.Config{}, nil, writableHint(err)
	}
	fed, err := nc.LoadFederation()
	if err != nil {
		return node.Config{}, nil, writableHint(err)
	}
	key, err := nc.LoadKey()
	if err != nil {
		return node.Config{}, nil, err
	}
	token, err := nc.LoadToken()
	if err != nil {
		return node.Config{}, nil, err
	}
	return node.FromFile(nc, key, fed, token), nc, nil
}

// writableHint adds to ErrWritable the flag that overrides it.
func writableHint(err error) error {
	if errors.Is(err, config.ErrWritable) {
		return withHint(err, "fix the mode, or run with --allow-writable-config to start anyway (with a warning)")
	}
	return err
}

func runRun(env *cliEnv, args []string) error {
	c := findCommand("run")
	flags := newFlags(env, c)
	home := flags.String("home", "", "the node's home directory (default $ENTENTE_HOME)")
	allowWritable := flags.Bool("allow-writable-config", false, "run even if others may write config.toml or the federation file (warns at start)")
	rest, err := parseFlags(flags, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usagef("unexpected argument %q", rest[0])
	}
	var writable []error
	cfg, nc, err := loadNodeConfig(env, env.homeDir(*home), config.LoadOptions{AllowWritable: *allowWritable,
		Warn: func(err error) { writable = append(writable, err) }})
	if err != nil {
		return err
	}
	cfg.Logger = newLogger(env.stderr, nc.Log)
	defer routeLibp2pLogs(cfg.Logger.Handler())()
	for _, err := range writable {
		cfg.Logger.Warn("running with a file others may change (--allow-writable-config)", "err", err)
	}
	if !nc.APILoopback() {
		cfg.Logger.Warn("the HTTP API listens beyond loopback; GET endpoints are open to whoever can reach it", "api", nc.API.Listen)
	}
	n, err := node.New(cfg)
	switch {
	case errors.Is(err, store.ErrOldReceipts):
		return withHint(err, "the federation moves to protocol revision 2 together: see docs/operating.md, \"Upgrading a data directory\"")
	case errors.Is(err, store.ErrInUse):
		return withHint(err, "is this node already running? 'entente status --home "+nc.Home+"' asks it; one home runs one node")
	case errors.Is(err, syscall.EADDRINUSE):
		return withHint(err, "another process listens there: is this node already running? Else change the address (api.listen or listen) in "+nc.Path(config.ConfigFile))
	case err != nil:
		return withHint(err, "check "+nc.Path(config.ConfigFile))
	}
	fmt.Fprintf(env.stdout, "entente node %s (%s) running; API http://%s\n", n.ID(), n.Jurisdiction(), n.APIAddr())
	addrFile := nc.Path(config.APIAddressFile)
	if err := config.WriteFileAtomic(addrFile, []byte(n.APIAddr()+"\n"), 0o600); err != nil {
		cfg.Logger.Warn("could not record the API address for other commands", "file", addrFile, "err", err)
	}
	defer os.Remove(addrFile)
	ctx, stop := signalContext(env.ctx)
	defer stop()
	<-ctx.Done()
	cfg.Logger.Info("shutting down; a second signal forces the exit")
	return n.Close()
}

// signalContext is ctx, cancelled at the first SIGINT or SIGTERM; a second
// signal exits the process at once.
func signalContext(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		select {
		case <-sig:
		case <-ctx.Done():
			signal.Stop(sig)
			return
		}
		cancel()
		<-sig
		fmt.Fprintln(os.Stderr, "entente: forced exit")
		os.Exit(130)
	}()
	return ctx, func() { signal.Stop(sig); cancel() }
}
