package client

import (
	"errors"
	"fmt"
	"github.com/glbdns/glbdns/api"
	"net/http"
	"strings"
)

// Sentinel errors for the admin API's status codes (docs/admin-api.md, "Conventions"), so
// that callers branch with errors.Is(err, client.ErrNotFound) and never on numbers.
var (
	ErrBadRequest         = errors.New("bad request")          // 400: malformed JSON or a validation error
	ErrUnauthorized       = errors.New("unauthorized")         // 401: missing or malformed Authorization
	ErrForbidden          = errors.New("forbidden")            // 403: wrong token, or the write API is off
	ErrNotFound           = errors.New("not found")            // 404
	ErrConflict           = errors.New("conflict")             // 409: read-only, exists, or still referenced
	ErrPreconditionFailed = errors.New("precondition failed")  // 412: If-Match / If-None-Match failed
	ErrUnprocessable      = errors.New("unprocessable entity") // 422: a reference to something missing
)

var statusErrors = map[int]error{
	http.StatusBadRequest:          ErrBadRequest,
	http.StatusUnauthorized:        ErrUnauthorized,
	http.StatusForbidden:           ErrForbidden,
	http.StatusNotFound:            ErrNotFound,
	http.StatusConflict:            ErrConflict,
	http.StatusPreconditionFailed:  ErrPreconditionFailed,
	http.StatusUnprocessableEntity: ErrUnprocessable,
}

// APIError is a non-2xx answer of the admin API. It carries the status code and the
// server's reason, and the JSON path of the field at fault when the server names one
// ("members[1].address"), which the provider maps to a Terraform attribute path.
type APIError struct {
	Method     string // the request's method
	Path       string // the request's path, e.g. /v1/pools/web-eu
	StatusCode int
	Reason     string // the server's "error"; the status text when the body had none
	Field      string // the server's "field"; empty when no single field is at fault
	// Errors is every error of the answer when the server gave several (the first is
	// Reason and Field); nil for one.
	Errors []api.FieldError
}

// Error reports the request, the status and the server's reason.
func (e *APIError) Error() string {
	s := fmt.Sprintf("%s %s: %d %s", e.Method, e.Path, e.StatusCode, e.Reason)
	if e.Field != "" {
		s += " (field " + e.Field + ")"
	}
	return s
}

// Is matches the sentinel error of the status code, so errors.Is(err, ErrNotFound) works
// on a wrapped *APIError.
func (e *APIError) Is(target error) bool {
	s, ok := statusErrors[e.StatusCode]
	return ok && s == target
}

// StatusCode returns the HTTP status of the (first) *APIError in err's chain, or 0 when
// err did not come from an answer of the server (a network error, say).
func StatusCode(err error) int {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.StatusCode
	}
	return 0
}

// EndpointError is a request that no endpoint answered usably. It lists every endpoint
// tried, in the order tried, and why each failed; a write that may have reached an
// endpoint is not sent to the rest (see the package comment), which NotRetried lists.
// errors.Is and errors.As see each attempt's error: StatusCode gives the first status
// among them, and errors.Is(err, context.DeadlineExceeded) is true when an attempt timed out.
type EndpointError struct {
	Method     string    // the request's method
	Path       string    // the request's path, e.g. /v1/pools/web-eu
	Attempts   []Attempt // at least one
	NotRetried []string  // endpoints a write was not sent to after an attempt that may have reached its node
}

// Attempt is one endpoint's failure.
type Attempt struct {
	Endpoint string // normalised, as Client.Endpoints lists it
	Err      error  // a transport error (no *url.Error around it), or the *APIError of a 502, 503 or 504
}

// String reports the endpoint and its failure.
func (a Attempt) String() string {
	var ae *APIError
	if errors.As(a.Err, &ae) {
		return fmt.Sprintf("%s: %d %s", a.Endpoint, ae.StatusCode, ae.Reason)
	}
	return a.Endpoint + ": " + a.Err.Error()
}

// Error reports the request and each attempt; a write that was not retried says why.
func (e *EndpointError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s: ", e.Method, e.Path)
	if len(e.Attempts) > 1 && len(e.NotRetried) == 0 {
		b.WriteString("no endpoint answered: ")
	}
	for i, a := range e.Attempts {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(a.String())
	}
	if len(e.NotRetried) > 0 {
		fmt.Fprintf(&b, "; not retried on %s, since the write may have been applied", strings.Join(e.NotRetried, ", "))
	}
	return b.String()
}

// Unwrap returns each attempt's error, for errors.Is and errors.As.
func (e *EndpointError) Unwrap() []error {
	errs := make([]error, len(e.Attempts))
	for i, a := range e.Attempts {
		errs[i] = a.Err
	}
	return errs
}
