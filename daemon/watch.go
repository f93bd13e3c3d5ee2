package daemon

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
)

// watcher turns file events on the policy into debounced reload requests. It watches
// directories (see the package comment: editors rename over files) and filters their
// events down to the policy's own files.
type watcher struct {
	w        *fsnotify.Watcher
	log      *slog.Logger
	debounce time.Duration
	changed  chan struct{} // capacity 1: requests coalesce
	ignored  atomic.Int64  // events dropped as not the policy's (tests wait on it)

	mu      sync.Mutex
	dirs    map[string]bool // watched directories
	hclDir  string          // the policy directory whose *.hcl files all count ("" for a file)
	files   map[string]bool // other files that count: the policy file, zone files
	closeMu sync.Once
}

func newWatcher(policyPath string, debounce time.Duration, log *slog.Logger) (*watcher, error) {
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	w := &watcher{w: fw, log: log, debounce: debounce, changed: make(chan struct{}, 1),
		dirs: map[string]bool{}, files: map[string]bool{}}
	abs, err := filepath.Abs(policyPath)
	if err != nil {
		fw.Close()
		return nil, err
	}
	if fi, err := os.Stat(abs); err == nil && fi.IsDir() {
		w.hclDir = abs
		w.add(abs)
	} else {
		w.files[abs] = true
		w.add(filepath.Dir(abs))
	}
	return w, nil
}

func (w *watcher) add(dir string) {
	if w.dirs[dir] {
		return
	}
	if err := w.w.Add(dir); err != nil {
		w.log.Warn("cannot watch directory", "dir", dir, "err", err)
		return
	}
	w.dirs[dir] = true
}

// watchFiles adds the snapshot's source files (zone files included) and their
// directories. Directories are never removed: a stale watch costs an ignored event.
func (w *watcher) watchFiles(files []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, f := range files {
		abs, err := filepath.Abs(f)
		if err != nil {
			continue
		}
		w.files[abs] = true
		w.add(filepath.Dir(abs))
	}
}

// relevant reports whether an event on name may change the policy.
func (w *watcher) relevant(name string) bool {
	abs, err := filepath.Abs(name)
	if err != nil {
		return false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.files[abs] {
		return true
	}
	return w.hclDir != "" && filepath.Dir(abs) == w.hclDir && strings.HasSuffix(abs, ".hcl")
}

// run forwards debounced events until ctx is done.
func (w *watcher) run(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.w.Events:
			if !ok {
				return
			}
			if ev.Op == fsnotify.Chmod || !w.relevant(ev.Name) {
				w.ignored.Add(1)
				continue
			}
			w.log.Debug("policy file changed", "file", ev.Name, "op", ev.Op.String())
			timer.Reset(w.debounce)
		case err, ok := <-w.w.Errors:
			if !ok {
				return
			}
			w.log.Warn("policy watch error", "err", err)
		case <-timer.C:
			select {
			case w.changed <- struct{}{}:
			default:
			}
		}
	}
}

func (w *watcher) close() { w.closeMu.Do(func() { w.w.Close() }) }
