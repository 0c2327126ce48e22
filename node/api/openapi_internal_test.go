package api

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/entente-net/entente/node/service"
	"github.com/entente-net/entente/protocol"
)

// loadOpenAPI loads the embedded description (TestOpenAPIValid, in
// package api_test, validates it).
func loadOpenAPI(t *testing.T) *openapi3.T {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(openAPI)
	if err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	return doc
}

// openAPIPath is a ServeMux pattern's path as OpenAPI writes it: "{x...}"
// is "{x}", and "{$}" (the exact path) is left out.
func openAPIPath(pattern string) (method, path string) {
	method, path, _ = strings.Cut(pattern, " ")
	path = strings.ReplaceAll(path, "{$}", "")
	return method, regexp.MustCompile(`\{(\w+)\.\.\.\}`).ReplaceAllString(path, "{$1}")
}

// TestOpenAPIDescribesEveryRoute: every route the router registers is
// described, and every operation described is a route of the router,
// which a request to its path reaches.
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	doc := loadOpenAPI(t)
	rt := testRouter()
	if len(rt.routes) == 0 {
		t.Fatal("the router recorded no route")
	}
	routes := map[string]route{} // by "METHOD /openapi/path"
	for _, r := range rt.routes {
		method, path := openAPIPath(r.pattern)
		routes[method+" "+path] = r
		item := doc.Paths.Value(path)
		if item == nil || item.GetOperation(method) == nil {
			t.Errorf("route %q is not described in openapi.json (paths[%q].%s)", r.pattern, path, strings.ToLower(method))
		}
	}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			r, ok := routes[method+" "+path]
			if !ok {
				t.Errorf("openapi.json describes %s %s, which the router does not serve", method, path)
				continue
			}
			// A request to the path, with its parameters filled in, reaches
			// that route (and not, say, another that shadows it).
			concrete := regexp.MustCompile(`\{\w+\}`).ReplaceAllString(path, "x")
			u, _ := url.Parse(concrete)
			if _, got := rt.mux.Handler(&http.Request{Method: method, URL: u, Host: "localhost"}); got != r.pattern {
				t.Errorf("%s %s reaches the route %q, want %q", method, concrete, got, r.pattern)
			}
		}
	}
}

// callers are the callers of DESIGN.md §8, as x-callers names them.
var callers = map[string]protocol.Caller{
	"public":     {},
	"controller": {Role: protocol.RoleController},
	"regulator":  {Role: protocol.RoleRegulator},
	"auditor":    {Role: protocol.RoleAuditor},
	"operator":   {Operator: true},
}

// TestOpenAPICallers: each operation's x-callers are exactly the callers
// the route's guard lets through, and its security allows no token
// exactly when the public is one of them.
func TestOpenAPICallers(t *testing.T) {
	doc := loadOpenAPI(t)
	rt := testRouter()
	for _, r := range rt.routes {
		method, path := openAPIPath(r.pattern)
		item := doc.Paths.Value(path)
		if item == nil || item.GetOperation(method) == nil {
			continue // TestOpenAPIDescribesEveryRoute says so
		}
		op := item.GetOperation(method)
		var let []string
		for name, c := range callers {
			reached := false
			h := rt.a.allow(r.who, func(http.ResponseWriter, *http.Request) { reached = true })
			req := httptest.NewRequest(method, "/", nil)
			req = req.WithContext(context.WithValue(req.Context(), identityKey, service.Identity{Name: name, Caller: c}))
			h(httptest.NewRecorder(), req)
			if reached {
				let = append(let, name)
			}
		}
		sort.Strings(let)
		var described []string
		if xs, ok := op.Extensions["x-callers"].([]any); ok {
			for _, x := range xs {
				s, _ := x.(string)
				described = append(described, s)
			}
		}
		sort.Strings(described)
		if !slices.Equal(let, described) {
			t.Errorf("%s: x-callers %v, but the guard lets through %v", r.pattern, described, let)
		}
		security := doc.Security
		if op.Security != nil {
			security = *op.Security
		}
		public := false
		bearer := false
		for _, req := range security {
			public = public || len(req) == 0
			_, b := req["bearer"]
			bearer = bearer || b
		}
		if public != slices.Contains(let, "public") || !bearer {
			t.Errorf("%s: security %v (without a token: %v), but the guard lets the public through: %v", r.pattern, security, public, slices.Contains(let, "public"))
		}
	}
}

// errorCodes are the codes of DESIGN.md §8's table of errors.
var errorCodes = []string{"bad_request", "bad_cid", "malformed", "non_canonical", "invalid_body", "unknown_kind",
	"unauthorized", "forbidden", "not_found", "method_not_allowed", "too_large", "unsupported_media_type",
	"misdirected_request", "bad_signature", "unauthorized_issuer", "unknown_reference", "clock_skew",
	"rate_limited", "internal", "overloaded"}

// strings of a schema's enum, or its const.
func enumOf(t *testing.T, what string, s *openapi3.SchemaRef) []string {
	t.Helper()
	if s == nil || s.Value == nil {
		t.Fatalf("%s: no schema", what)
	}
	vals := s.Value.Enum
	if s.Value.Const != nil {
		vals = append(vals, s.Value.Const)
	}
	var out []string
	for _, v := range vals {
		str, ok := v.(string)
		if !ok {
			t.Fatalf("%s: %v is not a string", what, v)
		}
		out = append(out, str)
	}
	sort.Strings(out)
	return out
}

// responseCodes are the codes an error response of the description
// allows: the enum or const that narrows Error in its allOf.
func responseCodes(t *testing.T, doc *openapi3.T, name string) []string {
	t.Helper()
	r := doc.Components.Responses[name]
	if r == nil || r.Value == nil || r.Value.Content.Get(MediaJSON) == nil {
		t.Fatalf("components.responses.%s: missing, or without JSON", name)
	}
	s := r.Value.Content.Get(MediaJSON).Schema
	if s.Ref == "#/components/schemas/OverloadedError" {
		s = doc.Components.Schemas["OverloadedError"]
	}
	if len(s.Value.AllOf) != 2 || s.Value.AllOf[0].Ref != "#/components/schemas/Error" {
		t.Fatalf("components.responses.%s: want allOf [Error, {its codes}]", name)
	}
	return enumOf(t, "components.responses."+name, s.Value.AllOf[1].Value.Properties["error"])
}

// TestOpenAPICodes: the error code enum is DESIGN.md §8's table, every
// code the API answers is in it, each in the response of its status; and
// the enums the description copies from package protocol are its lists.
func TestOpenAPICodes(t *testing.T) {
	doc := loadOpenAPI(t)
	codes := enumOf(t, "ErrorCode", doc.Components.Schemas["ErrorCode"])
	if want := slices.Sorted(slices.Values(errorCodes)); !slices.Equal(codes, want) {
		t.Errorf("ErrorCode enum %v, want DESIGN.md §8's %v", codes, want)
	}
	byStatus := map[int]string{400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 405: "MethodNotAllowed",
		413: "TooLarge", 415: "UnsupportedMediaType", 421: "Misdirected", 422: "Unprocessable", 429: "RateLimited", 500: "Internal", 503: "Overloaded"}
	answers := map[string]int{CodeUnauthorized: 401, CodeForbidden: 403, CodeOverloaded: 503, CodeNotFound: 404, CodeBadRequest: 400,
		CodeInternal: 500, CodeRateLimited: 429, CodeMisdirected: 421, CodeMethodNotAllowed: 405, CodeUnsupportedMediaType: 415}
	for code, status := range recordStatus {
		answers[string(code)] = status
	}
	for code, status := range answers {
		if !slices.Contains(codes, code) {
			t.Errorf("the API answers %q, which ErrorCode does not list", code)
		}
		if !slices.Contains(responseCodes(t, doc, byStatus[status]), code) {
			t.Errorf("the API answers %q with %d, which components.responses.%s does not allow", code, status, byStatus[status])
		}
	}
	for name, want := range map[string][]string{
		"Kind": func() (ks []string) {
			for _, k := range protocol.Kinds {
				ks = append(ks, string(k))
			}
			return ks
		}(),
		"Category": protocol.BiometricCategories,
		"CheckID":  protocol.CheckIDs,
	} {
		if got := enumOf(t, name, doc.Components.Schemas[name]); !slices.Equal(got, slices.Sorted(slices.Values(want))) {
			t.Errorf("%s enum %v, want protocol's %v", name, got, want)
		}
	}
	var reasons []string
	for _, rs := range protocol.CheckReasons {
		for _, r := range rs {
			if !slices.Contains(reasons, r) {
				reasons = append(reasons, r)
			}
		}
	}
	sort.Strings(reasons)
	if got := enumOf(t, "CheckReason", doc.Components.Schemas["CheckReason"].Value.AnyOf[0]); !slices.Equal(got, reasons) {
		t.Errorf("CheckReason enum %v, want protocol.CheckReasons' %v", got, reasons)
	}
}
