package admin

// The REST API of docs/admin-api.md: pools, services and drains, served from a
// policy/store.Store. Every write is validated by the store (the policy package's own
// loader), which publishes the snapshot that validated it before the write returns, so
// the write is serving when it is answered.
//
// Decisions beyond the doc: a body over 1 MiB gets 413; a JSON type error names the field
// without array indexes ("members.weight", encoding/json does not report them), while
// policy errors name it with them ("members[1].address"); writes need the bearer token,
// and reads too when one is set (compared as SHA-256 digests with crypto/subtle, so
// neither content nor length leaks through timing); a write that is stored but whose
// snapshot the daemon refused (store.ErrNotServing) is a 500 that says so; check header
// values are never answered, and "(set)" on a write keeps the stored one (api.HeaderMask,
// storePool).

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/glbdns/glbdns/api"
	"github.com/glbdns/glbdns/internal/cli"
	"github.com/glbdns/glbdns/policy/store"
)

// maxBody bounds a request body: the largest sane pool is a few hundred members, well
// under 1 MiB, and the bound keeps a client from making the server buffer without limit.
const maxBody = 1 << 20

// LoadToken reads the admin token from file (when file is not ""), else from the
// environment variable GLBDNS_ADMIN_TOKEN, trimming surrounding white space. It returns ""
// when neither is set, which leaves the write API off.
func LoadToken(file string) (string, error) { return LoadTokenFrom(file, "GLBDNS_ADMIN_TOKEN") }

// LoadTokenFrom is LoadToken for any token: from file, else the environment variable env
// (cli.Token, which healthd's report token shares).
func LoadTokenFrom(file, env string) (string, error) { return cli.Token(file, env) }

// routeAPI registers the /v1/pools, /v1/services, /v1/drains,
// /v1/pools/{pool}/members/{member}/drain and /v1/health endpoints on mux.
func (a *Admin) routeAPI(mux *http.ServeMux) {
	route := func(path string, methods map[string]http.HandlerFunc) {
		allow := make([]string, 0, len(methods)+1)
		for m, h := range methods {
			mux.HandleFunc(m+" "+path, h)
			allow = append(allow, m)
			if m == http.MethodGet {
				allow = append(allow, http.MethodHead)
			}
		}
		sort.Strings(allow)
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s not allowed", r.Method), "")
		})
	}
	route("/v1/pools", map[string]http.HandlerFunc{"GET": a.listPools, "POST": a.write(a.postPool)})
	route("/v1/pools/{name}", map[string]http.HandlerFunc{"GET": a.getPool, "PUT": a.write(a.putPool), "DELETE": a.write(a.deletePool)})
	route("/v1/services", map[string]http.HandlerFunc{"GET": a.listServices, "POST": a.write(a.postService)})
	route("/v1/services/{name}", map[string]http.HandlerFunc{"GET": a.getService, "PUT": a.write(a.putService), "DELETE": a.write(a.deleteService)})
	route("/v1/drains", map[string]http.HandlerFunc{"GET": a.listDrains})
	route("/v1/pools/{pool}/members/{member}/drain", map[string]http.HandlerFunc{"GET": a.getDrain, "POST": a.write(a.postDrain), "DELETE": a.write(a.deleteDrain)})
	route("/v1/health", map[string]http.HandlerFunc{"GET": a.health})
}

// write wraps a write handler with the bearer-token check (RFC 6750 section 3: 401 with
// WWW-Authenticate when the request carries no usable credentials, 403 for a wrong token).
func (a *Admin) write(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if a.cfg.Token == "" {
			writeError(w, http.StatusForbidden, "write API disabled: no admin token configured", "")
			return
		}
		if a.authorized(w, r) {
			h(w, r)
		}
	}
}

// authorized checks r's bearer token against the configured one and answers 401 or 403
// when it does not match.
func (a *Admin) authorized(w http.ResponseWriter, r *http.Request) bool {
	sum, ok := bearer(w, r)
	if !ok {
		return false
	}
	if subtle.ConstantTimeCompare(sum[:], a.tokenSum[:]) != 1 {
		w.Header().Set("WWW-Authenticate", `Bearer realm="glbdns", error="invalid_token"`)
		writeError(w, http.StatusForbidden, "wrong admin token", "")
		return false
	}
	return true
}

// bearer is the SHA-256 of r's bearer token, to compare in constant time; it answers 401
// when r carries none.
func bearer(w http.ResponseWriter, r *http.Request) ([sha256.Size]byte, bool) {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	tok = strings.TrimSpace(tok)
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="glbdns"`)
		writeError(w, http.StatusUnauthorized, "missing or malformed Authorization header: want \"Bearer TOKEN\"", "")
		return [sha256.Size]byte{}, false
	}
	return sha256.Sum256([]byte(tok)), true
}

// guard makes reads need the token too when one is configured: pools describe the
// backends (their check header values are masked all the same: listPools), the state
// names the policy's files.
// /healthz and /readyz stay open for load balancers and orchestrators, and /metrics and
// the status page (with the /v1/state it reads) when Config.PublicMetrics and
// PublicStatus open them. Writes check the token themselves (write).
func (a *Admin) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.cfg.Token != "" && (r.Method == http.MethodGet || r.Method == http.MethodHead) && !a.public(r.URL.Path) {
			if !a.authorized(w, r) {
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

func (a *Admin) public(path string) bool {
	switch path {
	case "/healthz", "/readyz":
		return true
	case "/v1/activity":
		return true // the report token reads it too: activity checks either (activity.go)
	case "/metrics":
		return a.cfg.PublicMetrics
	case "/", "/v1/state", "/v1/history":
		return a.cfg.PublicStatus
	}
	return false
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v) // the client went away: nothing to do
}

func writeError(w http.ResponseWriter, status int, msg, field string) {
	writeJSON(w, status, api.Error{Error: msg, Field: field})
}

// storeError answers a store error with the status docs/admin-api.md gives it.
func (a *Admin) storeError(w http.ResponseWriter, err error) {
	var ve *store.ValidationError
	field, msg := "", err.Error()
	var all []api.FieldError
	if errors.As(err, &ve) {
		field, msg, all = ve.Field, ve.Reason, ve.All
	}
	var status int
	switch {
	case errors.Is(err, store.ErrNotFound):
		status = http.StatusNotFound
	case errors.Is(err, store.ErrReadOnly), errors.Is(err, store.ErrExists), errors.Is(err, store.ErrReferenced):
		status = http.StatusConflict
	case errors.Is(err, store.ErrPreconditionFailed):
		status = http.StatusPreconditionFailed
	case errors.Is(err, store.ErrUnknownRef):
		status = http.StatusUnprocessableEntity
	case errors.Is(err, store.ErrInvalid):
		status = http.StatusBadRequest
	case errors.Is(err, store.ErrUnavailable):
		// The shared store (etcd) has no quorum: the node keeps answering DNS from its
		// policy, and writes wait for etcd (RFC 9110 section 15.6.4).
		w.Header().Set("Retry-After", "5")
		status = http.StatusServiceUnavailable
	case errors.Is(err, store.ErrConflict):
		// Other nodes kept writing while this write was decided again and again.
		status, msg = http.StatusConflict, "the managed objects kept changing under this write; try again: "+msg
	case errors.Is(err, store.ErrNotServing):
		a.log.Error("admin api write stored but not serving", "err", err)
		status = http.StatusInternalServerError
	default:
		a.log.Error("admin api write failed", "err", err)
		status, msg = http.StatusInternalServerError, "internal error: "+err.Error()
	}
	writeJSON(w, status, api.Error{Error: msg, Field: field, Errors: all})
}

// decode reads a JSON body into v: unknown fields refused, at most maxBody bytes, one value.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.More() {
		err = errors.New("trailing data after the JSON value")
	}
	if err == nil {
		return true
	}
	var (
		typeErr *json.UnmarshalTypeError
		maxErr  *http.MaxBytesError
		field   string
		status  = http.StatusBadRequest
		msg     = "malformed JSON: " + err.Error()
	)
	switch {
	case errors.As(err, &maxErr):
		status, msg = http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes", maxBody)
	case errors.As(err, &typeErr):
		field = typeErr.Field
		msg = fmt.Sprintf("%s must be %s, not %s", typeErr.Field, jsonType(typeErr.Type.Kind().String()), typeErr.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field = strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		msg = fmt.Sprintf("unknown field %q", field)
	case errors.Is(err, io.EOF):
		msg = "empty body: a JSON object is required"
	}
	writeError(w, status, msg, field)
	return false
}

func jsonType(kind string) string {
	switch kind {
	case "int", "int64", "uint32", "float64", "ptr":
		return "a number"
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "slice":
		return "an array"
	case "map", "struct":
		return "an object"
	}
	return kind
}

// precondition reads If-Match and If-None-Match (RFC 9110 section 13.1): entity tags are
// quoted versions; a weak W/ prefix is accepted and ignored.
func precondition(r *http.Request) store.Precondition {
	tag := func(h string) string {
		h = strings.TrimSpace(h)
		h = strings.TrimPrefix(h, "W/")
		return strings.Trim(h, `"`)
	}
	return store.Precondition{IfMatch: tag(r.Header.Get("If-Match")), IfNoneMatch: tag(r.Header.Get("If-None-Match"))}
}

func etag(w http.ResponseWriter, version string) { w.Header().Set("ETag", `"`+version+`"`) }

// listPools, getPool and storePool answer pools with their check headers masked
// (api.MaskHeaders): every read of a pool goes through one of them.
func (a *Admin) listPools(w http.ResponseWriter, r *http.Request) {
	pools := a.cfg.Store.ListPools()
	for i := range pools {
		pools[i] = api.MaskHeaders(pools[i])
	}
	writeJSON(w, http.StatusOK, api.PoolList{Pools: pools})
}

func (a *Admin) getPool(w http.ResponseWriter, r *http.Request) {
	p, err := a.cfg.Store.GetPool(r.PathValue("name"))
	if err != nil {
		a.storeError(w, err)
		return
	}
	etag(w, p.Version)
	writeJSON(w, http.StatusOK, api.MaskHeaders(p))
}

func (a *Admin) postPool(w http.ResponseWriter, r *http.Request) {
	var p api.Pool
	if !decode(w, r, &p) {
		return
	}
	pre := precondition(r)
	pre.Create = true
	a.storePool(w, p, pre)
}

func (a *Admin) putPool(w http.ResponseWriter, r *http.Request) {
	var p api.Pool
	if !decode(w, r, &p) {
		return
	}
	name := r.PathValue("name")
	if p.Name == "" {
		p.Name = name
	} else if p.Name != name {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("name %q does not match the path's %q", p.Name, name), "name")
		return
	}
	a.storePool(w, p, precondition(r))
}

// maxUnmaskTries bounds the tries of a write whose masked headers were resolved from a
// version that another write replaced before it was stored; each try reads it again.
const maxUnmaskTries = 3

func (a *Admin) storePool(w http.ResponseWriter, p api.Pool, pre store.Precondition) {
	var (
		stored  api.Pool
		created bool
		err     error
	)
	for try := 1; ; try++ {
		q, qpre, merr := a.unmask(p, pre)
		var bad *maskError
		if errors.As(merr, &bad) {
			writeError(w, http.StatusBadRequest, bad.msg, bad.field)
			return
		}
		if err = merr; err == nil {
			stored, created, err = a.cfg.Store.PutPool(q, qpre)
		}
		if !errors.Is(err, store.ErrPreconditionFailed) || qpre.IfMatch == pre.IfMatch {
			break // stored, or refused on the client's own terms
		}
		if try == maxUnmaskTries {
			err = fmt.Errorf("pool %q changed while its masked headers were resolved: %w", p.Name, store.ErrConflict)
			break
		}
	}
	if err != nil {
		a.storeError(w, err)
		return
	}
	etag(w, stored.Version)
	status := http.StatusOK
	if created {
		status = http.StatusCreated
		w.Header().Set("Location", "/v1/pools/"+url.PathEscape(stored.Name))
	}
	writeJSON(w, status, api.MaskHeaders(stored))
}

// unmask resolves the masked headers of a pool being written: a header whose value is
// api.HeaderMask takes the value stored under its name (compared as HTTP compares field
// names, case-insensitively, when no exact name is stored) in the stored check of the
// same name. The write is then made conditional on the version the values were read
// from, so that a value changed in between is never written back over it: storePool
// reads again when that condition fails. An If-Match the client sent must name that
// version (store.ErrPreconditionFailed otherwise, as the store would answer). A masked
// header with nothing stored for it is a *maskError (the API would otherwise store the
// mask itself). A pool with no masked header is written as it is.
func (a *Admin) unmask(p api.Pool, pre store.Precondition) (api.Pool, store.Precondition, error) {
	masked := false
	for _, c := range p.Checks {
		for _, v := range c.Headers {
			masked = masked || v == api.HeaderMask
		}
	}
	if !masked {
		return p, pre, nil
	}
	cur, err := a.cfg.Store.GetPool(p.Name)
	exists := err == nil
	if exists && pre.IfMatch != "" && pre.IfMatch != "*" && pre.IfMatch != cur.Version {
		// The store would answer 412 itself, but against the version it holds when it
		// decides the write, which may be a later one than the values were read from.
		return p, pre, fmt.Errorf("pool %q: if-match: the version is %q, not %q: %w", p.Name, cur.Version, pre.IfMatch, store.ErrPreconditionFailed)
	}
	if exists && !cur.Managed {
		pre.IfMatch = cur.Version // the store refuses it as read-only, whatever its headers
		return p, pre, nil
	}
	checks := make([]api.Check, len(p.Checks))
	for i, c := range p.Checks {
		checks[i] = c
		if c.Headers == nil {
			continue
		}
		var stored map[string]string
		for _, sc := range cur.Checks {
			if sc.Name == c.Name {
				stored = sc.Headers
			}
		}
		hs := make(map[string]string, len(c.Headers))
		for k, v := range c.Headers {
			if v == api.HeaderMask {
				var ok bool
				if v, ok = storedHeader(stored, k); !ok {
					where := fmt.Sprintf("pool %q has no check %q with a header %q", p.Name, c.Name, k)
					if !exists {
						where = fmt.Sprintf("pool %q does not exist", p.Name)
					}
					return p, pre, &maskError{field: fmt.Sprintf("checks[%d].headers.%s", i, k),
						msg: fmt.Sprintf("header %q is %q, which keeps the stored value, but %s", k, api.HeaderMask, where)}
				}
			}
			hs[k] = v
		}
		checks[i].Headers = hs
	}
	p.Checks = checks
	pre.IfMatch = cur.Version
	return p, pre, nil
}

// maskError is a masked header that has no stored value to keep (400).
type maskError struct{ field, msg string }

func (e *maskError) Error() string { return e.field + ": " + e.msg }

// storedHeader is the value stored under name: its exact spelling first, else the one
// spelling of it in another case.
func storedHeader(stored map[string]string, name string) (string, bool) {
	if v, ok := stored[name]; ok {
		return v, true
	}
	var found []string
	for k, v := range stored {
		if strings.EqualFold(k, name) {
			found = append(found, v)
		}
	}
	if len(found) == 1 {
		return found[0], true
	}
	return "", false
}

func (a *Admin) deletePool(w http.ResponseWriter, r *http.Request) {
	if err := a.cfg.Store.DeletePool(r.PathValue("name"), precondition(r)); err != nil {
		a.storeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *Admin) listServices(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string][]api.Service{"services": a.cfg.Store.ListServices()})
}

func (a *Admin) getService(w http.ResponseWriter, r *http.Request) {
	s, err := a.cfg.Store.GetService(r.PathValue("name"))
	if err != nil {
		a.storeError(w, err)
		return
	}
	etag(w, s.Version)
	writeJSON(w, http.StatusOK, s)
}

func (a *Admin) postService(w http.ResponseWriter, r *http.Request) {
	var s api.Service
	if !decode(w, r, &s) {
		return
	}
	pre := precondition(r)
	pre.Create = true
	a.storeService(w, s, pre)
}

func (a *Admin) putService(w http.ResponseWriter, r *http.Request) {
	var s api.Service
	if !decode(w, r, &s) {
		return
	}
	name := r.PathValue("name")
	if s.Name == "" {
		s.Name = name
	} else if api.ServiceName(s.Name) != api.ServiceName(name) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("name %q does not match the path's %q", s.Name, name), "name")
		return
	}
	a.storeService(w, s, precondition(r))
}

func (a *Admin) storeService(w http.ResponseWriter, s api.Service, pre store.Precondition) {
	s, created, err := a.cfg.Store.PutService(s, pre)
	if err != nil {
		a.storeError(w, err)
		return
	}
	etag(w, s.Version)
	status := http.StatusOK
	if created {
		status = http.StatusCreated
		w.Header().Set("Location", "/v1/services/"+url.PathEscape(s.Name))
	}
	writeJSON(w, status, s)
}

func (a *Admin) deleteService(w http.ResponseWriter, r *http.Request) {
	if err := a.cfg.Store.DeleteService(r.PathValue("name"), precondition(r)); err != nil {
		a.storeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *Admin) listDrains(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, api.DrainList{Drains: a.cfg.Store.Drains(time.Now())})
}

func (a *Admin) getDrain(w http.ResponseWriter, r *http.Request) {
	d, err := a.cfg.Store.GetDrain(r.PathValue("pool"), r.PathValue("member"), time.Now())
	if err != nil {
		a.storeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, d)
}

func (a *Admin) postDrain(w http.ResponseWriter, r *http.Request) {
	var req api.DrainRequest
	if !decode(w, r, &req) {
		return
	}
	d, err := time.ParseDuration(req.Duration)
	if err != nil || d <= 0 {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("duration must be a positive Go duration such as \"10m\", not %q", req.Duration), "duration")
		return
	}
	dr, err := a.cfg.Store.Drain(r.PathValue("pool"), r.PathValue("member"), d, req.Reason)
	if err != nil {
		a.storeError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, dr)
}

func (a *Admin) deleteDrain(w http.ResponseWriter, r *http.Request) {
	if err := a.cfg.Store.Undrain(r.PathValue("pool"), r.PathValue("member")); err != nil {
		a.storeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// health answers the merged view the DNS server answers from: every member of the serving
// snapshot with its verdict, whether a drain is in force, and how many fresh reporters
// stand behind the verdict.
func (a *Admin) health(w http.ResponseWriter, r *http.Request) {
	ms := []api.MemberHealth{}
	if v := a.view(); v != nil {
		for _, m := range v.Snapshot().Members {
			_, drained := v.Drain(m)
			mh := api.MemberHealth{Pool: m.Pool, Member: m.Name, Status: v.Status(m).String(),
				Drained: drained, Reporters: v.Fresh()}
			if l, ok := v.Load(m); ok {
				mh.Load = &l
			}
			ms = append(ms, mh)
		}
	}
	sort.Slice(ms, func(i, j int) bool {
		if ms[i].Pool != ms[j].Pool {
			return ms[i].Pool < ms[j].Pool
		}
		return ms[i].Member < ms[j].Member
	})
	writeJSON(w, http.StatusOK, api.HealthList{Members: ms})
}
