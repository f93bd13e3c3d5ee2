// Package store is the glbdns policy store: the operator's policy path (a .hcl file or a
// directory of them) plus the managed documents where the admin API keeps its objects (a
// folder, or keys of an etcd cluster that several nodes share), one HCL document per
// object ("pool-NAME.hcl", "service-NAME.hcl", written with hclwrite as one multi-line
// block) and "drains.json" for drains.
//
// One loader and one validator serve files and API alike: Load hands the operator's files
// and the managed documents to the policy compiler (a policy.Compiler: what policy.Load
// gives, reusing the work of the files that did not change), and every write first
// compiles the would-be policy (the new document in place, in memory) and is refused
// whole on any error. The daemon calls Load instead of policy.LoadPath. Every snapshot the store
// compiles and keeps, by Load or by a write, goes to its Publish function (the daemon
// installs it), under the store's lock so that snapshots are installed in the order they
// were compiled: a write compiles the policy once, and the snapshot that validated it is
// the one that serves.
//
// Objects defined in the operator's files are visible through the API (Managed false) but
// read-only (ErrReadOnly). The managed folder defaults to "<policy path>.managed" beside the
// policy (DefaultManagedDir), not inside it: a policy directory is the operator's and is
// read without recursion.
//
// Versions are a hash of an object's canonical JSON, so equal content has an equal
// version; Precondition carries If-Match / If-None-Match.
//
// Persistence is crash-safe: temp file in the same folder (a name that ends in ".tmp",
// never ".hcl"), fsync, rename over the target, fsync of the folder. A single mutex
// serialises writers of one process; the DirBackend is not safe for several processes
// writing at once: several glbdns nodes share a store only through a Backend with
// cross-machine compare-and-swap (see Backend).
//
// The store watches its sources (Watch, watch.go): the operator's files with fsnotify, as
// directories (editors rename over files) filtered down to the policy's *.hcl files and
// the files of the last snapshot (zone files), and the managed documents through the
// backend's own watch when it has one (DirBackend watches its folder). It signals,
// debounced, when the policy may have changed, and the caller Loads: so glbdns reloads, and
// healthd, which opens a store on the same policy and folder and never writes to it,
// probes exactly what glbdns serves, whoever changed it (glbdns's admin API, another
// glbdns sharing the folder, an operator's edit). A store's own writes are no news to it:
// the DirBackend remembers what it wrote and its watch drops the echo, so an API write is
// compiled once, not once more by the reload its own file event would ask for.
//
// Drains are not part of the policy: they change no snapshot. A drain write publishes the
// serving snapshot again with the new drains, and package health counts a drained member
// as down until its drain expires, when it comes back by itself, with no reload.
package store
