package store

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// Backend holds the managed documents: "pool-NAME.hcl", "service-NAME.hcl" and
// "drains.json". The Store serialises its own writes with a mutex; a Backend makes a write
// all or nothing, and, when several stores share it, makes every write conditional on the
// whole set of documents being as the writer read it: a revision of the set, which any
// write through any store moves. A write against an older revision fails with ErrConflict,
// and the store reads again, checks the write again (its preconditions, the policy it
// makes) and retries, so that two nodes never both succeed on what only one of them saw.
//
// DirBackend keeps the documents in a folder on one machine, for one writing process: it
// has no revision (0, always). EtcdBackend keeps them under a prefix of an etcd cluster,
// for many.
type Backend interface {
	// ReadAll returns every document by name, and the revision of the set they are.
	// Half-written documents are never returned.
	ReadAll() (docs map[string][]byte, rev int64, err error)
	// Apply makes the changes, in order, provided the set is still at revision rev
	// (ErrConflict otherwise), and returns the set's new revision. Each document is
	// written or removed whole; names are distinct; removing a missing document is not an
	// error.
	Apply(rev int64, changes []Change) (int64, error)
	// Rev is the set's revision now, cheaper than ReadAll: a store whose documents are
	// at that revision need not read them again.
	Rev() (int64, error)
	// Path is how a document is named in diagnostics (a file path, an etcd key).
	Path(name string) string
}

// Change is one document of a write: its new content, or nil to remove it.
type Change struct {
	Name string
	Data []byte
}

// ErrConflict is a write refused because the set of documents moved since it was read.
var ErrConflict = errors.New("the managed documents changed since they were read")

// DirBackend keeps documents as files of one folder. A write goes to a temporary file in
// the same folder (named ".NAME.RANDOM.tmp", so neither ReadAll nor policy.LoadPath takes
// it for a document), is fsynced, renamed over the target (rename is atomic on POSIX file
// systems) and the folder is fsynced so that the rename itself survives a crash.
type DirBackend struct {
	Dir string
	// missingOK (OpenReadOnly): a folder that does not exist is no documents, and Watch
	// waits for it to appear.
	missingOK bool
	watch     dirWatch // what this backend wrote, so that its Watch drops its own writes (watch.go)
}

// NewDirBackend creates dir if needed (0o755) and removes temporary files a crash left.
func NewDirBackend(dir string) (*DirBackend, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create managed folder: %w", err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read managed folder: %w", err)
	}
	for _, e := range ents {
		if isTemp(e.Name()) {
			_ = os.Remove(filepath.Join(dir, e.Name())) // best effort: ReadAll skips them anyway
		}
	}
	return &DirBackend{Dir: dir}, nil
}

func isTemp(name string) bool { return strings.HasPrefix(name, ".") && strings.HasSuffix(name, ".tmp") }

// isDoc reports whether a file name is a managed document.
func isDoc(name string) bool {
	if strings.HasPrefix(name, ".") {
		return false
	}
	return name == drainsDoc ||
		(strings.HasSuffix(name, ".hcl") && (strings.HasPrefix(name, "pool-") || strings.HasPrefix(name, "service-")))
}

// ReadAll reads every document of the folder (revision 0: a folder has none).
func (b *DirBackend) ReadAll() (map[string][]byte, int64, error) {
	ents, err := os.ReadDir(b.Dir)
	if b.missingOK && errors.Is(err, fs.ErrNotExist) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("read managed folder: %w", err)
	}
	out := make(map[string][]byte, len(ents))
	for _, e := range ents {
		if !e.Type().IsRegular() || !isDoc(e.Name()) {
			continue
		}
		data, err := os.ReadFile(filepath.Join(b.Dir, e.Name()))
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed since ReadDir
		}
		if err != nil {
			return nil, 0, fmt.Errorf("read managed document: %w", err)
		}
		out[e.Name()] = data
	}
	return out, 0, nil
}

// Rev is 0: the folder has one writer, the store that holds it, which keeps its own view.
func (b *DirBackend) Rev() (int64, error) { return 0, nil }

// Apply writes each document atomically (temp file, fsync, rename) and fsyncs the folder
// once, for all of them. The revision is not checked: a folder has one writer. Every new
// content is staged in its temporary file before any rename, so a failure to write one
// (a full disk) leaves the folder as it was; only a failed rename, after others, leaves
// part of the changes made.
func (b *DirBackend) Apply(_ int64, changes []Change) (int64, error) {
	tmps := make([]string, len(changes))
	defer func() {
		for _, tmp := range tmps {
			if tmp != "" {
				_ = os.Remove(tmp)
			}
		}
	}()
	// Staged concurrently: the file system commits fsyncs that overlap together (one
	// journal commit on ext4), so a group of writes costs about one fsync, not one each.
	errs := make([]error, len(changes))
	var wg sync.WaitGroup
	for i, c := range changes {
		if c.Data != nil {
			wg.Go(func() { tmps[i], errs[i] = b.stage(c.Name, c.Data) })
		}
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return 0, err
	}
	for i, c := range changes {
		b.wrote(c.Name, c.Data, c.Data != nil)
		if c.Data == nil {
			if err := os.Remove(filepath.Join(b.Dir, c.Name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return 0, fmt.Errorf("remove %s: %w", c.Name, err)
			}
			continue
		}
		if err := os.Rename(tmps[i], filepath.Join(b.Dir, c.Name)); err != nil {
			return 0, fmt.Errorf("write %s: %w", c.Name, err)
		}
		tmps[i] = ""
	}
	return 0, b.syncDir()
}

// stage writes data to a new temporary file beside document name, fsynced, and returns
// its path.
func (b *DirBackend) stage(name string, data []byte) (string, error) {
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	tmp := filepath.Join(b.Dir, "."+name+"."+hex.EncodeToString(rnd[:])+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return "", fmt.Errorf("write %s: %w", name, err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(tmp)
		return "", fmt.Errorf("write %s: %w", name, err)
	}
	return tmp, nil
}

// syncDir makes a rename or removal durable: POSIX leaves the directory entry in the page
// cache until the directory itself is fsynced.
func (b *DirBackend) syncDir() error {
	d, err := os.Open(b.Dir)
	if err != nil {
		return fmt.Errorf("sync managed folder: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync managed folder: %w", err)
	}
	return nil
}

// Path is the document's file path.
func (b *DirBackend) Path(name string) string { return filepath.Join(b.Dir, name) }

// ErrStoreReadOnly is a write to a store opened read-only (Source.ReadOnly).
var ErrStoreReadOnly = errors.New("the policy store is read-only")

// readOnlyDir is a managed folder that is read and watched, never written: not created,
// and no temporary file a crash left is removed (ReadAll skips them anyway), so that a node
// without a write API runs on a read-only file system. A folder that does not exist is no
// documents, until it appears (DirBackend.missingOK).
type readOnlyDir struct{ *DirBackend }

func (readOnlyDir) Apply(int64, []Change) (int64, error) { return 0, ErrStoreReadOnly }

// OpenReadOnly opens the store of a policy path and its managed folder ("" =
// DefaultManagedDir) without ever writing: the folder is read when it exists, is no
// documents while it does not, and is watched for (Store.Watch) so that one made later,
// by a node with the write API sharing it, is seen. Every write fails with
// ErrStoreReadOnly.
func OpenReadOnly(policyPath, managedDir string) (*Store, error) {
	if managedDir == "" {
		managedDir = DefaultManagedDir(policyPath)
	}
	b, err := readOnlyBackend(managedDir)
	if err != nil {
		return nil, err
	}
	return OpenBackend(policyPath, b)
}

// readOnlyBackend is the managed folder at dir, read only; it need not exist.
func readOnlyBackend(dir string) (Backend, error) {
	if fi, err := os.Stat(dir); err == nil && !fi.IsDir() {
		return nil, fmt.Errorf("managed folder %s is not a folder", dir)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("managed folder: %w", err)
	}
	return readOnlyDir{&DirBackend{Dir: dir, missingOK: true}}, nil
}
