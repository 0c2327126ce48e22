package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/entente-net/entente/node/service"
	"github.com/entente-net/entente/protocol"
)

// Access names the caller of a bearer token (the access service).
type Access interface {
	// Resolve names the caller of token, "" for none: service.ErrUnauthorized
	// for a token the node does not know, service.ErrForbidden (wrapped)
	// for a caller whose accreditation lapsed (with its name, for the log).
	Resolve(token string) (service.Identity, error)
}

// Blocks reads held decision blocks (the trust view, which keeps them
// decoded).
type Blocks interface {
	DecisionBlock(c cid.Cid) (*protocol.DecisionBlock, error)
}

type ctxKey int

const (
	identityKey ctxKey = iota
	requestIDKey
)

// identityOf is who made r (authenticate put it there).
func identityOf(r *http.Request) service.Identity {
	id, _ := r.Context().Value(identityKey).(service.Identity)
	return id
}

// callerOf is the caller whose rights apply to r.
func callerOf(r *http.Request) protocol.Caller { return identityOf(r).Caller }

// requestID is r's ID, which its log line and any internal error's
// message give.
func requestID(r *http.Request) string {
	id, _ := r.Context().Value(requestIDKey).(string)
	return id
}

// statusRecorder remembers the status a handler wrote, for the log.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection (streams).
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// authenticate gives every request an ID and its caller, and guards the
// API: 421 for a Host that is not one of its names, CORS headers for the
// allowed origins (and their preflights answered), 401 for a token the
// node does not know (on every route, public ones too), 403 for a caller
// whose accreditation lapsed, 429 for a caller over its rate. It logs each
// request with its caller's name and ID — never the token.
func (a *API) authenticate(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b [8]byte
		rand.Read(b[:])
		rid := hex.EncodeToString(b[:])
		ctx := context.WithValue(r.Context(), requestIDKey, rid)
		rec := &statusRecorder{ResponseWriter: w}
		start := time.Now()
		id, err := a.admit(rec, r.WithContext(ctx))
		if err == nil {
			ctx = context.WithValue(ctx, identityKey, id)
		}
		r = r.WithContext(ctx)
		switch {
		case err == errAnswered:
		case err != nil:
			a.writeError(rec, r, err)
		default:
			if wait := a.limit(r, start); wait > 0 {
				a.writeError(rec, r, rateLimited(wait))
				break
			}
			h.ServeHTTP(rec, r)
		}
		name := id.Name
		if name == "" {
			name = "unknown"
		}
		a.log.Info("api request", "method", r.Method, "path", r.URL.Path, "status", rec.status,
			"caller", name, "request_id", rid, "duration", time.Since(start).Round(time.Microsecond))
	})
}

// errAnswered: admit answered the request itself (a CORS preflight).
var errAnswered = errors.New("answered")

// admit checks r's Host and origin, and names its caller.
func (a *API) admit(w http.ResponseWriter, r *http.Request) (service.Identity, error) {
	if !a.hosts.allows(r) {
		return service.Identity{}, &APIError{Status: http.StatusMisdirectedRequest, Code: CodeMisdirected,
			Message: fmt.Sprintf("Host %q is not a name of this node (add it to api.hosts)", r.Host)}
	}
	if answered, err := a.cors.apply(w, r); err != nil {
		return service.Identity{}, err
	} else if answered {
		return service.Identity{}, errAnswered
	}
	return a.identify(r)
}

// limit counts r against its caller's rate: the wait before the caller
// may make it, 0 when it may go ahead.
func (a *API) limit(r *http.Request, now time.Time) time.Duration {
	key, public := rateKey(r)
	if key == "" {
		return 0
	}
	wait := a.rates.wait(key, public, now)
	if wait > 0 {
		kind := "token"
		if public {
			kind = "public"
		}
		a.metrics.limited.WithLabelValues(kind).Inc()
	}
	return wait
}

// identify resolves r's bearer token.
func (a *API) identify(r *http.Request) (service.Identity, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return a.cfg.Access.Resolve("")
	}
	token, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || token == "" {
		return service.Identity{}, &APIError{Status: http.StatusUnauthorized, Code: CodeUnauthorized, Message: "Authorization: want Bearer <token>"}
	}
	return a.cfg.Access.Resolve(token)
}

// Who may call a route, beyond the public.
type audience int

const (
	anyone    audience = iota // the public too
	operators                 // the operator only
	writers                   // controllers, regulators and the operator
	verifiers                 // controllers and the operator
	granted                   // any caller with a token
)

// allow guards a route: a public caller of a route that needs a role is
// 401, a caller whose role it is not is 403.
func (a *API) allow(who audience, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c := callerOf(r)
		if who != anyone && c.Public() {
			a.writeError(w, r, &APIError{Status: http.StatusUnauthorized, Code: CodeUnauthorized, Message: "this endpoint needs a bearer token (Authorization: Bearer <token>)"})
			return
		}
		ok := c.Operator
		switch who {
		case anyone:
			ok = true
		case writers:
			ok = ok || c.Role == protocol.RoleController || c.Role == protocol.RoleRegulator
		case verifiers:
			ok = ok || c.Role == protocol.RoleController
		case granted:
			ok = true
		}
		if !ok {
			a.writeError(w, r, forbidden("a caller of role %s may not %s %s", roleName(c), r.Method, r.URL.Path))
			return
		}
		h(w, r)
	}
}

func roleName(c protocol.Caller) string {
	if c.Operator {
		return "operator"
	}
	return string(c.Role)
}

func forbidden(format string, args ...any) *APIError {
	return &APIError{Status: http.StatusForbidden, Code: CodeForbidden, Message: fmt.Sprintf(format, args...)}
}

// mayRead reports whether r's caller may read rec (protocol.MayRead,
// decision blocks read through the trust view).
func (a *API) mayRead(r *http.Request, rec *protocol.Record) bool {
	return protocol.MayRead(callerOf(r), rec, func(l protocol.Link) (*protocol.DecisionBlock, error) {
		return a.cfg.Blocks.DecisionBlock(l.Cid)
	})
}

// visibleRecord is the held record c if r's caller may read it, and
// otherwise the answer for a record not held.
func (a *API) visibleRecord(r *http.Request, c cid.Cid) (*protocol.Record, error) {
	rec, err := a.cfg.Store.Get(c)
	if err == nil && !a.mayRead(r, rec) {
		err = notVisible("record " + c.String())
	}
	return rec, err
}

// notVisible is the answer for what a caller may not see: the same as
// for what the node does not hold, so that its existence does not leak.
func notVisible(what string) *APIError {
	return &APIError{Status: http.StatusNotFound, Code: CodeNotFound, Message: what + " is not held by this node"}
}
