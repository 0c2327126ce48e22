package main

import (
	"bufio"
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"text/template"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/entente-net/entente/config"
	"github.com/entente-net/entente/node"
	"github.com/entente-net/entente/protocol"
	"github.com/entente-net/entente/testnet"
)

// The files of deploy/ hold to the binary and the node they deploy: the
// systemd unit and the image run commands this binary has, with flags it
// takes; the image's build command makes a static binary that knows its
// version; the alerting rules name only metrics a node exports, and each
// has its runbook in docs/operating.md.

const (
	deployDir = "../../deploy"
	// nodeHome is the home the unit and the image give `entente run`.
	nodeHome = "/var/lib/entente"
)

// wantCommandLine checks that args (without the binary) name a command of
// this binary whose flags accept them: the command line with --help added
// must print that command's usage and exit 0 (an unknown flag exits 2
// before --help is reached). It returns the command.
func wantCommandLine(t *testing.T, what string, args []string) *command {
	t.Helper()
	cmd, _ := lookupWithRest(args)
	if cmd == nil {
		t.Errorf("%s: %q names no command of entente", what, args)
		return nil
	}
	r := newCLI(t).run(append(slices.Clone(args), "--help")...)
	if r.code != 0 || !strings.HasPrefix(r.stdout, "usage: entente "+cmd.name) {
		t.Errorf("%s: entente %s does not take those flags (with --help: exit %d)\n%s", what, strings.Join(args, " "), r.code, r.stderr)
	}
	return cmd
}

// flagValue is the value of --name in args ("" if absent).
func flagValue(args []string, name string) string {
	for i, a := range args {
		if a == "--"+name && i+1 < len(args) {
			return args[i+1]
		}
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v
		}
	}
	return ""
}

// unitFile is a systemd unit: for each section, each key's values in
// order (a key may repeat; "Key=" gives an empty value).
type unitFile map[string]map[string][]string

func parseUnit(t *testing.T, path string) unitFile {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	u := unitFile{}
	section := ""
	var pending string
	for n, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if pending == "" && (line == "" || line[0] == '#' || line[0] == ';') {
			continue
		}
		if cont, ok := strings.CutSuffix(line, "\\"); ok {
			pending += cont + " "
			continue
		}
		line, pending = pending+line, ""
		if strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]") {
			section = line[1 : len(line)-1]
			u[section] = map[string][]string{}
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || section == "" {
			t.Fatalf("%s:%d: not a key=value line of a section: %q", path, n+1, line)
		}
		k = strings.TrimSpace(k)
		u[section][k] = append(u[section][k], strings.TrimSpace(v))
	}
	return u
}

func TestSystemdUnit(t *testing.T) {
	path := filepath.Join(deployDir, "entente.service")
	unit := parseUnit(t, path)
	svc := unit["Service"]
	if svc == nil {
		t.Fatalf("%s has no [Service] section", path)
	}
	last := func(k string) (string, bool) {
		vs := svc[k]
		if len(vs) == 0 {
			return "", false
		}
		return vs[len(vs)-1], true
	}
	for k, want := range map[string]string{
		"NoNewPrivileges":       "yes",
		"ProtectSystem":         "strict",
		"ProtectHome":           "yes",
		"PrivateTmp":            "yes",
		"PrivateDevices":        "yes",
		"CapabilityBoundingSet": "", // present and empty: no capabilities at all
		"SystemCallFilter":      "@system-service",
		"Restart":               "on-failure",
	} {
		if got, ok := last(k); !ok || got != want {
			t.Errorf("[Service] %s=%q (set: %v), want %q", k, got, ok, want)
		}
	}
	if got, _ := last("RestrictAddressFamilies"); !sameWords(got, "AF_INET AF_INET6 AF_UNIX AF_NETLINK") {
		t.Errorf("RestrictAddressFamilies=%q, want AF_INET AF_INET6 AF_UNIX AF_NETLINK", got)
	}
	user, _ := last("User")
	dynamic, _ := last("DynamicUser")
	if (user == "" || user == "root" || user == "0") && dynamic != "yes" {
		t.Errorf("User=%q, DynamicUser=%q: the node must run as a user of its own", user, dynamic)
	}

	// File descriptors: the API's connections and libp2p's at their
	// defaults, and room for Badger's files, listeners and streams.
	d := config.Defaults()
	need := d.Limits.MaxConnections + d.Gossip.MaxPeerConnections + 1024
	nofile, _ := last("LimitNOFILE")
	if n, err := strconv.Atoi(nofile); err != nil || n < need {
		t.Errorf("LimitNOFILE=%q, want at least %d (limits.max_connections %d + gossip.max_peer_connections %d + 1024)",
			nofile, need, d.Limits.MaxConnections, d.Gossip.MaxPeerConnections)
	}
	// The API drains for 5 s, then the services and the store close.
	stop, _ := last("TimeoutStopSec")
	if dur, err := time.ParseDuration(stop); err != nil || dur < 30*time.Second {
		t.Errorf("TimeoutStopSec=%q, want a duration of at least 30s for the node to drain", stop)
	}

	execStart, _ := last("ExecStart")
	args := strings.Fields(execStart)
	if len(args) < 2 || !filepath.IsAbs(args[0]) || filepath.Base(args[0]) != "entente" {
		t.Fatalf("ExecStart=%q: want the absolute path of entente and its arguments", execStart)
	}
	if cmd := wantCommandLine(t, "ExecStart", args[1:]); cmd != nil && cmd.name != "run" {
		t.Errorf("ExecStart runs entente %s, want entente run", cmd.name)
	}
	state, _ := last("StateDirectory")
	if home := flagValue(args[1:], "home"); home != nodeHome || home != "/var/lib/"+state {
		t.Errorf("ExecStart's --home %q, StateDirectory=%q: want %s, the state directory", home, state, nodeHome)
	}

	// systemd's own check, where it is installed, with ExecStart pointing
	// at an executable that exists here.
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Log("no systemd-analyze here: the unit is checked by the rules above only")
		return
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	copyPath := filepath.Join(t.TempDir(), "entente.service")
	if err := os.WriteFile(copyPath, bytes.ReplaceAll(data, []byte("ExecStart="+args[0]), []byte("ExecStart="+self)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", copyPath).CombinedOutput()
	if err != nil {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	} else {
		t.Logf("systemd-analyze verify: ok\n%s", out)
	}
}

func sameWords(a, b string) bool {
	x, y := strings.Fields(a), strings.Fields(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(x, y)
}

// dockerInstruction is one instruction of a Dockerfile, its continuation
// lines joined.
type dockerInstruction struct {
	line int
	cmd  string // upper case
	args string
}

func parseDockerfile(t *testing.T, path string) []dockerInstruction {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []dockerInstruction
	var cur strings.Builder
	start := 0
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if cur.Len() == 0 {
			start = n
		}
		cont, more := strings.CutSuffix(line, "\\")
		cur.WriteString(cont)
		cur.WriteString(" ")
		if more {
			continue
		}
		cmd, args, _ := strings.Cut(strings.TrimSpace(cur.String()), " ")
		out = append(out, dockerInstruction{line: start, cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args)})
		cur.Reset()
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// execForm is an instruction's JSON array form (["a", "b"]).
func execForm(t *testing.T, in dockerInstruction) []string {
	t.Helper()
	var args []string
	if err := json.Unmarshal([]byte(in.args), &args); err != nil || len(args) == 0 {
		t.Errorf("line %d: %s %s: want the exec form, a JSON array (no shell in the image)", in.line, in.cmd, in.args)
	}
	return args
}

// listenPort is the port and transport of a libp2p listen multiaddr
// ("/ip4/0.0.0.0/udp/4101/quic-v1" is "4101/udp").
func listenPort(t *testing.T, addr string) string {
	parts := strings.Split(addr, "/")
	for i := 0; i+1 < len(parts); i++ {
		if parts[i] == "tcp" || parts[i] == "udp" {
			return parts[i+1] + "/" + parts[i]
		}
	}
	t.Fatalf("no port in %s", addr)
	return ""
}

// TestDockerfile checks deploy/Dockerfile's structure; TestDockerBuild
// runs its build command.
func TestDockerfile(t *testing.T) {
	instrs := parseDockerfile(t, filepath.Join(deployDir, "Dockerfile"))
	var stages [][]dockerInstruction
	args := map[string]string{} // ARG defaults before the first FROM
	for _, in := range instrs {
		switch {
		case in.cmd == "FROM":
			stages = append(stages, nil)
		case len(stages) == 0 && in.cmd == "ARG":
			k, v, _ := strings.Cut(in.args, "=")
			args[k] = v
		}
		if len(stages) > 0 {
			stages[len(stages)-1] = append(stages[len(stages)-1], in)
		}
	}
	if len(stages) < 2 {
		t.Fatalf("%d stages, want a builder and a final image", len(stages))
	}

	// The builder: Go of the go.mod's minor version.
	gomod, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	goLine := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(gomod)
	builder := strings.Fields(stages[0][0].args)[0]
	builder = strings.ReplaceAll(builder, "${GO_VERSION}", args["GO_VERSION"])
	if goLine == nil || builder != "golang:"+string(goLine[1]) {
		t.Errorf("the builder is %s, want golang:%s (go.mod)", builder, goLine[1])
	}

	final := stages[len(stages)-1]
	base := strings.Fields(final[0].args)[0]
	if !strings.HasPrefix(base, "gcr.io/distroless/static") && base != "scratch" {
		t.Errorf("the final image is FROM %s, want distroless static or scratch", base)
	}
	byCmd := map[string][]dockerInstruction{}
	for _, in := range final {
		byCmd[in.cmd] = append(byCmd[in.cmd], in)
	}
	one := func(cmd string) dockerInstruction {
		t.Helper()
		if len(byCmd[cmd]) != 1 {
			t.Fatalf("the final stage has %d %s, want 1", len(byCmd[cmd]), cmd)
		}
		return byCmd[cmd][0]
	}
	if user := one("USER").args; user == "root" || user == "0" || strings.HasPrefix(user, "0:") || strings.HasPrefix(user, "root:") {
		t.Errorf("USER %s: the node must not run as root", user)
	}

	entry := execForm(t, one("ENTRYPOINT"))
	if len(entry) < 2 {
		t.Fatalf("ENTRYPOINT %q", entry)
	}
	binary := entry[0]
	copied := false
	for _, in := range byCmd["COPY"] {
		f := strings.Fields(in.args)
		copied = copied || (strings.Contains(in.args, "--from=") && f[len(f)-1] == binary)
	}
	if !copied {
		t.Errorf("ENTRYPOINT runs %s, which no COPY --from of the final stage puts there", binary)
	}
	if cmd := wantCommandLine(t, "ENTRYPOINT", entry[1:]); cmd != nil && cmd.name != "run" {
		t.Errorf("ENTRYPOINT runs entente %s, want entente run", cmd.name)
	}
	if home := flagValue(entry[1:], "home"); home != nodeHome {
		t.Errorf("ENTRYPOINT's --home is %q, want %s", home, nodeHome)
	}
	if vol := execForm(t, one("VOLUME")); !slices.Contains(vol, nodeHome) {
		t.Errorf("VOLUME %q does not hold the home %s", vol, nodeHome)
	}
	if env := one("ENV").args; env != "ENTENTE_HOME="+nodeHome {
		t.Errorf("ENV %s, want ENTENTE_HOME=%s", env, nodeHome)
	}

	// libp2p's ports are exposed; the API's, on loopback by default, not.
	exposed := strings.Fields(one("EXPOSE").args)
	for _, addr := range []string{config.DefaultListenTCP, config.DefaultListenQUIC} {
		if p := listenPort(t, addr); !slices.Contains(exposed, p) {
			t.Errorf("EXPOSE %v lacks %s, the default listen address %s", exposed, p, addr)
		}
	}
	apiPort := config.DefaultAPI[strings.LastIndex(config.DefaultAPI, ":")+1:]
	for _, p := range exposed {
		if strings.HasPrefix(p, apiPort+"/") || p == apiPort {
			t.Errorf("EXPOSE %s: the API listens on loopback unless the operator publishes it", p)
		}
	}

	hc := one("HEALTHCHECK").args
	_, cmdArgs, ok := strings.Cut(hc, "CMD ")
	if !ok {
		t.Fatalf("HEALTHCHECK %s has no CMD", hc)
	}
	check := execForm(t, dockerInstruction{line: byCmd["HEALTHCHECK"][0].line, cmd: "HEALTHCHECK CMD", args: cmdArgs})
	if len(check) < 2 || check[0] != binary {
		t.Fatalf("HEALTHCHECK runs %q, want %s", check, binary)
	}
	if cmd := wantCommandLine(t, "HEALTHCHECK", check[1:]); cmd != nil && cmd.name != "status" {
		t.Errorf("HEALTHCHECK runs entente %s, want entente status", cmd.name)
	}
	if sig := one("STOPSIGNAL").args; sig != "SIGTERM" {
		t.Errorf("STOPSIGNAL %s, want SIGTERM (the node's graceful stop)", sig)
	}
}

// dockerBuildCommand is the go build command of the Dockerfile's builder:
// its environment assignments and its arguments, with the build arguments
// VERSION and COMMIT set and the output to out.
func dockerBuildCommand(t *testing.T, version, commit, out string) (env, args []string) {
	t.Helper()
	for _, in := range parseDockerfile(t, filepath.Join(deployDir, "Dockerfile")) {
		i := strings.Index(in.args, "CGO_ENABLED=0 go build")
		if in.cmd != "RUN" || i < 0 {
			continue
		}
		line, _, _ := strings.Cut(in.args[i:], "&&")
		line = strings.NewReplacer("${VERSION}", version, "${COMMIT}", commit).Replace(line)
		words := shellWords(t, line)
		for len(words) > 0 && strings.Contains(words[0], "=") {
			env, words = append(env, words[0]), words[1:]
		}
		if len(words) < 2 || words[0] != "go" || words[1] != "build" {
			t.Fatalf("line %d: not a go build command: %s", in.line, line)
		}
		args = words[1:]
		for j := range args {
			if args[j] == "-o" && j+1 < len(args) {
				args[j+1] = out
			}
		}
		return env, args
	}
	t.Fatal("the Dockerfile runs no CGO_ENABLED=0 go build")
	return nil, nil
}

// TestDockerBuild runs the Dockerfile's build command here (there is no
// Docker engine to run the whole file): it must make a static binary
// whose `entente version` reports the build arguments. Its flags make a
// build of every package of its own, minutes long on a cold cache: it runs
// only with ENTENTE_DOCKER_BUILD=1, as .ci/run does, with a timeout that
// allows for it.
func TestDockerBuild(t *testing.T) {
	if os.Getenv("ENTENTE_DOCKER_BUILD") != "1" {
		t.Skip("set ENTENTE_DOCKER_BUILD=1 to run the Dockerfile's build command (minutes on a cold build cache)")
	}
	const version, commit = "v9.8.7-test", "0123456789abcdef0123456789abcdef01234567"
	bin := filepath.Join(t.TempDir(), "entente")
	env, args := dockerBuildCommand(t, version, commit, bin)
	cmd := exec.Command("go", args...)
	cmd.Dir = "../.."
	cmd.Env = append(os.Environ(), env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}

	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the binary asks for a dynamic loader: not static, it would not run on distroless static")
		}
	}
	if _, err := f.DynamicSymbols(); err == nil {
		t.Error("the binary has dynamic symbols: not static")
	}

	out, err := exec.Command(bin, "version", "--json").Output()
	if err != nil {
		t.Fatalf("entente version --json: %v", err)
	}
	var b node.Build
	if err := json.Unmarshal(out, &b); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if b.Version != version || b.Commit != commit {
		t.Errorf("the image's binary says version %q, commit %q; the build arguments were %q, %q", b.Version, b.Commit, version, commit)
	}
}

// alertRules is a Prometheus rule file, read strictly: a field
// Prometheus would not know is an error.
type alertRules struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

func readAlertRules(t *testing.T) alertRules {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(deployDir, "alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var rules alertRules
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&rules); err != nil {
		t.Fatalf("alerts.yml: %v", err)
	}
	return rules
}

// prometheusTemplate parses an annotation as Prometheus does (its
// variables first; its functions, of which these stand-ins keep the
// names), and executes it on sample data.
func prometheusTemplate(text string) error {
	funcs := template.FuncMap{}
	for _, name := range []string{"humanize", "humanize1024", "humanizeDuration", "humanizePercentage", "humanizeTimestamp", "title", "toUpper", "toLower"} {
		funcs[name] = func(v any) string { return fmt.Sprint(v) }
	}
	tmpl, err := template.New("annotation").Option("missingkey=zero").Funcs(funcs).
		Parse("{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}{{$value := .Value}}" + text)
	if err != nil {
		return err
	}
	data := struct {
		Labels, ExternalLabels map[string]string
		Value                  float64
	}{map[string]string{"instance": "node:8101", "job": "entente"}, map[string]string{}, 1}
	return tmpl.Execute(io.Discard, data)
}

// TestAlertRulesStructure: every rule has a name, an expression, a
// severity, a summary and a description that points to its runbook in
// docs/operating.md, which has it.
func TestAlertRulesStructure(t *testing.T) {
	rules := readAlertRules(t)
	docs, err := os.ReadFile("../../docs/operating.md")
	if err != nil {
		t.Fatal(err)
	}
	_, runbook, ok := strings.Cut(string(docs), "\n### Alerts\n")
	if !ok {
		t.Fatal(`docs/operating.md has no "### Alerts" section`)
	}
	if i := strings.Index(runbook, "\n## "); i >= 0 {
		runbook = runbook[:i]
	}
	if len(rules.Groups) == 0 {
		t.Fatal("alerts.yml has no groups")
	}
	seen := map[string]bool{}
	count := 0
	for _, g := range rules.Groups {
		if g.Name == "" || len(g.Rules) == 0 {
			t.Errorf("group %q: a group needs a name and rules", g.Name)
		}
		for _, r := range g.Rules {
			count++
			switch {
			case !regexp.MustCompile(`^Entente[A-Z][A-Za-z]+$`).MatchString(r.Alert):
				t.Errorf("alert %q: want a name EntenteSomething", r.Alert)
			case seen[r.Alert]:
				t.Errorf("alert %s: twice", r.Alert)
			}
			seen[r.Alert] = true
			if strings.TrimSpace(r.Expr) == "" {
				t.Errorf("alert %s: no expr", r.Alert)
			}
			if r.For != "" {
				if d, err := time.ParseDuration(r.For); err != nil || d <= 0 {
					t.Errorf("alert %s: for %q is not a duration", r.Alert, r.For)
				}
			}
			if s := r.Labels["severity"]; s != "critical" && s != "warning" && s != "info" {
				t.Errorf("alert %s: severity %q, want critical, warning or info", r.Alert, s)
			}
			for _, k := range []string{"summary", "description"} {
				if strings.TrimSpace(r.Annotations[k]) == "" {
					t.Errorf("alert %s: no %s", r.Alert, k)
				}
			}
			for k, text := range r.Annotations {
				if err := prometheusTemplate(text); err != nil {
					t.Errorf("alert %s: annotation %s: %v", r.Alert, k, err)
				}
			}
			if ref := `docs/operating.md, "Alerts" (` + r.Alert + `)`; !strings.Contains(strings.Join(strings.Fields(r.Annotations["description"]), " "), ref) {
				t.Errorf("alert %s: the description does not point to its runbook, %s", r.Alert, ref)
			}
			if !strings.Contains(runbook, "**"+r.Alert+"**") {
				t.Errorf(`alert %s: docs/operating.md, "Alerts", has no runbook **%s**`, r.Alert, r.Alert)
			}
		}
	}
	if count < 8 {
		t.Errorf("%d rules: fewer than the deployment promises", count)
	}
}

var metricName = regexp.MustCompile(`entente_[a-z0-9_]+`)

// unknownMetrics lists the entente_* metrics that the rules' expressions
// name and exported lacks (a histogram's _bucket, _sum and _count series
// count as its name).
func unknownMetrics(exprs []string, exported map[string]bool) []string {
	var unknown []string
	for _, e := range exprs {
		for _, name := range metricName.FindAllString(e, -1) {
			base := name
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				base = strings.TrimSuffix(base, suffix)
			}
			if !exported[name] && !exported[base] && !slices.Contains(unknown, name) {
				unknown = append(unknown, name)
			}
		}
	}
	return unknown
}

// TestAlertRulesNameExportedMetrics scrapes /metrics of a running node
// (on disk, as deployed, so that it reports its disk) and fails if a rule
// names a metric the node does not export. A metric with labels is
// exported once it has a series: the node ingests a record first, so that
// entente_ingest_total has one; a rule over another labelled metric needs
// the node to do what makes its first series here too.
func TestAlertRulesNameExportedMetrics(t *testing.T) {
	var exprs []string
	for _, g := range readAlertRules(t).Groups {
		for _, r := range g.Rules {
			exprs = append(exprs, r.Expr)
		}
	}

	tn, err := testnet.Start(testnet.Options{Nodes: 1, API: true, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tn.Close() })
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if _, err := tn.NewParty(ctx, "DE", "a platform", protocol.RoleController); err != nil {
		t.Fatal(err)
	}
	m := tn.Nodes[0]
	body, err := m.Get(ctx, "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	exported := map[string]bool{}
	for _, line := range strings.Split(string(body), "\n") {
		if f := strings.Fields(line); len(f) == 4 && f[0] == "#" && f[1] == "TYPE" {
			exported[f[2]] = true
		}
	}

	used := map[string]bool{}
	for _, e := range exprs {
		for _, name := range metricName.FindAllString(e, -1) {
			used[name] = true
		}
	}
	if len(used) < 6 {
		t.Errorf("the rules name %d entente metrics: %v", len(used), used)
	}
	if unknown := unknownMetrics(exprs, exported); len(unknown) > 0 {
		t.Errorf("alerts.yml names metrics a node does not export: %v", unknown)
	}
	// The check itself: a name no node exports is caught, a histogram's
	// series are not.
	if got := unknownMetrics([]string{"rate(entente_no_such_thing_total[5m]) > 0", "entente_ingest_seconds_bucket"}, exported); !slices.Equal(got, []string{"entente_no_such_thing_total"}) {
		t.Errorf("unknownMetrics found %v, want only entente_no_such_thing_total", got)
	}
}
