package admin

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/glbdns/glbdns/api"
)

// TestGeoService creates a geo service through the API, reads it back equal, and has a
// bad rule refused with the field at fault.
func TestGeoService(t *testing.T) {
	// The geoip block only names the databases: nothing opens them here.
	f := newFixtureWith(t, token, "\ngeoip {\n  database = \"City.mmdb\"\n  asn_database = \"ASN.mmdb\"\n}\n")
	for _, name := range []string{"eu", "us"} {
		body := `{"name":"` + name + `","members":[{"name":"m1","address":"198.51.100.1"}]}`
		if r := f.do("POST", "/v1/pools", body, true); r.status != 201 {
			t.Fatalf("create pool %s: %d %s", name, r.status, r.body)
		}
	}
	const geo = `{"rules":[{"networks":["198.51.100.0/24"],"asns":[64496],"countries":["GB"],"continents":["EU"],"pools":["eu","us"]},` +
		`{"countries":["US","CA"],"pools":["us"]}],"default_pools":["us","eu"]}`
	body := `{"name":"geo.glb.example.com","policy":"geo","pools":["eu","us"],"geo":` + geo + `}`
	r := f.do("POST", "/v1/services", body, true)
	if r.status != 201 {
		t.Fatalf("create geo service: %d %s", r.status, r.body)
	}
	var created api.Service
	r.json(t, &created)
	var want api.Geo
	if err := json.Unmarshal([]byte(geo), &want); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(created.Geo, &want) {
		t.Errorf("created geo = %+v, want %+v", created.Geo, want)
	}
	r = f.do("GET", "/v1/services/geo.glb.example.com", "", false)
	var got api.Service
	r.json(t, &got)
	if r.status != 200 || !reflect.DeepEqual(got, created) {
		t.Errorf("read back %d %+v, want %+v", r.status, got, created)
	}
	found := false
	for _, sv := range f.snap.Load().Services {
		if sv.Name == "geo.glb.example.com." {
			found = true
			if rules, _ := sv.GeoRules(); len(rules) != 2 || rules[1].Countries[1] != "CA" {
				t.Errorf("snapshot rules = %+v", rules)
			}
		}
	}
	if !found {
		t.Error("the geo service is not in the reloaded snapshot")
	}

	bad := `{"name":"bad.glb.example.com","policy":"geo","pools":["eu","us"],"geo":{"rules":[{"countries":["GB","fr"],"pools":["eu"]}]}}`
	r = f.do("POST", "/v1/services", bad, true)
	var e struct{ Error, Field string }
	r.json(t, &e)
	if r.status != 400 || e.Field != "geo.rules[0].countries[1]" {
		t.Errorf("bad rule: %d %s", r.status, r.body)
	}
	r = f.do("POST", "/v1/services", `{"name":"bad.glb.example.com","policy":"geo","pools":["eu","us"]}`, true)
	if r.status != 400 {
		t.Errorf("geo service without geo: %d %s", r.status, r.body)
	}
}
