package testnet

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/entente-net/entente/config"
	"github.com/entente-net/entente/node/api"
	"github.com/entente-net/entente/protocol"
)

// ProcessOptions configure a federation of real `entente run` processes.
type ProcessOptions struct {
	// Options as for Start; InMemory, API, Logger and NoSync do not apply
	// (every process has a data directory and an API on loopback).
	Options
	// Binary is the entente binary to run. Required.
	Binary string
	// Output receives the processes' standard output and logs; nil
	// discards them.
	Output io.Writer
}

// Processes is a federation whose nodes are processes of one binary, each
// in a home directory of its own (config.toml, node.key, api-token,
// data), driven through their HTTP APIs.
type Processes struct {
	Federation     *config.Federation
	FederationPath string
	Dir            string
	Authorities    map[string]crypto.PrivKey
	Nodes          []*Process

	removeDir bool
	closeOnce sync.Once
}

// Process is one node of Processes.
type Process struct {
	Index        int
	ID           peer.ID
	Jurisdiction string
	Home         string
	Token        string

	binary string
	out    io.Writer
	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	api    string
}

// StartProcesses draws up a federation as Start does, sets up a home for
// each node and starts `entente run` in it, returning once every API
// answers. Close stops them.
func StartProcesses(ctx context.Context, opts ProcessOptions) (_ *Processes, err error) {
	if opts.Binary == "" {
		return nil, errors.New("testnet: ProcessOptions.Binary is required")
	}
	opts.setDefaults()
	ps := &Processes{}
	if ps.Dir, ps.removeDir, err = testnetDir(opts.Dir); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			ps.Close()
		}
	}()
	p, err := drawUp(opts.Options, ps.Dir)
	if err != nil {
		return nil, err
	}
	ps.Federation, ps.FederationPath, ps.Authorities = p.fed, p.fedPath, p.authorities
	for i, mp := range p.members {
		pr, err := setUpHome(opts, ps, i, mp)
		if err != nil {
			return nil, err
		}
		ps.Nodes = append(ps.Nodes, pr)
		if err := pr.Start(ctx); err != nil {
			return nil, err
		}
	}
	return ps, nil
}

// setUpHome writes node i's home as entente init would: config.toml (the
// test profile's intervals, the API on a system port of loopback),
// node.key and api-token.
func setUpHome(opts ProcessOptions, ps *Processes, i int, mp memberPlan) (*Process, error) {
	home := filepath.Join(ps.Dir, fmt.Sprintf("node%d", i))
	if err := os.MkdirAll(home, 0o700); err != nil {
		return nil, err
	}
	nc := &config.Node{Home: home, Federation: ps.FederationPath, Jurisdiction: mp.jurisdiction, Listen: mp.listen, API: config.API{Listen: "127.0.0.1:0"}}
	nc.ApplyDefaults()
	nc.Gossip.ReconnectInterval = config.Duration{Duration: opts.ReconnectInterval}
	nc.Gossip.SyncInterval = config.Duration{Duration: opts.SyncInterval}
	if err := nc.Validate(); err != nil {
		return nil, err
	}
	conf, err := nc.Marshal()
	if err != nil {
		return nil, err
	}
	if err := config.WriteFileAtomic(filepath.Join(home, config.ConfigFile), conf, 0o600); err != nil {
		return nil, err
	}
	if err := config.WriteKey(nc.KeyPath(), mp.key); err != nil {
		return nil, err
	}
	token, err := config.WriteToken(nc.APITokenPath())
	if err != nil {
		return nil, err
	}
	out := opts.Output
	if out == nil {
		out = io.Discard
	}
	return &Process{Index: i, ID: mp.id, Jurisdiction: mp.jurisdiction, Home: home, Token: token, binary: opts.Binary, out: out}, nil
}

// Start runs the node's process and waits until its API answers /healthz
// (not /readyz: a node is ready only once connected to a member and
// synced, and the others may not have started yet).
func (p *Process) Start(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		return fmt.Errorf("testnet: process %d is running", p.Index)
	}
	addrFile := filepath.Join(p.Home, config.APIAddressFile)
	os.Remove(addrFile) // a killed process leaves its own behind
	cmd := exec.Command(p.binary, "run", "--home", p.Home)
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("testnet: starting process %d: %w", p.Index, err)
	}
	p.cmd, p.exited, p.api = cmd, make(chan struct{}), ""
	go func(exited chan struct{}) { cmd.Wait(); close(exited) }(p.exited)
	return waitFor(ctx, fmt.Sprintf("process %d to serve its API", p.Index), p.exited, func() bool {
		b, err := os.ReadFile(addrFile)
		if err != nil || len(bytes.TrimSpace(b)) == 0 {
			return false
		}
		p.api = strings.TrimSpace(string(b))
		resp, err := http.Get("http://" + p.api + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// PID is the running process's ID, 0 when it is not running.
func (p *Process) PID() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// Stop ends the process with SIGTERM, as an operator would, and waits for
// it; Kill ends it with SIGKILL, as a crash would.
func (p *Process) Stop() error { return p.signal(syscall.SIGTERM) }

// Kill ends the process at once, with SIGKILL.
func (p *Process) Kill() error { return p.signal(syscall.SIGKILL) }

func (p *Process) signal(sig syscall.Signal) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return nil
	}
	if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		p.cmd.Process.Kill()
		<-p.exited
		return fmt.Errorf("testnet: process %d did not stop within 30s of %s", p.Index, sig)
	}
	p.cmd = nil
	return nil
}

// APIAddr is the address of the running process's API.
func (p *Process) APIAddr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.api
}

// Do sends an API request (with the node's token) and returns the status
// and body.
func (p *Process) Do(ctx context.Context, method, path, contentType string, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, "http://"+p.APIAddr()+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+p.Token)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	return resp.StatusCode, b, err
}

// Submit posts a record to the node's API.
func (p *Process) Submit(ctx context.Context, r *protocol.Record) error {
	status, body, err := p.Do(ctx, http.MethodPost, "/v1/records", api.MediaDagCBOR, r.Bytes())
	if err != nil {
		return err
	}
	if status != http.StatusCreated && status != http.StatusOK {
		return fmt.Errorf("testnet: process %d refused %s: %d %s", p.Index, r.CID(), status, body)
	}
	return nil
}

// Holds reports whether the node holds c.
func (p *Process) Holds(ctx context.Context, c cid.Cid) (bool, error) {
	status, body, err := p.Do(ctx, http.MethodGet, "/v1/records/"+c.String(), "", nil)
	switch {
	case err != nil:
		return false, err
	case status == http.StatusOK:
		return true, nil
	case status == http.StatusNotFound:
		return false, nil
	}
	return false, fmt.Errorf("testnet: process %d: %d %s", p.Index, status, body)
}

// Peers is the number of peers the node is connected to.
func (p *Process) Peers(ctx context.Context) (int, error) {
	status, body, err := p.Do(ctx, http.MethodGet, "/v1/status", "", nil)
	if err != nil || status != http.StatusOK {
		return 0, fmt.Errorf("testnet: status of process %d: %d %v", p.Index, status, err)
	}
	var st struct {
		Peers []json.RawMessage `json:"peers"`
	}
	if err := json.Unmarshal(body, &st); err != nil {
		return 0, err
	}
	return len(st.Peers), nil
}

// WaitConnected waits until every node is connected to every other.
func (ps *Processes) WaitConnected(ctx context.Context) error {
	return waitFor(ctx, "the processes' mesh", nil, func() bool {
		for _, p := range ps.Nodes {
			if n, err := p.Peers(ctx); err != nil || n != len(ps.Nodes)-1 {
				return false
			}
		}
		return true
	})
}

// WaitAll waits until every node holds every record in cids.
func (ps *Processes) WaitAll(ctx context.Context, cids ...cid.Cid) error {
	for _, p := range ps.Nodes {
		for _, c := range cids {
			err := waitFor(ctx, fmt.Sprintf("process %d to hold %s", p.Index, c), nil, func() bool {
				ok, err := p.Holds(ctx, c)
				return err == nil && ok
			})
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// Close stops every process (SIGTERM) and removes the directory if
// StartProcesses made it.
func (ps *Processes) Close() error {
	var errs []error
	ps.closeOnce.Do(func() {
		for _, p := range ps.Nodes {
			errs = append(errs, p.Stop())
		}
		if ps.removeDir {
			errs = append(errs, os.RemoveAll(ps.Dir))
		}
	})
	return errors.Join(errs...)
}

// waitFor polls cond until it holds, ctx ends, or exited (if not nil) is
// closed: a process's API has no event to wait on.
func waitFor(ctx context.Context, what string, exited <-chan struct{}, cond func() bool) error {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("testnet: waiting for %s: %w", what, ctx.Err())
		case <-exited:
			return fmt.Errorf("testnet: waiting for %s: the process exited", what)
		case <-t.C:
		}
	}
	return nil
}
