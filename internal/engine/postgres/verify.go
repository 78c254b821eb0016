package postgres

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"golang.org/x/sync/errgroup"

	"github.com/opendts/opendts/internal/engine"
)

// The consistency check compares each table on both servers without
// pulling rows through opendts: each server computes, per key range, the
// row count and the sum of a 64-bit hash of every row's text form (both
// sessions use the same text settings, see conn.go). A range that differs
// is narrowed to its differing keys by comparing the keys' hashes.

const maxReportedKeys = 10

// rowHash is the per-row checksum, as numeric so that the sum cannot
// overflow.
func rowHash(r *relation) string {
	cols := make([]string, len(r.Columns))
	for i, c := range r.Columns {
		cols[i] = quoteIdent(c)
	}
	return "('x' || substr(md5(ROW(" + strings.Join(cols, ", ") + ")::text), 1, 16))::bit(64)::int8::numeric"
}

// VerifyTables lists the tables copied.
func (m *migration) VerifyTables() []engine.TableRef {
	var out []engine.TableRef
	for _, d := range m.dbs {
		for _, r := range d.Relations {
			out = append(out, r.Ref)
		}
	}
	return out
}

func (m *migration) relation(t engine.TableRef) (*relation, error) {
	for _, d := range m.dbs {
		for _, r := range d.Relations {
			if r.Ref == t {
				return r, nil
			}
		}
	}
	return nil, fmt.Errorf("table %s is not part of the job", t)
}

// both runs f against the table's database on each server at once.
func (m *migration) both(ctx context.Context, db string, f func(ctx context.Context, c *pgx.Conn, side string) error) error {
	g, gctx := errgroup.WithContext(ctx)
	for _, side := range []struct {
		name string
		ep   engine.Endpoint
	}{{"source", m.spec.Source}, {"target", m.spec.Target}} {
		g.Go(func() error {
			c, err := m.e.connect(gctx, side.ep, side.name, db)
			if err != nil {
				return err
			}
			defer closeQuietly(c)
			return f(gctx, c, side.name)
		})
	}
	return g.Wait()
}

func verification(t engine.TableRef, method string) engine.TableVerification {
	return engine.TableVerification{Database: t.Database, Table: t.Schema + "." + t.Table, Method: method}
}

// VerifyCount compares row counts.
func (m *migration) VerifyCount(ctx context.Context, t engine.TableRef) (engine.TableVerification, error) {
	res := verification(t, "count")
	var counts [2]int64
	err := m.both(ctx, t.Database, func(ctx context.Context, c *pgx.Conn, side string) error {
		i := 0
		if side == "target" {
			i = 1
		}
		return c.QueryRow(ctx, "SELECT count(*) FROM ONLY "+quoteQualified(t.Schema, t.Table)).Scan(&counts[i])
	})
	if err != nil {
		return res, fmt.Errorf("count %s: %w", t, err)
	}
	res.Rows = counts[0]
	if counts[0] != counts[1] {
		res.Differences = 1
		res.Detail = fmt.Sprintf("%d rows on the source, %d on the target", counts[0], counts[1])
	}
	return res, nil
}

// keyRange is one range of an integer key, [lo, hi); nil is unbounded.
type keyRange struct{ lo, hi *int64 }

func (k keyRange) where(key string) string {
	var conds []string
	if k.lo != nil {
		conds = append(conds, quoteIdent(key)+" >= "+strconv.FormatInt(*k.lo, 10))
	}
	if k.hi != nil {
		conds = append(conds, quoteIdent(key)+" < "+strconv.FormatInt(*k.hi, 10))
	}
	if len(conds) == 0 {
		return "true"
	}
	return strings.Join(conds, " AND ")
}

// ranges splits an integer-keyed table into ranges of about ChunkRows
// rows by the source's key bounds; other tables are one range.
func (m *migration) ranges(ctx context.Context, r *relation) ([]keyRange, error) {
	if !r.IntKey {
		return []keyRange{{}}, nil
	}
	var lo, hi *int64
	var est int64
	err := m.both(ctx, r.Ref.Database, func(ctx context.Context, c *pgx.Conn, side string) error {
		if side == "target" {
			return nil
		}
		q := fmt.Sprintf("SELECT min(%[1]s)::int8, max(%[1]s)::int8, greatest((SELECT reltuples FROM pg_class WHERE oid = %[3]d), 0)::int8 FROM ONLY %[2]s",
			quoteIdent(r.Key[0]), quoteQualified(r.Ref.Schema, r.Ref.Table), r.OID)
		return c.QueryRow(ctx, q).Scan(&lo, &hi, &est)
	})
	if err != nil {
		return nil, err
	}
	n := max(1, (est+m.e.cfg.ChunkRows-1)/m.e.cfg.ChunkRows)
	if lo == nil || n == 1 {
		return []keyRange{{}}, nil
	}
	bounds := splitKeys(*lo, *hi, n)
	out := make([]keyRange, len(bounds)+1)
	for i := range out {
		if i > 0 {
			v := bounds[i-1]
			out[i].lo = &v
		}
		if i < len(bounds) {
			v := bounds[i]
			out[i].hi = &v
		}
	}
	return out, nil
}

// VerifyContent compares pct % of the table's ranges by checksum and
// names the first differing keys.
func (m *migration) VerifyContent(ctx context.Context, t engine.TableRef, pct int) (engine.TableVerification, error) {
	res := verification(t, "content")
	r, err := m.relation(t)
	if err != nil {
		return res, err
	}
	ranges, err := m.ranges(ctx, r)
	if err != nil {
		return res, fmt.Errorf("verify %s: %w", t, err)
	}
	key := ""
	if r.IntKey {
		key = r.Key[0]
	}
	table := quoteQualified(t.Schema, t.Table)
	for _, kr := range ranges {
		where := kr.where(key)
		if pct < 100 && !engine.Sampled(t.String()+":"+where, pct) {
			continue
		}
		var rows [2]int64
		var sums [2]string
		err := m.both(ctx, t.Database, func(ctx context.Context, c *pgx.Conn, side string) error {
			i := 0
			if side == "target" {
				i = 1
			}
			return c.QueryRow(ctx, "SELECT count(*), coalesce(sum("+rowHash(r)+"), 0)::text FROM ONLY "+table+" WHERE "+where).Scan(&rows[i], &sums[i])
		})
		if err != nil {
			return res, fmt.Errorf("verify %s: %w", t, err)
		}
		res.Rows += rows[0]
		if rows == [2]int64{rows[0], rows[0]} && sums[0] == sums[1] {
			continue
		}
		res.Differences++
		if len(r.Key) == 0 {
			res.Detail = fmt.Sprintf("rows differ (source %d rows, target %d) in a table without a key", rows[0], rows[1])
			continue
		}
		if len(res.FirstKeys) < maxReportedKeys {
			keys, err := m.differingKeys(ctx, r, where, maxReportedKeys-len(res.FirstKeys))
			if err != nil {
				return res, err
			}
			res.FirstKeys = append(res.FirstKeys, keys...)
		}
	}
	if res.Differences > 0 && res.Detail == "" {
		res.Detail = fmt.Sprintf("%d of the ranges compared differ", res.Differences)
	}
	return res, nil
}

// differingKeys compares the rows of one range key by key: each side sends
// its keys with their row hashes, in key order.
func (m *migration) differingKeys(ctx context.Context, r *relation, where string, limit int) ([]string, error) {
	keyCols := make([]string, len(r.Key))
	for i, k := range r.Key {
		keyCols[i] = quoteIdent(k)
	}
	keyText := "ROW(" + strings.Join(keyCols, ", ") + ")::text"
	if len(keyCols) == 1 {
		keyText = keyCols[0] + "::text"
	}
	q := "SELECT " + keyText + ", md5(ROW(" + strings.Join(quoteAll(r.Columns), ", ") + ")::text) FROM ONLY " +
		quoteQualified(r.Ref.Schema, r.Ref.Table) + " WHERE " + where + " ORDER BY " + strings.Join(keyCols, ", ")
	var sides [2]map[string]string
	err := m.both(ctx, r.Ref.Database, func(ctx context.Context, c *pgx.Conn, side string) error {
		i := 0
		if side == "target" {
			i = 1
		}
		rows, err := c.Query(ctx, q)
		if err != nil {
			return err
		}
		defer rows.Close()
		got := map[string]string{}
		for rows.Next() {
			var k, h string
			if err := rows.Scan(&k, &h); err != nil {
				return err
			}
			got[k] = h
		}
		sides[i] = got
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("verify %s: find differing keys: %w", r.Ref, err)
	}
	var out []string
	for k, h := range sides[0] {
		if sides[1][k] != h {
			out = append(out, k)
		}
	}
	for k := range sides[1] {
		if _, ok := sides[0][k]; !ok {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

func quoteAll(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = quoteIdent(n)
	}
	return out
}
