package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strings"
)

func init() {
	register(&command{
		name: "completion",
		summary: "print a shell completion script for entente's commands and their flags\n\n" +
			"bash:  source <(entente completion bash)    (or save it in /etc/bash_completion.d/entente)\n" +
			"zsh:   source <(entente completion zsh)     (after compinit; or save it as _entente in $fpath)\n" +
			"fish:  entente completion fish | source     (or save it as ~/.config/fish/completions/entente.fish)",
		usage: "completion bash|zsh|fish",
		run:   runCompletion,
	})
}

// shells are the completion scripts entente writes, by shell.
var shells = map[string]func(io.Writer, []completionWord) error{
	"bash": bashCompletion,
	"zsh":  zshCompletion,
	"fish": fishCompletion,
}

func runCompletion(env *cliEnv, args []string) error {
	c := findCommand("completion")
	flags := newFlags(env, c)
	rest, err := parseFlags(flags, args)
	if err != nil {
		return err
	}
	if len(rest) != 1 || shells[rest[0]] == nil {
		return usagef("name one shell: bash, zsh or fish")
	}
	return shells[rest[0]](env.stdout, completionWords())
}

// completionWord is a word a user may type after "entente": a command,
// or a group with its commands.
type completionWord struct {
	word, summary string
	flags         []*flag.Flag     // of a command
	subs          []completionWord // of a group
	args          []string         // the words a command takes (completion: the shells)
	help          bool             // "help", which takes a command
}

// completionWords are the registered commands, grouped by first word and
// sorted, each with its flags.
func completionWords() []completionWord {
	var top []completionWord
	index := map[string]int{}
	for _, c := range commands {
		group, sub, grouped := strings.Cut(c.name, " ")
		w := completionWord{word: c.name, summary: summaryLine(c), flags: flagsOf(c)}
		if c.name == "completion" {
			w.args = slices.Sorted(maps.Keys(shells))
		}
		if !grouped {
			top = append(top, w)
			continue
		}
		w.word = sub
		i, ok := index[group]
		if !ok {
			i = len(top)
			index[group] = i
			top = append(top, completionWord{word: group})
		}
		top[i].subs = append(top[i].subs, w)
	}
	top = append(top, completionWord{word: "help", summary: "the commands, or a command's usage and flags", help: true})
	for i := range top {
		if len(top[i].subs) > 0 {
			var names []string
			for _, s := range sortWords(top[i].subs) {
				names = append(names, s.word)
			}
			top[i].summary = "commands: " + strings.Join(names, ", ")
		}
	}
	return sortWords(top)
}

func sortWords(ws []completionWord) []completionWord {
	sort.Slice(ws, func(i, j int) bool { return ws[i].word < ws[j].word })
	return ws
}

// flagsOf lists c's flags, sorted by name: c is run with --help and its
// flag set read once it has parsed (--help ends a command there, before
// it does anything), so the list is the one its --help prints, never a
// copy that could drift.
func flagsOf(c *command) []*flag.Flag {
	var sets []*flag.FlagSet
	env := &cliEnv{ctx: context.Background(), stdout: io.Discard, stderr: io.Discard, getenv: func(string) string { return "" },
		onFlags: func(fs *flag.FlagSet) { sets = append(sets, fs) }}
	_ = c.run(env, []string{"--help"})
	var flags []*flag.Flag
	for _, fs := range sets {
		fs.VisitAll(func(f *flag.Flag) { flags = append(flags, f) })
	}
	sort.Slice(flags, func(i, j int) bool { return flags[i].Name < flags[j].Name })
	return flags
}

// takesValue reports whether a flag takes a value (all but booleans).
func takesValue(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return !ok || !b.IsBoolFlag()
}

func flagNames(flags []*flag.Flag) string {
	names := []string{"--help"}
	for _, f := range flags {
		names = append(names, "--"+f.Name)
	}
	return strings.Join(names, " ")
}

func wordNames(ws []completionWord) string {
	var names []string
	for _, w := range ws {
		names = append(names, w.word)
	}
	return strings.Join(names, " ")
}

func bashCompletion(w io.Writer, top []completionWord) error {
	var b strings.Builder
	b.WriteString(`# bash completion for entente, made by 'entente completion bash'.
# Load it with: source <(entente completion bash)
_entente() {
    local cur=${COMP_WORDS[COMP_CWORD]} subs="" flags=""
    if (( COMP_CWORD == 1 )); then
        subs="` + wordNames(top) + `"
        flags="--help"
    else
        case "${COMP_WORDS[1]}" in
`)
	for _, t := range top {
		fmt.Fprintf(&b, "        %s)\n", t.word)
		switch {
		case t.help:
			fmt.Fprintf(&b, "            (( COMP_CWORD == 2 )) && subs=%q\n", wordNames(top))
			b.WriteString("            case \"${COMP_WORDS[2]}\" in\n")
			for _, g := range top {
				if len(g.subs) > 0 {
					fmt.Fprintf(&b, "            %s) (( COMP_CWORD == 3 )) && subs=%q ;;\n", g.word, wordNames(g.subs))
				}
			}
			b.WriteString("            esac\n")
		case len(t.subs) > 0:
			fmt.Fprintf(&b, "            if (( COMP_CWORD == 2 )); then\n                subs=%q\n                flags=\"--help\"\n            else\n", wordNames(t.subs))
			b.WriteString("                case \"${COMP_WORDS[2]}\" in\n")
			for _, s := range t.subs {
				fmt.Fprintf(&b, "                %s) flags=%q ;;\n", s.word, flagNames(s.flags))
			}
			b.WriteString("                esac\n            fi\n")
		default:
			fmt.Fprintf(&b, "            flags=%q\n", flagNames(t.flags))
			if len(t.args) > 0 {
				fmt.Fprintf(&b, "            (( COMP_CWORD == 2 )) && subs=%q\n", strings.Join(t.args, " "))
			}
		}
		b.WriteString("            ;;\n")
	}
	b.WriteString(`        esac
    fi
    if [[ $cur == -* ]]; then
        COMPREPLY=( $(compgen -W "$flags" -- "$cur") )
    elif [[ -n $subs ]]; then
        COMPREPLY=( $(compgen -W "$subs" -- "$cur") )
    fi
}
complete -o default -F _entente entente
`)
	_, err := io.WriteString(w, b.String())
	return err
}

// zshQuote quotes s for zsh (and fish) in single quotes.
func zshQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// zshEntries are _describe's "name:description" entries, quoted.
func zshEntries(ws []completionWord) string {
	var out []string
	for _, w := range ws {
		out = append(out, zshQuote(w.word+":"+w.summary))
	}
	return strings.Join(out, " ")
}

func zshFlagEntries(flags []*flag.Flag) string {
	out := []string{zshQuote("--help:print the usage and the flags")}
	for _, f := range flags {
		out = append(out, zshQuote("--"+f.Name+":"+usageLine(f)))
	}
	return strings.Join(out, " ")
}

// usageLine is the first line of a flag's usage.
func usageLine(f *flag.Flag) string {
	line, _, _ := strings.Cut(f.Usage, "\n")
	return line
}

func zshCompletion(w io.Writer, top []completionWord) error {
	var b strings.Builder
	b.WriteString(`#compdef entente
# zsh completion for entente, made by 'entente completion zsh'.
# Load it with: source <(entente completion zsh) (after compinit), or save it as _entente in $fpath.
_entente() {
    local -a subs flags
    if (( CURRENT == 2 )); then
        subs=(` + zshEntries(top) + `)
        flags=(` + zshQuote("--help:print the commands") + `)
    else
        case ${words[2]} in
`)
	for _, t := range top {
		fmt.Fprintf(&b, "        %s)\n", t.word)
		switch {
		case t.help:
			fmt.Fprintf(&b, "            (( CURRENT == 3 )) && subs=(%s)\n", zshEntries(top))
			b.WriteString("            case ${words[3]} in\n")
			for _, g := range top {
				if len(g.subs) > 0 {
					fmt.Fprintf(&b, "            %s) (( CURRENT == 4 )) && subs=(%s) ;;\n", g.word, zshEntries(g.subs))
				}
			}
			b.WriteString("            esac\n")
		case len(t.subs) > 0:
			fmt.Fprintf(&b, "            if (( CURRENT == 3 )); then\n                subs=(%s)\n            else\n", zshEntries(t.subs))
			b.WriteString("                case ${words[3]} in\n")
			for _, s := range t.subs {
				fmt.Fprintf(&b, "                %s) flags=(%s) ;;\n", s.word, zshFlagEntries(s.flags))
			}
			b.WriteString("                esac\n            fi\n")
		default:
			fmt.Fprintf(&b, "            flags=(%s)\n", zshFlagEntries(t.flags))
			if len(t.args) > 0 {
				var args []completionWord
				for _, a := range t.args {
					args = append(args, completionWord{word: a, summary: "a script for " + a})
				}
				fmt.Fprintf(&b, "            (( CURRENT == 3 )) && subs=(%s)\n", zshEntries(args))
			}
		}
		b.WriteString("            ;;\n")
	}
	b.WriteString(`        esac
    fi
    if [[ $PREFIX == -* ]]; then
        _describe -t flags 'flag' flags
    elif (( ${#subs} )); then
        _describe -t commands 'command' subs
    else
        _files
    fi
}
if (( $+functions[compdef] )); then
    compdef _entente entente
fi
`)
	_, err := io.WriteString(w, b.String())
	return err
}

func fishCompletion(w io.Writer, top []completionWord) error {
	var b strings.Builder
	b.WriteString(`# fish completion for entente, made by 'entente completion fish'.
# Load it with: entente completion fish | source, or save it as ~/.config/fish/completions/entente.fish
function __entente_words
    # The words typed after "entente" that are not flags.
    for w in (commandline -opc)[2..-1]
        string match -q -- '-*' $w; or echo $w
    end
end
function __entente_at --description 'the words typed so far are exactly the arguments'
    set -l got (__entente_words)
    test "$got" = "$argv"
end
function __entente_in --description 'the words typed so far start with the arguments'
    set -l got (__entente_words)
    test (count $got) -ge (count $argv); or return 1
    for i in (seq (count $argv))
        test "$got[$i]" = "$argv[$i]"; or return 1
    end
end
complete -c entente -f -n '__entente_at' -l help -d 'print the commands'
`)
	cmdLine := func(cond string, ws []completionWord) {
		for _, w := range ws {
			fmt.Fprintf(&b, "complete -c entente -f -n %s -a %s -d %s\n", zshQuote(cond), zshQuote(w.word), zshQuote(w.summary))
		}
	}
	flagLines := func(cond string, flags []*flag.Flag) {
		fmt.Fprintf(&b, "complete -c entente -n %s -l help -d 'print the usage and the flags'\n", zshQuote(cond))
		for _, f := range flags {
			req := ""
			if takesValue(f) {
				req = " -r"
			}
			fmt.Fprintf(&b, "complete -c entente -n %s -l %s%s -d %s\n", zshQuote(cond), f.Name, req, zshQuote(usageLine(f)))
		}
	}
	cmdLine("__entente_at", top)
	for _, t := range top {
		switch {
		case t.help:
			cmdLine("__entente_at help", top)
			for _, g := range top {
				if len(g.subs) > 0 {
					cmdLine("__entente_at help "+g.word, g.subs)
				}
			}
		case len(t.subs) > 0:
			cmdLine("__entente_at "+t.word, t.subs)
			for _, s := range t.subs {
				flagLines("__entente_in "+t.word+" "+s.word, s.flags)
			}
		default:
			flagLines("__entente_in "+t.word, t.flags)
			for _, a := range t.args {
				cmdLine("__entente_at "+t.word, []completionWord{{word: a, summary: "a script for " + a}})
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
