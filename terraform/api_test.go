package terraform

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/miekg/dns"

	"github.com/glbdns/glbdns/terraform/internal/glbtest"
)

// testZone is the zone the acceptance tests' services live in; glbtest's operator policy
// defines it (with its name servers), since services must fall inside a zone of the policy.
const testZone = glbtest.Zone

// accToken is the admin token of the acceptance tests' nodes.
const accToken = "acc-test-token"

// startNode starts a real glbdns in the test's process (daemon/ with DNS and the
// admin API on 127.0.0.1 port 0, the operator policy and the managed folder in
// t.TempDir()) and stops it when the test ends.
func startNode(t *testing.T) *glbtest.Node {
	t.Helper()
	return glbtest.Start(t, glbtest.Options{Token: accToken})
}

// startAPI starts a real glbdns (startNode) and returns its admin URL and token: every
// acceptance test runs against the server the provider talks to in production.
func startAPI(t *testing.T) (url, token string) {
	t.Helper()
	n := startNode(t)
	return n.URL, n.Token
}

// checkDNS is a TestCheckFunc that asks the node over DNS for the A records of name and
// compares the set of addresses with want; no want means the name must not exist
// (NXDOMAIN). Writes return once the new snapshot serves, so no retry is needed.
func checkDNS(n *glbtest.Node, name string, want ...string) resource.TestCheckFunc {
	return func(*terraform.State) error {
		r, err := n.Query(name, dns.TypeA)
		if err != nil {
			return fmt.Errorf("query %s A: %w", name, err)
		}
		if len(want) == 0 {
			if r.Rcode != dns.RcodeNameError {
				return fmt.Errorf("%s A: rcode %s, answer %v; want NXDOMAIN", name, dns.RcodeToString[r.Rcode], r.Answer)
			}
			return nil
		}
		if r.Rcode != dns.RcodeSuccess {
			return fmt.Errorf("%s A: rcode %s; want NOERROR with %v", name, dns.RcodeToString[r.Rcode], want)
		}
		got := aRecords(r)
		slices.Sort(got)
		w := slices.Sorted(slices.Values(want))
		if !slices.Equal(got, w) {
			return fmt.Errorf("%s A: answers %v; want %v", name, got, w)
		}
		return nil
	}
}

// checkDNSFrom is a TestCheckFunc that asks the node for the A records of name and wants
// count of them, each one of from: for policies that pick among more members than they
// answer with.
func checkDNSFrom(n *glbtest.Node, name string, count int, from ...string) resource.TestCheckFunc {
	return func(*terraform.State) error {
		r, err := n.Query(name, dns.TypeA)
		if err != nil {
			return fmt.Errorf("query %s A: %w", name, err)
		}
		got := aRecords(r)
		if r.Rcode != dns.RcodeSuccess || len(got) != count {
			return fmt.Errorf("%s A: rcode %s, answers %v; want %d of %v", name, dns.RcodeToString[r.Rcode], got, count, from)
		}
		for _, a := range got {
			if !slices.Contains(from, a) {
				return fmt.Errorf("%s A: answer %s is none of %v", name, a, from)
			}
		}
		return nil
	}
}

// aRecords returns the addresses of r's A records.
func aRecords(r *dns.Msg) []string {
	var out []string
	for _, rr := range r.Answer {
		if a, ok := rr.(*dns.A); ok {
			out = append(out, a.A.String())
		}
	}
	return out
}

// putWithETag changes an object behind Terraform's back the way another tool would: a raw
// GET of path, change applied to the JSON object, and a PUT with the GET's ETag as
// If-Match. The read-only fields are dropped, since the server refuses unknown input.
func putWithETag(t *testing.T, url, token, path string, change func(map[string]any)) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token) // reads need it too on a node with one
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	etag := resp.Header.Get("ETag")
	var obj map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&obj); err != nil || resp.StatusCode != http.StatusOK || etag == "" {
		t.Fatalf("GET %s: %s, ETag %q, %v", path, resp.Status, etag, err)
	}
	delete(obj, "managed")
	delete(obj, "version")
	change(obj)
	body, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	req, err = http.NewRequest(http.MethodPut, url+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("If-Match", etag)
	put, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer put.Body.Close()
	if put.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(put.Body)
		t.Fatalf("PUT %s If-Match %s: %s %s", path, etag, put.Status, b)
	}
	if put.Header.Get("ETag") == etag {
		t.Fatalf("PUT %s: the ETag did not change", path)
	}
}
