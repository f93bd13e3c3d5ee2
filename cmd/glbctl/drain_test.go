package main

import (
	"bytes"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/glbdns/glbdns/admin"
	"github.com/glbdns/glbdns/api"
	"github.com/glbdns/glbdns/policy"
	"github.com/glbdns/glbdns/policy/store"
)

func write(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// conflictPolicy is a policy folder with a managed pool "web" (PATH.managed, written by the
// store as the API does) and the operator's files as given by files.
func conflictPolicy(t *testing.T, files string) (dir string, st *store.Store) {
	t.Helper()
	dir = filepath.Join(t.TempDir(), "policy")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "zone.hcl"), "zone \"glb.test\" {\n  nameservers = [\"ns1.glb.test\"]\n}\n")
	st, err := store.Open(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if _, diags := st.Load(); diags.HasErrors() {
		t.Fatal(diags.Error())
	}
	w := 1
	if _, _, err := st.PutPool(api.Pool{Name: "web", Members: []api.Member{{Name: "a", Address: "192.0.2.1", Weight: &w}}}, store.Precondition{}); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, "ops.hcl"), files)
	return dir, st
}

// A pool of the operator's files named as a managed pool is refused by glbdns's loader (the
// duplicate is reported in the operator's file, so the policy is refused whole); a policy
// that uses the managed pool loads only with it. glbctl validate must agree with glbdns in
// both cases, whether it reads the managed folder or a running node.
func TestValidateManaged(t *testing.T) {
	dup := "pool \"web\" {\n  member \"b\" {\n    address = \"192.0.2.2\"\n  }\n}\n"
	uses := "service \"www.glb.test\" {\n  pools = [\"web\"]\n}\n"

	t.Run("duplicate refused", func(t *testing.T) {
		dir, st := conflictPolicy(t, dup)
		if _, diags := policy.LoadPath(dir); diags.HasErrors() {
			t.Fatalf("the files alone should load: %s", diags.Error())
		}
		if _, diags := st.Load(); !diags.HasErrors() {
			t.Fatal("the daemon's store loads the duplicate: the test no longer shows a conflict")
		}
		for _, args := range [][]string{{dir}, {"-managed-dir", store.DefaultManagedDir(dir), dir}} {
			var out, errb bytes.Buffer
			if code := run(append([]string{"validate"}, args...), &out, &errb); code != 1 {
				t.Errorf("validate %v: exit %d, want 1\n%s%s", args, code, out.String(), errb.String())
			}
			if !strings.Contains(errb.String(), "ops.hcl:1:") {
				t.Errorf("validate %v: the error does not point at ops.hcl:\n%s", args, errb.String())
			}
		}
		var out, errb bytes.Buffer
		if code := run([]string{"validate", "-no-managed", dir}, &out, &errb); code != 0 {
			t.Errorf("validate -no-managed: exit %d\n%s", code, errb.String())
		}

		// From a running node: the managed objects come through its admin API.
		node, _ := conflictPolicy(t, "")
		nst, err := store.Open(node, "")
		if err != nil {
			t.Fatal(err)
		}
		defer nst.Close()
		if _, diags := nst.Load(); diags.HasErrors() {
			t.Fatal(diags.Error())
		}
		hs := httptest.NewServer(admin.New(admin.Config{Store: nst, Token: "s3cret",
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}).Handler())
		defer hs.Close()
		mine := filepath.Join(t.TempDir(), "mine")
		if err := os.MkdirAll(mine, 0o755); err != nil {
			t.Fatal(err)
		}
		write(t, filepath.Join(mine, "zone.hcl"), "zone \"glb.test\" {\n  nameservers = [\"ns1.glb.test\"]\n}\n"+dup)
		t.Setenv("GLBDNS_ADMIN_TOKEN", "s3cret")
		out.Reset()
		errb.Reset()
		if code := run([]string{"validate", "-admin", hs.URL, mine}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "zone.hcl:4:") {
			t.Errorf("validate -admin: exit %d, want 1 with the error in zone.hcl:\n%s%s", code, out.String(), errb.String())
		}
		write(t, filepath.Join(mine, "zone.hcl"), "zone \"glb.test\" {\n  nameservers = [\"ns1.glb.test\"]\n}\n"+uses)
		out.Reset()
		errb.Reset()
		if code := run([]string{"validate", "-admin", hs.URL, mine}, &out, &errb); code != 0 || !strings.Contains(out.String(), "with the managed objects of "+hs.URL) {
			t.Errorf("validate -admin of a policy using the node's managed pool: exit %d\n%s%s", code, out.String(), errb.String())
		}
	})

	t.Run("uses the managed pool", func(t *testing.T) {
		dir, _ := conflictPolicy(t, uses)
		if _, diags := policy.LoadPath(dir); !diags.HasErrors() {
			t.Fatal("the files alone should not load")
		}
		var out, errb bytes.Buffer
		if code := run([]string{"validate", dir}, &out, &errb); code != 0 {
			t.Errorf("validate: exit %d, want 0\n%s", code, errb.String())
		}
		if !strings.Contains(out.String(), ": ok: ") || !strings.Contains(out.String(), "with the managed objects of") {
			t.Errorf("validate: %s", out.String())
		}
	})
}

// TestDrainUndrain drains and undrains a member through a real admin listener, with flags
// after the positional arguments, and checks what the store holds.
func TestDrainUndrain(t *testing.T) {
	_, st := conflictPolicy(t, "")
	hs := httptest.NewServer(admin.New(admin.Config{Store: st, Token: "s3cret",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}).Handler())
	defer hs.Close()
	tok := filepath.Join(t.TempDir(), "token")
	write(t, tok, "s3cret\n")

	var out, errb bytes.Buffer
	if code := run([]string{"drain", "-admin", hs.URL, "-admin-token-file", tok, "web", "a", "-for", "10m", "-reason", "kernel upgrade"}, &out, &errb); code != 0 {
		t.Fatalf("drain: exit %d\n%s", code, errb.String())
	}
	if !strings.Contains(out.String(), "web/a: drained until ") || !strings.Contains(out.String(), ": kernel upgrade") {
		t.Errorf("drain: %s", out.String())
	}
	if ds := st.Drains(time.Now()); len(ds) != 1 || ds[0].Reason != "kernel upgrade" {
		t.Errorf("drains after drain: %+v", ds)
	}

	for name, c := range map[string]struct {
		args []string
		code int
		want string
	}{
		"no -for":        {[]string{"drain", "-admin", hs.URL, "web", "a"}, 2, "-for is required"},
		"unknown member": {[]string{"drain", "-admin", hs.URL, "-admin-token-file", tok, "web", "zz", "-for", "1m"}, 1, "422"},
		"no token":       {[]string{"undrain", "-admin", hs.URL, "web", "a"}, 1, "401"},
		"one argument":   {[]string{"undrain", "-admin", hs.URL, "web"}, 2, "want POOL MEMBER"},
	} {
		out.Reset()
		errb.Reset()
		if code := run(c.args, &out, &errb); code != c.code || !strings.Contains(errb.String(), c.want) {
			t.Errorf("%s: exit %d, stderr %q; want %d and %q", name, code, errb.String(), c.code, c.want)
		}
	}

	out.Reset()
	errb.Reset()
	if code := run([]string{"undrain", "-admin-token-file", tok, "-admin", hs.URL, "web", "a"}, &out, &errb); code != 0 {
		t.Fatalf("undrain: exit %d\n%s", code, errb.String())
	}
	if ds := st.Drains(time.Now()); len(ds) != 0 {
		t.Errorf("drains after undrain: %+v", ds)
	}
}
