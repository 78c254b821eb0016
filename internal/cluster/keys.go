// Package cluster runs opendts on several nodes that share one etcd
// cluster: the job store every node reads and writes (Store, a jobs.Store
// with revision-checked writes), the nodes' registry under their leases,
// and the claims by which one node owns each job's work.
//
// Everything lives under one prefix (default "/opendts/"), so that tests,
// or several opendts services, can share an etcd cluster:
//
//	<prefix>jobs/<id>      the job (JSON, without passwords); its ModRevision is Job.Revision
//	<prefix>secrets/<id>   the job's passwords, sealed with the master key
//	<prefix>progress/<id>  the progress and lag a running job reports often (JSON), kept apart
//	                       so that they do not bump the job's revision
//	<prefix>claims/<id>    the node that owns the job's work, under that node's lease; the
//	                       key's CreateRevision is the claim's epoch
//	<prefix>nodes/<name>   a live node (JSON: name, address, start time), under its lease
//	<prefix>locks/target/<target>/<lease>  the lock StartMigrateJob holds on a target instance
//	<prefix>keycheck       a value sealed with the master key of the first node, which every
//	                       later node must be able to open
//	<prefix>changed        rewritten (empty) in every transaction that writes a job, its
//	                       secrets or its progress: its ModRevision, read linearizably, is
//	                       how far a node's watched copy of the jobs must have got to show
//	                       every write committed before the read (store_cache.go)
package cluster

import "strings"

// DefaultPrefix is where opendts keeps its keys in etcd.
const DefaultPrefix = "/opendts/"

// Keys names the keys under one prefix.
type Keys struct{ Prefix string }

// NewKeys returns the key names under prefix (DefaultPrefix when empty),
// which always ends in "/".
func NewKeys(prefix string) Keys {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	if !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	return Keys{Prefix: prefix}
}

func (k Keys) Jobs() string              { return k.Prefix + "jobs/" }
func (k Keys) Job(id string) string      { return k.Jobs() + id }
func (k Keys) Secrets() string           { return k.Prefix + "secrets/" }
func (k Keys) Secret(id string) string   { return k.Secrets() + id }
func (k Keys) Progresses() string        { return k.Prefix + "progress/" }
func (k Keys) Progress(id string) string { return k.Progresses() + id }
func (k Keys) Claims() string            { return k.Prefix + "claims/" }
func (k Keys) Claim(id string) string    { return k.Claims() + id }
func (k Keys) Nodes() string             { return k.Prefix + "nodes/" }
func (k Keys) Node(name string) string   { return k.Nodes() + name }
func (k Keys) KeyCheck() string          { return k.Prefix + "keycheck" }
func (k Keys) Changed() string           { return k.Prefix + "changed" }

// TargetLock is the lock StartMigrateJob holds on a target instance (an
// etcd concurrency.Mutex: its waiters' keys go under it).
func (k Keys) TargetLock(target string) string { return k.Prefix + "locks/target/" + target }
