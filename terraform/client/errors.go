package client

import (
	"errors"
	"fmt"
	"net/http"
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

// StatusCode returns the HTTP status of the *APIError in err's chain, or 0 when err did
// not come from an answer of the server (a network error, say).
func StatusCode(err error) int {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.StatusCode
	}
	return 0
}
