package geoip

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"time"
)

// DefaultInterval is how often a Watcher polls its files unless Interval says otherwise.
// GeoIP databases are published at most twice a week; two stat calls every 10 seconds cost
// nothing and pick up a new file well before anyone would notice.
const DefaultInterval = 10 * time.Second

// Watcher keeps a DB current with its files on disk. It polls their size, modification
// time and identity, opens a new DB when they change and swaps it in atomically. A new file
// that cannot be opened is refused: the error is logged, counted, and the old DB keeps
// serving.
type Watcher struct {
	// Interval between polls; DefaultInterval when zero. Set it before Run.
	Interval time.Duration
	// OnChange, when set, is called with each DB Run swaps in, after Current returns it,
	// from Run's goroutine and so one call at a time, in the order of the swaps; a refused
	// reload calls nothing. It lets a reader that keeps the DB itself (the DNS server holds
	// it beside its snapshot) follow reloads. Set it before Run. Default nil.
	OnChange func(*DB)

	cityPath, asnPath string
	log               *slog.Logger
	cur               atomic.Pointer[DB]
	ok, failed        atomic.Uint64

	// seen is the state of the files when they were last opened, successfully or not. Only
	// the Run goroutine touches it after NewWatcher.
	seen [2]fileState
}

// fileState identifies one version of a file. Size and modification time catch rewrites in
// place; the FileInfo (compared with os.SameFile, that is by device and inode) catches a
// rename over the old file that happens to keep both.
type fileState struct {
	fi  os.FileInfo // nil: missing or not configured
	err string      // why Stat failed, so that a new kind of failure counts as a change
}

func statFile(path string) fileState {
	if path == "" {
		return fileState{}
	}
	fi, err := os.Stat(path) // follows symlinks, so a swapped symlink target is a change
	if err != nil {
		return fileState{err: err.Error()}
	}
	return fileState{fi: fi}
}

func (s fileState) equal(o fileState) bool {
	if s.fi == nil || o.fi == nil {
		return s.fi == nil && o.fi == nil && s.err == o.err
	}
	return s.fi.Size() == o.fi.Size() && s.fi.ModTime().Equal(o.fi.ModTime()) && os.SameFile(s.fi, o.fi)
}

// NewWatcher opens the databases (see Open; either path may be empty) and returns a Watcher
// serving them. An error opening them at start is returned, not tolerated: there is no old
// DB to fall back to. logger may be nil.
func NewWatcher(cityPath, asnPath string, logger *slog.Logger) (*Watcher, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	w := &Watcher{cityPath: cityPath, asnPath: asnPath, log: logger.With("component", "geoip")}
	// Stat before opening: if a file changes in between, the next poll sees a change and
	// reloads, rather than missing the new version.
	w.seen = [2]fileState{statFile(cityPath), statFile(asnPath)}
	db, err := Open(cityPath, asnPath)
	if err != nil {
		return nil, err
	}
	w.cur.Store(db)
	w.log.Info("geoip databases loaded", db.describe()...)
	return w, nil
}

// Current returns the DB to use now. It is one atomic load; the DB stays valid for as long
// as the caller holds it, even across a reload.
func (w *Watcher) Current() *DB { return w.cur.Load() }

// Reloads returns how many reloads succeeded and how many were refused since NewWatcher.
func (w *Watcher) Reloads() (ok, failed uint64) { return w.ok.Load(), w.failed.Load() }

// Run polls the files every Interval until ctx is done.
func (w *Watcher) Run(ctx context.Context) {
	iv := w.Interval
	if iv <= 0 {
		iv = DefaultInterval
	}
	t := time.NewTicker(iv)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			w.check()
		}
	}
}

// check is one poll: if either file changed since it was last opened, open both again and
// swap the new DB in, or refuse it. It reports whether it attempted a reload.
func (w *Watcher) check() bool {
	now := [2]fileState{statFile(w.cityPath), statFile(w.asnPath)}
	if now[0].equal(w.seen[0]) && now[1].equal(w.seen[1]) {
		return false
	}
	// Remember this version whatever the outcome: a refused file is retried only once it
	// changes again, so one bad upload is logged and counted once, not every poll.
	w.seen = now
	db, err := w.open()
	if err != nil {
		w.failed.Add(1)
		w.log.Error("geoip reload refused, keeping the loaded databases", "err", err)
		return true
	}
	// The old DB is not closed: lookups may still be using it, and being in memory it is
	// freed by the garbage collector once they are done.
	w.cur.Store(db)
	w.ok.Add(1)
	w.log.Info("geoip databases reloaded", db.describe()...)
	if w.OnChange != nil {
		w.OnChange(db)
	}
	return true
}

// open is Open with any panic turned into an error, so that a file that trips the decoder
// cannot kill the watcher (openFile already recovers; this also covers Open's own code).
func (w *Watcher) open() (db *DB, err error) {
	defer func() {
		if p := recover(); p != nil {
			db, err = nil, fmt.Errorf("reload geoip databases: panic: %v", p)
		}
	}()
	return Open(w.cityPath, w.asnPath)
}
