package postgres

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/opendts/opendts/internal/engine"
)

// Logical decoding does not carry DDL. Where the source user is a superuser
// (event triggers need one), a full + incremental job captures it as
// Alibaba's DTS and ape-dts do: an event trigger at the end of each DDL
// command writes the command's query text into _opendts.ddl_log, a table
// of the job's publication, so the DDL reaches the stream in its place
// among the row changes and is replayed there on the target, inside the
// target transaction that applies its source transaction.
//
// A query string may hold several statements: the trigger fires once per
// DDL command and numbers its firings within the transaction and query
// string, and the replay runs the statement of that number among the
// string's DDL statements (never the DML beside them, which arrives as
// row changes).

const ddlLogTable = markSchema + ".ddl_log"

var ddlCaptureSQL = []string{
	`CREATE SCHEMA IF NOT EXISTS ` + markSchema,
	`CREATE TABLE IF NOT EXISTS ` + ddlLogTable + ` (
		id bigserial PRIMARY KEY, xid xid8 NOT NULL DEFAULT pg_current_xact_id(), ordinal int NOT NULL,
		schemas text[] NOT NULL, objects text[] NOT NULL, search_path text NOT NULL, query text NOT NULL,
		at timestamptz NOT NULL DEFAULT now())`,
	`CREATE INDEX IF NOT EXISTS ddl_log_xid ON ` + ddlLogTable + ` (xid)`,
	`CREATE OR REPLACE FUNCTION ` + markSchema + `.note_drop() RETURNS event_trigger LANGUAGE plpgsql AS $f$
	BEGIN
		-- DROP commands are not among pg_event_trigger_ddl_commands(): what
		-- they dropped is noted here for log_ddl, for this transaction.
		PERFORM set_config('opendts.dropped_schemas', coalesce((SELECT string_agg(DISTINCT schema_name, ',')
			FROM pg_event_trigger_dropped_objects() WHERE schema_name IS NOT NULL), ''), true);
		PERFORM set_config('opendts.dropped_objects', coalesce((SELECT string_agg(object_identity, E'\n')
			FROM pg_event_trigger_dropped_objects() WHERE original), ''), true);
	END $f$`,
	`CREATE OR REPLACE FUNCTION ` + markSchema + `.log_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $f$
	DECLARE
		s text[]; o text[]; n int;
	BEGIN
		SELECT coalesce(array_agg(DISTINCT schema_name) FILTER (WHERE schema_name IS NOT NULL), '{}'),
			coalesce(array_agg(object_identity) FILTER (WHERE object_identity IS NOT NULL), '{}')
			INTO s, o FROM pg_event_trigger_ddl_commands();
		IF tg_tag LIKE 'DROP%' THEN
			s := s || string_to_array(nullif(current_setting('opendts.dropped_schemas', true), ''), ',');
			o := o || string_to_array(nullif(current_setting('opendts.dropped_objects', true), ''), E'\n');
			PERFORM set_config('opendts.dropped_schemas', '', true);
			PERFORM set_config('opendts.dropped_objects', '', true);
		END IF;
		IF '` + markSchema + `' = ANY(s) THEN
			RETURN;
		END IF;
		SELECT count(*) + 1 INTO n FROM ` + ddlLogTable + ` WHERE xid = pg_current_xact_id() AND query = current_query();
		INSERT INTO ` + ddlLogTable + ` (ordinal, schemas, objects, search_path, query)
			VALUES (n, coalesce(s, '{}'), coalesce(o, '{}'), current_setting('search_path'), current_query());
	END $f$`,
	`DO $d$ BEGIN
		IF NOT EXISTS (SELECT 1 FROM pg_event_trigger WHERE evtname = 'opendts_note_drop') THEN
			CREATE EVENT TRIGGER opendts_note_drop ON sql_drop EXECUTE FUNCTION ` + markSchema + `.note_drop();
		END IF;
		IF NOT EXISTS (SELECT 1 FROM pg_event_trigger WHERE evtname = 'opendts_log_ddl') THEN
			CREATE EVENT TRIGGER opendts_log_ddl ON ddl_command_end EXECUTE FUNCTION ` + markSchema + `.log_ddl();
		END IF;
	END $d$`,
}

// setupDDLCapture installs the capture in the source database c is in,
// when the source user may (a superuser). It reports whether it did.
func setupDDLCapture(ctx context.Context, c *pgx.Conn) (bool, error) {
	var super bool
	if err := c.QueryRow(ctx, "SELECT rolsuper FROM pg_roles WHERE rolname = current_user").Scan(&super); err != nil {
		return false, err
	}
	if !super {
		return false, nil
	}
	for _, q := range ddlCaptureSQL {
		if _, err := c.Exec(ctx, q); err != nil {
			return false, fmt.Errorf("source %s: install the DDL capture: %w", c.Config().Database, err)
		}
	}
	return true, nil
}

// dropDDLCapture removes the capture once no job's publication is left in
// the database.
func dropDDLCapture(ctx context.Context, c *pgx.Conn) error {
	var others bool
	if err := c.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_publication WHERE pubname LIKE 'opendts\\_%')").Scan(&others); err != nil {
		return err
	}
	if others {
		return nil
	}
	for _, q := range []string{
		"DROP EVENT TRIGGER IF EXISTS opendts_log_ddl", "DROP EVENT TRIGGER IF EXISTS opendts_note_drop",
		"DROP SCHEMA IF EXISTS " + markSchema + " CASCADE",
	} {
		if _, err := c.Exec(ctx, q); err != nil {
			return err
		}
	}
	return nil
}

// ddlApplies reports whether a logged DDL concerns the job's selection:
// a whole database takes every DDL; whole schemas those that touch one of
// them; listed tables those whose objects name one of them.
func (d *database) ddlApplies(schemas, objects []string) bool {
	if d.Whole {
		return true
	}
	for _, s := range schemas {
		if slices.Contains(d.Schemas, s) {
			return true
		}
	}
	for _, o := range objects {
		for _, t := range d.Tables {
			if o == shown(t.Schema, t.Table) {
				return true
			}
		}
	}
	return false
}

// replayDDL runs a logged DDL statement on the target, in the open target
// transaction, with the search_path it ran with on the source.
func (a *applier) replayDDL(ctx context.Context, t *pglogrepl.TupleData, r *relInfo) error {
	col := func(name string) string {
		for i, c := range r.cols {
			if c == name && i < len(t.Columns) && t.Columns[i].DataType == pglogrepl.TupleDataTypeText {
				return string(t.Columns[i].Data)
			}
		}
		return ""
	}
	var schemas, objects []string
	m := pgtype.NewMap()
	if err := m.Scan(pgTextArrayOID, pgtype.TextFormatCode, []byte(col("schemas")), &schemas); err != nil {
		return fmt.Errorf("source %s: read a logged DDL: %w", a.s.db, err)
	}
	if err := m.Scan(pgTextArrayOID, pgtype.TextFormatCode, []byte(col("objects")), &objects); err != nil {
		return fmt.Errorf("source %s: read a logged DDL: %w", a.s.db, err)
	}
	if !a.s.dbInfo.ddlApplies(schemas, objects) {
		return nil
	}
	query := col("query")
	var ordinal int
	fmt.Sscan(col("ordinal"), &ordinal)
	var ddl []string
	for _, s := range splitStatements(query) {
		if ddlStatement(s) {
			ddl = append(ddl, s)
		}
	}
	if ordinal < 1 || ordinal > len(ddl) {
		return engine.Permanent(fmt.Errorf("source %s: DDL command %d of the query %q cannot be found in its text: replay it on the target by hand, then start the job again",
			a.s.db, ordinal, query))
	}
	stmt := inTransaction(ddl[ordinal-1])
	if replicationDDL(stmt) {
		// A publication or subscription is the source's own replication
		// set-up, not part of what it holds.
		return nil
	}
	if _, err := a.dst.Exec(ctx, "SELECT set_config('search_path', $1, true)", col("search_path")); err != nil {
		return fmt.Errorf("target %s: %w", a.s.db, err)
	}
	if _, err := a.dst.Exec(ctx, stmt); err != nil {
		return engine.Permanent(fmt.Errorf("target %s: replay the source's DDL %q: %w", a.s.db, stmt, err))
	}
	if _, err := a.dst.Exec(ctx, "SELECT set_config('search_path', $1, true)", a.searchPath); err != nil {
		return fmt.Errorf("target %s: %w", a.s.db, err)
	}
	a.s.m.e.cfg.Logger.Info("replayed the source's DDL", "job_id", a.s.m.spec.JobID, "database", a.s.db, "ddl", strings.Join(strings.Fields(stmt), " "))
	return nil
}

// pgTextArrayOID is text[].
const pgTextArrayOID = 1009
