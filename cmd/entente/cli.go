package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// command is one subcommand of the CLI.
type command struct {
	name    string
	summary string
	usage   string // the line after "usage: entente "
	run     func(env *cliEnv, args []string) error
}

// cliEnv is what a command runs with: a context, its streams and its
// environment (all replaced in tests).
type cliEnv struct {
	ctx            context.Context // long-running commands stop when it ends
	stdout, stderr io.Writer
	getenv         func(string) string
}

var commands []*command

func register(c *command) { commands = append(commands, c) }

func findCommand(name string) *command {
	for _, c := range commands {
		if c.name == name {
			return c
		}
	}
	return nil
}

// run is main without os.Exit: it parses the command line, runs the
// command and prints errors as "entente: error: …" with an optional
// "entente: hint: …". It returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	return runEnv(&cliEnv{ctx: context.Background(), stdout: stdout, stderr: stderr, getenv: os.Getenv}, args)
}

// runEnv is run with an environment of the caller's (tests).
func runEnv(env *cliEnv, args []string) int {
	stdout, stderr := env.stdout, env.stderr
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		if len(args) > 1 {
			if c := lookup(args[1:]); c != nil {
				printUsage(stdout, c, nil)
				return 0
			}
		}
		printHelp(stdout)
		return 0
	}
	if args[0] == "--version" { // DESIGN.md §9: the same as `entente version`
		args = append([]string{"version"}, args[1:]...)
	}
	c, rest := lookupWithRest(args)
	if c == nil && isGroup(args[0]) {
		if len(args) > 1 && (args[1] == "--help" || args[1] == "-h" || args[1] == "help") {
			printGroupHelp(stdout, args[0])
			return 0
		}
		if len(args) == 1 {
			printErr(stderr, fmt.Errorf("%q needs a command", args[0]), "run 'entente "+args[0]+" --help' for its commands")
			return 2
		}
	}
	if c == nil {
		printErr(stderr, fmt.Errorf("unknown command %q", unknownName(args)),
			"run 'entente help' for the list of commands")
		return 2
	}
	err := c.run(env, rest)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errDenied):
		return exitDenied
	case errors.Is(err, errWithheld):
		return exitWithheld
	}
	var ue *usageError
	if errors.As(err, &ue) {
		printErr(stderr, ue.err, "run 'entente "+c.name+" --help' for usage")
		return 2
	}
	var he *hintError
	if errors.As(err, &he) {
		printErr(stderr, he.err, he.hint)
		return 1
	}
	printErr(stderr, err, "")
	return 1
}

// isGroup reports whether word starts multi-word commands ("record").
func isGroup(word string) bool {
	for _, c := range commands {
		if strings.HasPrefix(c.name, word+" ") {
			return true
		}
	}
	return false
}

// printGroupHelp lists the commands of a group.
func printGroupHelp(w io.Writer, group string) {
	fmt.Fprintf(w, "usage: entente %s <command> [flags]\n\ncommands:\n", group)
	for _, c := range commands {
		if strings.HasPrefix(c.name, group+" ") {
			fmt.Fprintf(w, "  %-16s %s\n", c.name, strings.SplitN(c.summary, "\n", 2)[0])
		}
	}
}

// unknownName is the command name the user meant: the first word, and the
// second only when the first names a group ("record burn"), never a flag or
// an argument ("frobnicate --home x" is "frobnicate").
func unknownName(args []string) string {
	if len(args) > 1 && !strings.HasPrefix(args[1], "-") {
		for _, c := range commands {
			if strings.HasPrefix(c.name, args[0]+" ") {
				return args[0] + " " + args[1]
			}
		}
	}
	return args[0]
}

func lookup(args []string) *command {
	c, _ := lookupWithRest(args)
	return c
}

// lookupWithRest finds the longest command name made of the first words.
func lookupWithRest(args []string) (*command, []string) {
	if len(args) >= 2 {
		if c := findCommand(args[0] + " " + args[1]); c != nil {
			return c, args[2:]
		}
	}
	if c := findCommand(args[0]); c != nil {
		return c, args[1:]
	}
	return nil, nil
}

func printErr(w io.Writer, err error, hint string) {
	fmt.Fprintf(w, "entente: error: %v\n", err)
	if hint != "" {
		fmt.Fprintf(w, "entente: hint: %s\n", hint)
	}
}

func printHelp(w io.Writer) {
	fmt.Fprintln(w, "entente — a federated exchange of consent, incidents and rules between data-protection authorities")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "usage: entente <command> [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "commands:")
	sorted := append([]*command(nil), commands...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].name < sorted[j].name })
	for _, c := range sorted {
		fmt.Fprintf(w, "  %-16s %s\n", c.name, strings.SplitN(c.summary, "\n", 2)[0])
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'entente <command> --help' for a command's flags.")
}

func printUsage(w io.Writer, c *command, fs *flag.FlagSet) {
	fmt.Fprintf(w, "usage: entente %s\n\n%s\n", c.usage, c.summary)
	if fs != nil {
		fmt.Fprintln(w, "\nflags:")
		fs.SetOutput(w)
		fs.PrintDefaults()
	}
}

// usageError is a mistake in the command line (exit status 2).
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Errorf(format, args...)}
}

// hintError carries a hint: what the user can do about the error.
type hintError struct {
	err  error
	hint string
}

func (e *hintError) Error() string { return e.err.Error() }
func (e *hintError) Unwrap() error { return e.err }

func withHint(err error, hint string) error {
	if err == nil {
		return nil
	}
	return &hintError{err: err, hint: hint}
}

// newFlags makes a flag set for c whose --help prints c's usage to stdout.
func newFlags(env *cliEnv, c *command) *flag.FlagSet {
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() { printUsage(env.stdout, c, fs) }
	return fs
}

// parseFlags parses args, allowing flags after positional arguments.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fs.Usage()
				return nil, flag.ErrHelp
			}
			return nil, &usageError{err}
		}
		args = fs.Args()
		if len(args) == 0 {
			return positional, nil
		}
		positional = append(positional, args[0])
		args = args[1:]
	}
}

// multiFlag is a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(s string) error { *m = append(*m, s); return nil }

// homeDir is --home, or $ENTENTE_HOME.
func (env *cliEnv) homeDir(flagValue string) string {
	if flagValue != "" {
		return flagValue
	}
	return env.getenv("ENTENTE_HOME")
}
