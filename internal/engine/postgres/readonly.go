package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// HoldReadOnly sets default_transaction_read_only on every target
// database of the job, for new sessions: ordinary users' transactions are
// read-only until the job ends (a session may still ask for a read-write
// transaction, and sessions open before the call keep their setting).
// opendts's own sessions turn it off for themselves (see conn.go).
func (m *migration) HoldReadOnly(ctx context.Context) (func(), error) {
	if m.state.ReadOnlyBefore == nil {
		m.state.ReadOnlyBefore = map[string]string{}
	}
	if err := m.checkFence(ctx, "making the target read-only"); err != nil {
		return nil, err
	}
	c, err := m.e.connect(ctx, m.spec.Target, "target", "")
	if err != nil {
		return nil, err
	}
	defer closeQuietly(c)
	var held []string
	for _, d := range m.dbs {
		var exists bool
		if err := c.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, d.Name).Scan(&exists); err != nil {
			return nil, fmt.Errorf("target: %w", err)
		}
		if !exists {
			if err := m.createDatabase(ctx, c, d.Name); err != nil {
				return nil, err
			}
		}
		if _, saved := m.state.ReadOnlyBefore[d.Name]; !saved {
			before, err := databaseSetting(ctx, c, d.Name, "default_transaction_read_only")
			if err != nil {
				return nil, err
			}
			m.state.ReadOnlyBefore[d.Name] = before
		}
		if _, err := c.Exec(ctx, "ALTER DATABASE "+quoteIdent(d.Name)+" SET default_transaction_read_only = on"); err != nil {
			return nil, fmt.Errorf("target: make database %s read-only (DstInfo.ReadOnly=1 needs the target user to own it): %w", d.Name, err)
		}
		held = append(held, d.Name)
	}
	if err := m.cp.save(ctx, m.state); err != nil {
		return nil, err
	}
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), timeoutRestore)
		defer cancel()
		if err := m.RestoreReadOnly(ctx); err != nil {
			m.e.cfg.Logger.Warn("could not give the target databases their read-only setting back", "job_id", m.spec.JobID, "databases", held, "err", err)
		}
	}, nil
}

// RestoreReadOnly gives each target database the setting it had.
func (m *migration) RestoreReadOnly(ctx context.Context) error {
	if len(m.state.ReadOnlyBefore) == 0 {
		return nil
	}
	// A run that lost the job leaves the setting to the new owner.
	if err := m.checkFence(ctx, "giving read-only back"); err != nil {
		return err
	}
	c, err := m.e.connect(ctx, m.spec.Target, "target", "")
	if err != nil {
		return err
	}
	defer closeQuietly(c)
	for db, before := range m.state.ReadOnlyBefore {
		q := "ALTER DATABASE " + quoteIdent(db) + " RESET default_transaction_read_only"
		if before != "" {
			q = "ALTER DATABASE " + quoteIdent(db) + " SET default_transaction_read_only = " + quoteLiteral(before)
		}
		if _, err := c.Exec(ctx, q); err != nil && sqlState(err) != "3D000" {
			return fmt.Errorf("target: give database %s its read-only setting back: %w", db, err)
		}
	}
	return nil
}

// databaseSetting is a per-database setting (ALTER DATABASE ... SET), or
// "" when the database has none.
func databaseSetting(ctx context.Context, c *pgx.Conn, db, name string) (string, error) {
	var v string
	err := c.QueryRow(ctx, `SELECT coalesce((SELECT split_part(s, '=', 2) FROM pg_db_role_setting r
			JOIN pg_database d ON d.oid = r.setdatabase, unnest(r.setconfig) s
			WHERE d.datname = $1 AND r.setrole = 0 AND split_part(s, '=', 1) = $2), '')`, db, name).Scan(&v)
	if err != nil {
		return "", fmt.Errorf("target: read %s of database %s: %w", name, db, err)
	}
	return v, nil
}
