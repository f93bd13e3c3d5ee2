package geoip

import (
	"bytes"
	"context"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for the Run goroutine to log into while the test reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// replaceFile installs data at path the way geoipupdate does: write a temporary file in the
// same directory, then rename it over the old one, so no reader ever sees half a file.
func replaceFile(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// waitFor polls cond every 10ms for at most 10s; the bound only keeps a broken watcher
// from hanging the test.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for range 1000 {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

func TestWatcherReload(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "geo.mmdb")
	replaceFile(t, path, readFile(t, countryDB))
	var logs syncBuffer
	w, err := NewWatcher(path, asnDB, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	se := netip.MustParseAddr("89.160.20.112")
	first := w.Current()
	if got := first.Lookup(se); got.Country != "SE" || got.HasLocation || got.ASN != 29518 {
		t.Fatalf("country DB lookup = %+v, want SE without location, AS29518", got)
	}

	w.Interval = 5 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { w.Run(ctx) })
	// Readers keep looking up through every swap; with -race this checks that a swap and
	// lookups on the old and new DB do not race, and that no old DB is freed under a reader.
	for range 2 {
		wg.Go(func() {
			for i := 0; i < 1_000_000 && ctx.Err() == nil; i++ {
				if got := w.Current().Lookup(se); got.Country != "SE" {
					t.Errorf("lookup during reloads = %+v", got)
					return
				}
			}
		})
	}
	stopped := false
	stop := func() {
		if !stopped {
			cancel()
			wg.Wait()
			stopped = true
		}
	}
	t.Cleanup(stop)

	t.Run("country replaced by city", func(t *testing.T) {
		replaceFile(t, path, readFile(t, cityDB))
		waitFor(t, "reload", func() bool { return w.Current() != first })
		got := w.Current().Lookup(se)
		if got.Country != "SE" || !got.HasLocation || got.Lat != 58.4167 || got.ASN != 29518 {
			t.Errorf("city DB lookup = %+v, want SE with location, AS29518", got)
		}
		if ok, failed := w.Reloads(); ok != 1 || failed != 0 {
			t.Errorf("Reloads() = %d, %d, want 1, 0", ok, failed)
		}
		if !strings.Contains(logs.String(), "geoip databases reloaded") {
			t.Errorf("no reload logged:\n%s", logs.String())
		}
	})

	city := w.Current()
	t.Run("garbage refused", func(t *testing.T) {
		replaceFile(t, path, []byte("not a MaxMind database\n"))
		waitFor(t, "refusal", func() bool { _, failed := w.Reloads(); return failed > 0 })
		if w.Current() != city {
			t.Error("Current() changed after a refused reload")
		}
		if got := w.Current().Lookup(se); !got.HasLocation {
			t.Errorf("old DB no longer serves: %+v", got)
		}
		if !strings.Contains(logs.String(), "geoip reload refused") || !strings.Contains(logs.String(), path) {
			t.Errorf("refusal not logged with the file name:\n%s", logs.String())
		}
	})

	// The rest polls synchronously with check, the single round Run repeats.
	stop()
	t.Run("refused version not retried", func(t *testing.T) {
		if w.check() {
			t.Error("check() reloaded an unchanged file")
		}
		if ok, failed := w.Reloads(); ok != 1 || failed != 1 {
			t.Errorf("Reloads() = %d, %d, want 1, 1", ok, failed)
		}
	})
	t.Run("missing file refused", func(t *testing.T) {
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
		if !w.check() {
			t.Error("check() missed the removal")
		}
		if ok, failed := w.Reloads(); ok != 1 || failed != 2 || w.Current() != city {
			t.Errorf("Reloads() = %d, %d (want 1, 2), current changed: %v", ok, failed, w.Current() != city)
		}
	})
	t.Run("truncated file refused", func(t *testing.T) {
		b := readFile(t, cityDB)
		replaceFile(t, path, b[:len(b)/2])
		if !w.check() {
			t.Error("check() missed the new file")
		}
		if _, failed := w.Reloads(); failed != 3 || w.Current() != city {
			t.Errorf("failed = %d, want 3; current changed: %v", failed, w.Current() != city)
		}
	})
	t.Run("good file after bad ones", func(t *testing.T) {
		replaceFile(t, path, readFile(t, countryDB))
		if !w.check() {
			t.Error("check() missed the new file")
		}
		if ok, _ := w.Reloads(); ok != 2 {
			t.Errorf("ok = %d, want 2", ok)
		}
		if got := w.Current().Lookup(se); got.Country != "SE" || got.HasLocation {
			t.Errorf("country DB lookup = %+v", got)
		}
	})
}

func TestNewWatcherErrors(t *testing.T) {
	bad := filepath.Join(testdata, "GeoIP2-City-Test-Invalid-Node-Count.mmdb")
	if _, err := NewWatcher(bad, "", nil); err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("NewWatcher(corrupt) error = %v, want one naming %s", err, bad)
	}
	if _, err := NewWatcher("", "", nil); err != ErrNoDatabase {
		t.Errorf("NewWatcher(\"\", \"\") error = %v, want ErrNoDatabase", err)
	}
}

// TestWatcherOnChange: OnChange gets each DB swapped in, the one Current returns, from
// Run's goroutine; a refused reload calls nothing.
func TestWatcherOnChange(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "geo.mmdb")
	replaceFile(t, path, readFile(t, countryDB))
	w, err := NewWatcher(path, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	changed := make(chan *DB, 4)
	w.OnChange = func(db *DB) { changed <- db }
	w.Interval = 5 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() { defer close(ran); w.Run(ctx) }()

	replaceFile(t, path, readFile(t, cityDB))
	select {
	case db := <-changed:
		if db != w.Current() || !db.Lookup(netip.MustParseAddr("89.160.20.112")).HasLocation {
			t.Errorf("OnChange got %p, Current is %p; want the new city DB", db, w.Current())
		}
	case <-time.After(10 * time.Second): // only keeps a broken watcher from hanging the test
		t.Fatal("OnChange not called after the file was replaced")
	}
	cancel()
	<-ran

	// The rest polls synchronously with check, the single round Run repeats.
	replaceFile(t, path, []byte("not a MaxMind database\n"))
	if !w.check() {
		t.Fatal("check() missed the new file")
	}
	select {
	case db := <-changed:
		t.Errorf("OnChange called with %p for a refused reload", db)
	default:
	}
	replaceFile(t, path, readFile(t, countryDB))
	if !w.check() {
		t.Fatal("check() missed the new file")
	}
	select {
	case db := <-changed:
		if db != w.Current() {
			t.Errorf("OnChange got %p, Current is %p", db, w.Current())
		}
	default:
		t.Error("OnChange not called by a successful check")
	}
}
