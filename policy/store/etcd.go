package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// EtcdConfig configures an EtcdBackend. The names are etcdctl's.
type EtcdConfig struct {
	// Endpoints of the etcd cluster ("http://10.0.0.1:2379"). At least one.
	Endpoints []string
	// Prefix under which glbdns keeps its keys, default DefaultEtcdPrefix. Several
	// glbdns clusters can share one etcd under different prefixes.
	Prefix string
	// CACert, Cert and Key are PEM files for TLS: the CA that signed the servers'
	// certificates, and the client's certificate and key (mutual TLS). CACert alone
	// verifies the servers.
	CACert, Cert, Key string
	// User and Password authenticate to etcd (etcd's own users, RBAC).
	User, Password string
	// DialTimeout bounds connecting, RequestTimeout one request (etcdctl's
	// --command-timeout); defaults 5s and 2s. A write proposed while the etcd leader dies
	// waits for the cluster's own timeout; 2s answers the API client 503 sooner, and its
	// retry goes to the new leader.
	DialTimeout, RequestTimeout time.Duration
}

// DefaultEtcdPrefix is where glbdns keeps its keys unless told otherwise.
const DefaultEtcdPrefix = "/glbdns/"

// EtcdBackend keeps the managed documents as keys of an etcd cluster, for every glbdns node
// that shares the prefix:
//
//	PREFIX docs/NAME     one document ("pool-web.hcl", "drains.json"), its bytes as value
//	PREFIX policy/NAME   one of the operator's policy files, put by glbctl policy push
//	PREFIX rev           written by every write: its mod revision is the set's revision
//
// A write is one transaction: if PREFIX rev's mod revision is still the one the writer
// read, put (or delete) the document and put PREFIX rev; else ErrConflict. Every write
// through any node moves the revision, so a write decided on documents another node has
// changed since is refused and decided again (see Backend). Policy is rare, linearizable
// data: one key that orders every write of a cluster is what it needs, and it costs one
// compare per write. Reads of the set are one transaction too, so the documents and the
// revision they are at agree.
type EtcdBackend struct {
	cli     *clientv3.Client
	prefix  string
	timeout time.Duration
}

// ErrUnavailable is an etcd request that could not be served: no quorum, no member
// reachable, or a timeout. Writes answer 503 until etcd is back; reads of the serving
// policy are not affected.
var ErrUnavailable = errors.New("etcd unavailable")

// NewEtcdBackend connects to etcd. The connection is made lazily by the client: a cluster
// that is down now does not stop a node from starting (it serves its cached policy).
func NewEtcdBackend(cfg EtcdConfig) (*EtcdBackend, error) {
	if len(cfg.Endpoints) == 0 {
		return nil, errors.New("etcd: no endpoint")
	}
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultEtcdPrefix
	}
	if !strings.HasSuffix(cfg.Prefix, "/") {
		cfg.Prefix += "/"
	}
	cfg.DialTimeout = cmpOr(cfg.DialTimeout, 5*time.Second)
	cfg.RequestTimeout = cmpOr(cfg.RequestTimeout, 2*time.Second)
	cc := clientv3.Config{Endpoints: cfg.Endpoints, DialTimeout: cfg.DialTimeout,
		Username: cfg.User, Password: cfg.Password, Logger: zap.NewNop(),
		// A lost connection is noticed within seconds, so that requests go to a
		// member that is up instead of waiting on a dead one.
		DialKeepAliveTime: 2 * time.Second, DialKeepAliveTimeout: 2 * time.Second}
	if cfg.CACert != "" || cfg.Cert != "" || cfg.Key != "" {
		tlsInfo := transport.TLSInfo{TrustedCAFile: cfg.CACert, CertFile: cfg.Cert, KeyFile: cfg.Key}
		tc, err := tlsInfo.ClientConfig()
		if err != nil {
			return nil, fmt.Errorf("etcd tls: %w", err)
		}
		cc.TLS = tc
	}
	cli, err := clientv3.New(cc)
	if err != nil {
		return nil, fmt.Errorf("etcd: %w", err)
	}
	return &EtcdBackend{cli: cli, prefix: cfg.Prefix, timeout: cfg.RequestTimeout}, nil
}

func cmpOr(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// Client is the etcd client, for the other users of the cluster's keys (node and reporter
// registrations); Close closes it.
func (b *EtcdBackend) Client() *clientv3.Client { return b.cli }

// Prefix is the prefix the backend keeps its keys under, ending in "/".
func (b *EtcdBackend) Prefix() string { return b.prefix }

// Close closes the client.
func (b *EtcdBackend) Close() error { return b.cli.Close() }

func (b *EtcdBackend) docsKey() string { return b.prefix + "docs/" }
func (b *EtcdBackend) revKey() string  { return b.prefix + "rev" }

// Path is the document's key: PREFIX docs/NAME, and PREFIX policy/NAME for an operator's
// file (PolicyDocs).
func (b *EtcdBackend) Path(name string) string {
	if isPolicyDoc(name) {
		return b.prefix + name
	}
	return b.docsKey() + name
}

// unavailable wraps an etcd error as ErrUnavailable, keeping its text.
func unavailable(what string, err error) error {
	return fmt.Errorf("%s: %w: %v", what, ErrUnavailable, err)
}

// ReadAll reads every document and the set's revision in one transaction.
func (b *EtcdBackend) ReadAll() (map[string][]byte, int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), b.timeout)
	defer cancel()
	resp, err := b.cli.Txn(ctx).Then(clientv3.OpGet(b.revKey()), clientv3.OpGet(b.docsKey(), clientv3.WithPrefix()),
		clientv3.OpGet(b.prefix+PolicyDocs, clientv3.WithPrefix())).Commit()
	if err != nil {
		return nil, 0, unavailable("read managed documents", err)
	}
	var rev int64
	if kvs := resp.Responses[0].GetResponseRange().Kvs; len(kvs) > 0 {
		rev = kvs[0].ModRevision
	}
	kvs := resp.Responses[1].GetResponseRange().Kvs
	docs := make(map[string][]byte, len(kvs))
	for _, kv := range kvs {
		docs[strings.TrimPrefix(string(kv.Key), b.docsKey())] = kv.Value
	}
	for _, kv := range resp.Responses[2].GetResponseRange().Kvs {
		docs[strings.TrimPrefix(string(kv.Key), b.prefix)] = kv.Value // "policy/NAME"
	}
	return docs, rev, nil
}

// Rev reads the set's revision.
func (b *EtcdBackend) Rev() (int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), b.timeout)
	defer cancel()
	resp, err := b.cli.Get(ctx, b.revKey())
	if err != nil {
		return 0, unavailable("read the managed documents' revision", err)
	}
	if len(resp.Kvs) == 0 {
		return 0, nil
	}
	return resp.Kvs[0].ModRevision, nil
}

// MaxTxnChanges is the most changes one Apply makes: with the revision key, within
// etcd's default --max-txn-ops (128).
const MaxTxnChanges = 64

// Apply makes the changes in one transaction, if the set is still at rev.
func (b *EtcdBackend) Apply(rev int64, changes []Change) (int64, error) {
	if len(changes) == 0 {
		return rev, nil
	}
	if len(changes) > MaxTxnChanges {
		return 0, fmt.Errorf("write %d documents: more than %d in one transaction", len(changes), MaxTxnChanges)
	}
	ops := make([]clientv3.Op, 0, len(changes)+1)
	for _, c := range changes {
		if c.Data == nil {
			ops = append(ops, clientv3.OpDelete(b.Path(c.Name)))
		} else {
			ops = append(ops, clientv3.OpPut(b.Path(c.Name), string(c.Data)))
		}
	}
	ops = append(ops, clientv3.OpPut(b.revKey(), ""))
	what := "write " + changes[0].Name
	if len(changes) > 1 {
		what = fmt.Sprintf("write %d documents", len(changes))
	}
	ctx, cancel := context.WithTimeout(context.Background(), b.timeout)
	defer cancel()
	resp, err := b.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(b.revKey()), "=", rev)).
		Then(ops...).
		Commit()
	if err != nil {
		return 0, unavailable(what, err)
	}
	if !resp.Succeeded {
		return 0, fmt.Errorf("%s: %w", what, ErrConflict)
	}
	return resp.Header.Revision, nil
}

// Watch signals (coalesced: the channel holds one signal) every write to the set, by any
// node, this one's included (a Load that finds the revision it holds compiles nothing),
// until ctx is done, when it closes the channel. A watch that breaks (etcd restarting, a
// compaction, no leader) is started again, and signals once it is, since a write may
// have been missed.
func (b *EtcdBackend) Watch(ctx context.Context) (<-chan struct{}, error) {
	out := make(chan struct{}, 1)
	signal := func() {
		select {
		case out <- struct{}{}:
		default:
		}
	}
	go func() {
		defer close(out)
		backoff := 100 * time.Millisecond
		for ctx.Err() == nil {
			// Once the watch exists, every write after it is an event; one written before
			// it and after the reader's last read would be missed, so its creation is a
			// signal too: a Load that finds nothing new compiles nothing.
			wch := b.cli.Watch(clientv3.WithRequireLeader(ctx), b.revKey(), clientv3.WithCreatedNotify())
			for wr := range wch {
				if err := wr.Err(); err != nil {
					break
				}
				backoff = 100 * time.Millisecond
				if wr.Created || len(wr.Events) > 0 {
					signal()
				}
			}
			if ctx.Err() != nil {
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 5*time.Second)
		}
	}()
	return out, nil
}
