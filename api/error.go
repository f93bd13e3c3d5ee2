package api

// Error is the body of every 4xx and 5xx answer of the admin API (docs/admin-api.md,
// "Conventions").
type Error struct {
	// Error is the reason, a sentence for people.
	Error string `json:"error"`
	// Field is the JSON path of the field at fault ("members[1].address"), when one is.
	Field string `json:"field,omitempty"`
	// Errors lists every error of a refused write, the first one (Error and Field) too,
	// when there are several: a client shows them all, rather than the first and a count.
	Errors []FieldError `json:"errors,omitempty"`
}

// FieldError is one error of a refused write: its reason, and the JSON path of the field
// at fault when known.
type FieldError struct {
	Error string `json:"error"`
	Field string `json:"field,omitempty"`
}
