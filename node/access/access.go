// Package access knows the node's API callers (DESIGN.md §7, §8): it
// reads the access file, applies a change to it within a second of its
// writing (a new grant at once: a token the node does not know makes it
// look at the file first), and names the caller of each bearer token —
// the operator, a granted caller whose peer still holds the accreditation
// of its role, or the public — as the protocol.Caller whose rights
// protocol.MayRead and its siblings decide.
package access

import (
	"context"
	"crypto/subtle"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/entente-net/entente/config"
	"github.com/entente-net/entente/node/service"
	"github.com/entente-net/entente/protocol"
)

// Trust is what the service reads of the federation's records.
type Trust interface {
	protocol.TrustView
	// Jurisdictions lists the federation's jurisdictions.
	Jurisdictions() []string
}

// Config configures the service. OperatorToken, Trust and Jurisdiction
// are required.
type Config struct {
	// Path is the access file (config.AccessFile in the node's home). A
	// missing file, or none named, grants no one.
	Path string
	// OperatorToken is the token of the node's operator (its api-token).
	OperatorToken string
	Trust         Trust
	// Jurisdiction is the node's: a regulator or an auditor holds its role
	// there.
	Jurisdiction string
	// Reload is how often the file is looked at (default 250 ms).
	Reload time.Duration
	Now    service.Clock
	Logger *slog.Logger
}

// Public is the identity of a request without a token.
var Public = service.Identity{Name: "public"}

// Operator is the identity of the operator's token.
var Operator = service.Identity{Name: "operator", Caller: protocol.Caller{Operator: true}}

// Service names callers. Make one with New; Close it.
type Service struct {
	cfg      Config
	log      *slog.Logger
	g        *service.Group
	operator []byte
	callers  atomic.Pointer[config.Access]
	mu       sync.Mutex // guards stamp, and serialises loads
	stamp    fileStamp  // the file as last loaded
}

// fileStamp tells a changed file from the one loaded: another file (a
// write renames a new one in place), another time or another size.
type fileStamp struct {
	fi os.FileInfo // nil when there is none
}

func (a fileStamp) same(b fileStamp) bool {
	if a.fi == nil || b.fi == nil {
		return a.fi == nil && b.fi == nil
	}
	return os.SameFile(a.fi, b.fi) && a.fi.ModTime().Equal(b.fi.ModTime()) && a.fi.Size() == b.fi.Size()
}

// New loads the access file and starts watching it. A file that does not
// load is an error here; later, a file that no longer loads grants no one
// until it is mended (the operator's token keeps working), so that a
// revocation is never undone by a typo.
func New(cfg Config) (*Service, error) {
	if cfg.OperatorToken == "" || cfg.Trust == nil || cfg.Jurisdiction == "" {
		return nil, fmt.Errorf("access: OperatorToken, Trust and Jurisdiction are required")
	}
	if cfg.Reload <= 0 {
		cfg.Reload = 250 * time.Millisecond
	}
	service.Defaults(&cfg.Now, &cfg.Logger)
	s := &Service{cfg: cfg, log: cfg.Logger, g: service.NewGroup(), operator: []byte(cfg.OperatorToken)}
	s.callers.Store(&config.Access{})
	if cfg.Path == "" {
		return s, nil
	}
	s.stamp = stampOf(cfg.Path)
	a, err := config.LoadAccess(cfg.Path)
	if err != nil {
		return nil, err
	}
	s.callers.Store(a)
	s.g.Go(s.watch)
	return s, nil
}

// Close stops watching the file. It is idempotent.
func (s *Service) Close() { s.g.Close() }

func stampOf(path string) fileStamp {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}
	}
	return fileStamp{fi: fi}
}

func (s *Service) watch(ctx context.Context) {
	t := time.NewTicker(s.cfg.Reload)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.reload()
	}
}

// reload loads the access file again if it changed since it was last
// loaded, and reports whether it did: every Reload, and for a token the
// service does not know, so that a grant works from the moment access
// grant has written it (a stat for each unknown token, not a read).
func (s *Service) reload() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := stampOf(s.cfg.Path)
	if st.same(s.stamp) {
		return false
	}
	s.stamp = st
	a, err := config.LoadAccess(s.cfg.Path)
	if err != nil {
		s.log.Error("the access file does not load; no granted caller is let in until it is mended", "err", err)
		a = &config.Access{}
	} else {
		s.log.Info("access file loaded", "callers", len(a.Callers))
	}
	s.callers.Store(a)
	return true
}

// Callers is the number of granted callers the service knows now.
func (s *Service) Callers() int { return len(s.callers.Load().Callers) }

// Resolve names the caller of token ("" for none): the operator, a
// granted caller (service.ErrForbidden, wrapped, once its peer no longer
// holds its role's live accreditation: the identity then has its name
// only, for the log) or the public. An unknown token is
// service.ErrUnauthorized.
func (s *Service) Resolve(token string) (service.Identity, error) {
	if token == "" {
		return Public, nil
	}
	if subtle.ConstantTimeCompare([]byte(token), s.operator) == 1 {
		return Operator, nil
	}
	g, ok := s.callers.Load().Match(token)
	if !ok && s.cfg.Path != "" && s.reload() {
		g, ok = s.callers.Load().Match(token)
	}
	if !ok {
		return service.Identity{}, service.ErrUnauthorized
	}
	id, err := peer.Decode(g.Peer)
	if err != nil { // LoadAccess checked it
		return service.Identity{}, service.ErrUnauthorized
	}
	c := protocol.Caller{Role: protocol.Role(g.Role), Peer: id}
	if c.Role != protocol.RoleController {
		c.Jurisdiction = s.cfg.Jurisdiction
	}
	live, err := s.holds(c)
	if err != nil {
		return service.Identity{}, err
	}
	if !live {
		where := "of " + s.cfg.Jurisdiction
		if c.Role == protocol.RoleController {
			where = "in any jurisdiction of the federation"
		}
		return service.Identity{Name: g.Name}, fmt.Errorf("%w: caller %q (%s) holds no live %s accreditation %s", service.ErrForbidden, g.Name, service.ShortID(id), g.Role, where)
	}
	return service.Identity{Name: g.Name, Caller: c}, nil
}

// holds reports whether c's peer holds a live accreditation of its role:
// of the node's jurisdiction for regulators and auditors, of any for
// controllers.
func (s *Service) holds(c protocol.Caller) (bool, error) {
	at := s.cfg.Now().UnixMilli()
	where := []string{s.cfg.Jurisdiction}
	if c.Role == protocol.RoleController {
		where = s.cfg.Trust.Jurisdictions()
	}
	for _, j := range where {
		if _, ok, err := protocol.HasRole(s.cfg.Trust, c.Peer, j, c.Role, at); err != nil || ok {
			return ok, err
		}
	}
	return false, nil
}
