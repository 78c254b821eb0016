package cluster

import (
	"context"
	"encoding/json"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/opendts/opendts/internal/jobs"
)

// GetJob reads one job, passwords included.
func (s *Store) GetJob(ctx context.Context, id string) (*jobs.Job, error) {
	j, err := s.GetJobState(ctx, id)
	if err != nil {
		return nil, err
	}
	sealed := j.Sealed
	j.Sealed = ""
	if err := jobs.OpenPasswords(s.box, j, sealed); err != nil {
		return nil, err
	}
	return j, nil
}

// GetJobState reads one job, its passwords left sealed (Job.Sealed) and
// its progress laid over Detail, all as of one revision; Job.Revision is
// the job key's ModRevision. A linearizable read: it sees every write
// committed before it began, on any node.
func (s *Store) GetJobState(ctx context.Context, id string) (*jobs.Job, error) {
	rctx, cancel := s.bound(ctx)
	defer cancel()
	resp, err := s.c.Txn(rctx).Then(
		clientv3.OpGet(s.keys.Job(id)),
		clientv3.OpGet(s.keys.Secret(id)),
		clientv3.OpGet(s.keys.Progress(id)),
	).Commit()
	if err != nil {
		return nil, s.etcdErr(ctx, rctx, "read job "+id, err)
	}
	jobKVs := resp.Responses[0].GetResponseRange().Kvs
	if len(jobKVs) == 0 {
		return nil, jobs.ErrNotFound
	}
	j := &jobs.Job{}
	if err := json.Unmarshal(jobKVs[0].Value, j); err != nil {
		return nil, fmt.Errorf("decode stored job %s: %w", id, err)
	}
	if kvs := resp.Responses[2].GetResponseRange().Kvs; len(kvs) == 1 {
		var p progressDoc
		if err := json.Unmarshal(kvs[0].Value, &p); err != nil {
			return nil, fmt.Errorf("decode the stored progress of job %s: %w", id, err)
		}
		p.apply(&j.Detail)
	}
	if kvs := resp.Responses[1].GetResponseRange().Kvs; len(kvs) == 1 {
		j.Sealed = string(kvs[0].Value)
	}
	j.Revision = jobKVs[0].ModRevision
	return j, nil
}
