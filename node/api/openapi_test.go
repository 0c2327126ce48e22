package api_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"strconv"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/entente-net/entente/node/api"
)

// spec is the API's OpenAPI description, loaded and validated once.
// The dashboard's files are text; the validator decodes them as such.
func init() {
	for _, mt := range []string{"text/html", "text/css", "text/javascript", "image/svg+xml"} {
		openapi3filter.RegisterBodyDecoder(mt, openapi3filter.FileBodyDecoder)
	}
}

var spec = sync.OnceValues(func() (*openapi3.T, error) {
	doc, err := openapi3.NewLoader().LoadFromData(api.OpenAPIDocument)
	if err != nil {
		return nil, err
	}
	return doc, doc.Validate(context.Background())
})

// specRouter finds a request's operation in the description.
var specRouter = sync.OnceValues(func() (routers.Router, error) {
	doc, err := spec()
	if err != nil {
		return nil, err
	}
	return gorillamux.NewRouter(doc)
})

// TestOpenAPIValid: the description loads and validates as OpenAPI 3.1.
func TestOpenAPIValid(t *testing.T) {
	doc, err := spec()
	if err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if !doc.IsOpenAPI31OrLater() || doc.IsOpenAPI32OrLater() {
		t.Errorf("openapi.json is OpenAPI %s, want 3.1", doc.OpenAPI)
	}
	if _, err := specRouter(); err != nil {
		t.Fatalf("openapi.json: routing: %v", err)
	}
}

// TestOpenAPIServed: GET /v1/openapi.json answers the public (and any
// caller) with the embedded description, as JSON.
func TestOpenAPIServed(t *testing.T) {
	file, err := os.ReadFile("openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(file, api.OpenAPIDocument) {
		t.Fatal("the embedded description is not openapi.json")
	}
	s := server(t, nil)
	for _, auth := range []string{"", token} {
		req, _ := http.NewRequest("GET", s.URL+"/v1/openapi.json", nil)
		if auth != "" {
			req.Header.Set("Authorization", "Bearer "+auth)
		}
		resp, err := s.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != api.MediaJSON || !bytes.Equal(body, api.OpenAPIDocument) {
			t.Errorf("token %q: %d %s, %d bytes; want 200 %s with the %d bytes of openapi.json",
				auth, resp.StatusCode, resp.Header.Get("Content-Type"), len(body), api.MediaJSON, len(api.OpenAPIDocument))
		}
	}
}

// errorResponses name the description's response for each error status.
var errorResponses = map[int]string{400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
	405: "MethodNotAllowed", 413: "TooLarge", 421: "Misdirected", 422: "Unprocessable", 429: "RateLimited",
	500: "Internal", 503: "Overloaded"}

// specCheck is an http.RoundTripper that holds every answer to the API's
// description. The answer to an operation must be one of its responses:
// its status, content type, headers and JSON body; and a request the API
// answers with success must be one the description allows. A request no
// operation takes (an unknown path, another method, a CORS preflight) is
// answered by the router or the guard: its answer must be the
// description's error response of its status (a preflight's 204 aside).
// An answer that does not match fails the test.
type specCheck struct {
	t    testing.TB
	next http.RoundTripper
	// lenient takes a status an operation does not describe, if it is an
	// error that matches its status's response: for services that fail
	// with an injected error on every route.
	lenient bool

	mu sync.Mutex
	// seen counts the answers checked, by operation and status ("GET
	// /v1/records/{cid} 200").
	seen map[string]int
}

// checked wraps next (http.DefaultTransport when nil) in a specCheck.
func checked(t testing.TB, next http.RoundTripper, lenient bool) *specCheck {
	if next == nil {
		next = http.DefaultTransport
	}
	return &specCheck{t: t, next: next, lenient: lenient, seen: map[string]int{}}
}

// serve serves a's handler on a test server whose client checks every
// answer against the description.
func serve(t testing.TB, a *api.API, lenient bool) (*httptest.Server, *specCheck) {
	s := httptest.NewServer(a.Handler())
	t.Cleanup(s.Close)
	c := checked(t, s.Client().Transport, lenient)
	s.Client().Transport = c
	return s, c
}

func (c *specCheck) RoundTrip(req *http.Request) (*http.Response, error) {
	var reqBody []byte
	if req.Body != nil && req.Body != http.NoBody {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		reqBody = b
		req = req.Clone(req.Context())
		req.Body = io.NopCloser(bytes.NewReader(reqBody))
	}
	resp, err := c.next.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	var respBody []byte
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "text/event-stream" {
		// An event stream lasts: its status, type and headers are checked,
		// its body is the caller's to read.
		respBody, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
		resp.Body = io.NopCloser(bytes.NewReader(respBody))
	}
	if err := c.check(req, reqBody, resp, respBody); err != nil {
		c.t.Errorf("%s %s: %d %s %.300q: does not match openapi.json: %v", req.Method, req.URL.RequestURI(), resp.StatusCode,
			resp.Header.Get("Content-Type"), respBody, err)
	}
	return resp, nil
}

func (c *specCheck) check(req *http.Request, reqBody []byte, resp *http.Response, respBody []byte) error {
	if req.Method == http.MethodHead {
		return nil
	}
	doc, err := spec()
	if err != nil {
		return err
	}
	router, err := specRouter()
	if err != nil {
		return err
	}
	ctx := context.Background()
	withBody := func() *http.Request {
		r := req.Clone(ctx)
		r.Body = io.NopCloser(bytes.NewReader(reqBody))
		return r
	}
	route, params, err := router.FindRoute(withBody())
	switch {
	case err == nil:
	case req.Method == http.MethodOptions && req.Header.Get("Access-Control-Request-Method") != "" && resp.StatusCode == http.StatusNoContent:
		return nil // a CORS preflight the guard answered
	default:
		route, params = errorRoute(doc, req, resp.StatusCode), nil
		if route == nil {
			return errors.New("a request that no operation takes, answered with a status that is not an error response of the description")
		}
	}
	in := &openapi3filter.RequestValidationInput{Request: withBody(), PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
	if resp.StatusCode/100 == 2 {
		if err := openapi3filter.ValidateRequest(ctx, in); err != nil {
			return errors.Join(errors.New("the API took a request the description does not allow"), err)
		}
	}
	if c.lenient && route.Operation.Responses.Status(resp.StatusCode) == nil {
		if in.Route = errorRoute(doc, req, resp.StatusCode); in.Route == nil {
			return errors.New("an injected error answered with a status that is not an error response of the description")
		}
	}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header,
		Body: io.NopCloser(bytes.NewReader(respBody)), Options: &openapi3filter.Options{IncludeResponseStatus: true}}
	if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
		return err
	}
	c.mu.Lock()
	c.seen[route.Method+" "+route.Path+" "+strconv.Itoa(resp.StatusCode)]++
	c.mu.Unlock()
	return nil
}

// errorRoute is an operation whose one response is the description's
// error response for status, nil if status has none.
func errorRoute(doc *openapi3.T, req *http.Request, status int) *routers.Route {
	name, ok := errorResponses[status]
	if !ok || doc.Components.Responses[name] == nil {
		return nil
	}
	op := openapi3.NewOperation()
	op.Responses = openapi3.NewResponses(openapi3.WithStatus(status, doc.Components.Responses[name]))
	return &routers.Route{Spec: doc, Method: req.Method, Path: "(" + name + ")", Operation: op}
}

// uncovered lists the operations of the description for which c checked
// no successful answer.
func (c *specCheck) uncovered(doc *openapi3.T) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			ok := false
			for status := range op.Responses.Map() {
				if status[0] == '2' && c.seen[method+" "+path+" "+status] > 0 {
					ok = true
				}
			}
			if !ok {
				out = append(out, method+" "+path)
			}
		}
	}
	sort.Strings(out)
	return out
}
