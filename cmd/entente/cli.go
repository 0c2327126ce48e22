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
	// onFlags, when set, is given each flag set a command makes (shell
	// completion reads the commands' flags with it).
	onFlags func(*flag.FlagSet)
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
	if len(args) == 0 {
		// DESIGN.md §9: the command list, and the status of a usage error.
		printHelp(stderr)
		return 2
	}
	if isHelpWord(args[0]) {
		return runHelp(env, args[1:])
	}
	if args[0] == "--version" { // DESIGN.md §9: the same as `entente version`
		args = append([]string{"version"}, args[1:]...)
	}
	c, rest := lookupWithRest(args)
	if c == nil && isGroup(args[0]) {
		if len(args) > 1 && isHelpWord(args[1]) {
			printGroupHelp(stdout, args[0])
			return 0
		}
		if len(args) == 1 || strings.HasPrefix(args[1], "-") {
			printErr(stderr, fmt.Errorf("%q needs a command", args[0]), "run 'entente "+args[0]+" --help' for its commands")
			return 2
		}
	}
	if c == nil {
		printErr(stderr, fmt.Errorf("unknown command %q", unknownName(args)),
			"run 'entente help' for the list of commands")
		return 2
	}
	return runCommand(env, c, rest)
}

// runCommand runs c with its arguments and turns its error into an exit
// status and the lines of printErr.
func runCommand(env *cliEnv, c *command, args []string) int {
	stderr := env.stderr
	err := c.run(env, args)
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

// runHelp is "entente help [COMMAND]": the command list, a group's
// commands, or a command's usage with its flags (as its --help prints it).
func runHelp(env *cliEnv, args []string) int {
	if len(args) == 0 {
		printHelp(env.stdout)
		return 0
	}
	if c, rest := lookupWithRest(args); c != nil && len(rest) == 0 {
		return runCommand(env, c, []string{"--help"})
	}
	if len(args) == 1 && isGroup(args[0]) {
		printGroupHelp(env.stdout, args[0])
		return 0
	}
	printErr(env.stderr, fmt.Errorf("no help for %q: not a command", strings.Join(args, " ")),
		"run 'entente help' for the list of commands")
	return 2
}

// isHelpWord reports whether arg asks for help.
func isHelpWord(arg string) bool {
	switch arg {
	case "help", "-h", "--help", "-help":
		return true
	}
	return false
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
			fmt.Fprintf(w, "  %-16s %s\n", c.name, summaryLine(c))
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
		fmt.Fprintf(w, "  %-16s %s\n", c.name, summaryLine(c))
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Run 'entente <command> --help' for a command's flags.")
}

// summaryLine is the first line of c's summary, as the command list shows
// it.
func summaryLine(c *command) string {
	line, _, _ := strings.Cut(c.summary, "\n")
	return line
}

// printUsage prints c's usage line, its summary and its flags, if any.
func printUsage(w io.Writer, c *command, fs *flag.FlagSet) {
	fmt.Fprintf(w, "usage: entente %s\n\n%s\n", c.usage, c.summary)
	hasFlags := false
	fs.VisitAll(func(*flag.Flag) { hasFlags = true })
	if hasFlags {
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

// flagSet is a command's flags and how to print its usage.
type flagSet struct {
	*flag.FlagSet
	usage func()
}

// newFlags makes a flag set for c. The flag package's own printing is
// off: parseFlags prints c's usage, once, to stdout on --help, and a
// mistake becomes a usageError (one line and a hint, on stderr).
func newFlags(env *cliEnv, c *command) *flagSet {
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	if env.onFlags != nil {
		env.onFlags(fs)
	}
	return &flagSet{FlagSet: fs, usage: func() { printUsage(env.stdout, c, fs) }}
}

// parseFlags parses args, allowing flags after positional arguments.
func parseFlags(fs *flagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fs.usage()
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
