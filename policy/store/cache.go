package store

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// The local cache: a node whose managed documents live in etcd keeps a copy of the ones it
// last published in a file, so that a node started while etcd is unreachable serves the
// policy it served before instead of nothing (static stability: losing the control plane
// never empties or changes answers). The operator's files are read from their own path as
// always, unless they are kept in etcd too (Source.PolicyFromEtcd): then the cache holds
// them with the managed documents.

// cacheFile is the cache's content.
type cacheFile struct {
	// Rev is the backend revision of the documents.
	Rev int64 `json:"rev"`
	// Saved is when the node wrote the cache.
	Saved time.Time `json:"saved"`
	// Docs are the managed documents by name.
	Docs map[string]string `json:"docs"`
}

// KeepCache makes the store keep the managed documents it publishes in the file at path,
// and Load fall back to it when the backend is unavailable and nothing serves yet. Call it
// before the first Load. The file is written after a publication, off the write path and
// at most one at a time, so that a burst of writes costs one write of the file; onErr (may
// be nil) hears of a write that failed.
func (s *Store) KeepCache(path string, onErr func(error)) {
	s.cachePath, s.cacheErr = path, onErr
	s.cacheKick = make(chan struct{}, 1)
	go s.cacheWriter(s.cacheKick)
}

// FromCache reports since when the serving policy has come from the local cache because
// the backend was unavailable (zero: it has not).
func (s *Store) FromCache() time.Time {
	if t := s.fromCache.Load(); t != nil {
		return *t
	}
	return time.Time{}
}

// saveCache asks the writer to save the documents now published. Called with s.mu held.
func (s *Store) saveCache() {
	if s.cacheKick == nil {
		return
	}
	select {
	case s.cacheKick <- struct{}{}:
	default:
	}
}

// cacheEvery spaces the cache's writes: the file holds every document (megabytes at
// 20,000 objects), and a burst of API writes must not spend a core rewriting it after
// each one. The cache is then at most this much older than what serves.
const cacheEvery = time.Second

// cacheWriter writes the cache whenever saveCache asks, at most once every cacheEvery,
// for the life of the process.
func (s *Store) cacheWriter(kick <-chan struct{}) {
	for range kick {
		time.Sleep(cacheEvery - time.Since(s.cacheSaved))
		s.mu.Lock()
		m := s.cache
		s.mu.Unlock()
		if m == nil {
			continue
		}
		if err := writeCache(s.cachePath, m); err != nil && s.cacheErr != nil {
			s.cacheErr(err)
		}
		s.cacheSaved = time.Now()
	}
}

// writeCache writes m's documents to path atomically (temporary file, fsync, rename).
func writeCache(path string, m *managed) error {
	c := cacheFile{Rev: m.rev, Saved: time.Now().UTC(), Docs: make(map[string]string, m.docs.len())}
	m.docs.each(func(name string, d *mdoc) { c.Docs[name] = string(d.data) })
	for _, f := range m.op {
		c.Docs[PolicyDocs+filepath.Base(f.Name)] = string(f.Data)
	}
	data, err := json.Marshal(c)
	if err != nil {
		return err
	}
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+"."+hex.EncodeToString(rnd[:])+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("write policy cache: %w", err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write policy cache: %w", err)
	}
	return nil
}

// readCache reads the cached documents at path.
func readCache(path string) (map[string][]byte, int64, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, 0, fmt.Errorf("read policy cache: %w", err)
	}
	var c cacheFile
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, 0, fmt.Errorf("read policy cache %s: %w", path, err)
	}
	docs := make(map[string][]byte, len(c.Docs))
	for name, d := range c.Docs {
		docs[name] = []byte(d)
	}
	return docs, c.Rev, nil
}

// fallback is the managed documents of the cache, for a Load that found the backend
// unavailable (err) while nothing serves yet; err itself when there is no usable cache.
func (s *Store) fallback(err error) (*managed, error) {
	if s.cachePath == "" || s.last != nil || !errors.Is(err, ErrUnavailable) {
		return nil, err
	}
	docs, rev, cerr := readCache(s.cachePath)
	if cerr != nil {
		return nil, fmt.Errorf("%w (and no cached policy: %v)", err, cerr)
	}
	now := time.Now()
	s.fromCache.Store(&now)
	return s.decodeManaged(docs, rev, nil), nil
}
