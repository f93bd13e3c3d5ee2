package terraform

import (
	"context"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-go/tftypes"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"

	"github.com/glbdns/glbdns/api"
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

func TestSameDuration(t *testing.T) {
	tests := []struct {
		name             string
		got, prior, want types.String
	}{
		{"same spelling", types.StringValue("2s"), types.StringValue("2s"), types.StringValue("2s")},
		{"canonicalised by the server", types.StringValue("1m0s"), types.StringValue("60s"), types.StringValue("60s")},
		{"changed elsewhere", types.StringValue("30s"), types.StringValue("1m"), types.StringValue("30s")},
		{"unset before", types.StringValue("5s"), types.StringNull(), types.StringValue("5s")},
		{"removed", types.StringNull(), types.StringValue("5s"), types.StringNull()},
		{"not a duration", types.StringValue("x"), types.StringValue("x"), types.StringValue("x")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := sameDuration(tt.got, tt.prior); !got.Equal(tt.want) {
				t.Errorf("sameDuration(%s, %s) = %s; want %s", tt.got, tt.prior, got, tt.want)
			}
		})
	}
}

func TestSameFloat(t *testing.T) {
	// 51.5074 as a configuration writes it: a decimal at the precision Terraform parses
	// numbers with, which no float64 equals exactly.
	exact, _, err := big.ParseFloat("51.5074", 10, 512, big.ToNearestEven)
	if err != nil {
		t.Fatal(err)
	}
	v, err := types.Float64Type.ValueFromTerraform(context.Background(), tftypes.NewValue(tftypes.Number, exact))
	if err != nil {
		t.Fatal(err)
	}
	cfg := v.(types.Float64)
	tests := []struct {
		name  string
		got   float64
		prior types.Float64
		want  types.Float64
	}{
		{"configured decimal kept", 51.5074, cfg, cfg},
		{"changed elsewhere", 40.7128, cfg, types.Float64Value(40.7128)},
		{"no prior (import)", 51.5074, types.Float64Null(), types.Float64Value(51.5074)},
		{"unknown prior", 1, types.Float64Unknown(), types.Float64Value(1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := sameFloat(tt.got, tt.prior); !got.Equal(tt.want) {
				t.Errorf("sameFloat(%v, %s) = %s; want %s", tt.got, tt.prior, got, tt.want)
			}
		})
	}
	if cfg.Equal(types.Float64Value(51.5074)) {
		t.Error("the configured decimal equals the float64; the test no longer shows what sameFloat is for")
	}
}

func TestServiceNameSpelling(t *testing.T) {
	tests := []struct {
		name, prior, server, want string
	}{
		{"as stored", "www.glb.example.com", "www.glb.example.com", "www.glb.example.com"},
		{"upper case and trailing dot kept", "WWW.glb.example.com.", "www.glb.example.com", "WWW.glb.example.com."},
		{"another name", "api.glb.example.com", "www.glb.example.com", "www.glb.example.com"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := serviceFromAPI(&api.Service{Name: tt.server, Pools: []string{"p"}}, types.StringValue(tt.prior))
			if m.Name.ValueString() != tt.want || m.ID.ValueString() != tt.server {
				t.Errorf("name %s id %s; want name %q id %q", m.Name, m.ID, tt.want, tt.server)
			}
		})
	}
}
