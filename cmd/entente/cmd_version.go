package main

import (
	"encoding/json"
	"fmt"
	"runtime"

	"github.com/entente-net/entente/node"
)

func init() {
	register(&command{
		name:    "version",
		summary: "print the version, commit and Go version this binary was built from (also --version)",
		usage:   "version [--json]",
		run:     runVersion,
	})
}

func runVersion(env *cliEnv, args []string) error {
	flags := newFlags(env, findCommand("version"))
	asJSON := flags.Bool("json", false, "print the build as JSON: version, commit, modified, commit_time, go_version")
	rest, err := parseFlags(flags, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usagef("unexpected argument %q", rest[0])
	}
	b := node.BuildInfo()
	if *asJSON {
		out, err := json.MarshalIndent(b, "", "  ")
		if err != nil {
			return err
		}
		fmt.Fprintln(env.stdout, string(out))
		return nil
	}
	printVersion(env, b)
	return nil
}

// printVersion prints b for people: the version on the first line, as
// `go version` does, then where it came from.
func printVersion(env *cliEnv, b node.Build) {
	w := env.stdout
	fmt.Fprintf(w, "entente %s\n", b.Version)
	switch {
	case b.Commit == "":
		fmt.Fprintln(w, "commit  unknown (built without VCS information)")
	case b.Modified:
		fmt.Fprintf(w, "commit  %s, with uncommitted changes\n", b.Commit)
	default:
		fmt.Fprintf(w, "commit  %s\n", b.Commit)
	}
	if b.CommitTime != "" {
		fmt.Fprintf(w, "date    %s\n", b.CommitTime)
	}
	fmt.Fprintf(w, "go      %s %s/%s\n", b.GoVersion, runtime.GOOS, runtime.GOARCH)
}
