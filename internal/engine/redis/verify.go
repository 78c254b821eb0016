package redis

import (
	"bytes"
	"context"
	"fmt"
	"hash/crc32"
	"reflect"
	"slices"
	"strconv"

	goredis "github.com/redis/go-redis/v9"

	"github.com/opendts/opendts/internal/engine"
	"github.com/opendts/opendts/internal/engine/redis/rdb"
)

// ttlTolerance is how far the two sides' remaining lives of a key may be
// apart (the servers are read a moment apart).
const ttlToleranceMs = 2000

// expiringMs: a key with less life left may expire on one side before
// the other (each server expires by its own clock); it is not compared.
const expiringMs = 5000

// VerifyTables lists one "table" per selected database: its keys.
func (m *migration) VerifyTables() []engine.TableRef {
	ctx, cancel := context.WithTimeout(context.Background(), m.e.cfg.Timeout)
	defer cancel()
	n, err := databases(ctx, m.src)
	if err != nil {
		n = 16
	}
	var out []engine.TableRef
	for _, db := range m.dbs.list(n) {
		if db < n {
			out = append(out, engine.TableRef{Database: strconv.Itoa(db), Table: "keys"})
		}
	}
	return out
}

// VerifyCount compares the numbers of keys, leaving out keys about to
// expire (they may be gone on one side only).
func (m *migration) VerifyCount(ctx context.Context, t engine.TableRef) (engine.TableVerification, error) {
	res := engine.TableVerification{Database: t.Database, Table: t.Table, Method: "count"}
	db, _ := strconv.Atoi(t.Database)
	src, dst, done := m.verifySides(ctx, db)
	defer done()
	var counts [2]int64
	for i, side := range []verifySide{src, dst} {
		c := side.look
		err := side.scan(ctx, func(keys []string) error {
			ttls, err := pttls(ctx, c, keys)
			if err != nil {
				return err
			}
			for k, key := range keys {
				if !isOwnKey(key) && (ttls[k] == -1 || ttls[k] >= expiringMs) {
					counts[i]++
				}
			}
			return nil
		})
		if err != nil {
			return res, err
		}
	}
	res.Rows = counts[0]
	if counts[0] != counts[1] {
		res.Differences = 1
		res.Detail = fmt.Sprintf("the source holds %d keys, the target %d", counts[0], counts[1])
	}
	return res, nil
}

// VerifyContent compares pct % of the keys (chosen by a hash of the name)
// by type, value and remaining life; with pct 100 also keys only the
// target holds.
func (m *migration) VerifyContent(ctx context.Context, t engine.TableRef, pct int) (engine.TableVerification, error) {
	res := engine.TableVerification{Database: t.Database, Table: t.Table, Method: "content"}
	db, _ := strconv.Atoi(t.Database)
	srcSide, dstSide, done := m.verifySides(ctx, db)
	defer done()
	src, dst := srcSide.look, dstSide.look
	differ := func(key string) {
		res.Differences++
		if len(res.FirstKeys) < 10 {
			res.FirstKeys = append(res.FirstKeys, strconv.Quote(key))
		}
	}
	err := srcSide.scan(ctx, func(keys []string) error {
		var picked []string
		for _, k := range keys {
			if !isOwnKey(k) && (pct >= 100 || int(crc32.ChecksumIEEE([]byte(k))%100) < pct) {
				picked = append(picked, k)
			}
		}
		a, err := snapshot(ctx, src, picked)
		if err != nil {
			return err
		}
		b, err := snapshot(ctx, dst, picked)
		if err != nil {
			return err
		}
		for i, k := range picked {
			if a[i].missing || a[i].pttl >= 0 && a[i].pttl < expiringMs {
				continue // gone since the scan, or about to expire on one side first
			}
			res.Rows++
			if !sameKey(a[i], b[i]) {
				differ(k)
			}
		}
		return nil
	})
	if err != nil {
		return res, err
	}
	if pct >= 100 {
		err = dstSide.scan(ctx, func(keys []string) error {
			var theirs []string
			for _, k := range keys {
				if !isOwnKey(k) {
					theirs = append(theirs, k)
				}
			}
			if len(theirs) == 0 {
				return nil
			}
			pipe := src.Pipeline()
			cmds := make([]*goredis.IntCmd, len(theirs))
			for i, k := range theirs {
				cmds[i] = pipe.Exists(ctx, k)
			}
			if _, err := pipe.Exec(ctx); err != nil {
				return err
			}
			ttls, err := pttls(ctx, dst, theirs)
			if err != nil {
				return err
			}
			for i, c := range cmds {
				if c.Val() == 0 && (ttls[i] == -1 || ttls[i] >= expiringMs) {
					differ(theirs[i])
				}
			}
			return nil
		})
	}
	if res.Differences > 0 {
		res.Detail = fmt.Sprintf("%d keys differ in type, value or remaining life, or are on one side only", res.Differences)
	}
	return res, err
}

func scanKeys(ctx context.Context, c *goredis.Client, fn func([]string) error) error {
	var cursor uint64
	for {
		keys, next, err := c.Scan(ctx, cursor, "", 500).Result()
		if err != nil {
			return err
		}
		if len(keys) > 0 {
			if err := fn(keys); err != nil {
				return err
			}
		}
		if next == 0 {
			return nil
		}
		cursor = next
	}
}

func pttls(ctx context.Context, c goredis.Cmdable, keys []string) ([]int64, error) {
	pipe := c.Pipeline()
	cmds := make([]*goredis.DurationCmd, len(keys))
	for i, k := range keys {
		cmds[i] = pipe.PTTL(ctx, k)
	}
	if _, err := pipe.Exec(ctx); err != nil && err != goredis.Nil {
		return nil, err
	}
	out := make([]int64, len(keys))
	for i, c := range cmds {
		d := c.Val()
		if d < 0 {
			out[i] = int64(d) // -1 no expiry, -2 missing
		} else {
			out[i] = d.Milliseconds()
		}
	}
	return out, nil
}

type keyState struct {
	missing bool
	dump    string
	pttl    int64
}

func snapshot(ctx context.Context, c goredis.Cmdable, keys []string) ([]keyState, error) {
	out := make([]keyState, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	pipe := c.Pipeline()
	dumps := make([]*goredis.StringCmd, len(keys))
	ttls := make([]*goredis.Cmd, len(keys))
	for i, k := range keys {
		dumps[i] = pipe.Dump(ctx, k)
		ttls[i] = pipe.Do(ctx, "PTTL", k)
	}
	if _, err := pipe.Exec(ctx); err != nil && err != goredis.Nil {
		return nil, err
	}
	for i := range keys {
		d, err := dumps[i].Result()
		if err == goredis.Nil {
			out[i].missing = true
			continue
		}
		if err != nil {
			return nil, err
		}
		out[i].dump = d
		out[i].pttl, _ = ttls[i].Int64()
	}
	return out, nil
}

// sameKey compares two keys: DUMP bytes first; where they differ (a value
// in another encoding), the decoded values.
func sameKey(a, b keyState) bool {
	if b.missing {
		return false
	}
	if (a.pttl < 0) != (b.pttl < 0) || a.pttl >= 0 && abs(a.pttl-b.pttl) > ttlToleranceMs {
		return false
	}
	if a.dump == b.dump {
		return true
	}
	va, ea := decodeDump(a.dump)
	vb, eb := decodeDump(b.dump)
	if ea != nil || eb != nil {
		return false
	}
	return reflect.DeepEqual(normal(va), normal(vb))
}

func abs(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}

func decodeDump(d string) (*rdb.Value, error) {
	if len(d) < 11 {
		return nil, fmt.Errorf("short DUMP")
	}
	return rdb.Decode(d[0], []byte(d[1:len(d)-10]))
}

// normal orders what has no order (set members, hash fields, zset
// members) so that equal values compare equal.
func normal(v *rdb.Value) *rdb.Value {
	switch v.Kind {
	case rdb.KindSet:
		slices.SortFunc(v.Items, bytes.Compare)
	case rdb.KindHash:
		slices.SortFunc(v.Pairs, func(a, b [2][]byte) int { return bytes.Compare(a[0], b[0]) })
	case rdb.KindZSet:
		slices.SortFunc(v.Z, func(a, b rdb.ZMember) int { return bytes.Compare(a.Member, b.Member) })
	}
	return v
}

// verifySide is one side of a comparison: where its keys are scanned
// (each master of a cluster) and a client that finds any key.
type verifySide struct {
	scanners []*goredis.Client
	look     goredis.Cmdable
}

func (v verifySide) scan(ctx context.Context, fn func([]string) error) error {
	for _, c := range v.scanners {
		if err := scanKeys(ctx, c, fn); err != nil {
			return err
		}
	}
	return nil
}

// verifySides connects to database db of both sides.
func (m *migration) verifySides(ctx context.Context, db int) (src, dst verifySide, done func()) {
	var closers []func() error
	side := func(ep engine.Endpoint, nodes []engine.Endpoint, cluster bool) verifySide {
		if !cluster {
			c := m.e.client(ep, db)
			closers = append(closers, c.Close)
			return verifySide{scanners: []*goredis.Client{c}, look: c}
		}
		cc := m.e.clusterClient(ep)
		closers = append(closers, cc.Close)
		v := verifySide{look: cc}
		for _, n := range nodes {
			c := m.e.client(n, 0)
			closers = append(closers, c.Close)
			v.scanners = append(v.scanners, c)
		}
		return v
	}
	src = side(m.spec.Source, m.srcNodes, m.srcCluster)
	var dstNodes []engine.Endpoint
	if m.dstCluster {
		dstNodes, _ = m.e.masters(ctx, m.spec.Target)
	}
	dst = side(m.spec.Target, dstNodes, m.dstCluster)
	return src, dst, func() {
		for _, c := range closers {
			c()
		}
	}
}
