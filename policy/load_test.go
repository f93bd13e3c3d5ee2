package policy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReadPath reads a policy path the ways the server and the store give one.
func TestReadPath(t *testing.T) {
	root := t.TempDir()
	mk := func(rel, data string) string {
		t.Helper()
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	mk("dir/b.hcl", "b")
	mk("dir/a.hcl", "a")
	mk("dir/README.txt", "not policy")
	mk("dir/sub/c.hcl", "not read: not recursive")
	mk("glob[1]/x.hcl", "x") // "glob[1]" as a pattern would match "glob1"
	mk("glob1/y.hcl", "y")
	mk("bad/ok.hcl", "ok")
	for _, d := range []string{"bad/d1.hcl", "bad/d2.hcl", "empty"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name    string
		path    string
		want    []string // base names and contents, "a=a"
		wantErr []string // substrings of the error
	}{
		{name: "one file", path: filepath.Join(root, "dir/b.hcl"), want: []string{"b.hcl=b"}},
		{name: "directory, sorted, *.hcl only", path: filepath.Join(root, "dir"), want: []string{"a.hcl=a", "b.hcl=b"}},
		{name: "directory name with glob metacharacters", path: filepath.Join(root, "glob[1]"), want: []string{"x.hcl=x"}},
		{name: "empty directory", path: filepath.Join(root, "empty"), want: []string{}},
		{name: "missing", path: filepath.Join(root, "nope"), wantErr: []string{`read policy "` + filepath.Join(root, "nope") + `"`, "no such file"}},
		{name: "every unreadable file reported", path: filepath.Join(root, "bad"), wantErr: []string{"d1.hcl", "d2.hcl"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			files, err := ReadPath(tc.path)
			if tc.wantErr != nil {
				if err == nil {
					t.Fatalf("no error, files %v", files)
				}
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q lacks %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := []string{}
			for _, f := range files {
				if f.Name != tc.path && filepath.Dir(f.Name) != tc.path {
					t.Errorf("file name %q is not under %q", f.Name, tc.path)
				}
				got = append(got, filepath.Base(f.Name)+"="+string(f.Data))
			}
			if strings.Join(got, " ") != strings.Join(tc.want, " ") {
				t.Errorf("files %q, want %q", got, tc.want)
			}
		})
	}
	t.Run("LoadPath reports each unreadable file", func(t *testing.T) {
		snap, diags := LoadPath(filepath.Join(root, "bad"))
		if snap != nil || len(diags) != 2 || diags[0].Summary != "Cannot read policy" || !strings.Contains(diags[1].Detail, "d2.hcl") {
			t.Errorf("diagnostics %v", diags)
		}
	})
	t.Run("LoadPath refuses an empty directory", func(t *testing.T) {
		if snap, diags := LoadPath(filepath.Join(root, "empty")); snap != nil || len(diags) != 1 || diags[0].Summary != "No policy files" {
			t.Errorf("diagnostics %v", diags)
		}
	})
}
