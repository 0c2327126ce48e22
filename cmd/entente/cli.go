package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
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
		name := unknownName(args)
		hint := "run 'entente help' for the list of commands"
		if near := nearestCommand(args, name); near != "" {
			hint = "did you mean 'entente " + near + "'? " + hint
		}
		printErr(stderr, fmt.Errorf("unknown command %q", name), hint)
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
		hint := "run 'entente " + c.name + " --help' for usage"
		if ue.suggest != "" {
			hint = "did you mean " + ue.suggest + "? " + hint
		}
		printErr(stderr, ue.err, hint)
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
	var in []*command
	for _, c := range commands {
		if strings.HasPrefix(c.name, group+" ") {
			in = append(in, c)
		}
	}
	printCommands(w, in)
}

// printCommands lists cmds, a line each: name and summary in two columns.
func printCommands(w io.Writer, cmds []*command) {
	width := 0
	for _, c := range cmds {
		width = max(width, len(c.name))
	}
	for _, c := range cmds {
		fmt.Fprintf(w, "  %-*s  %s\n", width, c.name, summaryLine(c))
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
	printCommands(w, sorted)
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
		printFlags(w, fs)
	}
}

// printFlags is flag.PrintDefaults, but for defaults that mean "not
// given": -1 (a number the user must give, or "any"), and one the usage
// already explains ("(default ...)").
func printFlags(w io.Writer, fs *flag.FlagSet) {
	fs.VisitAll(func(f *flag.Flag) {
		name, usage := flag.UnquoteUsage(f)
		line := "  -" + f.Name
		if name != "" {
			line += " " + name
		}
		line += "\n    \t" + strings.ReplaceAll(usage, "\n", "\n    \t")
		switch f.DefValue {
		case "", "0", "false", "[]", "-1":
		default:
			if strings.Contains(usage, "(default") {
				break
			}
			if name == "string" {
				line += fmt.Sprintf(" (default %q)", f.DefValue)
			} else {
				line += " (default " + f.DefValue + ")"
			}
		}
		fmt.Fprintln(w, line)
	})
}

// usageError is a mistake in the command line (exit status 2); suggest,
// if set, is what the user may have meant.
type usageError struct {
	err     error
	suggest string
}

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return &usageError{err: fmt.Errorf(format, args...)}
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
			if name, ok := strings.CutPrefix(err.Error(), "flag provided but not defined: -"); ok {
				var names []string
				fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
				ue := &usageError{err: fmt.Errorf("unknown flag --%s", name)}
				if near := closest(name, names); near != "" {
					ue.suggest = "--" + near
				}
				return nil, ue
			}
			return nil, &usageError{err: err}
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

// nearestCommand is the command args (whose unknown name is name) most
// likely meant: "record lst" is "record list", "statsu" "status", and
// "recipt get" "receipt get".
func nearestCommand(args []string, name string) string {
	if strings.Contains(name, " ") { // a group's word, then a mistyped command
		var names []string
		for _, c := range commands {
			names = append(names, c.name)
		}
		return closest(name, names)
	}
	var words []string
	for _, c := range commands {
		if w, _, _ := strings.Cut(c.name, " "); !slices.Contains(words, w) {
			words = append(words, w)
		}
	}
	near := closest(name, words)
	if near != "" && isGroup(near) && len(args) > 1 && findCommand(near+" "+args[1]) != nil {
		near += " " + args[1]
	}
	return near
}

// closest is the one candidate a mistyped word most likely meant: within
// two edits of it, or starting with it (three letters or more); "" when
// none is, or two are as close.
func closest(word string, candidates []string) string {
	best, bestDist, tie := "", 3, false
	for _, c := range candidates {
		d := editDistance(word, c)
		if len(word) >= 3 && strings.HasPrefix(c, word) {
			d = min(d, 1)
		}
		switch {
		case d < bestDist:
			best, bestDist, tie = c, d, false
		case d == bestDist:
			tie = true
		}
	}
	if tie {
		return ""
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
