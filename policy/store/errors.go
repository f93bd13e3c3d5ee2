package store

import (
	"errors"
	"fmt"
	"github.com/glbdns/glbdns/api"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// Sentinel errors, one per answer the admin API gives (docs/admin-api.md, "Conventions").
// Test with errors.Is: *ValidationError matches ErrInvalid, ErrUnknownRef or ErrReferenced.
var (
	// ErrNotFound: no such object (404).
	ErrNotFound = errors.New("not found")
	// ErrReadOnly: the object is defined in the operator's files (409).
	ErrReadOnly = errors.New("defined in the operator's policy files, read-only through the API")
	// ErrExists: a create-only write found the object (409).
	ErrExists = errors.New("already exists")
	// ErrReferenced: a delete would leave a reference dangling (409).
	ErrReferenced = errors.New("still referenced")
	// ErrPreconditionFailed: If-Match or If-None-Match failed (412).
	ErrPreconditionFailed = errors.New("precondition failed")
	// ErrInvalid: the object or the policy it would make is invalid (400).
	ErrInvalid = errors.New("invalid")
	// ErrUnknownRef: the object refers to something missing (422).
	ErrUnknownRef = errors.New("reference to something missing")
	// ErrNotServing: the write is stored, but the snapshot it made was refused by the
	// publisher (500): it serves from the next successful load.
	ErrNotServing = errors.New("stored, but not serving")
)

// ValidationError is a refused write: the reason, the JSON field at fault when known
// ("members[1].address"), and the policy diagnostics behind it (file:line:col).
type ValidationError struct {
	Field  string
	Reason string
	Diags  hcl.Diagnostics
	// All is every error, the first (Field and Reason, without the count of the others)
	// included, when there are several; nil for one.
	All  []api.FieldError
	kind error // ErrInvalid, ErrUnknownRef or ErrReferenced
}

func (e *ValidationError) Error() string {
	if e.Field != "" {
		return e.Field + ": " + e.Reason
	}
	return e.Reason
}

// Unwrap makes errors.Is(err, ErrInvalid / ErrUnknownRef / ErrReferenced) work.
func (e *ValidationError) Unwrap() error { return e.kind }

func invalid(field, format string, args ...any) *ValidationError {
	return &ValidationError{Field: field, Reason: fmt.Sprintf(format, args...), kind: ErrInvalid}
}

// missingRef reports whether a diagnostic is about a reference to something undefined
// ("Unknown pool"): those answer 422, other validation errors 400.
func missingRef(d *hcl.Diagnostic) bool { return strings.HasPrefix(d.Summary, "Unknown ") }

// diagError turns the errors of a would-be policy into a ValidationError. Diagnostics in
// the written document (file) come first and name their field through spans.
func diagError(diags hcl.Diagnostics, file string, spans []span) *ValidationError {
	var errs hcl.Diagnostics
	for _, d := range diags {
		if d.Severity == hcl.DiagError {
			errs = append(errs, d)
		}
	}
	ve := &ValidationError{Diags: errs, kind: ErrInvalid}
	if len(errs) == 0 {
		ve.Reason = "policy has errors"
		return ve
	}
	first := errs[0]
	for _, d := range errs {
		if d.Subject != nil && d.Subject.Filename == file {
			first = d
			break
		}
	}
	if first.Subject != nil && first.Subject.Filename == file {
		ve.Field = fieldOf(spans, first.Subject)
	}
	ve.Reason = diagText(first, file)
	if len(errs) > 1 {
		ve.All = append(ve.All, api.FieldError{Error: ve.Reason, Field: ve.Field})
		for _, d := range errs {
			if d == first {
				continue
			}
			fe := api.FieldError{Error: diagText(d, file)}
			if d.Subject != nil && d.Subject.Filename == file {
				fe.Field = fieldOf(spans, d.Subject)
			}
			ve.All = append(ve.All, fe)
		}
		ve.Reason += fmt.Sprintf(" (and %d more)", len(errs)-1)
	}
	if missingRef(first) {
		ve.kind = ErrUnknownRef
	}
	return ve
}

// diagText is "Summary: Detail", with the position when the diagnostic is outside the
// written document (an operator file, another managed document).
func diagText(d *hcl.Diagnostic, file string) string {
	s := d.Summary
	if d.Detail != "" {
		s += ": " + d.Detail
	}
	if d.Subject != nil && d.Subject.Filename != file {
		s = fmt.Sprintf("%s:%d:%d: %s", d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column, s)
	}
	return s
}
