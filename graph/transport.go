package graph

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/uberpopug/ates/services/errs"
)

// httpTransport serves GraphQL over HTTP (R-API-2): queries as GET (what mainstream clients
// such as urql send by default) or POST, mutations only as POST with a JSON body — a cross-site
// form or link can neither send that body nor make a GET change anything. Every answer is JSON
// with extensions.code on each error, and no error repeats what the request sent (R-SEC-4).
type httpTransport struct{}

var _ graphql.Transport = httpTransport{}

// Supports implements graphql.Transport: every request that is not a WebSocket upgrade; the
// transport refuses, with a coded JSON error, what it cannot serve.
func (httpTransport) Supports(r *http.Request) bool { return r.Header.Get("Upgrade") == "" }

// Do implements graphql.Transport.
func (httpTransport) Do(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor) {
	switch r.Method {
	case http.MethodOptions:
		w.Header().Set("Allow", allowedMethods)
		w.WriteHeader(http.StatusNoContent)
		return
	case http.MethodGet, http.MethodPost:
	default:
		w.Header().Set("Allow", allowedMethods)
		writeRequestError(w, http.StatusMethodNotAllowed, "/graphql answers GET (queries) and POST (queries and mutations)")
		return
	}
	start := graphql.Now()
	params, status, msg := readParams(r)
	if msg != "" {
		writeRequestError(w, status, msg)
		return
	}
	params.Headers = r.Header
	params.ReadTime = graphql.TraceTiming{Start: start, End: graphql.Now()}

	ctx := r.Context()
	rc, gerrs := exec.CreateOperationContext(ctx, params)
	if gerrs != nil {
		code := http.StatusOK
		if errcode.GetErrorKind(gerrs) == errcode.KindProtocol {
			code = http.StatusUnprocessableEntity
		}
		writeResponse(w, code, exec.DispatchError(graphql.WithOperationContext(ctx, rc), gerrs))
		return
	}
	switch op := rc.Operation.Operation; {
	case op == ast.Subscription:
		writeRequestError(w, http.StatusBadRequest, "subscriptions are served over a WebSocket on /graphql")
		return
	case op != ast.Query && r.Method != http.MethodPost:
		w.Header().Set("Allow", "POST")
		writeRequestError(w, http.StatusMethodNotAllowed, "mutations must be sent with POST")
		return
	}
	responses, ctx := exec.DispatchOperation(ctx, rc)
	writeResponse(w, http.StatusOK, responses(ctx))
}

// allowedMethods are the methods /graphql answers (the WebSocket upgrade is a GET).
const allowedMethods = "GET, POST, OPTIONS"

// readParams reads a request's operation: from the URL of a GET, from the JSON body of a POST.
// A failure returns the HTTP status and a message that names what is wrong, never what was
// sent.
func readParams(r *http.Request) (*graphql.RawParams, int, string) {
	p := &graphql.RawParams{}
	if r.Method == http.MethodGet {
		q, err := url.ParseQuery(r.URL.RawQuery)
		if err != nil {
			return nil, http.StatusBadRequest, "the URL's query string cannot be read"
		}
		p.Query, p.OperationName = q.Get("query"), q.Get("operationName")
		if v := q.Get("variables"); v != "" {
			if decodeJSON([]byte(v), &p.Variables) != nil {
				return nil, http.StatusBadRequest, "variables must be a JSON object"
			}
		}
		if v := q.Get("extensions"); v != "" {
			if decodeJSON([]byte(v), &p.Extensions) != nil {
				return nil, http.StatusBadRequest, "extensions must be a JSON object"
			}
		}
		if p.Query == "" {
			return nil, http.StatusBadRequest, "a GET request needs the parameter query"
		}
		return p, 0, ""
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return nil, http.StatusUnsupportedMediaType, "a POST request's body must be JSON, sent with Content-Type: application/json"
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, http.StatusRequestEntityTooLarge, "the request body is too large"
		}
		return nil, http.StatusBadRequest, "the request body could not be read"
	}
	if decodeJSON(body, p) != nil {
		return nil, http.StatusBadRequest, `the request body must be a JSON object like {"query": "…", "variables": {…}}`
	}
	if p.Query == "" {
		return nil, http.StatusBadRequest, "the request body has no query"
	}
	return p, 0, ""
}

// decodeJSON decodes one JSON value, keeping numbers exact (gqlgen coerces them per type).
func decodeJSON(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data")
	}
	return nil
}

// writeResponse writes a GraphQL response as JSON.
func writeResponse(w http.ResponseWriter, status int, r *graphql.Response) {
	b, err := json.Marshal(r)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"errors":[{"message":"internal error","extensions":{"code":"INTERNAL"}}],"data":null}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// writeRequestError answers a request that never reached the executor: one BAD_USER_INPUT
// error with the message.
func writeRequestError(w http.ResponseWriter, status int, msg string) {
	writeResponse(w, status, &graphql.Response{Errors: gqlerror.List{{
		Message: msg, Extensions: map[string]any{"code": string(errs.Invalid)},
	}}})
}

// browserNavigation reports whether a request is a person's browser opening /graphql itself
// (a GET for an HTML page, without a query): it is shown the explorer instead of an error.
func browserNavigation(r *http.Request) bool {
	return r.Method == http.MethodGet && r.URL.Query().Get("query") == "" && r.Header.Get("Upgrade") == "" &&
		strings.Contains(r.Header.Get("Accept"), "text/html")
}
