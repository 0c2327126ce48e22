package api

import (
	"net/http"
	"slices"
	"strings"
)

// route is one route of the API: its http.ServeMux pattern ("GET
// /v1/records/{cid}") and who may call it.
type route struct {
	pattern string
	who     audience
}

// router is the API's routes. They are registered only through handle,
// which records each, so that routes lists exactly what the router
// serves (the OpenAPI description is held to that list). A request no
// route takes is answered by the router itself (DESIGN.md §8): 405
// method_not_allowed with Allow when its path has routes for other
// methods, 404 not_found otherwise.
type router struct {
	a      *API
	mux    *http.ServeMux
	routes []route
}

// fallback is the pattern of the router's own answers.
const fallback = "/"

func newRouter(a *API) *router {
	rt := &router{a: a, mux: http.NewServeMux()}
	rt.mux.HandleFunc(fallback, rt.noRoute)
	return rt
}

// handle registers h for pattern, behind the guard of who may call it.
func (rt *router) handle(pattern string, who audience, h http.HandlerFunc) {
	rt.mux.HandleFunc(pattern, rt.a.allow(who, h))
	rt.routes = append(rt.routes, route{pattern: pattern, who: who})
}

func (rt *router) ServeHTTP(w http.ResponseWriter, r *http.Request) { rt.mux.ServeHTTP(w, r) }

// noRoute answers a request that no route takes.
func (rt *router) noRoute(w http.ResponseWriter, r *http.Request) {
	if allow := rt.allowed(r); len(allow) > 0 {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		rt.a.writeError(w, r, &APIError{Status: http.StatusMethodNotAllowed, Code: CodeMethodNotAllowed,
			Message: r.Method + " " + r.URL.Path + ": this endpoint takes " + strings.Join(allow, ", ")})
		return
	}
	rt.a.writeError(w, r, &APIError{Status: http.StatusNotFound, Code: CodeNotFound, Message: "no such endpoint: " + r.Method + " " + r.URL.Path})
}

// allowed lists the methods for which a route takes r's path (HEAD with
// GET, which http.ServeMux serves for it). A route whose path is a
// subtree ("GET /") is left out: it takes every path, and so says
// nothing about this one.
func (rt *router) allowed(r *http.Request) []string {
	var methods []string
	for _, rte := range rt.routes {
		m, _, _ := strings.Cut(rte.pattern, " ")
		if !slices.Contains(methods, m) {
			methods = append(methods, m)
		}
	}
	var allow []string
	for _, m := range methods {
		_, pattern := rt.mux.Handler(&http.Request{Method: m, Host: r.Host, URL: r.URL})
		if pattern == "" || pattern == fallback || strings.HasSuffix(pattern, "/") {
			continue
		}
		allow = append(allow, m)
		if m == http.MethodGet {
			allow = append(allow, http.MethodHead)
		}
	}
	slices.Sort(allow)
	return allow
}
