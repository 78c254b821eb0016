package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/opendts/opendts/internal/cluster"
	"github.com/opendts/opendts/internal/dtsapi"
	"github.com/opendts/opendts/internal/jobs"
	"github.com/opendts/opendts/internal/secret"
)

// ClusterConfig puts a server in cluster mode: its jobs live in etcd,
// shared with the other nodes, and it runs the jobs it claims.
type ClusterConfig struct {
	Etcd cluster.EtcdConfig
	// Prefix of opendts's keys in etcd; default cluster.DefaultPrefix.
	Prefix string
	// NodeName is unique per node; Address is where its API listens.
	NodeName string
	Address  string
	// LeaseTTL: how long a dead node's jobs wait before another node
	// takes them over; default 10 s.
	LeaseTTL time.Duration
	// MaxJobs caps the jobs this node works on at once; 0 is unlimited.
	MaxJobs int
}

// clusterParts are what a node holds open.
type clusterParts struct {
	client *clientv3.Client
	store  *cluster.Store
	node   *cluster.Node
}

func openCluster(ctx context.Context, cfg ClusterConfig, box *secret.Box, log *slog.Logger) (*clusterParts, error) {
	cfg.Etcd.Prefix = cfg.Prefix
	client, err := cluster.Connect(ctx, cfg.Etcd)
	if err != nil {
		return nil, err
	}
	keys := cluster.NewKeys(cfg.Prefix)
	st, err := cluster.OpenStore(ctx, client, keys, box, cluster.WithLogger(log.With("node", cfg.NodeName)))
	if err != nil {
		client.Close()
		return nil, err
	}
	node, err := cluster.Join(ctx, cluster.NodeConfig{
		Client: client, Keys: keys, Name: cfg.NodeName, Address: cfg.Address,
		LeaseTTL: cfg.LeaseTTL, MaxJobs: cfg.MaxJobs, Logger: log.With("node", cfg.NodeName),
	})
	if err != nil {
		st.Close()
		client.Close()
		return nil, err
	}
	log.Info("joined the opendts cluster", "node", cfg.NodeName, "etcd", cfg.Etcd.Endpoints, "lease_ttl", cfg.LeaseTTL, "max_jobs", cfg.MaxJobs)
	return &clusterParts{client: client, store: st, node: node}, nil
}

// close leaves the cluster: the job service must be closed first, so
// that the claims released here are of runs that no longer write.
func (c *clusterParts) close() error {
	c.node.Close()
	err := c.store.Close()
	return errors.Join(err, c.client.Close())
}

// nodeList answers DescribeNodes.
func (a *App) nodeList(ctx context.Context) ([]dtsapi.NodeStatus, error) {
	if a.cluster == nil {
		return []dtsapi.NodeStatus{{Name: "standalone", Address: a.address, Started: a.started, Jobs: a.Jobs.Running()}}, nil
	}
	var out []dtsapi.NodeStatus
	for _, n := range a.cluster.node.Nodes() {
		ns := dtsapi.NodeStatus{Name: n.Name, Address: n.Address, Started: n.Started, Registered: n.Registered, Jobs: n.Jobs, MaxJobs: n.MaxJobs}
		if ttl, err := a.cluster.node.LeaseRemaining(ctx, n.Lease); err == nil {
			ns.LeaseRemaining = ttl
		}
		out = append(out, ns)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no live node is registered in etcd (is etcd's majority up?)", jobs.ErrStore)
	}
	return out, nil
}
