package terraform

import (
	"fmt"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"

	"github.com/glbdns/glbdns/api"
	"github.com/glbdns/glbdns/terraform/client"
)

// TestAPIErrorEveryError shows every error of an answer with two as its own diagnostic,
// each at its attribute, not the first and "(and 1 more)".
func TestAPIErrorEveryError(t *testing.T) {
	ae := &client.APIError{Method: "PUT", Path: "/v1/pools/web", StatusCode: 400,
		Reason: "Invalid address: not an IP", Field: "members[0].address",
		Errors: []api.FieldError{
			{Error: "Invalid address: not an IP", Field: "members[0].address"},
			{Error: "Invalid port: 70000 is not a port", Field: "members[1].port"},
		}}
	var diags diag.Diagnostics
	addAPIError(&diags, "create pool", fmt.Errorf("wrapped: %w", ae))
	if len(diags) != 2 {
		t.Fatalf("%d diagnostics, want 2: %v", len(diags), diags)
	}
	for i, want := range []struct {
		path   path.Path
		reason string
	}{
		{path.Root("members").AtListIndex(0).AtName("address"), "Invalid address"},
		{path.Root("members").AtListIndex(1).AtName("port"), "Invalid port"},
	} {
		d, ok := diags[i].(diag.DiagnosticWithPath)
		if !ok || !d.Path().Equal(want.path) {
			t.Errorf("diagnostic %d: path %v, want %v", i, d, want.path)
			continue
		}
		if !strings.Contains(d.Detail(), want.reason) || strings.Contains(d.Detail(), "more)") {
			t.Errorf("diagnostic %d: %q", i, d.Detail())
		}
	}
}
