package terraform

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"

	"github.com/glbdns/glbdns/terraform/client"
)

// clientFrom is the Configure step that every resource and data source shares: it takes
// the *client.Client the provider built, and reports a provider bug when it is something
// else.
func clientFrom(data any, diags *diag.Diagnostics) *client.Client {
	if data == nil { // Configure runs before the provider is configured, too
		return nil
	}
	c, ok := data.(*client.Client)
	if !ok {
		diags.AddError("Unexpected provider data",
			fmt.Sprintf("Expected *client.Client, got %T. This is a bug in the provider; please report it.", data))
	}
	return c
}

// fieldPart matches one step of the API's field paths: "members[1].address".
var fieldPart = regexp.MustCompile(`([a-z_0-9]+)(?:\[(\d+)\])?`)

// fieldPath maps the API's JSON field path onto the attribute path: the resources use the
// API's JSON names, so "members[1].address" is members[1].address.
func fieldPath(field string) (path.Path, bool) {
	ms := fieldPart.FindAllStringSubmatch(field, -1)
	if len(ms) == 0 {
		return path.Empty(), false
	}
	p := path.Root(ms[0][1])
	if ms[0][2] != "" {
		i, _ := strconv.Atoi(ms[0][2])
		p = p.AtListIndex(i)
	}
	for _, m := range ms[1:] {
		p = p.AtName(m[1])
		if m[2] != "" {
			i, _ := strconv.Atoi(m[2])
			p = p.AtListIndex(i)
		}
	}
	return p, true
}

// addAPIError turns an admin API failure into a diagnostic: a short summary from the
// status, the server's reason in the detail, and the attribute at fault when the server
// names one field.
func addAPIError(diags *diag.Diagnostics, action string, err error) {
	summary := "Admin API error"
	hint := ""
	var ee *client.EndpointError
	switch {
	case errors.As(err, &ee) && len(ee.NotRetried) > 0:
		summary = "Write not retried"
		hint = " The request reached a glbdns node, which did not complete it (the error says how), so it may have been applied there; it was not sent to another" +
			" node, where it could apply twice. Run terraform refresh (or plan) to see what the cluster holds, then apply again."
	case errors.As(err, &ee):
		summary = "glbdns not reachable"
		hint = " Check that the provider's endpoints (or " + EnvEndpoints + ", " + EnvEndpoint + ") name running glbdns nodes."
	case errors.Is(err, client.ErrPreconditionFailed):
		summary = "Object changed outside Terraform"
		hint = " The object was modified through the admin API since Terraform last read it; run terraform refresh (or plan) and apply again."
	case errors.Is(err, client.ErrConflict):
		summary = "Conflict"
		hint = " Objects from the operator's policy files are read-only, a name that exists must be imported, and a pool still used by a service cannot be deleted."
	case errors.Is(err, client.ErrUnauthorized), errors.Is(err, client.ErrForbidden):
		summary = "Not allowed"
		hint = " Check the provider's token (or " + EnvToken + ") and that the node has an admin token configured."
	case errors.Is(err, client.ErrUnprocessable):
		summary = "Reference to a missing object"
	case errors.Is(err, client.ErrBadRequest):
		summary = "Invalid configuration"
	case errors.Is(err, client.ErrNotFound):
		summary = "Not found"
	}
	detail := fmt.Sprintf("Could not %s: %s.%s", action, err, hint)
	var ae *client.APIError
	if errors.As(err, &ae) && len(ae.Errors) > 1 {
		// Every error of the answer is its own diagnostic, at its attribute when the
		// server names the field, so that fixing one does not reveal the next.
		for _, e := range ae.Errors {
			one := *ae
			one.Reason, one.Field, one.Errors = e.Error, e.Field, nil
			d := fmt.Sprintf("Could not %s: %s.%s", action, &one, hint)
			if p, ok := fieldPath(e.Field); ok && e.Field != "" {
				diags.AddAttributeError(p, summary, d)
			} else {
				diags.AddError(summary, d)
			}
		}
		return
	}
	if errors.As(err, &ae) && ae.Field != "" {
		if p, ok := fieldPath(ae.Field); ok {
			diags.AddAttributeError(p, summary, detail)
			return
		}
	}
	diags.AddError(summary, detail)
}
