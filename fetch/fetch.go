// Package fetch keeps the operator's policy files as an HTTP(S) URL serves them: a single
// .hcl file, or a tar.gz of a policy folder, the way serverless deployments keep their
// configuration in object storage (S3, GCS, a CDN). A node then needs no policy on disk.
//
// A fetch is a conditional GET (If-None-Match with the last ETag, If-Modified-Since with
// the last Last-Modified), so a poll of an unchanged policy costs a 304 and no parse. A
// download that fails (a network error, a status other than 200 and 304, a body over the
// bounds, an archive that does not unpack) is refused with the reason, and the files last
// fetched stay: the policy store compiles what Files returns, and refuses a policy with
// errors as it refuses a bad file, so a bad publication never replaces a good one.
//
// A Policy is the store's Operator (policy/store): Files(true) fetches (a Load: the start,
// SIGHUP, a change the poll saw), Files(false) returns the files last fetched (an API
// write, which must not wait on the network), and Changed signals when a poll (Run)
// fetched files unlike the last ones.
//
// The files are named after the URL without its query, which may carry a signature or a
// token: "https://bucket.example/glb.hcl", and for an archive's members the archive's URL
// and the member's path, "https://bucket.example/policy.tar.gz/web.hcl". The policy files
// are the archive folder's *.hcl files (not recursive, as a policy directory is read): the
// archive's root, or its one top folder when every member is inside it (what
// `tar czf policy.tar.gz policy/` makes). Its other files are the zone files its zone
// blocks name, relative to the folder; ReadFile gives them to the compiler.
package fetch

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/glbdns/glbdns/policy"
)

// Bounds of a download: a 10,000-service policy is a few MB, compressed much less.
const (
	// MaxBody bounds the response body (an archive compressed, or the .hcl file).
	MaxBody = 64 << 20
	// MaxUnpacked bounds the sum of an archive's members unpacked (a gzip bomb).
	MaxUnpacked = 256 << 20
	// MaxMembers bounds an archive's members.
	MaxMembers = 100_000
)

// DefaultInterval is the poll period of Run when Config.Interval is 0.
const DefaultInterval = 30 * time.Second

// DefaultTimeout bounds one fetch when Config.Timeout is 0.
const DefaultTimeout = 10 * time.Second

// Config says where the policy is and how it is fetched.
type Config struct {
	// URL is the policy's http:// or https:// URL.
	URL string
	// Interval is the poll period of Run (0: DefaultInterval; negative: no poll, only
	// Files(true) fetches: SIGHUP).
	Interval time.Duration
	// Timeout bounds one fetch, the body included (0: DefaultTimeout).
	Timeout time.Duration
	// CAFile, when set, is a PEM file of the CAs that verify the server, instead of the
	// system's (a private object store).
	CAFile string
	// Client, when set, makes the requests (tests); CAFile is then ignored.
	Client *http.Client
	// Logger receives a line per fetch that changed the files or failed; nil:
	// slog.Default().
	Logger *slog.Logger
}

// Policy is the operator's files as the URL last served them.
type Policy struct {
	cfg     Config
	name    string // the URL without its query: the files' names start with it
	client  *http.Client
	log     *slog.Logger
	changed chan struct{}

	mu      sync.Mutex // serializes fetches and guards the fields below
	files   []policy.File
	others  map[string][]byte // an archive's other members by name (zone files)
	etag    string
	lastMod string
	sum     [sha256.Size]byte // of the body last taken
	ok      bool              // files hold a download

	// Counters of fetches by outcome, for metrics and tests.
	Fetched, NotModified, Failed atomic.Uint64
}

// New checks cfg and makes a Policy that has fetched nothing yet.
func New(cfg Config) (*Policy, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("policy URL: %w", err)
	}
	if u.Scheme != "https" && u.Scheme != "http" || u.Host == "" {
		return nil, fmt.Errorf("policy URL %q: not an http:// or https:// URL", Redact(cfg.URL))
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Interval == 0 {
		cfg.Interval = DefaultInterval
	}
	p := &Policy{cfg: cfg, name: Redact(cfg.URL), client: cfg.Client, log: cfg.Logger,
		changed: make(chan struct{}, 1)}
	if p.log == nil {
		p.log = slog.Default()
	}
	if p.client == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		if cfg.CAFile != "" {
			pem, err := os.ReadFile(cfg.CAFile)
			if err != nil {
				return nil, fmt.Errorf("policy URL CA: %w", err)
			}
			roots := x509.NewCertPool()
			if !roots.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("policy URL CA %s: no PEM certificate", cfg.CAFile)
			}
			tr.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
		}
		p.client = &http.Client{Transport: tr}
	}
	return p, nil
}

// Redact is a URL without its query and fragment, nor any user and password: what a log
// line or a diagnostic may show of it.
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	u.RawQuery, u.Fragment, u.User = "", "", nil
	return u.String()
}

// Name is the URL without its query: the prefix of every file's name.
func (p *Policy) Name() string { return p.name }

// Changed receives, coalesced, when Run fetched files unlike the last ones.
func (p *Policy) Changed() <-chan struct{} { return p.changed }

// Files returns the operator's files. With fresh it fetches first and returns the error of
// a fetch that failed (the files last fetched stay for the next call without fresh);
// without, it returns the files last fetched, fetching only when none has succeeded yet.
func (p *Policy) Files(fresh bool) ([]policy.File, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if fresh || !p.ok {
		if _, err := p.fetchLocked(); err != nil {
			return nil, err
		}
	}
	return p.files, nil
}

// ReadFile reads a member of the archive last fetched by its file name (a zone file);
// fs.ErrNotExist for any other name.
func (p *Policy) ReadFile(name string) ([]byte, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if data, ok := p.others[path.Clean(name)]; ok { // the compiler joins with filepath: "https:/host/..."
		return data, nil
	}
	for _, f := range p.files {
		if f.Name == name {
			return f.Data, nil
		}
	}
	return nil, &fs.PathError{Op: "read", Path: name, Err: fs.ErrNotExist}
}

// Run polls the URL every Interval until ctx is done and signals Changed when the files
// changed. A failed poll is logged and counted; the files last fetched stay.
func (p *Policy) Run(ctx context.Context) {
	if p.cfg.Interval < 0 {
		return
	}
	t := time.NewTicker(p.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		p.mu.Lock()
		changed, _ := p.fetchLocked()
		p.mu.Unlock()
		if changed {
			select {
			case p.changed <- struct{}{}:
			default:
			}
		}
	}
}

// fetchLocked makes one conditional GET and takes a new body: changed reports files
// unlike the last ones. Called with p.mu held.
func (p *Policy) fetchLocked() (changed bool, err error) {
	changed, err = p.get()
	switch {
	case err != nil:
		p.Failed.Add(1)
		p.log.Warn("policy fetch failed; the files last fetched stay", "url", p.name, "err", err)
	case changed:
		p.Fetched.Add(1)
		p.log.Info("policy fetched", "url", p.name, "files", len(p.files), "etag", p.etag)
	default:
		p.NotModified.Add(1)
	}
	return changed, err
}

func (p *Policy) get() (bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), p.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.cfg.URL, nil)
	if err != nil {
		return false, fmt.Errorf("fetch %s: %w", p.name, err)
	}
	if p.ok {
		if p.etag != "" {
			req.Header.Set("If-None-Match", p.etag)
		}
		if p.lastMod != "" {
			req.Header.Set("If-Modified-Since", p.lastMod)
		}
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return false, fmt.Errorf("fetch %s: %w", p.name, redactErr(err, p.cfg.URL, p.name))
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotModified && p.ok:
		return false, nil
	case resp.StatusCode != http.StatusOK:
		return false, fmt.Errorf("fetch %s: %s", p.name, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxBody+1))
	if err != nil {
		return false, fmt.Errorf("fetch %s: %w", p.name, redactErr(err, p.cfg.URL, p.name))
	}
	if len(body) > MaxBody {
		return false, fmt.Errorf("fetch %s: the body is over %d bytes", p.name, MaxBody)
	}
	sum := sha256.Sum256(body)
	etag, lastMod := resp.Header.Get("ETag"), resp.Header.Get("Last-Modified")
	if p.ok && sum == p.sum {
		p.etag, p.lastMod = etag, lastMod // a server without validators: the body says
		return false, nil
	}
	files, others, err := p.unpack(body)
	if err != nil {
		return false, fmt.Errorf("fetch %s: %w", p.name, err)
	}
	p.files, p.others, p.sum, p.etag, p.lastMod, p.ok = files, others, sum, etag, lastMod, true
	return true, nil
}

// redactErr replaces the URL in err's text with its redacted form: net/http's errors
// quote the whole URL, query included.
func redactErr(err error, raw, redacted string) error {
	if raw == redacted || !strings.Contains(err.Error(), raw) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), raw, redacted))
}

// unpack makes the files of a body: a gzip stream is a tar archive of a policy folder,
// anything else is the policy file itself.
func (p *Policy) unpack(body []byte) ([]policy.File, map[string][]byte, error) {
	if len(body) < 2 || body[0] != 0x1f || body[1] != 0x8b {
		return []policy.File{{Name: p.name, Data: body}}, nil, nil
	}
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		return nil, nil, fmt.Errorf("archive: %w", err)
	}
	members := map[string][]byte{}
	var order []string
	total := 0
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, nil, fmt.Errorf("archive: %w", err)
		}
		switch h.Typeflag {
		case tar.TypeDir, tar.TypeXGlobalHeader:
			continue
		case tar.TypeReg:
		default:
			return nil, nil, fmt.Errorf("archive member %q: only regular files and folders are taken (type %q)", h.Name, h.Typeflag)
		}
		name := path.Clean(strings.TrimPrefix(h.Name, "./"))
		if !fs.ValidPath(name) || name == "." {
			return nil, nil, fmt.Errorf("archive member %q: not a relative path inside the archive", h.Name)
		}
		if _, dup := members[name]; dup {
			return nil, nil, fmt.Errorf("archive member %q: twice in the archive", h.Name)
		}
		if len(members) == MaxMembers {
			return nil, nil, fmt.Errorf("archive: over %d members", MaxMembers)
		}
		data, err := io.ReadAll(io.LimitReader(tr, int64(MaxUnpacked-total)+1))
		if err != nil {
			return nil, nil, fmt.Errorf("archive member %q: %w", h.Name, err)
		}
		if total += len(data); total > MaxUnpacked {
			return nil, nil, fmt.Errorf("archive: over %d bytes unpacked", MaxUnpacked)
		}
		members[name] = data
		order = append(order, name)
	}
	if _, err := io.Copy(io.Discard, zr); err != nil { // the gzip checksum
		return nil, nil, fmt.Errorf("archive: %w", err)
	}
	root := topFolder(order)
	var files []policy.File
	others := map[string][]byte{}
	for _, name := range order {
		full := p.name + "/" + name
		rel := strings.TrimPrefix(name, root)
		if !strings.Contains(rel, "/") && strings.HasSuffix(rel, ".hcl") {
			files = append(files, policy.File{Name: full, Data: members[name]})
			continue
		}
		others[path.Clean(full)] = members[name]
	}
	slices.SortFunc(files, func(a, b policy.File) int { return strings.Compare(a.Name, b.Name) })
	if len(files) == 0 {
		return nil, nil, fmt.Errorf("archive: no *.hcl file in its folder %q", "/"+root)
	}
	return files, others, nil
}

// topFolder is "DIR/" when every one of names is inside folder DIR, else "".
func topFolder(names []string) string {
	var top string
	for i, n := range names {
		dir, _, ok := strings.Cut(n, "/")
		if !ok || i > 0 && dir != top {
			return ""
		}
		top = dir
	}
	if top == "" {
		return ""
	}
	return top + "/"
}

// Collector exports the fetches by result as NAMESPACE_policy_fetches_total: "changed"
// (new files taken), "unchanged" (a 304, or the same body) and "failed" (the files last
// fetched stay).
func (p *Policy) Collector(namespace string) prometheus.Collector {
	return fetchCollector{p, prometheus.NewDesc(namespace+"_policy_fetches_total",
		"Fetches of the policy from its URL, by result: changed (new files taken), unchanged (304 or the same body), failed (the files last fetched keep serving).",
		[]string{"result"}, prometheus.Labels{})}
}

type fetchCollector struct {
	p    *Policy
	desc *prometheus.Desc
}

func (c fetchCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c fetchCollector) Collect(ch chan<- prometheus.Metric) {
	for _, r := range []struct {
		result string
		n      *atomic.Uint64
	}{{"changed", &c.p.Fetched}, {"unchanged", &c.p.NotModified}, {"failed", &c.p.Failed}} {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.CounterValue, float64(r.n.Load()), r.result)
	}
}
