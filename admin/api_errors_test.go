package admin

import (
	"strings"
	"testing"

	"github.com/glbdns/glbdns/api"
)

// TestEveryErrorAnswered refuses a pool with two bad fields with both errors listed,
// each with its field, not the first and a count of the others.
func TestEveryErrorAnswered(t *testing.T) {
	f := newFixture(t, token)
	r := f.do("PUT", "/v1/pools/bad", `{"members":[{"name":"a","address":"192.0.2.70"}],
 "load":{"metric":"conns","port":70000,"scheme":"ftp"}}`, true)
	var e api.Error
	r.json(t, &e)
	if r.status != 400 || len(e.Errors) < 2 {
		t.Fatalf("got %d %s, want 400 with every error listed", r.status, r.body)
	}
	fields := map[string]bool{}
	for _, x := range e.Errors {
		fields[x.Field] = true
		if strings.Contains(x.Error, "more)") {
			t.Errorf("error %q counts the others", x.Error)
		}
	}
	if !fields["load.port"] || !fields["load.scheme"] || e.Errors[0].Field != e.Field {
		t.Errorf("errors %+v, want load.port and load.scheme, the first as field", e.Errors)
	}
}
