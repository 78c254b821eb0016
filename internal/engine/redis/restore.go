package redis

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/opendts/opendts/internal/engine"
	"github.com/opendts/opendts/internal/engine/redis/rdb"
)

// restore writes the selected keys of the RDB read from in to the target;
// total is about how many there are (the source's count at the start),
// for progress.
func (m *migration) restore(ctx context.Context, in io.Reader, total int64, progress func(pct int)) error {
	p, err := rdb.NewParser(in)
	if err != nil {
		return err
	}
	w, err := m.newSink(ctx)
	if err != nil {
		return err
	}
	var keys int64
	var werr error
	// Plain strings without a TTL go in MSETs of many keys (a standalone
	// target): a command per key costs the target more than the keys.
	var mset [][]byte
	flushMset := func() error {
		if len(mset) == 0 {
			return nil
		}
		err := w.send(fmt.Sprintf("MSET of %d keys", (len(mset)-1)/2), mset...)
		mset = nil
		return err
	}
	// The RESTOREs are pipelined, not transactions: with a fence the
	// epoch is read again once a second, so a run paused mid-copy stops
	// writing after a takeover once what it had buffered is sent.
	fenceRead := time.Now()
	for werr == nil {
		if ctx.Err() != nil {
			w.close()
			return ctx.Err()
		}
		if m.fence.on() && time.Since(fenceRead) >= time.Second {
			if werr = m.fence.check(ctx, m.dst, "the copy's writes"); werr != nil {
				break
			}
			fenceRead = time.Now()
		}
		e, err := p.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			w.close()
			return fmt.Errorf("reading the source's RDB: %w", err)
		}
		if len(e.Function) > 0 {
			if werr = flushMset(); werr != nil {
				break
			}
			werr = w.send("FUNCTION LOAD", []byte("FUNCTION"), []byte("LOAD"), []byte("REPLACE"), e.Function)
			continue
		}
		if !m.dbs.has(e.DB) || isOwnKey(string(e.Key)) {
			continue
		}
		if e.DB != dbOf(w) {
			if werr = flushMset(); werr != nil {
				break
			}
		}
		if werr = w.selectDB(e.DB); werr != nil {
			break
		}
		keys++
		if e.Type == rdb.TypeString && e.ExpireMs == 0 && !m.dstCluster && len(e.Payload) < 1<<16 {
			v, err := rdb.Decode(e.Type, e.Payload)
			if err != nil {
				werr = fmt.Errorf("key %q: %w", e.Key, err)
				break
			}
			if mset == nil {
				mset = append(make([][]byte, 0, 513), []byte("MSET"))
			}
			mset = append(mset, e.Key, v.Str)
			if len(mset) > 512 {
				werr = flushMset()
			}
			continue
		}
		if werr = flushMset(); werr != nil {
			break
		}
		werr = m.writeEntry(w, p.Version, e)
		if keys%10000 == 0 && total > 0 {
			progress(int(min(99, 100*keys/total)))
		}
	}
	if werr == nil {
		werr = flushMset()
	}
	if err := w.close(); err != nil && !errors.Is(werr, engine.ErrFenced) {
		return err
	}
	if werr != nil {
		return fmt.Errorf("writing to the target: %w", werr)
	}
	m.log.Info("RDB applied to the target", "job_id", m.spec.JobID, "keys", keys, "bytes", p.Read)
	return nil
}

// writeEntry restores one key: RESTORE of the source's own bytes with the
// absolute expiry, or, for a value too large for one command, its
// elements in bounded batches and then the expiry.
func (m *migration) writeEntry(w sink, version int, e *rdb.Entry) error {
	what := "key " + strconv.Quote(string(e.Key))
	ttl := []byte(strconv.FormatInt(e.ExpireMs, 10))
	kind := rdb.KindOf(e.Type)
	if len(e.Payload) <= m.e.cfg.BigKeyBytes || kind == rdb.KindStream || kind == rdb.KindModule {
		return w.send(what, []byte("RESTORE"), e.Key, ttl, rdb.Payload(version, e.Type, e.Payload), []byte("REPLACE"), []byte("ABSTTL"))
	}
	v, err := rdb.Decode(e.Type, e.Payload)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	m.log.Info("a large key is written in pieces", "job_id", m.spec.JobID, "db", e.DB, "key", truncate(e.Key, 100), "type", kind, "bytes", len(e.Payload))
	if err := w.send(what, []byte("DEL"), e.Key); err != nil {
		return err
	}
	n := m.e.cfg.BatchElements
	batch := func(cmd string, items [][]byte) error {
		for len(items) > 0 {
			k := min(len(items), n)
			args := append([][]byte{[]byte(cmd), e.Key}, items[:k]...)
			if err := w.send(what, args...); err != nil {
				return err
			}
			items = items[k:]
		}
		return nil
	}
	switch kind {
	case rdb.KindString:
		const chunk = 4 << 20
		s := v.Str
		for first := true; first || len(s) > 0; first = false {
			k := min(len(s), chunk)
			if err := w.send(what, []byte("APPEND"), e.Key, s[:k]); err != nil {
				return err
			}
			s = s[k:]
		}
	case rdb.KindList:
		err = batch("RPUSH", v.Items)
	case rdb.KindSet:
		err = batch("SADD", v.Items)
	case rdb.KindHash:
		flat := make([][]byte, 0, 2*len(v.Pairs))
		for _, p := range v.Pairs {
			flat = append(flat, p[0], p[1])
		}
		n *= 2
		err = batch("HSET", flat)
	case rdb.KindZSet:
		flat := make([][]byte, 0, 2*len(v.Z))
		for _, z := range v.Z {
			flat = append(flat, []byte(strconv.FormatFloat(z.Score, 'g', 17, 64)), z.Member)
		}
		n *= 2
		err = batch("ZADD", flat)
	}
	if err != nil {
		return err
	}
	if e.ExpireMs != 0 {
		return w.send(what, []byte("PEXPIREAT"), e.Key, ttl)
	}
	return nil
}

// fullSync empties what must be emptied, takes an RDB from the source
// and applies it; it returns the replication position the target then
// holds.
func (m *migration) fullSync(ctx context.Context, from engine.Endpoint, suffix string, report engine.CopyReport, clear bool) (position, error) {
	if clear {
		if err := m.flushTarget(ctx); err != nil {
			return position{}, err
		}
	}
	if err := m.cp.set(ctx, fieldCopying, "1"); err != nil {
		return position{}, err
	}
	// The RESTOREs below are pipelined, not transactions: the fence was
	// read by the write just before, is read once a second while they
	// go, and again by the checkpoint written after them (README, How a
	// Redis migration works).
	r, _, err := openReplica(ctx, from, m.e.cfg.Timeout, "", 0)
	if err != nil {
		return position{}, err
	}
	// A spool left by a run of this job that was killed goes first.
	prefix := "opendts-rdb-" + m.spec.JobID + "-"
	if old, _ := filepath.Glob(filepath.Join(m.e.cfg.TempDir, prefix+"*")); len(old) > 0 {
		for _, o := range old {
			os.Remove(o)
		}
	}
	f, err := os.CreateTemp(m.e.cfg.TempDir, prefix+"*")
	if err != nil {
		r.Close()
		return position{}, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	pos := position{r.replid, r.offset}
	m.log.Info("receiving the RDB from the source", "job_id", m.spec.JobID, "at", pos.String())
	if report != nil {
		report.Snapshotted()
	}
	sp := newSpool(f)
	received := make(chan struct{})
	go func() {
		defer close(received)
		bw := bufio.NewWriterSize(sp, 1<<20)
		size, err := r.receiveRDB(bw)
		if err == nil {
			err = bw.Flush()
		}
		// The stream resumes by a partial resync once the RDB is
		// applied: holding the link meanwhile would only fill the
		// source's output buffer for opendts.
		r.Close()
		if err == nil {
			m.log.Info("RDB received from the source", "job_id", m.spec.JobID, "bytes", size)
		}
		sp.finish(err)
	}()
	progress := func(int) {}
	if report != nil {
		progress = report.Copied
	}
	err = m.restore(ctx, bufio.NewReaderSize(sp.reader(), 1<<20), m.sourceKeys(ctx), progress)
	if err != nil {
		r.Close() // ends the transfer if it still runs
	}
	<-received
	if err != nil {
		return position{}, err
	}
	if err := m.cp.set(ctx, fieldReplID+suffix, pos.replid, fieldOffset+suffix, strconv.FormatInt(pos.offset, 10), fieldDB+suffix, "0"); err != nil {
		return position{}, err
	}
	if err := m.cp.del(ctx, fieldCopying); err != nil {
		return position{}, err
	}
	return pos, nil
}

// flushTarget empties the selected databases of the target, keeping the
// checkpoint.
func (m *migration) flushTarget(ctx context.Context) error {
	saved, err := m.cp.get(ctx)
	if err != nil {
		return err
	}
	n, err := databases(ctx, m.dst)
	if err != nil {
		return fmt.Errorf("read the target's databases: %w", err)
	}
	kv := make([]string, 0, 2*len(saved))
	for k, v := range saved {
		kv = append(kv, k, v)
	}
	cc, cluster := m.dst.(*goredis.ClusterClient)
	if m.fence.on() && !cluster {
		// One transaction under the fence: the databases emptied, the
		// fence key (in database 0) and the checkpoint written again.
		return m.fence.write(ctx, m.dst, "emptying the target", func(p goredis.Pipeliner) {
			for _, db := range m.dbs.list(n) {
				p.Select(ctx, db)
				p.FlushDB(ctx)
			}
			p.Select(ctx, 0)
			p.Set(ctx, m.fence.key, m.fence.epoch, 0)
			if len(kv) > 0 {
				p.HSet(ctx, m.cp.key, kv)
			}
		})
	}
	if err := m.fence.check(ctx, m.dst, "emptying the target"); err != nil {
		return err
	}
	if cluster {
		err := cc.ForEachMaster(ctx, func(ctx context.Context, c *goredis.Client) error { return c.FlushDB(ctx).Err() })
		if err != nil {
			return fmt.Errorf("empty the target cluster: %w", err)
		}
		if m.fence.on() {
			// Read right before the flush (masters cannot share a
			// transaction); only written back when no claim made it
			// again meanwhile.
			if err := m.dst.SetNX(ctx, m.fence.key, m.fence.epoch, 0).Err(); err != nil {
				return fmt.Errorf("write the job's fence on the target: %w", err)
			}
		}
		n = 0
	}
	for _, db := range m.dbs.list(n) {
		c := m.e.client(m.spec.Target, db)
		err := c.FlushDB(ctx).Err()
		c.Close()
		if err != nil {
			return fmt.Errorf("empty database %d of the target: %w", db, err)
		}
	}
	if len(kv) > 0 {
		return m.cp.set(ctx, kv...)
	}
	return nil
}

// sourceKeys is the number of keys in the selected databases of the
// source now (0 when unknown).
func (m *migration) sourceKeys(ctx context.Context) int64 {
	in, err := info(ctx, m.src, "keyspace")
	if err != nil {
		return 0
	}
	var n int64
	for k := range in {
		if db, err := strconv.Atoi(strings.TrimPrefix(k, "db")); err == nil && m.dbs.has(db) {
			n += keyspace(in, db)
		}
	}
	return n
}

// dbOf is the database a sink writes into now (0 for a cluster).
func dbOf(w sink) int {
	if sw, ok := w.(*writer); ok {
		return sw.db
	}
	return 0
}
