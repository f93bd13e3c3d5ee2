package terraform

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
)

// testAccProtoV6ProviderFactories runs the provider in the test's process, so no binary
// has to be built or installed: the test framework reattaches Terraform to it.
var testAccProtoV6ProviderFactories = map[string]func() (tfprotov6.ProviderServer, error){
	"glbdns": providerserver.NewProtocol6WithError(New("test")()),
}

// accTest runs an acceptance test case. With OpenTofu as TF_ACC_TERRAFORM_PATH, the
// implied provider address of "glbdns_*" resources is registry.opentofu.org/hashicorp/glbdns,
// so the reattached provider must be registered under that host (TF_ACC_PROVIDER_HOST)
// or OpenTofu would look the provider up in a registry.
func accTest(t *testing.T, tc resource.TestCase) {
	t.Helper()
	bin := os.Getenv("TF_ACC_TERRAFORM_PATH")
	if os.Getenv("TF_ACC_PROVIDER_HOST") == "" && strings.HasPrefix(filepath.Base(bin), "tofu") {
		t.Setenv("TF_ACC_PROVIDER_HOST", "registry.opentofu.org")
	}
	tc.ProtoV6ProviderFactories = testAccProtoV6ProviderFactories
	resource.Test(t, tc)
}

// providerConfig is the provider block pointing at the test's API.
func providerConfig(url, token string) string {
	return fmt.Sprintf(`
provider "glbdns" {
  endpoint = %q
  token    = %q
}
`, url, token)
}

func TestFieldPath(t *testing.T) {
	tests := []struct {
		name, field string
		want        path.Path
	}{
		{"top level", "region", path.Root("region")},
		{"list element", "pools[2]", path.Root("pools").AtListIndex(2)},
		{"nested", "members[1].address", path.Root("members").AtListIndex(1).AtName("address")},
		{"nested list", "checks[0].expect_status[3]", path.Root("checks").AtListIndex(0).AtName("expect_status").AtListIndex(3)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := fieldPath(tt.field)
			if !ok || !got.Equal(tt.want) {
				t.Errorf("fieldPath(%q) = %s, %v; want %s", tt.field, got, ok, tt.want)
			}
		})
	}
	if _, ok := fieldPath(""); ok {
		t.Error("fieldPath(\"\") succeeded; want false")
	}
}
