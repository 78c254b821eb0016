package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/opendts/opendts/internal/engine"
)

// A full + incremental job reads its database's changes through one
// publication and one logical replication slot of its own (pgoutput, the
// built-in plugin: nothing to install on the source), both named after the
// job. The slot is created with an exported snapshot that the copy reads:
// every change the copy does not see is a change the slot sends, none
// twice. They are dropped when the job ends or is started afresh.

// slotName is the job's slot and publication name: lower case, letters,
// digits and underscores, at most 63 characters.
func slotName(jobID string) string {
	var b strings.Builder
	b.WriteString("opendts_")
	for _, r := range strings.ToLower(jobID) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	s := b.String()
	if len(s) > 63 {
		s = s[:63]
	}
	return s
}

// replConn opens a logical replication connection to ep's database db,
// with the text settings of every other session, so that pgoutput's text
// values read as the target's input expects.
func (e *Engine) replConn(ctx context.Context, ep engine.Endpoint, db string) (*pgconn.PgConn, error) {
	cfg, err := e.connConfig(ep, db)
	if err != nil {
		return nil, err
	}
	cfg.RuntimeParams["replication"] = "database"
	c, err := pgconn.ConnectConfig(ctx, &cfg.Config)
	if err != nil {
		return nil, &connectError{side: "source", addr: ep.Address(), user: ep.User, db: db, err: err}
	}
	return c, nil
}

// createPublication makes the job's publication in d: FOR ALL TABLES when
// the whole database moves and the source user may (a superuser),
// otherwise FOR TABLE with each selected table (the user must own them).
func (m *migration) createPublication(ctx context.Context, c *pgx.Conn, d *database) error {
	name := slotName(m.spec.JobID)
	if _, err := c.Exec(ctx, "DROP PUBLICATION IF EXISTS "+quoteIdent(name)); err != nil {
		return fmt.Errorf("source %s: drop an old publication %s: %w", d.Name, name, err)
	}
	var super bool
	if err := c.QueryRow(ctx, "SELECT rolsuper FROM pg_roles WHERE rolname = current_user").Scan(&super); err != nil {
		return fmt.Errorf("source %s: %w", d.Name, err)
	}
	q := "CREATE PUBLICATION " + quoteIdent(name)
	switch {
	case d.Whole && super:
		q += " FOR ALL TABLES"
	case super:
		// Whole schemas by schema, so that a table created in one later
		// is published too (its CREATE TABLE is replayed: ddl_capture.go).
		var parts []string
		if len(d.Schemas) > 0 {
			s := make([]string, len(d.Schemas))
			for i, n := range d.Schemas {
				s[i] = quoteIdent(n)
			}
			parts = append(parts, "TABLES IN SCHEMA "+strings.Join(s, ", "))
		}
		t := []string{quoteQualified(markSchema, "ddl_log")}
		for _, r := range d.Tables {
			t = append(t, quoteQualified(r.Schema, r.Table))
		}
		parts = append(parts, "TABLE "+strings.Join(t, ", "))
		q += " FOR " + strings.Join(parts, ", ")
	default:
		if len(d.Relations) == 0 {
			return engine.Permanent(fmt.Errorf("source %s: no table to replicate", d.Name))
		}
		names := make([]string, len(d.Relations))
		for i, r := range d.Relations {
			names[i] = quoteQualified(r.Ref.Schema, r.Ref.Table)
		}
		q += " FOR TABLE " + strings.Join(names, ", ")
	}
	if _, err := c.Exec(ctx, q); err != nil {
		return fmt.Errorf("source %s: create publication %s (a superuser, or the owner of every selected table, may): %w", d.Name, name, err)
	}
	return nil
}

// createSlot creates the job's slot with an exported snapshot (temporary
// with temp, for a resumed copy's boundary). The snapshot lives while the
// replication session runs no other command.
func (m *migration) createSlot(ctx context.Context, db, name string, temp bool) (*pgconn.PgConn, pglogrepl.CreateReplicationSlotResult, error) {
	var res pglogrepl.CreateReplicationSlotResult
	rc, err := m.e.replConn(ctx, m.spec.Source, db)
	if err != nil {
		return nil, res, err
	}
	if !temp {
		m.dropSlot(ctx, rc, name)
	}
	res, err = pglogrepl.CreateReplicationSlot(ctx, rc, name, "pgoutput",
		pglogrepl.CreateReplicationSlotOptions{Temporary: temp, SnapshotAction: "EXPORT_SNAPSHOT", Mode: pglogrepl.LogicalReplication})
	if err != nil {
		rc.Close(context.Background())
		return nil, res, fmt.Errorf("source %s: create replication slot %s (needs the REPLICATION attribute and a free max_replication_slots): %w", db, name, err)
	}
	return rc, res, nil
}

// dropSlotWhenFree drops the slot, waiting up to 15 s for the session of
// a run that just ended to let it go (its walsender exits a moment after
// the connection closes). A slot left behind would keep WAL on the source
// for ever: when it stays busy, the error says how to drop it.
func dropSlotWhenFree(ctx context.Context, c *pgx.Conn, name string) error {
	deadline := time.Now().Add(15 * time.Second)
	for {
		var active *bool
		var pid *int32
		err := c.QueryRow(ctx, "SELECT active, active_pid FROM pg_replication_slots WHERE slot_name = $1", name).Scan(&active, &pid)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		if !*active {
			_, err := c.Exec(ctx, "SELECT pg_drop_replication_slot($1)", name)
			if sqlState(err) == "55006" { // taken again in between
				continue
			}
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("replication slot %s is still used by process %d: end that session and drop the slot (SELECT pg_drop_replication_slot('%s')), or it keeps WAL on the source", name, *pid, name)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// dropSlot drops the slot if it exists, waiting for a session of an
// earlier run that still uses it to end.
func (m *migration) dropSlot(ctx context.Context, rc *pgconn.PgConn, name string) {
	_ = pglogrepl.DropReplicationSlot(ctx, rc, name, pglogrepl.DropReplicationSlotOptions{Wait: true})
}

// dropReplication removes the job's slot and publication from each source
// database, for a job that ended or starts afresh.
func (m *migration) dropReplication(ctx context.Context, dbs []string, capture bool) error {
	name := slotName(m.spec.JobID)
	for _, db := range dbs {
		c, err := m.e.connect(ctx, m.spec.Source, "source", db)
		if err != nil {
			if sqlState(err) == "3D000" {
				continue
			}
			return err
		}
		err = dropSlotWhenFree(ctx, c, name)
		if err == nil {
			_, err = c.Exec(ctx, "DROP PUBLICATION IF EXISTS "+quoteIdent(name))
		}
		if err == nil && capture {
			err = dropDDLCapture(ctx, c)
		}
		closeQuietly(c)
		if err != nil {
			return fmt.Errorf("source %s: drop the job's slot and publication %s: %w", db, name, err)
		}
	}
	return nil
}
