package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/opendts/opendts/internal/jobs"
)

// The node's copy of every job, for ListJobs, CountByStatus and
// WritingInto: etcd has no secondary indexes, and reading 10,000 job
// documents per DescribeMigrateJobs would cost tens of milliseconds.
//
// It is filled by a read of the jobs and their progress at one revision
// (relist), then kept by one watch of the prefix from the next revision
// on. A compacted watch (etcd dropped the revisions it needed) lists
// again; any other break watches again from where the copy is.
//
// Read-your-writes across nodes: every write transaction also rewrites
// Keys.Changed, so a linearizable read of that key gives the revision of
// the last write to any job (deletes included, which leave no key to
// look at). A list first waits until the watch has delivered that
// revision; a job another node created a moment before is then listed.
// The header revision of any read would not do: it counts writes outside
// the prefix (other services, other tests) that this watch never sees,
// and waiting for those needs requested progress notifications, which
// Debian's etcd 3.4.23 may answer out of order with the events
// (etcd-io/etcd#15220, fixed in 3.4.24 and 3.5.8).
type cache struct {
	mu    sync.RWMutex
	rev   int64 // every change up to rev is in jobs and progs
	jobs  map[string]*entry
	progs map[string]*progressDoc
	// advanced is closed, and replaced, each time rev grows.
	advanced chan struct{}
}

// entry is one job as lists see it. Entries are replaced, never changed,
// so readers holding one need no lock; job is shared by every list that
// returns it (each gets a shallow copy).
type entry struct {
	id   string
	doc  *jobs.Job // as stored
	job  *jobs.Job // doc with its progress laid over Detail
	rev  int64     // the job key's ModRevision
	name string
	// What lists filter and order on.
	status               jobs.Status
	created              int64 // CreateTime.UnixNano(), as the SQLite store orders
	migrateType, runMode int
	target               string
	dbs                  []string
}

func (c *cache) init() {
	c.jobs, c.progs = map[string]*entry{}, map[string]*progressDoc{}
	c.advanced = make(chan struct{})
}

func newEntry(id string, doc *jobs.Job, rev int64, p *progressDoc) *entry {
	e := &entry{id: id, doc: doc, rev: rev, name: doc.Name, status: doc.Status, created: doc.CreateTime.UnixNano(),
		migrateType: doc.Option.MigrateType, runMode: doc.Option.RunMode}
	e.target, e.dbs = jobs.ConflictKeys(doc)
	e.job = withProgress(doc, p)
	return e
}

// withProg is e with another progress: a new entry, for readers may hold
// e (the selection is not parsed again for a progress report).
func (e *entry) withProg(p *progressDoc) *entry {
	n := *e
	n.job = withProgress(e.doc, p)
	return &n
}

func withProgress(doc *jobs.Job, p *progressDoc) *jobs.Job {
	if p == nil {
		return doc
	}
	j := *doc
	p.apply(&j.Detail)
	return &j
}

func decodeJob(id string, value []byte) (*jobs.Job, error) {
	j := &jobs.Job{}
	if err := json.Unmarshal(value, j); err != nil {
		return nil, fmt.Errorf("decode stored job %s: %w", id, err)
	}
	return j, nil
}

// listPage is how many keys one request of relist reads.
const listPage = 500

// relist reads every job and progress key at one revision and replaces
// the copy with them. Documents unchanged since the copy had them are not
// decoded again.
func (s *Store) relist(ctx context.Context) error {
	rev := int64(0)
	read := func(prefix string, each func(id string, kv []byte, modRev int64)) error {
		key, end := prefix, clientv3.GetPrefixRangeEnd(prefix)
		for {
			opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(listPage)}
			if rev > 0 {
				opts = append(opts, clientv3.WithRev(rev))
			}
			rctx, cancel := s.bound(ctx)
			resp, err := s.c.Get(rctx, key, opts...)
			if err != nil {
				err = s.etcdErr(ctx, rctx, "list jobs", err)
			}
			cancel()
			if err != nil {
				return err
			}
			if rev == 0 {
				rev = resp.Header.Revision
			}
			for _, kv := range resp.Kvs {
				each(strings.TrimPrefix(string(kv.Key), prefix), kv.Value, kv.ModRevision)
			}
			if !resp.More || len(resp.Kvs) == 0 {
				return nil
			}
			key = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
		}
	}
	type raw struct {
		value []byte
		rev   int64
	}
	docs := map[string]raw{}
	if err := read(s.keys.Jobs(), func(id string, v []byte, r int64) { docs[id] = raw{v, r} }); err != nil {
		return err
	}
	progs := map[string]*progressDoc{}
	if err := read(s.keys.Progresses(), func(id string, v []byte, r int64) {
		p := progressDoc{rev: r}
		if err := json.Unmarshal(v, &p); err != nil {
			s.log.Error("cluster store: skip a damaged progress", "job_id", id, "err", err)
			return
		}
		progs[id] = &p
	}); err != nil {
		return err
	}
	s.cache.mu.RLock()
	old := s.cache.jobs
	s.cache.mu.RUnlock()
	entries := make(map[string]*entry, len(docs))
	for id, d := range docs {
		if e := old[id]; e != nil && e.rev == d.rev {
			entries[id] = e.withProg(progs[id])
			continue
		}
		doc, err := decodeJob(id, d.value)
		if err != nil {
			s.log.Error("cluster store: a stored job cannot be listed", "job_id", id, "err", err)
			continue
		}
		entries[id] = newEntry(id, doc, d.rev, progs[id])
	}
	c := &s.cache
	c.mu.Lock()
	defer c.mu.Unlock()
	c.jobs, c.progs = entries, progs
	if rev > c.rev {
		c.rev = rev
		close(c.advanced)
		c.advanced = make(chan struct{})
	}
	return nil
}

// watch keeps the copy until Close.
func (s *Store) watch() {
	defer close(s.done)
	const maxBackoff = 2 * time.Second
	backoff := 50 * time.Millisecond
	needList := false
	for s.ctx.Err() == nil {
		var err error
		if needList {
			if err = s.relist(s.ctx); err == nil {
				needList = false
			}
		}
		if !needList {
			// RequireLeader: a member cut off from the others ends the
			// watch instead of keeping it open and silent.
			wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(s.ctx))
			var progressed bool
			needList, progressed, err = s.follow(s.c.Watch(wctx, s.keys.Prefix, clientv3.WithPrefix(), clientv3.WithRev(s.cache.revision()+1)))
			cancel()
			if progressed {
				backoff = 50 * time.Millisecond
			}
		}
		if s.ctx.Err() != nil {
			return
		}
		s.log.Warn("cluster store: the watch of the jobs in etcd broke; resuming", "err", err, "relist", needList, "retry_in", backoff)
		select {
		case <-s.ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// follow applies a watch's events until it ends. compacted: the revisions
// it needed are gone, so the copy must be listed again.
func (s *Store) follow(wch clientv3.WatchChan) (compacted, progressed bool, err error) {
	for resp := range wch {
		if resp.CompactRevision != 0 {
			return true, progressed, fmt.Errorf("compacted at revision %d", resp.CompactRevision)
		}
		if err := resp.Err(); err != nil {
			return false, progressed, err
		}
		if len(resp.Events) > 0 {
			s.apply(resp.Events)
			progressed = true
		}
	}
	return false, progressed, fmt.Errorf("the watch ended")
}

// apply lays a watch response's events (in revision order) over the copy.
func (s *Store) apply(events []*clientv3.Event) {
	jobsPrefix, progPrefix := s.keys.Jobs(), s.keys.Progresses()
	// Decode before taking the lock, so that lists wait less.
	type change struct {
		id   string
		rev  int64
		doc  *jobs.Job
		prog *progressDoc
		del  bool
		job  bool // a job key, else a progress key
		skip bool
	}
	changes := make([]change, len(events))
	for i, ev := range events {
		key := string(ev.Kv.Key)
		ch := &changes[i]
		ch.rev, ch.del = ev.Kv.ModRevision, ev.Type == clientv3.EventTypeDelete
		switch {
		case strings.HasPrefix(key, jobsPrefix):
			ch.id, ch.job = key[len(jobsPrefix):], true
			if !ch.del {
				doc, err := decodeJob(ch.id, ev.Kv.Value)
				if err != nil {
					s.log.Error("cluster store: a stored job cannot be listed", "job_id", ch.id, "err", err)
					ch.del = true
				}
				ch.doc = doc
			}
		case strings.HasPrefix(key, progPrefix):
			ch.id = key[len(progPrefix):]
			if !ch.del {
				p := progressDoc{rev: ch.rev}
				if err := json.Unmarshal(ev.Kv.Value, &p); err != nil {
					s.log.Error("cluster store: skip a damaged progress", "job_id", ch.id, "err", err)
					ch.skip = true
				}
				ch.prog = &p
			}
		default:
			ch.skip = true // secrets, claims, nodes, the key check, Changed
		}
	}
	c := &s.cache
	c.mu.Lock()
	defer c.mu.Unlock()
	rev := c.rev
	for _, ch := range changes {
		rev = max(rev, ch.rev)
		switch {
		case ch.skip:
		case ch.job && ch.del:
			delete(c.jobs, ch.id)
		case ch.job:
			c.jobs[ch.id] = newEntry(ch.id, ch.doc, ch.rev, c.progs[ch.id])
		default:
			if ch.del {
				delete(c.progs, ch.id)
			} else {
				c.progs[ch.id] = ch.prog
			}
			if e := c.jobs[ch.id]; e != nil {
				c.jobs[ch.id] = e.withProg(c.progs[ch.id])
			}
		}
	}
	if rev > c.rev {
		c.rev = rev
		close(c.advanced)
		c.advanced = make(chan struct{})
	}
}

// progressView is what SaveProgress needs of a job, as the copy has it:
// ok when the copy holds the job at a migrating status. The copy may be
// behind; the write's compares on both revisions catch that.
func (c *cache) progressView(id string) (v progressView, ok bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	e := c.jobs[id]
	if e == nil || !slices.Contains(jobs.MigratingStatuses(), e.status) {
		return v, false
	}
	v = progressView{found: true, status: e.status, jobRev: e.rev}
	if p := c.progs[id]; p != nil {
		v.prog, v.progRev = *p, p.rev
	}
	return v, true
}

func (c *cache) revision() int64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.rev
}

// catchUp returns once the copy holds every write committed before it was
// called, on any node (see cache), or fails within the request timeout.
func (s *Store) catchUp(ctx context.Context, op string) error {
	rctx, cancel := s.bound(ctx)
	defer cancel()
	resp, err := s.c.Get(rctx, s.keys.Changed())
	if err != nil {
		return s.etcdErr(ctx, rctx, op, err)
	}
	var want int64
	if len(resp.Kvs) == 1 {
		want = resp.Kvs[0].ModRevision
	}
	for {
		s.cache.mu.RLock()
		rev, advanced := s.cache.rev, s.cache.advanced
		s.cache.mu.RUnlock()
		if rev >= want {
			return nil
		}
		select {
		case <-advanced:
		case <-s.ctx.Done():
			return fmt.Errorf("etcd %s: the job store is closed", op)
		case <-rctx.Done():
			if ctx.Err() != nil {
				return fmt.Errorf("etcd %s: %w", op, ctx.Err())
			}
			// etcd answered the read but its watch did not deliver: a
			// member cut off from the rest, or one far behind. The
			// store cannot answer either way (jobs.ErrStoreUnavailable).
			return fmt.Errorf("etcd %s: this node's watch of the jobs in etcd is behind (at revision %d of %d after %s; is the etcd cluster partitioned or overloaded?): %w", op, rev, want, s.timeout, jobs.ErrStoreUnavailable)
		}
	}
}
