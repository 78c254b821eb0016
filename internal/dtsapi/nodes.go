package dtsapi

import (
	"context"
	"time"

	"github.com/opendts/opendts/internal/cloudapi"
)

// NodesAction is the opendts extension action that lists the nodes of
// the service: every live node of a cluster, or the one node of a single
// server.
const NodesAction = "DescribeNodes"

// NodeStatus is one node as DescribeNodes shows it.
type NodeStatus struct {
	Name    string
	Address string
	// Started is when the node's process started; Registered when its
	// current etcd lease was granted (its lease age counts from there).
	Started    time.Time
	Registered time.Time
	// LeaseRemaining is what is left of the lease's TTL (0 on a single
	// node, or when etcd did not say).
	LeaseRemaining time.Duration
	// Jobs counts the jobs whose work the node owns; MaxJobs is its
	// limit (0: none).
	Jobs, MaxJobs int
}

// RegisterNodes adds NodesAction to srv, answered by list.
func RegisterNodes(srv *cloudapi.Server, cluster bool, list func(ctx context.Context) ([]NodeStatus, error)) {
	srv.Handle(NodesAction, 0, wrap(func(ctx context.Context, req *cloudapi.Request) (any, error) {
		nodes, err := list(ctx)
		if err != nil {
			return nil, err
		}
		type nodeOut struct {
			Name                  string
			Address               string
			StartTime             string
			RegisterTime          string
			LeaseAgeSeconds       int64
			LeaseRemainingSeconds int64
			JobCount              int64
			MaxJobs               int64
		}
		out := struct {
			Cluster    bool
			TotalCount int64
			Nodes      []nodeOut
		}{Cluster: cluster, TotalCount: int64(len(nodes)), Nodes: []nodeOut{}}
		now := time.Now()
		for _, n := range nodes {
			o := nodeOut{
				Name: n.Name, Address: n.Address,
				StartTime:             n.Started.In(time.Local).Format(time.DateTime),
				LeaseRemainingSeconds: int64(n.LeaseRemaining / time.Second),
				JobCount:              int64(n.Jobs), MaxJobs: int64(n.MaxJobs),
			}
			if !n.Registered.IsZero() {
				o.RegisterTime = n.Registered.In(time.Local).Format(time.DateTime)
				o.LeaseAgeSeconds = int64(now.Sub(n.Registered) / time.Second)
			}
			out.Nodes = append(out.Nodes, o)
		}
		return out, nil
	}))
}
