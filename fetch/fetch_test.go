package fetch

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/pem"
	"errors"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/glbdns/glbdns/internal/objstore"
	"github.com/glbdns/glbdns/policy"
)

// targz packs members (name, content; a name ending in "/" is a folder) as tar.gz.
func targz(t *testing.T, members ...string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for i := 0; i < len(members); i += 2 {
		h := &tar.Header{Name: members[i], Mode: 0o644, Size: int64(len(members[i+1])), Typeflag: tar.TypeReg}
		if strings.HasSuffix(members[i], "/") {
			h.Typeflag, h.Size, h.Mode = tar.TypeDir, 0, 0o755
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(members[i+1])); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func newPolicy(t *testing.T, url string, client *http.Client) *Policy {
	t.Helper()
	p, err := New(Config{URL: url, Interval: -1, Timeout: 5 * time.Second, Client: client})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSingleFileConditionalGET(t *testing.T) {
	o := objstore.New([]byte("pool \"a\" {}\n"))
	srv := httptest.NewServer(o)
	defer srv.Close()
	p := newPolicy(t, srv.URL+"/glb.hcl?X-Signature=secret", srv.Client())

	files, err := p.Files(true)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 1 || files[0].Name != srv.URL+"/glb.hcl" || string(files[0].Data) != "pool \"a\" {}\n" {
		t.Fatalf("files = %+v, want the body named after the URL without its query", files)
	}
	// Unchanged: a 304, the same files, counted as unchanged.
	if _, err := p.Files(true); err != nil {
		t.Fatal(err)
	}
	if c := o.Counts(); c.Full+c.NotModified != 2 || c.Conditional != 1 {
		t.Fatalf("requests %+v; want 2, 1 conditional", c)
	}
	if p.Fetched.Load() != 1 || p.NotModified.Load() != 1 {
		t.Fatalf("fetched %d, not modified %d; want 1 and 1", p.Fetched.Load(), p.NotModified.Load())
	}
	// A write reads the files last fetched, with no request.
	if _, err := p.Files(false); err != nil {
		t.Fatal(err)
	}
	if c := o.Counts(); c.Full+c.NotModified != 2 {
		t.Fatalf("Files(false) made a request (%+v)", c)
	}
	o.Put([]byte("pool \"b\" {}\n"), 0)
	files, _ = p.Files(true)
	if string(files[0].Data) != "pool \"b\" {}\n" {
		t.Fatalf("after a change: %q", files[0].Data)
	}
}

func TestArchiveWithTopFolderAndZoneFile(t *testing.T) {
	o := objstore.New(targz(t,
		"policy/", "",
		"policy/b.hcl", "b",
		"policy/a.hcl", "a",
		"policy/zones/example.zone", "zone data",
		"policy/sub/ignored.hcl", "not read: the folder is not read recursively",
	))
	srv := httptest.NewServer(o)
	defer srv.Close()
	p := newPolicy(t, srv.URL+"/p.tar.gz", srv.Client())
	files, err := p.Files(true)
	if err != nil {
		t.Fatal(err)
	}
	base := srv.URL + "/p.tar.gz/policy/"
	if len(files) != 2 || files[0].Name != base+"a.hcl" || files[1].Name != base+"b.hcl" {
		t.Fatalf("files = %v, want a.hcl and b.hcl of the top folder, sorted", names(files))
	}
	// The compiler names a zone file by filepath.Join of the .hcl file's folder.
	zone := filepath.Join(filepath.Dir(files[0].Name), "zones/example.zone")
	data, err := p.ReadFile(zone)
	if err != nil || string(data) != "zone data" {
		t.Fatalf("ReadFile(%q) = %q, %v", zone, data, err)
	}
	if _, err := p.ReadFile(filepath.Join(filepath.Dir(files[0].Name), "missing.zone")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a missing member: %v, want fs.ErrNotExist", err)
	}
}

func TestBadDownloadsKeepTheLastFiles(t *testing.T) {
	good := targz(t, "a.hcl", "good")
	corrupt := append([]byte(nil), good...)
	corrupt[len(corrupt)-5] ^= 0xff // the gzip trailer's checksum
	cases := []struct {
		name   string
		body   []byte
		status int
		want   string
	}{
		{"server error", nil, http.StatusServiceUnavailable, "503"},
		{"not found", nil, http.StatusNotFound, "404"},
		{"corrupt gzip", corrupt, 0, "archive"},
		{"truncated", good[:len(good)/2], 0, "archive"},
		{"parent path", targz(t, "../a.hcl", "x"), 0, "not a relative path"},
		{"absolute path", targz(t, "/etc/a.hcl", "x"), 0, "not a relative path"},
		{"twice", targz(t, "a.hcl", "x", "./a.hcl", "y"), 0, "twice"},
		{"no policy file", targz(t, "readme.txt", "x"), 0, "no *.hcl file"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := objstore.New(good)
			srv := httptest.NewServer(o)
			defer srv.Close()
			p := newPolicy(t, srv.URL+"/p.tgz?token=hidden", srv.Client())
			if _, err := p.Files(true); err != nil {
				t.Fatal(err)
			}
			o.Put(tc.body, tc.status)
			_, err := p.Files(true)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one saying %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "hidden") {
				t.Fatalf("the error shows the URL's query: %v", err)
			}
			files, err := p.Files(false)
			if err != nil || len(files) != 1 || string(files[0].Data) != "good" {
				t.Fatalf("after the bad download: %v, %v; want the good file", names(files), err)
			}
			if p.Failed.Load() != 1 {
				t.Fatalf("failed = %d, want 1", p.Failed.Load())
			}
		})
	}
}

func TestSymlinkMemberRefused(t *testing.T) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	_ = tw.WriteHeader(&tar.Header{Name: "a.hcl", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"})
	_ = tw.Close()
	_ = zw.Close()
	srv := httptest.NewServer(objstore.New(buf.Bytes()))
	defer srv.Close()
	_, err := newPolicy(t, srv.URL+"/p.tgz", srv.Client()).Files(true)
	if err == nil || !strings.Contains(err.Error(), "only regular files") {
		t.Fatalf("err = %v, want the symlink refused", err)
	}
}

func TestRunSignalsChanges(t *testing.T) {
	o := objstore.New([]byte("one"))
	srv := httptest.NewServer(o)
	defer srv.Close()
	p, err := New(Config{URL: srv.URL + "/glb.hcl", Interval: 20 * time.Millisecond, Client: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Files(true); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	go p.Run(ctx)
	o.Put([]byte("two"), 0)
	select {
	case <-p.Changed():
	case <-time.After(10 * time.Second):
		t.Fatal("no change signalled")
	}
	files, _ := p.Files(false)
	if string(files[0].Data) != "two" {
		t.Fatalf("files after the signal: %q", files[0].Data)
	}
	// Unchanged polls signal nothing.
	time.Sleep(100 * time.Millisecond)
	select {
	case <-p.Changed():
		t.Fatal("a poll of the same body signalled")
	default:
	}
	if p.NotModified.Load() == 0 {
		t.Fatal("no poll counted as unchanged")
	}
}

func TestHTTPSWithCAFile(t *testing.T) {
	srv := httptest.NewTLSServer(objstore.New([]byte("tls")))
	defer srv.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	pemData := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(ca, pemData, 0o600); err != nil {
		t.Fatal(err)
	}
	// The system's roots do not know the test server's certificate.
	p, err := New(Config{URL: srv.URL + "/glb.hcl", Interval: -1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Files(true); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("without the CA: %v, want a certificate error", err)
	}
	p, err = New(Config{URL: srv.URL + "/glb.hcl", Interval: -1, CAFile: ca})
	if err != nil {
		t.Fatal(err)
	}
	files, err := p.Files(true)
	if err != nil || string(files[0].Data) != "tls" {
		t.Fatalf("with the CA: %v, %v", names(files), err)
	}
}

func TestNewRefusesOtherURLs(t *testing.T) {
	for _, u := range []string{"ftp://host/p.hcl", "file:///etc/p.hcl", "/etc/p.hcl", "https://"} {
		if _, err := New(Config{URL: u}); err == nil {
			t.Errorf("New(%q) took it", u)
		}
	}
	if got := Redact("https://user:pw@host/p.tgz?sig=1#x"); got != "https://host/p.tgz" {
		t.Errorf("Redact = %q", got)
	}
}

func names(files []policy.File) []string {
	var out []string
	for _, f := range files {
		out = append(out, f.Name)
	}
	return out
}
