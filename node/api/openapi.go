package api

import (
	_ "embed"
	"net/http"
	"strconv"
)

// openAPI is the OpenAPI 3.1 description of this API (DESIGN.md §8),
// written by hand and served, public, at GET /v1/openapi.json. The tests
// hold it to the router (every route described, nothing described that
// is not a route, who may call each) and to the handlers (their answers
// validate against it).
//
//go:embed openapi.json
var openAPI []byte

func (a *API) handleOpenAPI(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", MediaJSON)
	h.Set("Content-Length", strconv.Itoa(len(openAPI)))
	h.Set("X-Content-Type-Options", "nosniff")
	w.Write(openAPI)
}
