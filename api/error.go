package api

// Error is the body of every 4xx and 5xx answer of the admin API (docs/admin-api.md,
// "Conventions").
type Error struct {
	// Error is the reason, a sentence for people.
	Error string `json:"error"`
	// Field is the JSON path of the field at fault ("members[1].address"), when one is.
	Field string `json:"field,omitempty"`
}
