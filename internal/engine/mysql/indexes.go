package mysql

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	"golang.org/x/sync/errgroup"
)

// splitSecondaryIndexes takes a SHOW CREATE TABLE statement and returns it
// without its secondary indexes, and the ALTER TABLE clauses that add them
// back. InnoDB builds an index on a loaded table by sorting, much faster
// than keeping it up to date row by row while loading; this is the largest
// single saving of a bulk load.
//
// A table keeps its indexes when taking them out could change how it
// loads: foreign keys (they need an index on their columns) and an
// AUTO_INCREMENT column that is not the primary key's first column (it
// must lead some index).
func splitSecondaryIndexes(create string) (table string, adds []string) {
	open := strings.Index(create, "(\n")
	close := strings.LastIndex(create, "\n)")
	if open < 0 || close < open {
		return create, nil
	}
	body := create[open+2 : close]
	lines := strings.Split(body, "\n")
	if strings.Contains(body, " FOREIGN KEY ") {
		return create, nil
	}
	var kept []string
	var autoCol string
	primaryFirst := ""
	for _, l := range lines {
		def := strings.TrimSuffix(strings.TrimSpace(l), ",")
		switch {
		// FULLTEXT and SPATIAL indexes stay: InnoDB builds only one FULLTEXT
		// index per ALTER, and neither is a B-tree a sort helps.
		case strings.HasPrefix(def, "KEY "), strings.HasPrefix(def, "UNIQUE KEY "):
			adds = append(adds, "ADD "+def)
			continue
		case strings.HasPrefix(def, "PRIMARY KEY ("):
			rest := def[len("PRIMARY KEY ("):]
			if i := strings.Index(rest, "`,"); i >= 0 {
				primaryFirst = rest[:i+1]
			} else if i := strings.Index(rest, "`)"); i >= 0 {
				primaryFirst = rest[:i+1]
			}
		case strings.HasPrefix(def, "`") && strings.Contains(def, " AUTO_INCREMENT"):
			if i := strings.Index(def[1:], "` "); i >= 0 {
				autoCol = def[:i+2]
			}
		}
		kept = append(kept, "  "+def)
	}
	if len(adds) == 0 {
		return create, nil
	}
	if autoCol != "" && autoCol != primaryFirst {
		return create, nil
	}
	return create[:open+2] + strings.Join(kept, ",\n") + create[close:], adds
}

// addDeferredIndexes adds the indexes taken out at create time, one ALTER
// per table so each table is read once, several tables at a time. An index
// already there (a resumed job added it before) counts as added.
func (m *migration) addDeferredIndexes(ctx context.Context) error {
	if len(m.state.Deferred) == 0 {
		return nil
	}
	started := time.Now()
	defer func() {
		m.e.cfg.Logger.Info("secondary indexes built", "job_id", m.spec.JobID, "tables", len(m.state.Deferred), "elapsed", time.Since(started).Round(time.Millisecond))
	}()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(m.e.cfg.Workers)
	for key, adds := range m.state.Deferred {
		db, table, _ := strings.Cut(key, "\x00")
		g.Go(func() error {
			release, err := m.e.cfg.Budget.Acquire(gctx, m.spec.JobID)
			if err != nil {
				return err
			}
			defer release()
			conn, err := m.dst.Conn(gctx)
			if err != nil {
				return err
			}
			defer conn.Close()
			if err := m.cp.fence.check(gctx, conn, "DDL"); err != nil {
				return err
			}
			_, err = conn.ExecContext(gctx, "ALTER TABLE "+quoteIdent(db)+"."+quoteIdent(table)+" "+strings.Join(adds, ", "))
			var myErr *mysql.MySQLError
			if errors.As(err, &myErr) && myErr.Number == 1061 { // duplicate key name
				return nil
			}
			if err != nil {
				return fmt.Errorf("add the indexes of %s.%s on the target: %w", quoteIdent(db), quoteIdent(table), err)
			}
			return nil
		})
	}
	return g.Wait()
}
