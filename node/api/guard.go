package api

import (
	"math"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
)

// Guard bounds who reaches the API and how often (DESIGN.md §8): the
// names it answers to, the web origins whose pages may call it, its open
// connections and each caller's request rate. A zero number means no
// bound (the node always gives its configuration's).
type Guard struct {
	// Hosts are the names a request's Host may give besides localhost and
	// the address the request arrived at (compared without case, port
	// ignored); others are answered 421 misdirected_request, which stops
	// DNS rebinding. "*" answers every name.
	Hosts []string
	// CORSOrigins are the web origins that get CORS headers; "*" is any.
	CORSOrigins []string
	// MaxConnections bounds the open connections; MaxConnectionsPerClient
	// those of one client address (an IPv6 client by its /64). A
	// connection past either is closed as soon as it is accepted.
	MaxConnections, MaxConnectionsPerClient int
	// Rate (requests per second) and Burst bound each caller with a
	// token; PublicRate each client address without one (its burst is
	// twice its rate, at least 1). The operator is not bounded. Past it:
	// 429 rate_limited with Retry-After.
	Rate       float64
	Burst      int
	PublicRate float64
}

// guardMetrics count what the guard refused.
type guardMetrics struct {
	refusedConns *prometheus.CounterVec
	openConns    prometheus.GaugeFunc
	limited      *prometheus.CounterVec
}

func newGuardMetrics(open func() float64) guardMetrics {
	return guardMetrics{
		refusedConns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "entente_api_connections_refused_total",
			Help: "HTTP connections closed on accept, by the bound they were over (total, per_client).",
		}, []string{"bound"}),
		openConns: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "entente_api_connections",
			Help: "Open HTTP connections of the API.",
		}, open),
		limited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "entente_api_rate_limited_total",
			Help: "API requests answered 429 rate_limited, by caller (token, public).",
		}, []string{"caller"}),
	}
}

func (m guardMetrics) register(r prometheus.Registerer) {
	r.MustRegister(m.refusedConns, m.openConns, m.limited)
}

// hostGuard decides which Host names the API answers.
type hostGuard struct {
	any   bool
	names map[string]bool
}

func newHostGuard(hosts []string) hostGuard {
	g := hostGuard{names: map[string]bool{"localhost": true}}
	for _, h := range hosts {
		if h == "*" {
			g.any = true
		}
		g.names[canonicalHost(h)] = true
	}
	return g
}

// canonicalHost is a Host header's name: without its port and IPv6
// brackets, lower-case, without a trailing dot.
func canonicalHost(h string) string {
	if name, _, err := net.SplitHostPort(h); err == nil {
		h = name
	}
	h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	return strings.TrimSuffix(strings.ToLower(h), ".")
}

// allows reports whether r names one of the API's names: localhost, a
// name of Hosts, or the address the request arrived at.
func (g hostGuard) allows(r *http.Request) bool {
	if g.any {
		return true
	}
	name := canonicalHost(r.Host)
	if g.names[name] {
		return true
	}
	ip, err := netip.ParseAddr(name)
	if err != nil {
		return false
	}
	local, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if local == nil {
		return false
	}
	ap, err := netip.ParseAddrPort(local.String())
	return err == nil && ap.Addr().Unmap() == ip.Unmap()
}

// corsGuard decides which origins get CORS headers.
type corsGuard struct {
	any     bool
	origins map[string]bool
}

func newCORSGuard(origins []string) corsGuard {
	g := corsGuard{origins: map[string]bool{}}
	for _, o := range origins {
		g.any = g.any || o == "*"
		g.origins[strings.ToLower(o)] = true
	}
	return g
}

// Headers a page may send and read across origins.
const (
	corsAllowHeaders  = "Authorization, Content-Type, Accept, Last-Event-ID"
	corsExposeHeaders = "Retry-After, Location"
	corsMaxAge        = "600"
)

// apply adds r's CORS headers to w when its origin is allowed, and
// answers a preflight. It reports whether it answered.
func (g corsGuard) apply(w http.ResponseWriter, r *http.Request) (answered bool, err *APIError) {
	origin := r.Header.Get("Origin")
	preflight := r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != ""
	if origin == "" {
		return false, nil
	}
	h := w.Header()
	h.Add("Vary", "Origin")
	if !g.any && !g.origins[strings.ToLower(origin)] {
		if preflight {
			return false, forbidden("origin %s may not call this API from a browser (it is not in api.cors_origins)", origin)
		}
		return false, nil
	}
	h.Set("Access-Control-Allow-Origin", origin)
	if !preflight {
		h.Set("Access-Control-Expose-Headers", corsExposeHeaders)
		return false, nil
	}
	h.Set("Access-Control-Allow-Methods", "GET, POST")
	h.Set("Access-Control-Allow-Headers", corsAllowHeaders)
	h.Set("Access-Control-Max-Age", corsMaxAge)
	w.WriteHeader(http.StatusNoContent)
	return true, nil
}

// maxLimiters bounds the rate limiters kept; past it, idle ones are
// dropped, and if none is idle new callers share one limiter.
const maxLimiters = 1 << 16

// rateGuard keeps a token bucket per caller.
type rateGuard struct {
	rate, publicRate   rate.Limit
	burst, publicBurst int

	mu       sync.Mutex
	buckets  map[string]*bucket
	overflow *rate.Limiter
}

type bucket struct {
	lim  *rate.Limiter
	used time.Time
	full time.Duration // from empty to full: unused this long, it is as new
}

func newRateGuard(g Guard) *rateGuard {
	rg := &rateGuard{buckets: map[string]*bucket{}, rate: rate.Inf, publicRate: rate.Inf}
	if g.Rate > 0 {
		rg.rate, rg.burst = rate.Limit(g.Rate), max(g.Burst, 1)
	}
	if g.PublicRate > 0 {
		rg.publicRate, rg.publicBurst = rate.Limit(g.PublicRate), max(int(2*g.PublicRate), 1)
	}
	rg.overflow = rate.NewLimiter(rg.publicRate, rg.publicBurst)
	return rg
}

// wait is how long the caller named key must wait before its next
// request: 0 to go ahead now (the request is counted).
func (g *rateGuard) wait(key string, public bool, now time.Time) time.Duration {
	r, burst := g.rate, g.burst
	if public {
		r, burst = g.publicRate, g.publicBurst
	}
	if r == rate.Inf {
		return 0
	}
	g.mu.Lock()
	b := g.buckets[key]
	if b == nil {
		if len(g.buckets) >= maxLimiters {
			g.sweep(now)
		}
		if len(g.buckets) < maxLimiters {
			b = &bucket{lim: rate.NewLimiter(r, burst), full: time.Duration(float64(burst) / float64(r) * float64(time.Second))}
			g.buckets[key] = b
		}
	}
	lim := g.overflow
	if b != nil {
		b.used, lim = now, b.lim
	}
	g.mu.Unlock()
	res := lim.ReserveN(now, 1)
	if !res.OK() {
		return time.Second
	}
	d := res.DelayFrom(now)
	if d > 0 {
		res.CancelAt(now)
	}
	return d
}

// sweep drops the buckets unused long enough to have refilled.
func (g *rateGuard) sweep(now time.Time) {
	for k, b := range g.buckets {
		if now.Sub(b.used) >= b.full {
			delete(g.buckets, k)
		}
	}
}

// rateKey names r's caller for the rate limits: a token's caller by its
// name; one without a token (or with an unknown one) by its address, an
// IPv6 address by its /64. The operator is not limited ("").
func rateKey(r *http.Request) (key string, public bool) {
	id := identityOf(r)
	switch {
	case id.Caller.Operator:
		return "", false
	case !id.Caller.Public():
		return "caller:" + id.Name, false
	}
	return "addr:" + clientKey(r.RemoteAddr), true
}

// clientKey is a remote address's client: its IP, an IPv6 address's /64
// (one host holds a /64 as easily as one address).
func clientKey(remote string) string {
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		return remote
	}
	ip := ap.Addr().Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}

// rateLimited is the answer to a caller over its rate.
func rateLimited(wait time.Duration) *APIError {
	secs := int(math.Ceil(wait.Seconds()))
	return &APIError{Status: http.StatusTooManyRequests, Code: CodeRateLimited, RetryAfter: max(secs, 1),
		Message: "this caller is over its request rate; retry after " + strconv.Itoa(max(secs, 1)) + "s"}
}
