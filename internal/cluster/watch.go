package cluster

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// watch keeps the node's view of claims and nodes, and passes job changes
// on to the job service, until ctx ends. It closes ready once the first
// view is loaded. A watch that fails (compaction, etcd unavailable) is
// replaced by a fresh read and a new watch.
func (n *Node) watch(ctx context.Context, ready chan struct{}) {
	first := true
	for ctx.Err() == nil {
		rev, err := n.load(ctx)
		if first {
			close(ready)
			first = false
		}
		if err != nil {
			if ctx.Err() == nil {
				n.log.Warn("etcd: read claims and nodes", "err", err)
			}
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
			continue
		}
		n.Wake()
		n.follow(ctx, rev)
	}
}

// load reads every claim and node, as of one revision.
func (n *Node) load(ctx context.Context) (int64, error) {
	rctx, cancel := context.WithTimeout(ctx, n.cfg.RequestTimeout)
	defer cancel()
	claims, err := n.cfg.Client.Get(rctx, n.cfg.Keys.Claims(), clientv3.WithPrefix())
	if err != nil {
		return 0, err
	}
	rev := claims.Header.Revision
	nodes, err := n.cfg.Client.Get(rctx, n.cfg.Keys.Nodes(), clientv3.WithPrefix(), clientv3.WithRev(rev))
	if err != nil {
		return 0, err
	}
	cm := map[string]claimInfo{}
	for _, kv := range claims.Kvs {
		id := strings.TrimPrefix(string(kv.Key), n.cfg.Keys.Claims())
		cm[id] = claimInfo{node: string(kv.Value), epoch: kv.CreateRevision}
	}
	nm := map[string]NodeInfo{}
	for _, kv := range nodes.Kvs {
		if ni, ok := decodeNode(kv.Value, kv.Lease); ok {
			nm[ni.Name] = ni
		}
	}
	n.mu.Lock()
	n.claims, n.nodes = cm, nm
	n.mu.Unlock()
	return rev, nil
}

func decodeNode(v []byte, lease int64) (NodeInfo, bool) {
	var ni NodeInfo
	if err := json.Unmarshal(v, &ni); err != nil || ni.Name == "" {
		return ni, false
	}
	ni.Lease = clientv3.LeaseID(lease)
	return ni, true
}

// follow applies the changes after rev until the watch ends.
func (n *Node) follow(ctx context.Context, rev int64) {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	wc := n.cfg.Client.Watch(wctx, n.cfg.Keys.Prefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1))
	for resp := range wc {
		if err := resp.Err(); err != nil {
			if ctx.Err() == nil {
				n.log.Warn("etcd: watch ended; reading again", "err", err)
			}
			return
		}
		for _, ev := range resp.Events {
			n.apply(ctx, ev)
		}
	}
}

func (n *Node) apply(ctx context.Context, ev *clientv3.Event) {
	key := string(ev.Kv.Key)
	del := ev.Type == clientv3.EventTypeDelete
	switch {
	case strings.HasPrefix(key, n.cfg.Keys.Claims()):
		id := strings.TrimPrefix(key, n.cfg.Keys.Claims())
		n.mu.Lock()
		if del {
			delete(n.claims, id)
		} else {
			n.claims[id] = claimInfo{node: string(ev.Kv.Value), epoch: ev.Kv.CreateRevision}
		}
		n.mu.Unlock()
		if del {
			// A job without an owner: its node ended it, or died.
			n.Wake()
		}
	case strings.HasPrefix(key, n.cfg.Keys.Nodes()):
		name := strings.TrimPrefix(key, n.cfg.Keys.Nodes())
		n.mu.Lock()
		if del {
			delete(n.nodes, name)
		} else if ni, ok := decodeNode(ev.Kv.Value, ev.Kv.Lease); ok {
			n.nodes[name] = ni
		}
		n.mu.Unlock()
		n.Wake()
	case strings.HasPrefix(key, n.cfg.Keys.Jobs()):
		id := strings.TrimPrefix(key, n.cfg.Keys.Jobs())
		if n.Owner(id) == n.cfg.Name {
			n.jobs.Changed(ctx, id)
		}
		n.Wake()
	}
}
