package mysql

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/opendts/opendts/internal/engine"
)

// smallTableRows is the most rows (by the source's estimate) a table may
// have for its secondary indexes to be created with it rather than after
// its rows: maintaining an index over a few thousand rows while they load
// costs less than the ALTER TABLE that would add it afterwards (a
// statement, a metadata lock and a rebuild of the table's definition).
const smallTableRows = 10_000

// createTables creates the base tables on the target, cfg.Workers at a
// time, each worker with its own source and target connection. A table
// costs a SHOW CREATE on the source and a CREATE on the target; a
// CREATE TABLE waits mostly on the target's files and dictionary, which
// several sessions overlap. Tables come in waves so that a table is
// created after the tables its foreign keys reference (cycles go last;
// the sessions' foreign_key_checks=0 accepts them in any order).
func (m *migration) createTables(ctx context.Context, tick func()) error {
	if len(m.tables) == 0 {
		return nil
	}
	waves, err := m.foreignKeyWaves(ctx)
	if err != nil {
		return err
	}
	// Only a full job defers indexes: a full + incremental job's resumed
	// copy decides from the target's unique keys how to reconcile a table
	// (rebase), so they must be there from the start. Only it needs the
	// tables' sizes here.
	deferIndexes := m.spec.MigrateType == engine.MigrateFull
	var infos map[string]*tableInfo
	if deferIndexes {
		if infos, err = m.tableInfos(ctx); err != nil {
			return err
		}
	}
	var mu sync.Mutex // state.Deferred and tick
	for _, wave := range waves {
		todo := make(chan object)
		g, gctx := errgroup.WithContext(ctx)
		g.Go(func() error {
			defer close(todo)
			for _, t := range wave {
				select {
				case todo <- t:
				case <-gctx.Done():
					return gctx.Err()
				}
			}
			return nil
		})
		for range min(m.e.cfg.Workers, len(wave)) {
			g.Go(func() error {
				w, err := m.newDDLWorker(gctx)
				if err != nil {
					return err
				}
				defer w.close()
				for t := range todo {
					info := infos[tableID(t.db, t.name)]
					small := info != nil && info.estRows <= smallTableRows
					adds, err := w.createTable(gctx, t.db, t.name, deferIndexes, small, m.spec.Resume)
					if err != nil {
						return err
					}
					mu.Lock()
					if len(adds) > 0 {
						if m.state.Deferred == nil {
							m.state.Deferred = map[string][]string{}
						}
						m.state.Deferred[tableID(t.db, t.name)] = adds
					}
					tick()
					mu.Unlock()
				}
				return nil
			})
		}
		if err := g.Wait(); err != nil {
			return err
		}
	}
	return nil
}

// ddlWorker creates tables through a target connection of its own, set
// once for table DDL (an empty sql_mode, so that definitions the source
// accepted, zero-date defaults among them, are accepted) and given back to
// the pool as it was taken.
type ddlWorker struct {
	m    *migration
	conn *sql.Conn
	db   string // the connection's current database
	bad  bool
}

func (m *migration) newDDLWorker(ctx context.Context) (*ddlWorker, error) {
	conn, err := m.dst.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("open a target connection for DDL: %w", err)
	}
	w := &ddlWorker{m: m, conn: conn}
	for _, q := range []string{"SET NAMES utf8mb4", "SET SESSION sql_mode = ''"} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			w.bad = true
			w.close()
			return nil, fmt.Errorf("prepare a DDL connection: %w", err)
		}
	}
	return w, nil
}

// close restores the session's sql_mode before the connection goes back
// to the pool; one that cannot be restored is dropped instead.
func (w *ddlWorker) close() {
	if !w.bad {
		ctx, cancel := context.WithTimeout(context.Background(), w.m.e.cfg.QueryTimeout)
		_, err := w.conn.ExecContext(ctx, "SET SESSION sql_mode = "+sessionVars["sql_mode"])
		cancel()
		w.bad = err != nil
	}
	if w.bad {
		_ = w.conn.Raw(func(any) error { return driver.ErrBadConn })
	}
	w.conn.Close()
}

// createTable creates a table and returns the index clauses to add after
// its rows. A small table keeps its indexes; but a resumed run may find it
// created by an earlier run that judged it large (the estimate moved), so
// it then also returns them: an index already there counts as added.
func (w *ddlWorker) createTable(ctx context.Context, db, name string, deferIndexes, small, resumed bool) ([]string, error) {
	stmt, adds, err := w.m.schema.tableDDL(ctx, db, name, deferIndexes && !small, resumed)
	if err != nil {
		return nil, err
	}
	if deferIndexes && small && resumed {
		_, adds = splitSecondaryIndexes(stmt)
	}
	if w.db != db {
		if _, err := w.conn.ExecContext(ctx, "USE "+quoteIdent(db)); err != nil {
			w.bad = true
			return nil, fmt.Errorf("create table %s.%s on the target: %w", quoteIdent(db), quoteIdent(name), err)
		}
		w.db = db
	}
	if err := w.m.cp.fence.check(ctx, w.conn, "DDL"); err != nil {
		return nil, err
	}
	if _, err := w.conn.ExecContext(ctx, stmt); err != nil {
		return nil, fmt.Errorf("create table %s.%s on the target: %w", quoteIdent(db), quoteIdent(name), err)
	}
	return adds, nil
}

// foreignKeyWaves orders m.tables into waves: each table in a wave after
// every selected table its foreign keys reference, from one query over
// the source's REFERENTIAL_CONSTRAINTS. A job without foreign keys has one
// wave.
func (m *migration) foreignKeyWaves(ctx context.Context) ([][]object, error) {
	ids := make(map[string]bool, len(m.tables))
	for _, t := range m.tables {
		ids[tableID(t.db, t.name)] = true
	}
	parents := map[string][]string{}
	if len(m.dbs) > 0 {
		rows, err := m.src.QueryContext(ctx, `SELECT CONSTRAINT_SCHEMA, TABLE_NAME, UNIQUE_CONSTRAINT_SCHEMA, REFERENCED_TABLE_NAME
			FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA IN (`+placeholders(len(m.dbs))+`)`, args(m.dbs)...)
		if err != nil {
			return nil, fmt.Errorf("read the foreign keys on the source: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var db, name, refDB, refName string
			if err := rows.Scan(&db, &name, &refDB, &refName); err != nil {
				return nil, err
			}
			child, parent := tableID(db, name), tableID(refDB, refName)
			if ids[child] && ids[parent] && child != parent {
				parents[child] = append(parents[child], parent)
			}
		}
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("read the foreign keys on the source: %w", err)
		}
	}
	return waves(m.tables, parents), nil
}

// waves groups tables into levels: a table's level is after each of its
// parents'. Tables left in a cycle form the last wave.
func waves(tables []object, parents map[string][]string) [][]object {
	done := map[string]bool{}
	pending := tables
	var out [][]object
	for len(pending) > 0 {
		var wave, rest []object
		for _, t := range pending {
			ready := true
			for _, p := range parents[tableID(t.db, t.name)] {
				if !done[p] {
					ready = false
					break
				}
			}
			if ready {
				wave = append(wave, t)
			} else {
				rest = append(rest, t)
			}
		}
		if len(wave) == 0 {
			// A cycle: what is left goes together.
			wave, rest = rest, nil
		}
		for _, t := range wave {
			done[tableID(t.db, t.name)] = true
		}
		out = append(out, wave)
		pending = rest
	}
	return out
}
