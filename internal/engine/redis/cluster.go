package redis

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"

	goredis "github.com/redis/go-redis/v9"

	"github.com/opendts/opendts/internal/engine"
)

// Redis Cluster: a cluster source is read shard by shard (opendts is a
// replica of each master), and keys go to a cluster target's master that
// owns their slot, following MOVED and ASK when a slot moves meanwhile.
// A cluster target takes the change stream one slot a transaction
// (clusterstream.go); a cluster source's masters each have their own
// stream (multistream.go).

// masters lists a cluster's masters as endpoints with ep's credentials,
// or nil when ep is not a cluster.
func (e *Engine) masters(ctx context.Context, ep engine.Endpoint) ([]engine.Endpoint, error) {
	c := e.client(ep, 0)
	defer c.Close()
	in, err := info(ctx, c, "cluster")
	if err != nil {
		return nil, err
	}
	if in["cluster_enabled"] != "1" {
		return nil, nil
	}
	slots, err := c.ClusterSlots(ctx).Result()
	if err != nil {
		return nil, fmt.Errorf("CLUSTER SLOTS on %s: %w", ep.Address(), err)
	}
	var out []engine.Endpoint
	seen := map[string]bool{}
	for _, s := range slots {
		if len(s.Nodes) == 0 || seen[s.Nodes[0].Addr] {
			continue
		}
		seen[s.Nodes[0].Addr] = true
		n, err := withAddr(ep, s.Nodes[0].Addr)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

func withAddr(ep engine.Endpoint, addr string) (engine.Endpoint, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return ep, fmt.Errorf("cluster node address %q: %w", addr, err)
	}
	ep.Host = host
	if ep.Port, err = strconv.Atoi(port); err != nil {
		return ep, fmt.Errorf("cluster node address %q", addr)
	}
	return ep, nil
}

func (e *Engine) clusterClient(ep engine.Endpoint) *goredis.ClusterClient {
	return goredis.NewClusterClient(&goredis.ClusterOptions{
		Addrs:           []string{ep.Address()},
		Username:        ep.User,
		Password:        ep.Password,
		Protocol:        2,
		DisableIdentity: true,
		DialTimeout:     e.cfg.DialTimeout,
		ReadTimeout:     e.cfg.Timeout,
		WriteTimeout:    e.cfg.Timeout,
	})
}

// clusterWriter sends each key to the master that owns its slot.
type clusterWriter struct {
	ep    engine.Endpoint
	e     *Engine
	owner [16384]int
	nodes []*writer
	// side connections carry redirected commands, one per address.
	mu   sync.Mutex
	side map[string]*conn
}

func newClusterWriter(ctx context.Context, e *Engine, ep engine.Endpoint) (*clusterWriter, error) {
	c := e.client(ep, 0)
	defer c.Close()
	slots, err := c.ClusterSlots(ctx).Result()
	if err != nil {
		return nil, fmt.Errorf("CLUSTER SLOTS on the target: %w", err)
	}
	w := &clusterWriter{ep: ep, e: e, side: map[string]*conn{}}
	for i := range w.owner {
		w.owner[i] = -1
	}
	index := map[string]int{}
	for _, s := range slots {
		if len(s.Nodes) == 0 {
			continue
		}
		addr := s.Nodes[0].Addr
		i, ok := index[addr]
		if !ok {
			nep, err := withAddr(ep, addr)
			if err == nil {
				var nc *conn
				if nc, err = dial(ctx, nep, e.cfg.DialTimeout); err == nil {
					i = len(w.nodes)
					index[addr] = i
					w.nodes = append(w.nodes, newWriter(nc, w.redirect))
				}
			}
			if err != nil {
				w.close()
				return nil, err
			}
		}
		for sl := s.Start; sl <= s.End; sl++ {
			w.owner[sl] = i
		}
	}
	return w, nil
}

func (w *clusterWriter) send(what string, args ...[]byte) error {
	if strings.EqualFold(string(args[0]), "FUNCTION") {
		// Functions live on each node.
		for _, n := range w.nodes {
			if err := n.send(what, args...); err != nil {
				return err
			}
		}
		return nil
	}
	i := w.owner[keySlot(args[1])]
	if i < 0 {
		return fmt.Errorf("no master of the target cluster serves the slot of %s", what)
	}
	return w.nodes[i].send(what, args...)
}

func (w *clusterWriter) selectDB(db int) error {
	if db != 0 {
		return fmt.Errorf("the source's database %d cannot go into a cluster, which has database 0 only", db)
	}
	return nil
}

func (w *clusterWriter) close() error {
	var errs []error
	for _, n := range w.nodes {
		errs = append(errs, n.close())
	}
	w.mu.Lock()
	for _, c := range w.side {
		c.Close()
	}
	w.mu.Unlock()
	return errors.Join(errs...)
}

// redirect carries out a command a node answered with MOVED or ASK, on
// the node named, in the order the replies come.
func (w *clusterWriter) redirect(re RespError, p pending) error {
	f := strings.Fields(string(re))
	if len(f) != 3 {
		return fmt.Errorf("the target answered %s with %q", p.what, re)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	c := w.side[f[2]]
	if c == nil {
		ep, err := withAddr(w.ep, f[2])
		if err != nil {
			return err
		}
		if c, err = dial(context.Background(), ep, w.e.cfg.DialTimeout); err != nil {
			return fmt.Errorf("following %s for %s: %w", f[0], p.what, err)
		}
		w.side[f[2]] = c
	}
	if f[0] == "ASK" {
		c.writeCmd("ASKING")
	}
	c.writeCmdBytes(p.args)
	if err := c.flush(); err != nil {
		return err
	}
	if f[0] == "ASK" {
		if _, err := c.reply(); err != nil {
			return fmt.Errorf("ASKING on %s: %w", f[2], err)
		}
	}
	if _, err := c.reply(); err != nil {
		return fmt.Errorf("the target refused %s (after %s): %w", p.what, f[0], err)
	}
	return nil
}

// keySlot is Redis Cluster's slot of a key: CRC16 of its hash tag (the
// part between the first { and the next }, when not empty) or of the key.
func keySlot(key []byte) int {
	if i := strings.IndexByte(string(key), '{'); i >= 0 {
		if j := strings.IndexByte(string(key[i+1:]), '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	return int(crc16(key) & 16383)
}

var crc16Table = func() (t [256]uint16) {
	for i := range t {
		c := uint16(i) << 8
		for range 8 {
			if c&0x8000 != 0 {
				c = c<<1 ^ 0x1021
			} else {
				c <<= 1
			}
		}
		t[i] = c
	}
	return
}()

func crc16(b []byte) uint16 {
	var c uint16
	for _, x := range b {
		c = c<<8 ^ crc16Table[byte(c>>8)^x]
	}
	return c
}
