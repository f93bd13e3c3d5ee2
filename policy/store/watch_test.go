package store

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"
)

// writeFile writes and renames, as editors do, so that a reader never sees half a file.
func writeFile(t *testing.T, path, body string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// waitCount waits (bounded: 10s) until c exceeds n: the watch has handled an event.
func waitCount(t *testing.T, c *atomic.Int64, n int64, what string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); c.Load() <= n; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not seen within 10s", what)
		}
	}
}

// waitSignal waits (bounded: 10s) for a signal on ch.
func waitSignal(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("no signal within 10s of %s", what)
	}
}

// noSignal fails if a signal is pending on ch.
func noSignal(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
		t.Fatalf("%s signalled a change", what)
	default:
	}
}

// watch starts s's watch for the test with a short debounce.
func watch(t *testing.T, s *Store) <-chan struct{} {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ch, err := s.Watch(ctx, WatchConfig{Debounce: time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

// fileWatchOf returns the file watch of s's only Watch.
func fileWatchOf(t *testing.T, s *Store) *fileWatch {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.watches) != 1 {
		t.Fatalf("%d watches running, want 1", len(s.watches))
	}
	return s.watches[0]
}

// TestWatchRelevant: which file events can change the policy of a directory.
func TestWatchRelevant(t *testing.T) {
	dir := t.TempDir()
	fw, err := newFileWatch(dir, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer fw.close()
	zone := filepath.Join(t.TempDir(), "glb.test.zone")
	fw.watchFiles([]string{zone})
	for _, tc := range []struct {
		name string
		want bool
	}{
		{filepath.Join(dir, "policy.hcl"), true},
		{filepath.Join(dir, "other.hcl"), true}, // a new file of the policy directory
		{filepath.Join(dir, "notes.txt"), false},
		{filepath.Join(dir, "policy.hcl.tmp"), false},
		{filepath.Join(dir, "sub", "x.hcl"), false}, // not read: no recursion
		{zone, true},
		{zone + ".bak", false},
	} {
		if got := fw.relevant(tc.name); got != tc.want {
			t.Errorf("relevant(%s) = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestWatchIgnoresOtherFiles: an event on a file of the policy directory that is not part
// of the policy is seen and dropped, and signals nothing; an edit of the policy signals.
func TestWatchIgnoresOtherFiles(t *testing.T) {
	s, dir := newStore(t)
	ch := watch(t, s)
	fw := fileWatchOf(t, s)
	writeFile(t, filepath.Join(dir, "notes.txt"), "hello")
	waitCount(t, &fw.ignored, 0, "the event on notes.txt")
	noSignal(t, ch, "a file that is not the policy's")
	src, err := os.ReadFile(filepath.Join(dir, "policy.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "policy.hcl"), string(src)+"\n# edited\n")
	waitSignal(t, ch, "a policy file change")
}

// TestWatchZoneFiles: the watch follows the files of every snapshot the store publishes,
// so a zone file named by a reload, in a directory not watched before, is watched too.
func TestWatchZoneFiles(t *testing.T) {
	dir, zones1, zones2 := t.TempDir(), t.TempDir(), t.TempDir()
	zone := func(dir, host string) string {
		path := filepath.Join(dir, "glb.test.zone")
		writeFile(t, path, fmt.Sprintf("$ORIGIN glb.test.\n%s IN A 192.0.2.1\n", host))
		return path
	}
	policyWith := func(zoneFile string) string {
		return fmt.Sprintf("zone \"glb.test\" {\n  nameservers = [\"ns1.glb.test\"]\n  file = %q\n}\n", zoneFile)
	}
	z1, z2 := zone(zones1, "a"), zone(zones2, "a")
	file := filepath.Join(dir, "policy.hcl")
	writeFile(t, file, policyWith(z1))
	s, err := Open(file, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, diags := s.Load(); diags.HasErrors() {
		t.Fatal(diags)
	}
	ch := watch(t, s)

	zone(zones1, "b")
	waitSignal(t, ch, "an edit of the zone file of the loaded snapshot")

	writeFile(t, file, policyWith(z2))
	waitSignal(t, ch, "an edit of the policy file")
	if _, diags := s.Load(); diags.HasErrors() {
		t.Fatal(diags)
	}
	zone(zones2, "b")
	waitSignal(t, ch, "an edit of a zone file a reload named")
}

// TestWatchManagedDocuments: a second store on the same folder (another glbdns, or
// healthd reading it) sees every write of the first one, created, changed and deleted; a
// store's own writes are no news to it.
func TestWatchManagedDocuments(t *testing.T) {
	a, dir := newStore(t)
	b, err := Open(filepath.Join(dir, "policy.hcl"), "")
	if err != nil {
		t.Fatal(err)
	}
	if _, diags := b.Load(); diags.HasErrors() {
		t.Fatal(diags)
	}
	ch := watch(t, b)

	if _, _, err := a.PutPool(webPool("web-us"), Precondition{}); err != nil {
		t.Fatal(err)
	}
	waitSignal(t, ch, "another store's create")
	if _, diags := b.Load(); diags.HasErrors() {
		t.Fatal(diags)
	}
	if _, err := b.GetPool("web-us"); err != nil {
		t.Fatalf("after the reload: %v", err)
	}

	p := webPool("web-us")
	p.Members = p.Members[:1]
	if _, _, err := a.PutPool(p, Precondition{}); err != nil {
		t.Fatal(err)
	}
	waitSignal(t, ch, "another store's change")

	if err := a.DeletePool("web-us", Precondition{}); err != nil {
		t.Fatal(err)
	}
	waitSignal(t, ch, "another store's delete")
	if _, diags := b.Load(); diags.HasErrors() {
		t.Fatal(diags)
	}
	if _, err := b.GetPool("web-us"); err == nil {
		t.Fatal("deleted pool still there after the reload")
	}
}

// TestDirBackendWatch: the folder's watch signals other writers' changes of documents and
// drops the backend's own writes, temporary files and other files.
func TestDirBackendWatch(t *testing.T) {
	dir := t.TempDir()
	own, err := NewDirBackend(dir)
	if err != nil {
		t.Fatal(err)
	}
	other, err := NewDirBackend(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ch, err := own.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	w := &own.watch

	// The backend's own writes: the last event of each is the document's, an echo.
	for i, write := range []func() error{
		func() error { return put(own, "pool-a.hcl", "pool \"a\" {}\n") },
		func() error { return put(own, "pool-a.hcl", "pool \"a\" {\n}\n") },
		func() error { return remove(own, "pool-a.hcl") },
	} {
		n := w.echoes.Load()
		if err := write(); err != nil {
			t.Fatal(err)
		}
		waitCount(t, &w.echoes, n, fmt.Sprintf("own write %d", i))
		noSignal(t, ch, fmt.Sprintf("own write %d", i))
	}

	// Files that are not documents.
	for _, name := range []string{".pool-b.hcl.0123456789ab.tmp", "notes.txt", "pool-b.txt"} {
		n := w.ignored.Load()
		writeFile(t, filepath.Join(dir, name), "x")
		waitCount(t, &w.ignored, n, name)
		noSignal(t, ch, name)
	}

	// Another writer, and an operator by hand.
	if err := put(other, "pool-b.hcl", "pool \"b\" {}\n"); err != nil {
		t.Fatal(err)
	}
	waitSignal(t, ch, "another backend's write")
	writeFile(t, filepath.Join(dir, "service-x.hcl"), "#\n")
	waitSignal(t, ch, "an operator's edit")
	if err := remove(other, "pool-b.hcl"); err != nil {
		t.Fatal(err)
	}
	waitSignal(t, ch, "another backend's removal")

	cancel()
	for range ch { // closed when the watch ends
	}
}

// TestWatchLeavesDocumentsToTheBackend: the file watch watches the operator's files of a
// snapshot, not the managed documents, which the DirBackend's own watch covers (and whose
// echoes of this store's writes it drops).
func TestWatchLeavesDocumentsToTheBackend(t *testing.T) {
	s, dir := newStore(t)
	if _, _, err := s.PutPool(webPool("web-us"), Precondition{}); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	all, own := s.last.Files, s.ownFiles(s.last)
	s.mu.Unlock()
	doc := filepath.Join(dir, "policy.managed", "pool-web-us.hcl")
	if !slices.Contains(all, doc) {
		t.Fatalf("snapshot files %v lack the managed document %s", all, doc)
	}
	if want := []string{filepath.Join(dir, "policy.hcl")}; !slices.Equal(own, want) {
		t.Errorf("file watch watches %v, want %v", own, want)
	}
}

func put(b Backend, name, data string) error {
	_, err := b.Apply(0, []Change{{Name: name, Data: []byte(data)}})
	return err
}

func remove(b Backend, name string) error {
	_, err := b.Apply(0, []Change{{Name: name}})
	return err
}
