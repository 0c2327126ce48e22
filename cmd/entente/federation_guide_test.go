package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The guide docs/federation.md is written as three operators' sessions,
// and TestFederationGuide runs it. Its conventions:
//
//   - A shell block's info string names where it runs: "sh de", "sh fr",
//     "sh br", or "sh every" (the same block on DE, FR and BR, in that
//     order, each with its own variables), then optionally a mode: "run" (a
//     long-running command, started in the background and stopped when the
//     test ends) or "wait" (repeated until it passes, within a deadline).
//     Its first line says the same to the reader, who does not see the info
//     string ("# DE machine", "# each machine, repeated until it passes":
//     guideHeader). "sh none" is an example the test does not run; "sh vars"
//     declares the variables, which the test sets itself (the names must
//     agree). Any other "sh" block is an error: every block says who runs it.
//   - HTML comments carry what a reader does without a command:
//     <!-- guide: copy FROM FILE... to TO... --> sends files from one
//     machine's directory to others', in document order;
//     <!-- guide: expect REGEXP --> (repeatable) says what the next block
//     prints (its stdout must match; a wait block is repeated until it
//     does); <!-- guide: same output --> says an "every" block prints the
//     same on the three machines.
//
// A block runs with bash -e -o pipefail, in its machine's directory, with
// the guide's variables in its environment and the entente under test first
// in PATH; each block is a shell of its own (the guide passes values
// between blocks in files, as operators do between sessions).

// guideMachines are the guide's machines, in the order "every" runs them.
var guideMachines = []string{"de", "fr", "br"}

// guideStep is one thing the guide does: a block to run or files to send.
type guideStep struct {
	line int // in the guide, for messages

	// A block.
	who, mode string // who: a machine or "every"; mode: "", "run" or "wait"
	script    string
	expects   []*regexp.Regexp
	same      bool

	// A copy.
	from  string
	files []string
	to    []string
}

func (s *guideStep) isCopy() bool { return s.from != "" }

func (s *guideStep) machines() []string {
	if s.who == "every" {
		return guideMachines
	}
	return []string{s.who}
}

// guideHeader is the first line of a block that runs on who, in mode.
func guideHeader(who, mode string) string {
	h := "# each machine"
	if who != "every" {
		h = "# " + strings.ToUpper(who) + " machine"
	}
	switch mode {
	case "run":
		h += ", in a terminal of its own (it runs until stopped)"
	case "wait":
		h += ", repeated until it passes"
	}
	return h
}

// guideDirective is an HTML comment the guide's test reads.
var guideDirective = regexp.MustCompile(`^<!-- guide: (.*) -->$`)

// parseGuide reads the guide's steps and the variables its vars block
// sets.
func parseGuide(t *testing.T, path string) (steps []*guideStep, vars []string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	var pending *guideStep // directives waiting for their block
	for i := 0; i < len(lines); i++ {
		line, at := lines[i], i+1
		if m := guideDirective.FindStringSubmatch(strings.TrimSpace(line)); m != nil {
			words := strings.Fields(m[1])
			switch {
			case len(words) >= 5 && words[0] == "copy" && slices.Contains(words, "to"):
				to := slices.Index(words, "to")
				s := &guideStep{line: at, from: words[1], files: words[2:to], to: words[to+1:]}
				for _, m := range append([]string{s.from}, s.to...) {
					if !slices.Contains(guideMachines, m) {
						t.Fatalf("docs/federation.md:%d: copy names %q, not a machine (%v)", at, m, guideMachines)
					}
				}
				if len(s.files) == 0 || len(s.to) == 0 {
					t.Fatalf("docs/federation.md:%d: copy FROM FILE... to TO...: %s", at, m[1])
				}
				steps = append(steps, s)
			case words[0] == "expect" && len(words) > 1:
				re, err := regexp.Compile(strings.TrimSpace(strings.TrimPrefix(m[1], "expect")))
				if err != nil {
					t.Fatalf("docs/federation.md:%d: %v", at, err)
				}
				if pending == nil {
					pending = &guideStep{}
				}
				pending.expects = append(pending.expects, re)
			case m[1] == "same output":
				if pending == nil {
					pending = &guideStep{}
				}
				pending.same = true
			default:
				t.Fatalf("docs/federation.md:%d: unknown guide directive %q", at, m[1])
			}
			continue
		}
		info, isFence := strings.CutPrefix(line, "```")
		if !isFence || info == "" {
			continue
		}
		// A fenced block: its body up to the closing fence.
		start := i + 1
		for i++; i < len(lines) && lines[i] != "```"; i++ {
		}
		if i == len(lines) {
			t.Fatalf("docs/federation.md:%d: unterminated code block", at)
		}
		body := strings.Join(lines[start:i], "\n") + "\n"
		fields := strings.Fields(info)
		if fields[0] != "sh" {
			if pending != nil {
				t.Fatalf("docs/federation.md:%d: a guide directive before a %s block, not a shell block", at, fields[0])
			}
			continue
		}
		if len(fields) < 2 || len(fields) > 3 {
			t.Fatalf("docs/federation.md:%d: shell block %q: want \"sh WHO [MODE]\"", at, info)
		}
		who, mode := fields[1], ""
		if len(fields) == 3 {
			mode = fields[2]
		}
		switch {
		case who == "none" || who == "vars":
			if pending != nil || mode != "" {
				t.Fatalf("docs/federation.md:%d: a %s block takes no mode and no directive", at, who)
			}
			if who == "vars" {
				if vars != nil {
					t.Fatalf("docs/federation.md:%d: a second vars block", at)
				}
				vars = assignedNames(body)
			}
			continue
		case who != "every" && !slices.Contains(guideMachines, who):
			t.Fatalf("docs/federation.md:%d: shell block %q: %q is not a machine (%v, every, none, vars)", at, info, who, guideMachines)
		case mode != "" && mode != "run" && mode != "wait":
			t.Fatalf("docs/federation.md:%d: shell block %q: mode %q is not run or wait", at, info, mode)
		}
		if want := guideHeader(who, mode); lines[start] != want {
			t.Fatalf("docs/federation.md:%d: a %q block starts %q, not %q: the reader sees where it runs from that line", at, info, lines[start], want)
		}
		s := &guideStep{line: at, who: who, mode: mode, script: body}
		if pending != nil {
			s.expects, s.same = pending.expects, pending.same
			pending = nil
		}
		if s.same && who != "every" {
			t.Fatalf("docs/federation.md:%d: \"same output\" before a block of one machine", at)
		}
		steps = append(steps, s)
	}
	if pending != nil {
		t.Fatal("docs/federation.md: a guide directive at the end, with no block after it")
	}
	return steps, vars
}

// assignedNames are the variables a vars block sets (NAME=value words).
func assignedNames(body string) []string {
	var names []string
	for _, line := range strings.Split(body, "\n") {
		line, _, _ = strings.Cut(line, "#")
		for _, word := range strings.Fields(line) {
			if name, _, ok := strings.Cut(word, "="); ok {
				names = append(names, name)
			}
		}
	}
	slices.Sort(names)
	return names
}

// guideMachine is one of the guide's machines on this one: its directory
// and its variables.
type guideMachine struct {
	name, dir string
	env       []string
	runLog    string // where its entente run writes
	node      *guideProcess
}

// guideProcess is a block started in the background (mode run).
type guideProcess struct {
	cmd    *exec.Cmd
	exited chan struct{}
}

func (p *guideProcess) done() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

// TestFederationGuide follows docs/federation.md literally: three
// operators on "three machines" — three directories of this machine, with
// loopback addresses and free ports — run each of its shell blocks with
// bash, send each other the files it says they send, start their nodes
// and wait where it says to wait. The guide must take them to a transfer
// the DE node answers allow (entente verify exits 0) and to a receipt the
// FR authority checks offline; any command that fails, or does not print
// what the guide says, fails the test.
func TestFederationGuide(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs three nodes")
	}
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("the guide's commands need bash")
	}
	steps, vars := parseGuide(t, "../../docs/federation.md")

	bin := filepath.Join(t.TempDir(), "bin")
	build := exec.Command("go", "build", "-o", filepath.Join(bin, "entente"), "github.com/entente-net/entente/cmd/entente")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	// The machines: the federation's addresses are the same on all three;
	// each has its own directory, ports and home.
	root := t.TempDir()
	shared := []string{}
	ports := map[string]int{}
	for _, m := range guideMachines {
		ports[m] = freeP2PPort(t)
		up := strings.ToUpper(m)
		shared = append(shared, up+"_HOST=127.0.0.1", fmt.Sprintf("%s_PORT=%d", up, ports[m]))
	}
	base := []string{"PATH=" + bin + string(os.PathListSeparator) + os.Getenv("PATH")}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PATH=") && !strings.HasPrefix(kv, "ENTENTE_") {
			base = append(base, kv)
		}
	}
	machines := map[string]*guideMachine{}
	for _, m := range guideMachines {
		gm := &guideMachine{name: m, dir: filepath.Join(root, m), runLog: filepath.Join(root, m+"-run.log")}
		if err := os.Mkdir(gm.dir, 0o700); err != nil {
			t.Fatal(err)
		}
		gm.env = append(slices.Clone(base), shared...)
		gm.env = append(gm.env, "ME="+strings.ToUpper(m), "PORT="+strconv.Itoa(ports[m]),
			"API=127.0.0.1:"+strconv.Itoa(freePort(t)), "NODE_HOME="+filepath.Join(root, m+"-node"))
		machines[m] = gm
	}
	var set []string
	for _, kv := range machines["de"].env[len(base):] {
		name, _, _ := strings.Cut(kv, "=")
		set = append(set, name)
	}
	slices.Sort(set)
	if !slices.Equal(vars, set) {
		t.Fatalf("the guide's vars block sets %v; the test sets %v", vars, set)
	}

	t.Cleanup(func() {
		for _, m := range guideMachines {
			stopGuideProcess(t, machines[m])
		}
		if t.Failed() {
			for _, m := range guideMachines {
				if b, err := os.ReadFile(machines[m].runLog); err == nil {
					t.Logf("%s's entente run printed:\n%s", m, tail(string(b), 60))
				}
			}
		}
	})

	var verified, checked bool
	for _, s := range steps {
		if s.isCopy() {
			for _, to := range s.to {
				for _, f := range s.files {
					copyGuideFile(t, filepath.Join(machines[s.from].dir, f), filepath.Join(machines[to].dir, f), s.line)
				}
			}
			continue
		}
		var outputs []string
		for _, m := range s.machines() {
			gm := machines[m]
			switch s.mode {
			case "run":
				startGuideProcess(t, bash, gm, s)
				continue
			case "wait":
				outputs = append(outputs, waitGuideBlock(t, bash, machines, gm, s))
			default:
				out, errOut, err := runGuideBlock(bash, gm, s.script, time.Minute)
				t.Logf("docs/federation.md:%d on %s: exit %v\nstdout:\n%s\nstderr:\n%s", s.line, m, err, out, errOut)
				if err != nil {
					t.Fatalf("docs/federation.md:%d on %s: %v\n%s\nstdout:\n%s\nstderr:\n%s", s.line, m, err, s.script, out, errOut)
				}
				if re := unmatched(s.expects, out); re != nil {
					t.Fatalf("docs/federation.md:%d on %s: the output does not match %q:\n%s", s.line, m, re, out)
				}
				outputs = append(outputs, out)
			}
			checkGuideProcesses(t, machines)
		}
		if s.same && (len(outputs) != 3 || outputs[0] != outputs[1] || outputs[1] != outputs[2]) {
			t.Fatalf("docs/federation.md:%d: the three machines printed different things:\n%s", s.line, strings.Join(outputs, "\n---\n"))
		}
		// What the guide is for, checked here whatever its directives say.
		if s.who == "de" && strings.Contains(s.script, "entente verify") {
			verified = regexp.MustCompile(`(?m)^verdict\s+ALLOW$`).MatchString(outputs[0])
		}
		if s.who == "fr" && strings.Contains(s.script, "entente receipt check") {
			checked = strings.Contains(outputs[0], "recomputed from the bundle: ALLOW")
		}
	}
	for _, m := range guideMachines {
		if machines[m].node == nil {
			t.Errorf("the guide never starts the %s node (a \"sh every run\" or \"sh %s run\" block)", m, m)
		}
	}
	if !verified {
		t.Error("the guide has no entente verify on the DE machine that answers allow")
	}
	if !checked {
		t.Error("the guide has no entente receipt check on the FR machine that recomputes allow")
	}
}

// runGuideBlock runs script on gm with bash -e -o pipefail and returns what
// it printed; err is non-nil when it exits non-zero or outlasts timeout.
func runGuideBlock(bash string, gm *guideMachine, script string, timeout time.Duration) (stdout, stderr string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bash, "--noprofile", "--norc", "-e", "-o", "pipefail", "-c", script)
	cmd.Dir, cmd.Env = gm.dir, gm.env
	cmd.WaitDelay = 5 * time.Second
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("still running after %s", timeout)
	}
	return out.String(), errOut.String(), err
}

// waitGuideBlock repeats a wait block until it exits 0 and prints what the
// guide expects, and returns what it printed then; it fails the test after
// a minute, or as soon as a node exits.
func waitGuideBlock(t *testing.T, bash string, machines map[string]*guideMachine, gm *guideMachine, s *guideStep) string {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for tries := 1; ; tries++ {
		out, errOut, err := runGuideBlock(bash, gm, s.script, 30*time.Second)
		re := unmatched(s.expects, out)
		if err == nil && re == nil {
			t.Logf("docs/federation.md:%d on %s: passed at try %d\nstdout:\n%s\nstderr:\n%s", s.line, gm.name, tries, out, errOut)
			return out
		}
		if time.Now().After(deadline) {
			why := fmt.Sprint(err)
			if err == nil {
				why = fmt.Sprintf("the output does not match %q", re)
			}
			t.Fatalf("docs/federation.md:%d on %s: still failing after a minute (%d tries): %s\n%s\nstdout:\n%s\nstderr:\n%s",
				s.line, gm.name, tries, why, s.script, out, errOut)
		}
		checkGuideProcesses(t, machines)
		select {
		case <-tick.C:
		case <-t.Context().Done():
			t.Fatalf("docs/federation.md:%d on %s: the test ended while waiting", s.line, gm.name)
		}
	}
}

// unmatched is the first of res that out does not match, or nil.
func unmatched(res []*regexp.Regexp, out string) *regexp.Regexp {
	for _, re := range res {
		if !re.MatchString(out) {
			return re
		}
	}
	return nil
}

// startGuideProcess starts a run block on gm in a process group of its
// own, its output to gm.runLog.
func startGuideProcess(t *testing.T, bash string, gm *guideMachine, s *guideStep) {
	t.Helper()
	if gm.node != nil {
		t.Fatalf("docs/federation.md:%d: a second run block on %s", s.line, gm.name)
	}
	log, err := os.Create(gm.runLog)
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close() // the process has its own descriptor
	cmd := exec.Command(bash, "--noprofile", "--norc", "-e", "-o", "pipefail", "-c", s.script)
	cmd.Dir, cmd.Env = gm.dir, gm.env
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("docs/federation.md:%d on %s: %v", s.line, gm.name, err)
	}
	p := &guideProcess{cmd: cmd, exited: make(chan struct{})}
	go func() { cmd.Wait(); close(p.exited) }()
	gm.node = p
	t.Logf("docs/federation.md:%d on %s: started in the background (pid %d), output in %s", s.line, gm.name, cmd.Process.Pid, gm.runLog)
}

// checkGuideProcesses fails the test if a node the guide started has
// exited: the guide's nodes run until the end.
func checkGuideProcesses(t *testing.T, machines map[string]*guideMachine) {
	t.Helper()
	for _, m := range guideMachines {
		if p := machines[m].node; p != nil && p.done() {
			b, _ := os.ReadFile(machines[m].runLog)
			t.Fatalf("%s's entente run exited (%v):\n%s", m, p.cmd.ProcessState, tail(string(b), 40))
		}
	}
}

// stopGuideProcess stops gm's node as an operator would, with SIGTERM to its
// process group, and kills the group if it has not exited 30 s later.
func stopGuideProcess(t *testing.T, gm *guideMachine) {
	p := gm.node
	if p == nil {
		return
	}
	pgid := p.cmd.Process.Pid
	if err := syscall.Kill(-pgid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		t.Errorf("stopping %s's node: %v", gm.name, err)
	}
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		t.Errorf("%s's node did not stop within 30s of SIGTERM; killed", gm.name)
		syscall.Kill(-pgid, syscall.SIGKILL)
		<-p.exited
	}
	if !p.cmd.ProcessState.Success() && !t.Failed() {
		b, _ := os.ReadFile(gm.runLog)
		t.Errorf("%s's entente run did not exit cleanly at SIGTERM (%v):\n%s", gm.name, p.cmd.ProcessState, tail(string(b), 40))
	}
}

// copyGuideFile sends a file from one machine's directory to another's.
func copyGuideFile(t *testing.T, from, to string, line int) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatalf("docs/federation.md:%d: sending a file the guide has not made: %v", line, err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// freeP2PPort is a port free a moment ago on every interface for both TCP
// and UDP, as a node listening on /ip4/0.0.0.0/tcp/P and
// /ip4/0.0.0.0/udp/P/quic-v1 needs.
func freeP2PPort(t *testing.T) int {
	t.Helper()
	for range 50 {
		l, err := net.Listen("tcp4", "0.0.0.0:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp4", "0.0.0.0:"+strconv.Itoa(port))
		l.Close()
		if err == nil {
			u.Close()
			return port
		}
	}
	t.Fatal("no port free for both TCP and UDP")
	return 0
}

// tail is the last n lines of s.
func tail(s string, n int) string {
	var lines []string
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
