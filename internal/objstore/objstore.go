// Package objstore is an object store for tests, as S3 or a CDN serves a policy: one
// body at a time with its hash as a strong ETag, 304 to a matching If-None-Match, or an
// error status while one is set. Serve it with net/http/httptest.
package objstore

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"sync"
)

// Store is the handler; its zero value serves an empty body.
type Store struct {
	mu     sync.Mutex
	body   []byte
	status int
	counts Counts
}

// Counts are the requests the store answered.
type Counts struct {
	Full        int // 200s
	NotModified int // 304s
	Conditional int // requests that carried If-None-Match
	Failed      int // answered with the error status
}

// New is a store serving body.
func New(body []byte) *Store { return &Store{body: body} }

// Put replaces the body, and the error status served instead of it (0: none).
func (o *Store) Put(body []byte, status int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.body, o.status = body, status
}

// Counts returns the counts so far.
func (o *Store) Counts() Counts {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.counts
}

func (o *Store) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.status != 0 {
		o.counts.Failed++
		http.Error(w, "unavailable", o.status)
		return
	}
	sum := sha256.Sum256(o.body)
	etag := `"` + hex.EncodeToString(sum[:8]) + `"`
	if inm := r.Header.Get("If-None-Match"); inm != "" {
		o.counts.Conditional++
		if inm == etag {
			o.counts.NotModified++
			w.WriteHeader(http.StatusNotModified)
			return
		}
	}
	o.counts.Full++
	w.Header().Set("ETag", etag)
	_, _ = w.Write(o.body)
}
