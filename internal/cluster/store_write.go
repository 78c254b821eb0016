package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/opendts/opendts/internal/jobs"
)

// progressDoc is the progress key's value: what SaveProgress was given
// (jobs.Progress), the pairs it never got marked unset. Reads lay it over
// the document's Detail as the SQLite store lays its progress columns.
type progressDoc struct {
	HasProgress      bool               `json:",omitempty"`
	Overall, Current int                `json:",omitempty"`
	HasLag           bool               `json:",omitempty"`
	LagSeconds       int64              `json:",omitempty"`
	LagMegabyte      int64              `json:",omitempty"`
	Copy             *jobs.CopyProgress `json:",omitempty"`
	// rev is the ModRevision of the key it was read from, where the
	// node's copy of the jobs keeps it (not stored).
	rev int64
}

// apply lays p over d.
func (p *progressDoc) apply(d *jobs.Detail) {
	if p == nil {
		return
	}
	if p.HasProgress {
		d.Progress, d.CurrentStepProgress = p.Overall, p.Current
	}
	if p.HasLag {
		d.SecondsBehindMaster, d.MasterSlaveDistance = p.LagSeconds, p.LagMegabyte
	}
	if p.Copy != nil {
		d.Copy = p.Copy
	}
}

// jobWrite is the put of a job and its passwords.
func (s *Store) jobWrite(j *jobs.Job) ([]clientv3.Op, error) {
	doc, err := json.Marshal(j)
	if err != nil {
		return nil, fmt.Errorf("encode job %s: %w", j.ID, err)
	}
	sealed := j.Sealed
	if sealed == "" {
		if sealed, err = jobs.SealPasswords(s.box, j); err != nil {
			return nil, fmt.Errorf("seal passwords of job %s: %w", j.ID, err)
		}
	}
	return []clientv3.Op{
		clientv3.OpPut(s.keys.Job(j.ID), string(doc)),
		clientv3.OpPut(s.keys.Secret(j.ID), sealed),
		// The document carries the progress as read (the SQLite store
		// writes its progress columns from j.Detail the same way): what
		// the key held is older than, or already in, j. A restarted
		// job's zeroed progress must not be hidden by its last run's.
		clientv3.OpDelete(s.keys.Progress(j.ID)),
		clientv3.OpPut(s.keys.Changed(), ""),
	}, nil
}

// CreateJob writes a new job, its passwords sealed, if its id is free.
func (s *Store) CreateJob(ctx context.Context, j *jobs.Job) error {
	ops, err := s.jobWrite(j)
	if err != nil {
		return err
	}
	rctx, cancel := s.bound(ctx)
	defer cancel()
	resp, err := s.c.Txn(rctx).If(clientv3.Compare(clientv3.CreateRevision(s.keys.Job(j.ID)), "=", 0)).Then(ops...).Commit()
	if err != nil {
		return s.etcdErr(ctx, rctx, "create job "+j.ID, err)
	}
	if !resp.Succeeded {
		return jobs.ErrExists
	}
	j.Revision = resp.Header.Revision
	return nil
}

// UpdateJob replaces a stored job. With j.Revision set it commits only if
// the job was not written since it was read (jobs.ErrConflict); under a
// claim, only while the claim holds (jobs.ErrNotOwner). On success
// j.Revision is the new one.
func (s *Store) UpdateJob(ctx context.Context, j *jobs.Job) error {
	ops, err := s.jobWrite(j)
	if err != nil {
		return err
	}
	key := s.keys.Job(j.ID)
	cmps := []clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(key), ">", 0)}
	if j.Revision > 0 {
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(key), "=", j.Revision))
	}
	resp, err := s.guarded(ctx, "update job "+j.ID, j.ID, cmps, ops)
	if err != nil {
		return err
	}
	j.Revision = resp.Header.Revision
	return nil
}

// DeleteJob removes a job, its passwords and its progress (under a claim,
// only while the claim holds).
func (s *Store) DeleteJob(ctx context.Context, id string) error {
	cmp := clientv3.Compare(clientv3.CreateRevision(s.keys.Job(id)), ">", 0)
	if rev, ok := jobs.RevisionOf(ctx); ok {
		cmp = clientv3.Compare(clientv3.ModRevision(s.keys.Job(id)), "=", rev)
	}
	_, err := s.guarded(ctx, "delete job "+id, id,
		[]clientv3.Cmp{cmp},
		[]clientv3.Op{
			clientv3.OpDelete(s.keys.Job(id)),
			clientv3.OpDelete(s.keys.Secret(id)),
			clientv3.OpDelete(s.keys.Progress(id)),
			clientv3.OpPut(s.keys.Changed(), ""),
		})
	return err
}

// guarded commits ops if cmps hold and, when ctx carries a claim, the
// job's claim key is still that claim (its CreateRevision is the epoch).
// When they do not, it tells why: the job is gone (jobs.ErrNotFound), the
// claim is (jobs.ErrNotOwner), or the job changed (jobs.ErrConflict).
func (s *Store) guarded(ctx context.Context, op, id string, cmps []clientv3.Cmp, ops []clientv3.Op) (*clientv3.TxnResponse, error) {
	claim, claimed := jobs.ClaimOf(ctx)
	if claimed {
		cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(s.keys.Claim(id)), "=", claim.Epoch))
	}
	rctx, cancel := s.bound(ctx)
	defer cancel()
	resp, err := s.c.Txn(rctx).If(cmps...).Then(ops...).
		Else(clientv3.OpGet(s.keys.Job(id), clientv3.WithKeysOnly()), clientv3.OpGet(s.keys.Claim(id), clientv3.WithKeysOnly())).
		Commit()
	if err != nil {
		return nil, s.etcdErr(ctx, rctx, op, err)
	}
	if resp.Succeeded {
		return resp, nil
	}
	if len(resp.Responses[0].GetResponseRange().Kvs) == 0 {
		return nil, jobs.ErrNotFound
	}
	if claimed && !claimHolds(resp.Responses[1], claim) {
		return nil, jobs.ErrNotOwner
	}
	return nil, jobs.ErrConflict
}

func claimHolds(r *etcdserverpb.ResponseOp, c jobs.Claim) bool {
	kvs := r.GetResponseRange().Kvs
	return len(kvs) == 1 && kvs[0].CreateRevision == c.Epoch
}

// maxProgressTries bounds SaveProgress's retries when the job or its
// progress changes between its read and its write.
const maxProgressTries = 5

// progressView is a job as SaveProgress decides on it.
type progressView struct {
	found           bool
	status          jobs.Status
	jobRev, progRev int64
	prog            progressDoc
	// claim is the claim key's read (keys only); nil when not read.
	claim *etcdserverpb.ResponseOp
}

// readProgressView decodes the answers to OpGet of the job, its progress
// and its claim.
func readProgressView(id string, r []*etcdserverpb.ResponseOp) (progressView, error) {
	v := progressView{claim: r[2]}
	jobKVs := r[0].GetResponseRange().Kvs
	if len(jobKVs) == 0 {
		return v, nil
	}
	var st struct{ Status jobs.Status }
	if err := json.Unmarshal(jobKVs[0].Value, &st); err != nil {
		return v, fmt.Errorf("decode stored job %s: %w", id, err)
	}
	v.found, v.status, v.jobRev = true, st.Status, jobKVs[0].ModRevision
	if kvs := r[1].GetResponseRange().Kvs; len(kvs) == 1 {
		v.progRev = kvs[0].ModRevision
		if err := json.Unmarshal(kvs[0].Value, &v.prog); err != nil {
			return v, fmt.Errorf("decode the stored progress of job %s: %w", id, err)
		}
	}
	return v, nil
}

// SaveProgress records a migrating job's progress, lag and copy summary in
// the progress key, which the job's revision does not see: frequent
// reports never make a node's UpdateJob conflict. It does nothing (and
// returns nil) unless the job exists at one of jobs.MigratingStatuses,
// which the write's transaction checks by the job's ModRevision. A pair
// not given keeps its last value, as the SQLite store's columns do. Under
// a claim it writes only while the claim holds (jobs.ErrNotOwner).
//
// The job service calls it under its lock, so it costs one round trip
// when it can: the first try starts from the node's copy of the jobs, and
// a try that finds the job changed reads it in the same transaction.
func (s *Store) SaveProgress(ctx context.Context, id string, p jobs.Progress) error {
	jobKey, progKey, claimKey := s.keys.Job(id), s.keys.Progress(id), s.keys.Claim(id)
	claim, claimed := jobs.ClaimOf(ctx)
	reads := []clientv3.Op{clientv3.OpGet(jobKey), clientv3.OpGet(progKey), clientv3.OpGet(claimKey, clientv3.WithKeysOnly())}
	rctx, cancel := s.bound(ctx)
	defer cancel()
	// The copy may not have the job yet, or at an older status: only a
	// read of etcd may decide that there is nothing to save.
	v, ok := s.cache.progressView(id)
	if !ok {
		resp, err := s.c.Txn(rctx).Then(reads...).Commit()
		if err != nil {
			return s.etcdErr(ctx, rctx, "read job "+id+" for its progress", err)
		}
		if v, err = readProgressView(id, resp.Responses); err != nil {
			return err
		}
	}
	for range maxProgressTries {
		if !v.found || !slices.Contains(jobs.MigratingStatuses(), v.status) {
			return nil
		}
		if claimed && v.claim != nil && !claimHolds(v.claim, claim) {
			return jobs.ErrNotOwner
		}
		next := v.prog
		if p.HasProgress {
			next.HasProgress, next.Overall, next.Current = true, p.Overall, p.Current
		}
		if p.HasLag {
			next.HasLag, next.LagSeconds, next.LagMegabyte = true, p.LagSeconds, p.LagMegabyte
		}
		if p.Copy != nil {
			next.Copy = p.Copy
		}
		val, err := json.Marshal(next)
		if err != nil {
			return fmt.Errorf("encode the progress of job %s: %w", id, err)
		}
		cmps := []clientv3.Cmp{
			clientv3.Compare(clientv3.ModRevision(jobKey), "=", v.jobRev),
			clientv3.Compare(clientv3.ModRevision(progKey), "=", v.progRev),
		}
		if claimed {
			cmps = append(cmps, clientv3.Compare(clientv3.CreateRevision(claimKey), "=", claim.Epoch))
		}
		resp, err := s.c.Txn(rctx).If(cmps...).
			Then(clientv3.OpPut(progKey, string(val)), clientv3.OpPut(s.keys.Changed(), "")).
			Else(reads...).Commit()
		if err != nil {
			return s.etcdErr(ctx, rctx, "save the progress of job "+id, err)
		}
		if resp.Succeeded {
			return nil
		}
		if v, err = readProgressView(id, resp.Responses); err != nil {
			return err
		}
	}
	return errors.New("save the progress of job " + id + ": the job kept changing meanwhile")
}
