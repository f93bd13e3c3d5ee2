package store

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/glbdns/glbdns/api"
	"github.com/glbdns/glbdns/policy"
)

// geoPolicy is testdata/policy.hcl with a geoip block (paths only: the store never opens
// the databases) and an operator geo service whose rules the API must show.
const geoPolicy = `
geoip {
  database     = "City.mmdb"
  asn_database = "ASN.mmdb"
}

pool "op-us" {
  member "iad-1" {
    address = "198.51.100.10"
  }
}

service "opgeo.glb.example.com" {
  policy = "geo"
  pools  = ["op-web", "op-us"]
  geo {
    rule {
      countries  = ["GB", "FR"]
      continents = ["EU"]
      pools      = ["op-web", "op-us"]
    }
    rule {
      networks = ["2001:db8::/32", "203.0.113.0/24"]
      asns     = [64496]
      pools    = ["op-us"]
    }
  }
}
`

func newGeoStore(t *testing.T) *Store {
	t.Helper()
	src, err := os.ReadFile("testdata/policy.hcl")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "policy.hcl")
	if err := os.WriteFile(path, append(src, geoPolicy...), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := Open(path, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, diags := s.Load(); diags.HasErrors() {
		t.Fatal(diags)
	}
	for _, name := range []string{"eu", "us"} {
		p := webPool(name)
		if _, _, err := s.PutPool(p, Precondition{}); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func geoService() api.Service {
	return api.Service{Name: "geo.glb.example.com", Policy: "geo", Pools: []string{"eu", "us"},
		Geo: &api.Geo{Rules: []api.GeoRule{
			{Countries: []string{"GB", "DE"}, Continents: []string{"EU"}, Pools: []string{"eu", "us"}},
			{Networks: []string{"198.51.100.0/24"}, ASNs: []int64{64496}, Pools: []string{"us"}},
		}, DefaultPools: []string{"us", "eu"}}}
}

func TestGeoServiceRoundTrip(t *testing.T) {
	s := newGeoStore(t)
	got, created, err := s.PutService(geoService(), Precondition{})
	if err != nil || !created {
		t.Fatalf("PutService = %v, %v", created, err)
	}
	if want := geoService().Geo; !reflect.DeepEqual(got.Geo, want) {
		t.Errorf("written geo = %+v, want %+v", got.Geo, want)
	}
	again, err := s.GetService("geo.glb.example.com")
	if err != nil || !reflect.DeepEqual(again, got) {
		t.Fatalf("read back %+v (%v), want %+v", again, err, got)
	}
	// A reload reads the managed document back equal, and the snapshot has the rules.
	snap, diags := s.Load()
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if again, _ := s.GetService("geo.glb.example.com"); !reflect.DeepEqual(again, got) {
		t.Errorf("after reload %+v, want %+v", again, got)
	}
	var sv *policy.Service
	for _, x := range snap.Services {
		if api.ServiceName(x.Name) == "geo.glb.example.com" {
			sv = x
		}
	}
	if sv == nil || sv.Steering != policy.SteerGeo || !sv.GeoCity || !sv.GeoASN {
		t.Fatalf("snapshot service = %+v", sv)
	}
	rules, defaults := sv.GeoRules()
	want := []policy.GeoRule{
		{Countries: []string{"GB", "DE"}, Continents: []string{"EU"}, Pools: []string{"eu", "us"}},
		{Networks: []string{"198.51.100.0/24"}, ASNs: []uint32{64496}, Pools: []string{"us"}},
	}
	if !reflect.DeepEqual(rules, want) || !reflect.DeepEqual(defaults, []string{"us", "eu"}) {
		t.Errorf("compiled rules = %+v, defaults %v", rules, defaults)
	}
	// Without default_pools the read shows none; the rules stay.
	nd := geoService()
	nd.Geo.DefaultPools = nil
	got, _, err = s.PutService(nd, Precondition{})
	if err != nil || got.Geo.DefaultPools != nil || len(got.Geo.Rules) != 2 {
		t.Fatalf("no default_pools: %+v, %v", got.Geo, err)
	}
}

func TestOperatorGeoServiceShown(t *testing.T) {
	s := newGeoStore(t)
	sv, err := s.GetService("opgeo.glb.example.com")
	if err != nil || sv.Managed {
		t.Fatalf("operator geo service = %+v, %v", sv, err)
	}
	want := &api.Geo{Rules: []api.GeoRule{
		{Countries: []string{"GB", "FR"}, Continents: []string{"EU"}, Pools: []string{"op-web", "op-us"}},
		{Networks: []string{"2001:db8::/32", "203.0.113.0/24"}, ASNs: []int64{64496}, Pools: []string{"op-us"}},
	}}
	if !reflect.DeepEqual(sv.Geo, want) {
		t.Errorf("geo = %+v, want %+v", sv.Geo, want)
	}
}

func TestGeoValidationErrors(t *testing.T) {
	s := newGeoStore(t)
	put := func(mod func(*api.Service)) error {
		sv := geoService()
		mod(&sv)
		_, _, err := s.PutService(sv, Precondition{})
		return err
	}
	tests := []struct {
		name  string
		mod   func(*api.Service)
		field string
		kind  error
	}{
		{"country", func(sv *api.Service) { sv.Geo.Rules[0].Countries[1] = "de" }, "geo.rules[0].countries[1]", ErrInvalid},
		{"continent", func(sv *api.Service) { sv.Geo.Rules[0].Continents[0] = "XX" }, "geo.rules[0].continents[0]", ErrInvalid},
		{"network", func(sv *api.Service) { sv.Geo.Rules[1].Networks[0] = "198.51.100.1/24" }, "geo.rules[1].networks[0]", ErrInvalid},
		{"asn", func(sv *api.Service) { sv.Geo.Rules[1].ASNs[0] = 0 }, "geo.rules[1].asns[0]", ErrInvalid},
		{"unknown pool", func(sv *api.Service) { sv.Geo.Rules[1].Pools = []string{"nope"} }, "geo.rules[1].pools[0]", ErrUnknownRef},
		{"default pool", func(sv *api.Service) { sv.Geo.DefaultPools = []string{"us", "op-web"} }, "geo.default_pools[1]", ErrInvalid},
		{"empty rule", func(sv *api.Service) { sv.Geo.Rules[1] = api.GeoRule{Countries: []string{}, Pools: []string{"us"}} }, "geo.rules[1]", ErrInvalid},
		{"no rules", func(sv *api.Service) { sv.Geo.Rules = nil }, "geo", ErrInvalid},
		{"not geo", func(sv *api.Service) { sv.Policy = "failover" }, "geo", ErrInvalid},
		{"missing geo", func(sv *api.Service) { sv.Geo = nil }, "name", ErrInvalid}, // no geo block to point at: the service
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := put(tc.mod)
			var ve *ValidationError
			if !errors.As(err, &ve) || !errors.Is(err, tc.kind) {
				t.Fatalf("err = %v, want a ValidationError matching %v", err, tc.kind)
			}
			if ve.Field != tc.field {
				t.Errorf("field = %q, want %q (reason %s)", ve.Field, tc.field, ve.Reason)
			}
		})
	}
}
