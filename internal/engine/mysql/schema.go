package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"

	"github.com/go-sql-driver/mysql"
)

// schemaMover re-creates the source's objects on the target from the
// source's own SHOW CREATE text, so that every detail (column types,
// defaults, generated columns, comments, partitions, AUTO_INCREMENT,
// indexes, foreign keys) is the server's, not a re-rendering of ours.
//
// Definers: an object keeps its DEFINER when that account exists on the
// target (always true for a whole-instance job, which moves the accounts
// first); otherwise the clause is dropped and the object belongs to the
// migration account, as a DBA restoring a dump as that account would get.
type schemaMover struct {
	src *sql.DB
	// ddl is one target connection: USE and session settings stick to it.
	ddl *sql.Conn
	// accounts are the target's user@host names as SHOW CREATE quotes
	// them; nil when the target user cannot read mysql.user.
	accounts map[string]bool
	log      *slog.Logger
	// fence is read before each statement: DDL commits by itself, so the
	// fence of cluster mode cannot share its transaction (fence.go).
	fence *fence
}

func newSchemaMover(ctx context.Context, src, dst *sql.DB, log *slog.Logger, f *fence) (*schemaMover, error) {
	ddl, err := dst.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("open a target connection for DDL: %w", err)
	}
	m := &schemaMover{src: src, ddl: ddl, log: log, fence: f}
	if _, err := ddl.ExecContext(ctx, "SET NAMES utf8mb4"); err != nil {
		ddl.Close()
		return nil, fmt.Errorf("prepare the DDL connection: %w", err)
	}
	m.refreshAccounts(ctx)
	return m, nil
}

func (m *schemaMover) close() { m.ddl.Close() }

func (m *schemaMover) refreshAccounts(ctx context.Context) {
	rows, err := m.ddl.QueryContext(ctx, "SELECT User, Host FROM mysql.user")
	if err != nil {
		m.accounts = nil
		return
	}
	defer rows.Close()
	m.accounts = map[string]bool{}
	for rows.Next() {
		var u, h string
		if rows.Scan(&u, &h) == nil {
			m.accounts[quoteIdent(u)+"@"+quoteIdent(h)] = true
		}
	}
}

var definerRE = regexp.MustCompile("DEFINER=(`(?:[^`]|``)*`@`(?:[^`]|``)*`|'(?:[^']|'')*'@'(?:[^']|'')*'|CURRENT_USER(?:\\(\\))?)\\s*")

// fixDefiner keeps or drops the DEFINER clause of a CREATE statement.
func (m *schemaMover) fixDefiner(stmt string) string {
	match := definerRE.FindStringSubmatch(stmt)
	if match == nil {
		return stmt
	}
	if m.accounts[match[1]] {
		return stmt
	}
	return strings.Replace(stmt, match[0], "", 1)
}

// exec runs a statement in a database with the session settings an object
// was created with (sql_mode, charsets, time zone); empty values keep the
// migration's own.
func (m *schemaMover) exec(ctx context.Context, db string, session map[string]string, stmt string) error {
	if db != "" {
		if _, err := m.ddl.ExecContext(ctx, "USE "+quoteIdent(db)); err != nil {
			return err
		}
	}
	restore := []string{}
	for _, name := range []string{"sql_mode", "character_set_client", "collation_connection", "time_zone"} {
		v, ok := session[name]
		if !ok {
			continue
		}
		if _, err := m.ddl.ExecContext(ctx, "SET SESSION "+name+" = ?", v); err != nil {
			return fmt.Errorf("set %s: %w", name, err)
		}
		restore = append(restore, name)
	}
	if err := m.fence.check(ctx, m.ddl, "DDL"); err != nil {
		return err
	}
	_, err := m.ddl.ExecContext(ctx, stmt)
	for _, name := range restore {
		switch name {
		case "sql_mode":
			_, _ = m.ddl.ExecContext(ctx, "SET SESSION sql_mode = "+sessionVars["sql_mode"])
		case "time_zone":
			_, _ = m.ddl.ExecContext(ctx, "SET SESSION time_zone = '+00:00'")
		default:
			_, _ = m.ddl.ExecContext(ctx, "SET NAMES utf8mb4")
		}
	}
	return err
}

// showCreate runs a SHOW CREATE statement on the source and returns its
// columns by name.
func (m *schemaMover) showCreate(ctx context.Context, q string) (map[string]string, error) {
	rows, err := m.src.QueryContext(ctx, q)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("%s returned nothing", q)
	}
	vals := make([]sql.NullString, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		return nil, err
	}
	out := make(map[string]string, len(cols))
	for i, c := range cols {
		out[c] = vals[i].String
	}
	return out, rows.Err()
}

// createDatabase creates a database with the source's charset and collation.
func (m *schemaMover) createDatabase(ctx context.Context, db string) error {
	r, err := m.showCreate(ctx, "SHOW CREATE DATABASE "+quoteIdent(db))
	if err != nil {
		return fmt.Errorf("read database %s: %w", quoteIdent(db), err)
	}
	stmt := strings.Replace(r["Create Database"], "CREATE DATABASE ", "CREATE DATABASE IF NOT EXISTS ", 1)
	if err := m.exec(ctx, "", nil, stmt); err != nil {
		return fmt.Errorf("create database %s on the target: %w", quoteIdent(db), err)
	}
	return nil
}

// tableDDL returns the CREATE TABLE statement of a base table as the
// source defines it, to run in its database with an empty sql_mode. With
// deferIndexes, its secondary indexes are left out and returned as ALTER
// TABLE clauses to run once the rows are in.
func (m *schemaMover) tableDDL(ctx context.Context, db, name string, deferIndexes, resumed bool) (string, []string, error) {
	r, err := m.showCreate(ctx, "SHOW CREATE TABLE "+quoteIdent(db)+"."+quoteIdent(name))
	if err != nil {
		return "", nil, fmt.Errorf("read table %s.%s: %w", quoteIdent(db), quoteIdent(name), err)
	}
	stmt := r["Create Table"]
	var adds []string
	if deferIndexes {
		stmt, adds = splitSecondaryIndexes(stmt)
	}
	// A fresh job refuses a table that appeared on the target since the
	// check rather than load into it; a resumed one finds its own tables.
	if resumed {
		stmt = strings.Replace(stmt, "CREATE TABLE ", "CREATE TABLE IF NOT EXISTS ", 1)
	}
	return stmt, adds, nil
}

// createViews creates views, retrying those that name a view not created
// yet until a round makes no progress.
func (m *schemaMover) createViews(ctx context.Context, views []object) error {
	pending := views
	for len(pending) > 0 {
		var next []object
		var lastErr error
		for _, v := range pending {
			r, err := m.showCreate(ctx, "SHOW CREATE VIEW "+v.String())
			if err != nil {
				return fmt.Errorf("read view %s: %w", v, err)
			}
			stmt := m.fixDefiner(r["Create View"])
			err = m.exec(ctx, v.db, map[string]string{"character_set_client": r["character_set_client"], "collation_connection": r["collation_connection"]}, stmt)
			var myErr *mysql.MySQLError
			if errors.As(err, &myErr) && myErr.Number == 1050 {
				continue // exists: a resumed job made it before
			}
			if err != nil {
				next = append(next, v)
				lastErr = fmt.Errorf("create view %s on the target: %w", v, err)
			}
		}
		if len(next) == len(pending) {
			return lastErr
		}
		pending = next
	}
	return nil
}

// createTriggers creates the triggers of the given tables in their firing
// order, after the rows are in, so loading does not fire them.
func (m *schemaMover) createTriggers(ctx context.Context, db string, tables map[string]bool) error {
	rows, err := m.src.QueryContext(ctx, `SELECT TRIGGER_NAME, EVENT_OBJECT_TABLE FROM information_schema.TRIGGERS
		WHERE TRIGGER_SCHEMA = ? ORDER BY EVENT_OBJECT_TABLE, ACTION_TIMING, EVENT_MANIPULATION, ACTION_ORDER`, db)
	if err != nil {
		return fmt.Errorf("list triggers of %s: %w", quoteIdent(db), err)
	}
	var names []string
	for rows.Next() {
		var name, table string
		if err := rows.Scan(&name, &table); err != nil {
			rows.Close()
			return err
		}
		if tables[table] {
			names = append(names, name)
		}
	}
	rows.Close()
	for _, name := range names {
		r, err := m.showCreate(ctx, "SHOW CREATE TRIGGER "+quoteIdent(db)+"."+quoteIdent(name))
		if err != nil {
			return fmt.Errorf("read trigger %s.%s: %w", quoteIdent(db), quoteIdent(name), err)
		}
		err = m.exec(ctx, db, map[string]string{"sql_mode": r["sql_mode"], "character_set_client": r["character_set_client"], "collation_connection": r["collation_connection"]},
			m.fixDefiner(r["SQL Original Statement"]))
		if isExists(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("create trigger %s.%s on the target: %w", quoteIdent(db), quoteIdent(name), err)
		}
	}
	return nil
}

// createRoutines creates a database's procedures and functions.
func (m *schemaMover) createRoutines(ctx context.Context, db string) error {
	rows, err := m.src.QueryContext(ctx, "SELECT ROUTINE_TYPE, ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ? AND ROUTINE_TYPE IN ('PROCEDURE', 'FUNCTION') ORDER BY ROUTINE_TYPE, ROUTINE_NAME", db)
	if err != nil {
		return fmt.Errorf("list routines of %s: %w", quoteIdent(db), err)
	}
	type routine struct{ kind, name string }
	var list []routine
	for rows.Next() {
		var r routine
		if err := rows.Scan(&r.kind, &r.name); err != nil {
			rows.Close()
			return err
		}
		list = append(list, r)
	}
	rows.Close()
	for _, rt := range list {
		r, err := m.showCreate(ctx, "SHOW CREATE "+rt.kind+" "+quoteIdent(db)+"."+quoteIdent(rt.name))
		if err != nil {
			return fmt.Errorf("read %s %s.%s: %w", strings.ToLower(rt.kind), quoteIdent(db), quoteIdent(rt.name), err)
		}
		body := r["Create Procedure"]
		if rt.kind == "FUNCTION" {
			body = r["Create Function"]
		}
		if body == "" {
			return fmt.Errorf("the source user cannot read the body of %s %s.%s: grant it SELECT on mysql.proc (MariaDB) or SHOW_ROUTINE", strings.ToLower(rt.kind), quoteIdent(db), quoteIdent(rt.name))
		}
		err = m.exec(ctx, db, map[string]string{"sql_mode": r["sql_mode"], "character_set_client": r["character_set_client"], "collation_connection": r["collation_connection"]}, m.fixDefiner(body))
		if isExists(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("create %s %s.%s on the target: %w", strings.ToLower(rt.kind), quoteIdent(db), quoteIdent(rt.name), err)
		}
	}
	return nil
}

// createEvents creates a database's events as they are, enabled or not.
func (m *schemaMover) createEvents(ctx context.Context, db string) error {
	names, err := queryStrings(ctx, m.src, "SELECT EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ? ORDER BY EVENT_NAME", db)
	if err != nil {
		return fmt.Errorf("list events of %s: %w", quoteIdent(db), err)
	}
	for _, name := range names {
		r, err := m.showCreate(ctx, "SHOW CREATE EVENT "+quoteIdent(db)+"."+quoteIdent(name))
		if err != nil {
			return fmt.Errorf("read event %s.%s: %w", quoteIdent(db), quoteIdent(name), err)
		}
		err = m.exec(ctx, db, map[string]string{"sql_mode": r["sql_mode"], "time_zone": r["time_zone"], "character_set_client": r["character_set_client"], "collation_connection": r["collation_connection"]},
			m.fixDefiner(r["Create Event"]))
		if isExists(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("create event %s.%s on the target: %w", quoteIdent(db), quoteIdent(name), err)
		}
	}
	return nil
}

// isExists: the object is there already (a resumed job created it).
func isExists(err error) bool {
	var myErr *mysql.MySQLError
	if !errors.As(err, &myErr) {
		return false
	}
	switch myErr.Number {
	case 1050, 1304, 1359, 1537: // table/view, routine, trigger, event exists
		return true
	}
	return false
}
