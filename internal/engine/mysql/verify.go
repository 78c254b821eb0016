package mysql

import (
	"context"
	"database/sql"
	"fmt"
	"math/big"
	"sort"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/opendts/opendts/internal/engine"
)

// The consistency check (MigrateOption.ConsistencyType) compares source and
// target after the copy (MigrateType 2) or at Complete (MigrateType 3, once
// the last change is applied: writes to the source must have stopped). The
// driver decides which tables and how (engine.VerifyPlan); here, each
// server computes, for a key range, the row count and the sum of a
// CRC32 of every row's bytes, so rows are not pulled through opendts; a
// range that differs is split until the differing rows are found by key.
//
// A sampled content check compares a share of the ranges, chosen by a hash
// of their bounds, so a rerun checks the same ones.

// maxReportedKeys bounds the differing keys named per table.
const maxReportedKeys = 10

// rowHashExpr is the per-row checksum both servers compute: every stored
// column's bytes, and which ones are NULL.
func rowHashExpr(t *tableInfo) string {
	parts := make([]string, 0, len(t.columns)+1)
	nulls := make([]string, len(t.columns))
	for i, c := range t.columns {
		col := quoteIdent(c.name)
		if c.kind == kindFloat {
			col = "(" + col + " + 0E0)"
		}
		// Length-prefixed, so that ('a#', 'b') and ('a', '#b') differ.
		x := "CAST(" + col + " AS BINARY)"
		parts = append(parts, "CONCAT(COALESCE(OCTET_LENGTH("+x+"), -1), ':', COALESCE("+x+", ''))")
		nulls[i] = "ISNULL(" + quoteIdent(c.name) + ")"
	}
	parts = append(parts, "CONCAT("+strings.Join(nulls, ", ")+")")
	return "CRC32(CONCAT_WS('#', " + strings.Join(parts, ", ") + "))"
}

type rangeSum struct {
	rows int64
	sum  string
}

func checksumRange(ctx context.Context, db *sql.DB, t *tableInfo, where string) (rangeSum, error) {
	q := "SELECT COUNT(*), COALESCE(SUM(" + rowHashExpr(t) + "), 0) FROM " + t.String()
	if where != "" {
		q += " WHERE " + where
	}
	var r rangeSum
	if err := db.QueryRowContext(ctx, q).Scan(&r.rows, &r.sum); err != nil {
		return r, fmt.Errorf("checksum %s: %w", t, err)
	}
	return r, nil
}

// bothSums computes a range's checksum on both servers at once.
func (m *migration) bothSums(ctx context.Context, t *tableInfo, where string) (src, dst rangeSum, err error) {
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() (e error) { src, e = checksumRange(gctx, m.src, t, where); return })
	g.Go(func() (e error) { dst, e = checksumRange(gctx, m.dst, t, where); return })
	err = g.Wait()
	return
}

// VerifyTables lists the tables copied, for the driver's consistency
// check.
func (m *migration) VerifyTables() []engine.TableRef {
	out := make([]engine.TableRef, len(m.tables))
	for i, o := range m.tables {
		out[i] = engine.TableRef{Database: o.db, Table: o.name}
	}
	return out
}

// VerifyCount compares a table's row counts.
func (m *migration) VerifyCount(ctx context.Context, ref engine.TableRef) (engine.TableVerification, error) {
	t, err := loadTableInfo(ctx, m.src, ref.Database, ref.Table)
	if err != nil {
		return engine.TableVerification{}, err
	}
	return m.verifyCount(ctx, t)
}

// VerifyContent compares pct % of a table's ranges by checksum.
func (m *migration) VerifyContent(ctx context.Context, ref engine.TableRef, pct int) (engine.TableVerification, error) {
	t, err := loadTableInfo(ctx, m.src, ref.Database, ref.Table)
	if err != nil {
		return engine.TableVerification{}, err
	}
	return m.verifyContent(ctx, t, pct)
}

func (m *migration) verifyCount(ctx context.Context, t *tableInfo) (engine.TableVerification, error) {
	res := engine.TableVerification{Database: t.db, Table: t.name, Method: "count"}
	var a, b int64
	if err := m.src.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+t.String()).Scan(&a); err != nil {
		return res, err
	}
	if err := m.dst.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+t.String()).Scan(&b); err != nil {
		return res, err
	}
	res.Rows = a
	if a != b {
		res.Differences = 1
		res.Detail = fmt.Sprintf("%d rows on the source, %d on the target", a, b)
	}
	return res, nil
}

// verifyContent compares pct % of a table's ranges by checksum.
func (m *migration) verifyContent(ctx context.Context, t *tableInfo, pct int) (engine.TableVerification, error) {
	res := engine.TableVerification{Database: t.db, Table: t.name, Method: "content"}
	chunks, err := planTable(ctx, m.src, t, m.e.cfg.ChunkRows, 0)
	if err != nil {
		return res, err
	}
	for _, ch := range chunks {
		if len(chunks) > 1 && !engine.Sampled(fmt.Sprintf("%s.%s#%s", t.db, t.name, ch.Where), pct) {
			continue
		}
		s, d, err := m.bothSums(ctx, t, ch.Where)
		if err != nil {
			return res, err
		}
		res.Rows += s.rows
		if s == d {
			continue
		}
		res.Differences++
		if len(t.key) == 0 {
			res.Detail = fmt.Sprintf("rows differ (source %d rows, target %d) in a table without a key", s.rows, d.rows)
			continue
		}
		if len(res.FirstKeys) < maxReportedKeys {
			keys, err := m.differingKeys(ctx, t, ch.Where, maxReportedKeys-len(res.FirstKeys))
			if err != nil {
				return res, err
			}
			res.FirstKeys = append(res.FirstKeys, keys...)
		}
	}
	return res, nil
}

// differingKeys narrows a differing range: an integer key range is split
// while it holds many rows, then both sides' (key, row hash) lists are
// compared.
func (m *migration) differingKeys(ctx context.Context, t *tableInfo, where string, limit int) ([]string, error) {
	if t.intKey {
		s, _, err := m.bothSums(ctx, t, where)
		if err != nil {
			return nil, err
		}
		if s.rows > 2000 {
			if parts, ok := m.splitRange(ctx, t, where); ok {
				var out []string
				for _, p := range parts {
					a, b, err := m.bothSums(ctx, t, p)
					if err != nil {
						return nil, err
					}
					if a == b {
						continue
					}
					keys, err := m.differingKeys(ctx, t, p, limit-len(out))
					if err != nil {
						return nil, err
					}
					out = append(out, keys...)
					if len(out) >= limit {
						return out[:limit], nil
					}
				}
				return out, nil
			}
		}
	}
	src, err := keyHashes(ctx, m.src, t, where)
	if err != nil {
		return nil, err
	}
	dst, err := keyHashes(ctx, m.dst, t, where)
	if err != nil {
		return nil, err
	}
	var out []string
	for k, h := range src {
		if dst[k] != h {
			out = append(out, k)
		}
	}
	for k := range dst {
		if _, ok := src[k]; !ok {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// splitRange cuts a range of the integer key into 16 parts.
func (m *migration) splitRange(ctx context.Context, t *tableInfo, where string) ([]string, bool) {
	k := quoteIdent(t.key[0])
	q := "SELECT MIN(" + k + "), MAX(" + k + ") FROM " + t.String()
	if where != "" {
		q += " WHERE " + where
	}
	var lo, hi sql.NullString
	if m.src.QueryRowContext(ctx, q).Scan(&lo, &hi) != nil || !lo.Valid {
		return nil, false
	}
	a, ok1 := new(big.Int).SetString(lo.String, 10)
	b, ok2 := new(big.Int).SetString(hi.String, 10)
	if !ok1 || !ok2 || a.Cmp(b) >= 0 {
		return nil, false
	}
	span := new(big.Int).Sub(b, a)
	span.Add(span, big.NewInt(1))
	const n = 16
	prefix := ""
	if where != "" {
		prefix = "(" + where + ") AND "
	}
	var out []string
	prev := ""
	for i := int64(1); i <= n; i++ {
		var cond string
		bound := new(big.Int).Mul(span, big.NewInt(i))
		bound.Quo(bound, big.NewInt(n))
		bound.Add(bound, a)
		switch {
		case i == n:
			cond = k + " >= " + prev
		case prev == "":
			cond = k + " < " + bound.String()
		default:
			cond = k + " >= " + prev + " AND " + k + " < " + bound.String()
		}
		prev = bound.String()
		out = append(out, prefix+cond)
	}
	return out, true
}

// keyHashes reads (key, row hash) for a range from one server.
func keyHashes(ctx context.Context, db *sql.DB, t *tableInfo, where string) (map[string]string, error) {
	keyCols := make([]string, len(t.key))
	for i, k := range t.key {
		keyCols[i] = "CAST(" + quoteIdent(k) + " AS CHAR)"
	}
	q := "SELECT CONCAT_WS(',', " + strings.Join(keyCols, ", ") + "), " + rowHashExpr(t) + " FROM " + t.String()
	if where != "" {
		q += " WHERE " + where
	}
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("read keys of %s: %w", t, err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var k, h string
		if err := rows.Scan(&k, &h); err != nil {
			return nil, err
		}
		out[k] = h
	}
	return out, rows.Err()
}
