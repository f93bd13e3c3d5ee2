// Package apitest is an in-memory implementation of the glbdns admin API
// (docs/admin-api.md) on a real HTTP listener, for the Terraform provider's tests while the
// real server's API is being written. It keeps the contract's observable behaviour: strict
// JSON (unknown fields are 400), bearer-token writes (401/403), versions sent as quoted
// ETags with If-Match / If-None-Match (412), 404/409/422 as documented, defaults filled in
// as the policy package does, and read-only objects "from the operator's files"
// (AddFilePool, AddFileService).
//
// It validates what the provider's tests exercise, not every rule of the policy package;
// the real server remains the reference (see terraform/README.md).
package apitest

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Options configure a Server.
type Options struct {
	// Token is the admin token; empty turns the write API off (every write gets 403), as
	// glbdns does when no token is configured.
	Token string
	// Zones are the zones "defined in files"; a service's name must fall inside one.
	Zones []string
	// Now is the clock for drains; time.Now when nil.
	Now func() time.Time
}

// Server is a running stand-in admin API. Its URL is Server.URL.
type Server struct {
	URL string

	hs    *httptest.Server
	token string
	zones []string
	now   func() time.Time

	mu       sync.Mutex
	seq      uint32
	pools    map[string]*Pool
	services map[string]*Service
	drains   map[[2]string]*Drain
	health   map[[2]string]health
}

type health struct {
	status    string
	reporters int
}

// Pool, Member, Check, Service and Drain are the API's objects. Optional numbers are
// pointers so that "absent" (default applies) differs from 0.
type (
	Pool struct {
		Name    string   `json:"name"`
		Region  string   `json:"region,omitempty"`
		Members []Member `json:"members"`
		Checks  []Check  `json:"checks"`
		Managed bool     `json:"managed"`
		Version string   `json:"version"`
	}
	Member struct {
		Name    string `json:"name"`
		Address string `json:"address,omitempty"`
		Host    string `json:"host,omitempty"`
		Weight  *int64 `json:"weight,omitempty"`
	}
	Check struct {
		Name             string            `json:"name"`
		Type             string            `json:"type,omitempty"`
		Port             int64             `json:"port,omitempty"`
		Interval         string            `json:"interval,omitempty"`
		Timeout          string            `json:"timeout,omitempty"`
		Rise             int64             `json:"rise,omitempty"`
		Fall             int64             `json:"fall,omitempty"`
		Method           string            `json:"method,omitempty"`
		Path             string            `json:"path,omitempty"`
		Host             string            `json:"host,omitempty"`
		Headers          map[string]string `json:"headers,omitempty"`
		ExpectStatus     []any             `json:"expect_status,omitempty"`
		ExpectBody       string            `json:"expect_body,omitempty"`
		ExpectBodyRegexp string            `json:"expect_body_regexp,omitempty"`
		ServerName       string            `json:"server_name,omitempty"`
		Insecure         *bool             `json:"insecure,omitempty"`
		FollowRedirects  *bool             `json:"follow_redirects,omitempty"`
		Send             string            `json:"send,omitempty"`
		Expect           string            `json:"expect,omitempty"`
		QName            string            `json:"qname,omitempty"`
		QType            string            `json:"qtype,omitempty"`
		ExpectRcode      string            `json:"expect_rcode,omitempty"`
		ExpectAnswer     string            `json:"expect_answer,omitempty"`
	}
	Service struct {
		Name         string   `json:"name"`
		Policy       string   `json:"policy"`
		Pools        []string `json:"pools"`
		TTL          *int64   `json:"ttl"`
		Answers      int64    `json:"answers"`
		WhenAllDown  string   `json:"when_all_down"`
		Fallback     string   `json:"fallback"`
		HashPrefixV4 *int64   `json:"hash_prefix_v4"`
		HashPrefixV6 *int64   `json:"hash_prefix_v6"`
		Managed      bool     `json:"managed"`
		Version      string   `json:"version"`
	}
	Drain struct {
		Pool   string `json:"pool"`
		Member string `json:"member"`
		Until  string `json:"until"`
		Reason string `json:"reason,omitempty"`
	}
)

// Defaults of the policy package (policy/pool.go, policy/service.go).
const (
	defaultInterval = "5s"
	defaultTimeout  = "2s"
	defaultRise     = 2
	defaultFall     = 3
	defaultTTL      = 30
	defaultPrefix4  = 24
	defaultPrefix6  = 56
	maxWeight       = 1 << 24
	maxAnswers      = 16
	maxTTL          = 1<<31 - 1
	maxBody         = 1 << 20
)

// checkAttrs lists which check attributes apply to which type, as policy/pool.go does: an
// attribute of another type is a 400, not silently ignored.
var checkAttrs = map[string][]string{
	"http":  {"method", "path", "host", "headers", "expect_status", "expect_body", "expect_body_regexp", "follow_redirects"},
	"https": {"method", "path", "host", "headers", "expect_status", "expect_body", "expect_body_regexp", "follow_redirects", "server_name", "insecure"},
	"tcp":   {"send", "expect"},
	"dns":   {"qname", "qtype", "expect_rcode", "expect_answer"},
}

var defaultPorts = map[string]int64{"http": 80, "https": 443, "dns": 53}

// New starts a Server on 127.0.0.1 port 0. Close it when done.
func New(o Options) *Server {
	s := &Server{
		token: o.Token, zones: o.Zones, now: o.Now,
		pools: map[string]*Pool{}, services: map[string]*Service{},
		drains: map[[2]string]*Drain{}, health: map[[2]string]health{},
	}
	if s.now == nil {
		s.now = time.Now
	}
	for i, z := range s.zones {
		s.zones[i] = strings.ToLower(strings.TrimSuffix(z, "."))
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/pools", s.listPools)
	mux.HandleFunc("GET /v1/pools/{name}", s.getPool)
	mux.HandleFunc("POST /v1/pools", s.write(s.createPool))
	mux.HandleFunc("PUT /v1/pools/{name}", s.write(s.putPool))
	mux.HandleFunc("DELETE /v1/pools/{name}", s.write(s.deletePool))
	mux.HandleFunc("GET /v1/services", s.listServices)
	mux.HandleFunc("GET /v1/services/{name}", s.getService)
	mux.HandleFunc("POST /v1/services", s.write(s.createService))
	mux.HandleFunc("PUT /v1/services/{name}", s.write(s.putService))
	mux.HandleFunc("DELETE /v1/services/{name}", s.write(s.deleteService))
	mux.HandleFunc("GET /v1/drains", s.listDrains)
	mux.HandleFunc("GET /v1/pools/{pool}/members/{member}/drain", s.getDrain)
	mux.HandleFunc("POST /v1/pools/{pool}/members/{member}/drain", s.write(s.postDrain))
	mux.HandleFunc("DELETE /v1/pools/{pool}/members/{member}/drain", s.write(s.deleteDrain))
	mux.HandleFunc("GET /v1/health", s.getHealth)
	s.hs = httptest.NewServer(mux)
	s.URL = s.hs.URL
	return s
}

// Start is New with Close registered as t's cleanup.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	s := New(o)
	t.Cleanup(s.Close)
	return s
}

// Close shuts the listener down.
func (s *Server) Close() { s.hs.Close() }

// AddFilePool adds a pool as if defined in the operator's files: listed and readable, but
// every write to it gets 409.
func (s *Server) AddFilePool(p Pool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.normPool(&p); err != nil {
		return err
	}
	p.Managed, p.Version = false, s.nextVersion()
	s.pools[p.Name] = &p
	return nil
}

// AddFileService adds a read-only service, as AddFilePool does for pools.
func (s *Server) AddFileService(v Service) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.normService(&v); err != nil {
		return err
	}
	v.Managed, v.Version = false, s.nextVersion()
	s.services[v.Name] = &v
	return nil
}

// SetHealth sets what GET /v1/health reports for a member, standing in for the healthd
// reporters. Members never set report status "unknown" from 0 reporters.
func (s *Server) SetHealth(pool, member, status string, reporters int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.health[[2]string{pool, member}] = health{status, reporters}
}

// apiError is an error answer: status, reason, and the JSON path of the field at fault.
type apiError struct {
	code   int
	reason string
	field  string
}

func (e *apiError) Error() string { return e.reason }

func fail(code int, field, format string, args ...any) *apiError {
	return &apiError{code: code, field: field, reason: fmt.Sprintf(format, args...)}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeErr(w http.ResponseWriter, err error) {
	var ae *apiError
	if !errors.As(err, &ae) {
		ae = &apiError{code: http.StatusInternalServerError, reason: err.Error()}
	}
	body := map[string]string{"error": ae.reason}
	if ae.field != "" {
		body["field"] = ae.field
	}
	writeJSON(w, ae.code, body)
}

// write wraps a write handler with the token check of docs/admin-api.md, "Conventions".
func (s *Server) write(h func(http.ResponseWriter, *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.token == "" {
			writeErr(w, fail(http.StatusForbidden, "", "write API disabled: no admin token configured"))
			return
		}
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || tok == "" {
			w.Header().Set("WWW-Authenticate", "Bearer")
			writeErr(w, fail(http.StatusUnauthorized, "", "missing or malformed Authorization header: want \"Bearer TOKEN\""))
			return
		}
		if subtle.ConstantTimeCompare([]byte(tok), []byte(s.token)) != 1 {
			writeErr(w, fail(http.StatusForbidden, "", "wrong admin token"))
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if err := h(w, r); err != nil {
			writeErr(w, err)
		}
	}
}

// decode reads a JSON body strictly: unknown fields and wrong types are 400.
func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return fail(http.StatusBadRequest, te.Field, "field %s: want %s, got %s", te.Field, te.Type, te.Value)
		}
		return fail(http.StatusBadRequest, "", "malformed JSON: %v", err)
	}
	if dec.More() {
		return fail(http.StatusBadRequest, "", "malformed JSON: trailing data after the object")
	}
	return nil
}

// precondition applies If-Match and If-None-Match (RFC 9110 section 13.1) to the stored
// version ("" when the object does not exist).
func precondition(r *http.Request, version string) error {
	if m := r.Header.Get("If-Match"); m != "" {
		if version == "" || (m != "*" && !slices.Contains(etags(m), version)) {
			return fail(http.StatusPreconditionFailed, "", "If-Match %s does not match the stored version", m)
		}
	}
	if m := r.Header.Get("If-None-Match"); m != "" && version != "" {
		if m == "*" || slices.Contains(etags(m), version) {
			return fail(http.StatusPreconditionFailed, "", "the object exists and If-None-Match is %s", m)
		}
	}
	return nil
}

func etags(h string) []string {
	var out []string
	for _, t := range strings.Split(h, ",") {
		out = append(out, strings.Trim(strings.TrimPrefix(strings.TrimSpace(t), "W/"), `"`))
	}
	return out
}

func (s *Server) nextVersion() string {
	s.seq++
	return fmt.Sprintf("%08x", s.seq*2654435761) // Knuth's multiplicative hash: looks opaque, never repeats
}

func setETag(w http.ResponseWriter, v string) { w.Header().Set("ETag", `"`+v+`"`) }

// --- pools ---

func (s *Server) listPools(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []Pool{}
	for _, n := range sortedKeys(s.pools) {
		out = append(out, *s.pools[n])
	}
	writeJSON(w, http.StatusOK, map[string]any{"pools": out})
}

func (s *Server) getPool(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.pools[r.PathValue("name")]
	if p == nil {
		writeErr(w, fail(http.StatusNotFound, "", "no pool %q", r.PathValue("name")))
		return
	}
	setETag(w, p.Version)
	writeJSON(w, http.StatusOK, p)
}

func (s *Server) createPool(w http.ResponseWriter, r *http.Request) error {
	var p Pool
	if err := decode(r, &p); err != nil {
		return err
	}
	if old := s.pools[p.Name]; old != nil {
		return fail(http.StatusConflict, "name", "pool %q already exists", p.Name)
	}
	return s.storePool(w, r, p, http.StatusCreated)
}

func (s *Server) putPool(w http.ResponseWriter, r *http.Request) error {
	var p Pool
	if err := decode(r, &p); err != nil {
		return err
	}
	name := r.PathValue("name")
	if p.Name != "" && p.Name != name {
		return fail(http.StatusBadRequest, "name", "the body names pool %q but the path names %q", p.Name, name)
	}
	p.Name = name
	old := s.pools[name]
	if old != nil && !old.Managed {
		return fail(http.StatusConflict, "", "pool %q is defined in the operator's files and is read-only", name)
	}
	var ver string
	if old != nil {
		ver = old.Version
	}
	if err := precondition(r, ver); err != nil {
		return err
	}
	code := http.StatusOK
	if old == nil {
		code = http.StatusCreated
	}
	return s.storePool(w, r, p, code)
}

func (s *Server) storePool(w http.ResponseWriter, _ *http.Request, p Pool, code int) error {
	if err := s.normPool(&p); err != nil {
		return err
	}
	p.Managed, p.Version = true, s.nextVersion()
	s.pools[p.Name] = &p
	setETag(w, p.Version)
	if code == http.StatusCreated {
		w.Header().Set("Location", "/v1/pools/"+p.Name)
	}
	writeJSON(w, code, p)
	return nil
}

func (s *Server) deletePool(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	p := s.pools[name]
	if p == nil {
		return fail(http.StatusNotFound, "", "no pool %q", name)
	}
	if !p.Managed {
		return fail(http.StatusConflict, "", "pool %q is defined in the operator's files and is read-only", name)
	}
	if err := precondition(r, p.Version); err != nil {
		return err
	}
	for _, sn := range sortedKeys(s.services) {
		sv := s.services[sn]
		if slices.Contains(sv.Pools, name) || sv.Fallback == name {
			return fail(http.StatusConflict, "", "pool %q is still used by service %q", name, sn)
		}
	}
	delete(s.pools, name)
	for k := range s.drains {
		if k[0] == name {
			delete(s.drains, k)
		}
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// normPool validates p and fills in the policy package's defaults.
func (s *Server) normPool(p *Pool) error {
	bad := func(field, format string, args ...any) error {
		return fail(http.StatusBadRequest, field, format, args...)
	}
	if !validName(p.Name) {
		return bad("name", "Invalid pool name: %q is not a valid name.", p.Name)
	}
	seen := map[string]bool{}
	for i := range p.Members {
		m := &p.Members[i]
		f := fmt.Sprintf("members[%d]", i)
		if !validName(m.Name) {
			return bad(f+".name", "Invalid member name: %q is not a valid name.", m.Name)
		}
		if seen[m.Name] {
			return bad(f+".name", "Duplicate member: pool %q already has a member %q.", p.Name, m.Name)
		}
		seen[m.Name] = true
		switch {
		case (m.Address == "") == (m.Host == ""):
			return bad(f+".address", "Invalid member: member %q needs exactly one of address and host.", m.Name)
		case m.Address != "":
			if _, err := netip.ParseAddr(m.Address); err != nil {
				return bad(f+".address", "Invalid address: %q is not an IP address.", m.Address)
			}
		case !validHost(m.Host):
			return bad(f+".host", "Invalid host: %q is not a valid host name.", m.Host)
		}
		if m.Weight == nil {
			m.Weight = ptr(int64(1))
		} else if *m.Weight < 0 || *m.Weight > maxWeight {
			return bad(f+".weight", "Invalid weight: the weight must be between 0 and %d.", maxWeight)
		}
	}
	if p.Checks == nil {
		p.Checks = []Check{}
	}
	seen = map[string]bool{}
	for i := range p.Checks {
		if err := normCheck(&p.Checks[i], fmt.Sprintf("checks[%d]", i), seen); err != nil {
			return err
		}
	}
	if p.Members == nil {
		p.Members = []Member{}
	}
	return nil
}

func normCheck(c *Check, f string, seen map[string]bool) error {
	bad := func(field, format string, args ...any) error {
		return fail(http.StatusBadRequest, f+"."+field, format, args...)
	}
	if !validName(c.Name) || seen[c.Name] {
		return bad("name", "Invalid check name: %q is empty, malformed or used twice.", c.Name)
	}
	seen[c.Name] = true
	if c.Type == "" {
		if _, ok := checkAttrs[c.Name]; !ok {
			return bad("type", "Missing check type: check %q needs a type (\"http\", \"https\", \"tcp\" or \"dns\").", c.Name)
		}
		c.Type = c.Name
	}
	allowed, ok := checkAttrs[c.Type]
	if !ok {
		return bad("type", "Invalid check type: %q is not one of \"http\", \"https\", \"tcp\", \"dns\".", c.Type)
	}
	set := map[string]bool{
		"method": c.Method != "", "path": c.Path != "", "host": c.Host != "", "headers": c.Headers != nil,
		"expect_status": c.ExpectStatus != nil, "expect_body": c.ExpectBody != "", "expect_body_regexp": c.ExpectBodyRegexp != "",
		"follow_redirects": c.FollowRedirects != nil, "server_name": c.ServerName != "", "insecure": c.Insecure != nil,
		"send": c.Send != "", "expect": c.Expect != "", "qname": c.QName != "", "qtype": c.QType != "",
		"expect_rcode": c.ExpectRcode != "", "expect_answer": c.ExpectAnswer != "",
	}
	for _, name := range sortedKeys(set) {
		if set[name] && !slices.Contains(allowed, name) {
			return bad(name, "Unsupported argument: the %q argument does not apply to a %s check.", name, c.Type)
		}
	}
	if c.Port == 0 {
		if c.Port = defaultPorts[c.Type]; c.Port == 0 {
			return bad("port", "Missing check port: a tcp check needs a port.")
		}
	} else if c.Port < 1 || c.Port > 65535 {
		return bad("port", "Invalid port: the port must be between 1 and 65535.")
	}
	if c.Interval == "" {
		c.Interval = defaultInterval
	}
	if c.Timeout == "" {
		c.Timeout = defaultTimeout
	}
	iv, err1 := time.ParseDuration(c.Interval)
	if err1 != nil || iv <= 0 {
		return bad("interval", "Invalid duration: %q is not a positive Go duration.", c.Interval)
	}
	to, err2 := time.ParseDuration(c.Timeout)
	if err2 != nil || to <= 0 {
		return bad("timeout", "Invalid duration: %q is not a positive Go duration.", c.Timeout)
	}
	if to >= iv {
		return bad("timeout", "Invalid timeout: the timeout (%s) must be shorter than the interval (%s), or probes would overlap.", to, iv)
	}
	if c.Rise == 0 {
		c.Rise = defaultRise
	}
	if c.Fall == 0 {
		c.Fall = defaultFall
	}
	if c.Rise < 1 || c.Rise > 1000 || c.Fall < 1 || c.Fall > 1000 {
		return bad("rise", "Invalid threshold: rise and fall must be between 1 and 1000.")
	}
	for j, e := range c.ExpectStatus {
		if !validStatus(e) {
			return bad(fmt.Sprintf("expect_status[%d]", j), "Invalid expect_status: every element must be an HTTP status (100-599) or a range \"lo-hi\".")
		}
	}
	return nil
}

func validStatus(e any) bool {
	code := func(s string) bool { n, err := strconv.Atoi(s); return err == nil && n >= 100 && n <= 599 }
	switch v := e.(type) {
	case float64:
		return v == float64(int(v)) && code(strconv.Itoa(int(v)))
	case string:
		if lo, hi, ok := strings.Cut(v, "-"); ok {
			a, _ := strconv.Atoi(lo)
			b, _ := strconv.Atoi(hi)
			return code(lo) && code(hi) && a <= b
		}
		return code(v)
	}
	return false
}

// --- services ---

func (s *Server) listServices(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []Service{}
	for _, n := range sortedKeys(s.services) {
		out = append(out, *s.services[n])
	}
	writeJSON(w, http.StatusOK, map[string]any{"services": out})
}

func (s *Server) getService(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.services[r.PathValue("name")]
	if v == nil {
		writeErr(w, fail(http.StatusNotFound, "", "no service %q", r.PathValue("name")))
		return
	}
	setETag(w, v.Version)
	writeJSON(w, http.StatusOK, v)
}

func (s *Server) createService(w http.ResponseWriter, r *http.Request) error {
	var v Service
	if err := decode(r, &v); err != nil {
		return err
	}
	if s.services[v.Name] != nil {
		return fail(http.StatusConflict, "name", "service %q already exists", v.Name)
	}
	return s.storeService(w, v, http.StatusCreated)
}

func (s *Server) putService(w http.ResponseWriter, r *http.Request) error {
	var v Service
	if err := decode(r, &v); err != nil {
		return err
	}
	name := r.PathValue("name")
	if v.Name != "" && v.Name != name {
		return fail(http.StatusBadRequest, "name", "the body names service %q but the path names %q", v.Name, name)
	}
	v.Name = name
	old := s.services[name]
	if old != nil && !old.Managed {
		return fail(http.StatusConflict, "", "service %q is defined in the operator's files and is read-only", name)
	}
	var ver string
	if old != nil {
		ver = old.Version
	}
	if err := precondition(r, ver); err != nil {
		return err
	}
	code := http.StatusOK
	if old == nil {
		code = http.StatusCreated
	}
	return s.storeService(w, v, code)
}

func (s *Server) storeService(w http.ResponseWriter, v Service, code int) error {
	if err := s.normService(&v); err != nil {
		return err
	}
	v.Managed, v.Version = true, s.nextVersion()
	s.services[v.Name] = &v
	setETag(w, v.Version)
	if code == http.StatusCreated {
		w.Header().Set("Location", "/v1/services/"+v.Name)
	}
	writeJSON(w, code, v)
	return nil
}

func (s *Server) deleteService(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	v := s.services[name]
	if v == nil {
		return fail(http.StatusNotFound, "", "no service %q", name)
	}
	if !v.Managed {
		return fail(http.StatusConflict, "", "service %q is defined in the operator's files and is read-only", name)
	}
	if err := precondition(r, v.Version); err != nil {
		return err
	}
	delete(s.services, name)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) normService(v *Service) error {
	bad := func(field, format string, args ...any) error {
		return fail(http.StatusBadRequest, field, format, args...)
	}
	name := strings.ToLower(strings.TrimSuffix(v.Name, "."))
	if !validHost(name) {
		return bad("name", "Invalid service name: %q is not a valid domain name.", v.Name)
	}
	inZone := false
	for _, z := range s.zones {
		inZone = inZone || name == z || strings.HasSuffix(name, "."+z)
	}
	if !inZone {
		return bad("name", "Service outside every zone: service %q is not in any declared zone; glbdns is authoritative only for its zones.", v.Name)
	}
	if v.Policy == "" {
		v.Policy = "round_robin"
	}
	if !slices.Contains([]string{"round_robin", "weighted", "client_subnet_hash"}, v.Policy) {
		return bad("policy", "Invalid policy: %q is not one of \"round_robin\", \"weighted\", \"client_subnet_hash\".", v.Policy)
	}
	if len(v.Pools) == 0 {
		return bad("pools", "Missing pools: service %q needs at least one pool.", v.Name)
	}
	kinds := map[bool]bool{} // host member → seen
	for i, pn := range v.Pools {
		p := s.pools[pn]
		if p == nil {
			return fail(http.StatusUnprocessableEntity, fmt.Sprintf("pools[%d]", i), "Unknown pool: service %q refers to pool %q, which is not defined.", v.Name, pn)
		}
		if slices.Index(v.Pools, pn) != i {
			return bad(fmt.Sprintf("pools[%d]", i), "Duplicate pool reference: service %q lists pool %q twice.", v.Name, pn)
		}
		for _, m := range p.Members {
			kinds[m.Host != ""] = true
		}
	}
	if kinds[true] && kinds[false] {
		return bad("pools", "Mixed member kinds: service %q mixes host-name members (answered as CNAME) with address members (answered as A/AAAA).", v.Name)
	}
	if v.TTL == nil {
		v.TTL = ptr(int64(defaultTTL))
	} else if *v.TTL < 0 || *v.TTL > maxTTL {
		return bad("ttl", "Invalid ttl: the TTL must be between 0 and %d.", maxTTL)
	}
	if v.Answers == 0 {
		v.Answers = 1
	} else if v.Answers < 1 || v.Answers > maxAnswers {
		return bad("answers", "Invalid answers: answers must be between 1 and %d.", maxAnswers)
	}
	if v.WhenAllDown == "" {
		v.WhenAllDown = "all"
	}
	if !slices.Contains([]string{"all", "servfail", "fallback"}, v.WhenAllDown) {
		return bad("when_all_down", "Invalid when_all_down: %q is not one of \"all\", \"servfail\", \"fallback\".", v.WhenAllDown)
	}
	switch {
	case v.WhenAllDown == "fallback" && v.Fallback == "":
		return bad("when_all_down", "Missing fallback: service %q answers from a fallback pool when all members are down, but sets no fallback pool.", v.Name)
	case v.WhenAllDown != "fallback" && v.Fallback != "":
		return bad("fallback", "Unexpected fallback: the fallback pool is used only with when_all_down = \"fallback\".")
	case v.Fallback != "" && s.pools[v.Fallback] == nil:
		return fail(http.StatusUnprocessableEntity, "fallback", "Unknown pool: service %q refers to pool %q, which is not defined.", v.Name, v.Fallback)
	}
	if v.HashPrefixV4 == nil {
		v.HashPrefixV4 = ptr(int64(defaultPrefix4))
	} else if *v.HashPrefixV4 < 0 || *v.HashPrefixV4 > 32 {
		return bad("hash_prefix_v4", "Invalid hash_prefix_v4: the prefix must be between 0 and 32.")
	}
	if v.HashPrefixV6 == nil {
		v.HashPrefixV6 = ptr(int64(defaultPrefix6))
	} else if *v.HashPrefixV6 < 0 || *v.HashPrefixV6 > 128 {
		return bad("hash_prefix_v6", "Invalid hash_prefix_v6: the prefix must be between 0 and 128.")
	}
	return nil
}

// --- drains and health ---

// liveDrain returns the drain of a member if it has not expired.
func (s *Server) liveDrain(pool, member string) *Drain {
	d := s.drains[[2]string{pool, member}]
	if d == nil {
		return nil
	}
	until, _ := time.Parse(time.RFC3339, d.Until)
	if !s.now().Before(until) {
		return nil
	}
	return d
}

func (s *Server) listDrains(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []Drain{}
	for _, p := range sortedKeys(s.pools) {
		for _, m := range s.pools[p].Members {
			if d := s.liveDrain(p, m.Name); d != nil {
				out = append(out, *d)
			}
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"drains": out})
}

func (s *Server) getDrain(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.liveDrain(r.PathValue("pool"), r.PathValue("member"))
	if d == nil {
		writeErr(w, fail(http.StatusNotFound, "", "member %q of pool %q is not drained", r.PathValue("member"), r.PathValue("pool")))
		return
	}
	writeJSON(w, http.StatusOK, d)
}

// postDrain drains a member; draining a drained member replaces its drain (new until and
// reason), which is how a drain is extended.
func (s *Server) postDrain(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Duration string `json:"duration"`
		Reason   string `json:"reason"`
	}
	if err := decode(r, &req); err != nil {
		return err
	}
	pool, member := r.PathValue("pool"), r.PathValue("member")
	p := s.pools[pool]
	if p == nil || !slices.ContainsFunc(p.Members, func(m Member) bool { return m.Name == member }) {
		return fail(http.StatusUnprocessableEntity, "", "Unknown member: pool %q has no member %q.", pool, member)
	}
	d, err := time.ParseDuration(req.Duration)
	if err != nil || d <= 0 {
		return fail(http.StatusBadRequest, "duration", "Invalid duration: %q is not a positive Go duration.", req.Duration)
	}
	dr := &Drain{Pool: pool, Member: member, Reason: req.Reason,
		Until: s.now().Add(d).UTC().Truncate(time.Second).Format(time.RFC3339)}
	s.drains[[2]string{pool, member}] = dr
	writeJSON(w, http.StatusCreated, dr)
	return nil
}

func (s *Server) deleteDrain(w http.ResponseWriter, r *http.Request) error {
	k := [2]string{r.PathValue("pool"), r.PathValue("member")}
	if s.liveDrain(k[0], k[1]) == nil {
		return fail(http.StatusNotFound, "", "member %q of pool %q is not drained", k[1], k[0])
	}
	delete(s.drains, k)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) getHealth(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	type entry struct {
		Pool      string `json:"pool"`
		Member    string `json:"member"`
		Status    string `json:"status"`
		Drained   bool   `json:"drained"`
		Reporters int    `json:"reporters"`
	}
	out := []entry{}
	for _, pn := range sortedKeys(s.pools) {
		for _, m := range s.pools[pn].Members {
			h, ok := s.health[[2]string{pn, m.Name}]
			if !ok {
				h = health{status: "unknown"}
			}
			out = append(out, entry{pn, m.Name, h.status, s.liveDrain(pn, m.Name) != nil, h.reporters})
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"members": out})
}

// --- helpers ---

func validName(n string) bool {
	if n == "" || len(n) > 253 {
		return false
	}
	for _, r := range n {
		if !(r == '-' || r == '_' || r == '.' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return true
}

// validHost accepts a DNS host name (RFC 1123 section 2.1), with an optional final dot.
func validHost(h string) bool {
	h = strings.TrimSuffix(h, ".")
	if h == "" || len(h) > 253 {
		return false
	}
	for _, l := range strings.Split(h, ".") {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for _, r := range l {
			if !(r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
				return false
			}
		}
	}
	return true
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func ptr[T any](v T) *T { return &v }
