package store

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/glbdns/glbdns/policy"
)

// DefaultWatchDebounce is how long Watch waits after the last event before it signals:
// longer than an editor's write-rename-chmod burst, short enough to feel immediate.
const DefaultWatchDebounce = 200 * time.Millisecond

// WatchConfig tunes Store.Watch.
type WatchConfig struct {
	// Debounce is how long the watch waits after the last relevant event before it
	// signals; every event in between starts the wait again. Default
	// DefaultWatchDebounce (200ms).
	Debounce time.Duration
	// Logger receives the watch's warnings (a directory that cannot be watched, a lost
	// event queue) and, at debug level, the events that count; nil: slog.Default().
	Logger *slog.Logger
}

// watchable is a Backend that can tell when its documents may have changed by a writer
// other than itself: DirBackend watches its folder; a backend shared by several nodes
// (etcd) watches its prefix. Store.Watch merges its signals with the watch of the
// operator's files.
type watchable interface {
	// Watch returns a channel that receives, coalesced, whenever documents may have been
	// changed by someone else than this backend, until ctx is done; the backend closes it
	// when its watch ends. A watch that may have missed changes (a lost event queue, a
	// reconnection) signals too: "may have changed" is always safe, a reload that finds
	// nothing new costs a compile. An error means there is no watch at all.
	Watch(ctx context.Context) (<-chan struct{}, error)
}

// Watch watches the store's sources until ctx is done and signals on the returned
// channel (capacity 1: signals coalesce; never closed) when the policy may have changed:
// the caller then calls Load. It signals Debounce after the last of a burst of events, so
// an editor's save, or a tool rewriting ten files, is one signal.
//
// The sources are the operator's files, watched with fsnotify, and the managed documents,
// watched by the backend when it can (see watchable; DirBackend does). The file watch
// watches directories, not files: editors save by writing a new file and renaming it over
// the old one, which a watch on the old inode would miss. It watches the policy
// directory (or the directory of a policy file) and the directories of every other file
// the last snapshot was built from (zone files; each published snapshot adds its own),
// and counts events on the policy directory's *.hcl files and on those files only;
// a chmod alone does not count. The backend's documents are left to the backend's watch,
// which ignores the store's own writes: the snapshot they made is published already.
//
// An error (fsnotify cannot start, the policy's directory cannot be watched) means there
// is no watch; SIGHUP-style reloads still work.
func (s *Store) Watch(ctx context.Context, cfg WatchConfig) (<-chan struct{}, error) {
	if cfg.Debounce <= 0 {
		cfg.Debounce = DefaultWatchDebounce
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	fw, err := newFileWatch(s.policyPath, cfg.Logger) // "" for the files of s.op or etcd
	if err != nil {
		return nil, fmt.Errorf("watch policy files: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	var docs, op <-chan struct{}
	if s.op != nil {
		op = s.op.Changed()
	}
	if wb, ok := s.b.(watchable); ok {
		if docs, err = wb.Watch(ctx); err != nil {
			cancel()
			fw.close()
			return nil, fmt.Errorf("watch managed documents: %w", err)
		}
	}
	s.mu.Lock()
	s.watches = append(s.watches, fw)
	if s.last != nil {
		fw.snap = s.last
		fw.watchFiles(s.ownFiles(s.last))
	}
	s.mu.Unlock()
	out := make(chan struct{}, 1)
	go func() {
		defer cancel()
		defer fw.close()
		defer func() {
			s.mu.Lock()
			s.watches = slices.DeleteFunc(s.watches, func(w *fileWatch) bool { return w == fw })
			s.mu.Unlock()
		}()
		fw.run(ctx, docs, op, cfg.Debounce, out)
	}()
	return out, nil
}

// watchSnapshot has every running Watch watch the files snap was built from (a reload
// may name a zone file in a directory not watched yet). Called with s.mu held, on every
// snapshot published; a drain write publishes the same snapshot again, which costs nothing.
func (s *Store) watchSnapshot(snap *policy.Snapshot) {
	var files []string
	computed := false
	for _, fw := range s.watches {
		if fw.snap == snap {
			continue
		}
		if !computed {
			files, computed = s.ownFiles(snap), true
		}
		fw.snap = snap
		fw.watchFiles(files)
	}
}

// ownFiles are the files of snap the file watch watches: all of them, except the
// backend's documents when the backend watches them itself (the file watch would take
// the store's own writes for news). A document is a file the backend names Path(NAME),
// that is its prefix and a NAME without a separator.
func (s *Store) ownFiles(snap *policy.Snapshot) []string {
	_, watched := s.b.(watchable)
	if !watched && s.op == nil {
		return snap.Files
	}
	doc, op := s.namer(""), s.namer(PolicyDocs)
	out := make([]string, 0, 8)
	for _, f := range snap.Files {
		if _, ok := doc(f); ok && watched {
			continue
		}
		if _, ok := op(f); ok && s.opInStore {
			continue // an operator's file in the store: its watch has it
		}
		if s.op != nil && s.fromOperator(f) {
			continue // on no file system: the source's Changed tells
		}
		out = append(out, f)
	}
	return out
}

// fromOperator reports whether file f, of a snapshot, is one of s.op's: the operator's
// files and their zone files, named after the source (a zone file's name has been
// cleaned by filepath.Join: "https:/host/...").
func (s *Store) fromOperator(f string) bool {
	name := s.op.Name()
	return strings.HasPrefix(f, name) || strings.HasPrefix(f, filepath.Clean(name))
}

// fileWatch turns fsnotify events on the operator's files into debounced signals. It
// watches directories and filters their events down to the policy's own files.
type fileWatch struct {
	w       *fsnotify.Watcher
	log     *slog.Logger
	ignored atomic.Int64     // events dropped as not the policy's (tests wait on it)
	snap    *policy.Snapshot // the last snapshot whose files were added (guarded by Store.mu)

	mu     sync.Mutex
	dirs   map[string]bool // watched directories
	hclDir string          // the policy directory whose *.hcl files all count ("" for a file)
	files  map[string]bool // other files that count: the policy file, zone files
	once   sync.Once
}

func newFileWatch(policyPath string, log *slog.Logger) (*fileWatch, error) {
	if policyPath == "" { // the operator's files are in the store: zone files only
		w, err := fsnotify.NewWatcher()
		if err != nil {
			return nil, err
		}
		return &fileWatch{w: w, log: log, dirs: map[string]bool{}, files: map[string]bool{}}, nil
	}
	abs, err := filepath.Abs(policyPath)
	if err != nil {
		return nil, err
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, err
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	fw := &fileWatch{w: w, log: log, dirs: map[string]bool{}, files: map[string]bool{}}
	dir := abs
	if fi.IsDir() {
		fw.hclDir = abs
	} else {
		fw.files[abs] = true
		dir = filepath.Dir(abs)
	}
	if err := w.Add(dir); err != nil {
		w.Close()
		return nil, fmt.Errorf("watch %s: %w", dir, err)
	}
	fw.dirs[dir] = true
	return fw, nil
}

// watchFiles adds files (zone files included) and their directories. Directories are
// never removed: a stale watch costs an ignored event.
func (fw *fileWatch) watchFiles(files []string) {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	for _, f := range files {
		abs, err := filepath.Abs(f)
		if err != nil {
			continue
		}
		fw.files[abs] = true
		if dir := filepath.Dir(abs); !fw.dirs[dir] {
			if err := fw.w.Add(dir); err != nil {
				fw.log.Warn("cannot watch directory", "dir", dir, "err", err)
				continue
			}
			fw.dirs[dir] = true
		}
	}
}

// relevant reports whether an event on name may change the policy.
func (fw *fileWatch) relevant(name string) bool {
	abs, err := filepath.Abs(name)
	if err != nil {
		return false
	}
	fw.mu.Lock()
	defer fw.mu.Unlock()
	if fw.files[abs] {
		return true
	}
	return fw.hclDir != "" && filepath.Dir(abs) == fw.hclDir && strings.HasSuffix(abs, ".hcl")
}

// run merges the file events, the backend's signals (docs, nil without) and the
// operator's source's (op, nil without) into debounced signals on out until ctx is done.
func (fw *fileWatch) run(ctx context.Context, docs, op <-chan struct{}, debounce time.Duration, out chan<- struct{}) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-fw.w.Events:
			if !ok {
				return
			}
			if ev.Op == fsnotify.Chmod || !fw.relevant(ev.Name) {
				fw.ignored.Add(1)
				continue
			}
			fw.log.Debug("policy file changed", "file", ev.Name, "op", ev.Op.String())
			timer.Reset(debounce)
		case err, ok := <-fw.w.Errors:
			if !ok {
				return
			}
			fw.log.Warn("policy watch error", "err", err)
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				timer.Reset(debounce) // events were lost: a file may have changed
			}
		case _, ok := <-docs:
			if !ok {
				fw.log.Warn("managed documents watch ended; their changes now need a reload by hand")
				docs = nil
				continue
			}
			fw.log.Debug("managed documents changed")
			timer.Reset(debounce)
		case <-op:
			fw.log.Debug("the operator's files changed at their source")
			timer.Reset(debounce)
		case <-timer.C:
			select {
			case out <- struct{}{}:
			default: // one is pending already
			}
		}
	}
}

func (fw *fileWatch) close() { fw.once.Do(func() { fw.w.Close() }) }

// dirWatch is DirBackend's memory for its watch: what the backend itself last wrote to,
// or its watch last saw in, each document. An event on a document whose content is the
// one remembered is the echo of this process's own write (its store has published the
// snapshot of it already) or a repeat of a change already signalled, and is dropped;
// anything else (another process's write, an operator's edit or removal) signals. The
// content is compared, not who wrote it, so a write of another process that lands between
// this process's write and its event is still seen.
type dirWatch struct {
	mu   sync.Mutex
	docs map[string]docState

	ignored atomic.Int64 // events on files that are not documents (tests wait on it)
	echoes  atomic.Int64 // events on documents whose content was already known
}

// docState is a document's content as far as its watch cares: present, and a hash.
type docState struct {
	present bool
	sum     [sha256.Size]byte
}

func stateOf(data []byte, present bool) docState {
	if !present {
		return docState{}
	}
	return docState{present: true, sum: sha256.Sum256(data)}
}

// wrote remembers that this backend is writing data to document name (present false:
// removing it). Put and Remove call it before they touch the file, so that the event
// cannot come first.
func (b *DirBackend) wrote(name string, data []byte, present bool) {
	b.watch.mu.Lock()
	defer b.watch.mu.Unlock()
	if b.watch.docs == nil {
		b.watch.docs = map[string]docState{}
	}
	b.watch.docs[name] = stateOf(data, present)
}

// news reports whether document name now differs from what the backend remembers of it,
// and remembers its current state.
func (b *DirBackend) news(name string) bool {
	data, err := os.ReadFile(filepath.Join(b.Dir, name))
	present := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return true // unreadable now: let the reload say why
	}
	st := stateOf(data, present)
	b.watch.mu.Lock()
	defer b.watch.mu.Unlock()
	if old, ok := b.watch.docs[name]; ok && old == st {
		return false
	}
	if b.watch.docs == nil {
		b.watch.docs = map[string]docState{}
	}
	b.watch.docs[name] = st
	return true
}

// Watch watches the folder with fsnotify until ctx is done, and signals when a document
// (pool-*.hcl, service-*.hcl, drains.json) was created, changed or removed by anyone but
// this backend: another glbdns sharing the folder, an operator's edit. Temporary files
// (".NAME.RANDOM.tmp") and other files are ignored, and so are the backend's own writes
// (see dirWatch). A lost event queue signals: a document may have changed.
func (b *DirBackend) Watch(ctx context.Context) (<-chan struct{}, error) {
	dir, err := filepath.Abs(b.Dir)
	if err != nil {
		return nil, err
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	// A read-only folder that does not exist yet (OpenReadOnly): watch its parent until
	// it appears, then the folder.
	awaiting := false
	if b.missingOK {
		if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
			awaiting = true
		}
	}
	watched := dir
	if awaiting {
		watched = filepath.Dir(dir)
	}
	if err := w.Add(watched); err != nil {
		w.Close()
		return nil, fmt.Errorf("watch %s: %w", watched, err)
	}
	out := make(chan struct{}, 1)
	signal := func() {
		select {
		case out <- struct{}{}:
		default:
		}
	}
	go func() {
		defer close(out)
		defer w.Close()
		for {
			select {
			case <-ctx.Done():
				return
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				name := filepath.Base(ev.Name)
				switch {
				case awaiting && ev.Name == dir && ev.Has(fsnotify.Create):
					if err := w.Add(dir); err != nil {
						b.watch.ignored.Add(1) // not a folder (yet): its documents stay unseen
						continue
					}
					awaiting = false
					_ = w.Remove(filepath.Dir(dir))
					signal() // documents may be in it already
				case ev.Op == fsnotify.Chmod || filepath.Dir(ev.Name) != dir || !isDoc(name):
					b.watch.ignored.Add(1)
				case !b.news(name):
					b.watch.echoes.Add(1)
				default:
					signal()
				}
			case _, ok := <-w.Errors:
				if !ok {
					return
				}
				signal() // events may have been lost
			}
		}
	}()
	return out, nil
}
