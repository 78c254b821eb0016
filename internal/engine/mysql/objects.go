package mysql

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/opendts/opendts/internal/engine"
)

// systemDatabases hold the server's own state; they are never migrated as
// databases (accounts move with a whole-instance job instead).
var systemDatabases = setOf("mysql", "information_schema", "performance_schema", "sys", checkpointDB)

func isSystemDB(name string) bool { return systemDatabases[strings.ToLower(name)] }

// object is a table, view or sequence the job will migrate, named as the
// source spells it.
type object struct {
	db, name string
	// kind is information_schema's TABLE_TYPE: BASE TABLE, VIEW, SEQUENCE,
	// SYSTEM VERSIONED.
	kind string
}

func (o object) String() string { return quoteIdent(o.db) + "." + quoteIdent(o.name) }

func (o object) isTable() bool { return o.kind == "BASE TABLE" || o.kind == "SYSTEM VERSIONED" }

// inventory is what the job's selection resolves to on the source.
type inventory struct {
	// dbs are the databases the job touches that exist on the source:
	// selected whole, or holding a selected table.
	dbs []string
	// objects are the tables, views and sequences to migrate.
	objects []object
	// sel is the selection with the source's case rule: the one rule
	// of what the job moves.
	sel engine.Selection
	// Problems with the selection itself, for SourceObjectsCheck.
	missing  []string // quoted names selected but absent
	system   []string // system databases selected by name
	noName   int      // DatabaseInfo elements without a database
	noObject bool     // MigrateObject 2 with nothing selected
}

// objectSet indexes objects for items that filter long catalogue queries.
func (inv *inventory) objectSet() map[tableKey]object {
	m := make(map[tableKey]object, len(inv.objects))
	for _, o := range inv.objects {
		m[tableKey{o.db, o.name}] = o
	}
	return m
}

// inventory resolves the selection on the source once per run.
func (r *run) inventory(ctx context.Context) (*inventory, error) {
	return r.inv.get(func() (*inventory, error) { return buildInventory(ctx, r.src, r.spec) })
}

func buildInventory(ctx context.Context, s *side, spec engine.Spec) (*inventory, error) {
	vars, err := s.globalVars(ctx)
	if err != nil {
		return nil, err
	}
	// With lower_case_table_names 1 or 2 the server matches names without
	// regard to case, and so must the selection.
	fold := vars["lower_case_table_names"] != "" && vars["lower_case_table_names"] != "0"

	schemata, err := queryStrings(ctx, s.db, "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA ORDER BY SCHEMA_NAME")
	if err != nil {
		return nil, fmt.Errorf("list the %s's databases: %w", s.name, err)
	}
	inv := &inventory{sel: engine.NewSelection(spec, fold)}
	whole := make(map[string]bool)      // source db name -> selected whole
	listed := make(map[string][]string) // source db name -> tables as selected
	addDB := func(db string) {
		if _, ok := whole[db]; !ok {
			whole[db] = false
			inv.dbs = append(inv.dbs, db)
		}
	}

	if spec.MigrateObject != engine.MigrateObjectSelected {
		for _, db := range schemata {
			if !isSystemDB(db) {
				addDB(db)
				whole[db] = true
			}
		}
	} else {
		inv.noObject = len(spec.Objects) == 0
		for _, o := range spec.Objects {
			if o.Database == "" {
				inv.noName++
				continue
			}
			db, ok := lookupName(schemata, o.Database, inv.sel)
			switch {
			case !ok:
				inv.missing = append(inv.missing, quoteIdent(o.Database))
			case isSystemDB(db):
				inv.system = append(inv.system, db)
			default:
				addDB(db)
				if len(o.Tables) == 0 {
					whole[db] = true
				} else {
					listed[db] = append(listed[db], o.Tables...)
				}
			}
		}
	}
	if len(inv.dbs) == 0 {
		return inv, nil
	}

	q := "SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA IN (" +
		placeholders(len(inv.dbs)) + ") ORDER BY TABLE_SCHEMA, TABLE_NAME"
	all, err := queryObjects(ctx, s.db, q, inv.dbs)
	if err != nil {
		return nil, fmt.Errorf("list the %s's tables: %w", s.name, err)
	}
	byDB := make(map[string][]object)
	for _, o := range all {
		byDB[o.db] = append(byDB[o.db], o)
	}
	for _, db := range inv.dbs {
		if whole[db] {
			inv.objects = append(inv.objects, byDB[db]...)
			continue
		}
		names := make([]string, len(byDB[db]))
		for i, o := range byDB[db] {
			names[i] = o.name
		}
		seen := make(map[string]bool)
		for _, t := range listed[db] {
			name, ok := lookupName(names, t, inv.sel)
			if !ok {
				inv.missing = append(inv.missing, quoteIdent(db)+"."+quoteIdent(t))
				continue
			}
			if seen[name] {
				continue
			}
			seen[name] = true
			for _, o := range byDB[db] {
				if o.name == name {
					inv.objects = append(inv.objects, o)
				}
			}
		}
	}
	return inv, nil
}

// lookupName finds want among names, exactly or, where the server folds
// case, without regard to it (sel.Same); it returns the name as the
// server spells it.
func lookupName(names []string, want string, sel engine.Selection) (string, bool) {
	for _, n := range names {
		if n == want {
			return n, true
		}
	}
	for _, n := range names {
		if sel.Same(n, want) {
			return n, true
		}
	}
	return "", false
}

const (
	sourceObjectsName = "SourceObjectsCheck"
	dstEmptyName      = "DstEmptyCheck"
)

type sourceObjectsCheck struct{}

func (sourceObjectsCheck) Name() string { return sourceObjectsName }

func (sourceObjectsCheck) Check(ctx context.Context, r *run) engine.CheckItem {
	const n = sourceObjectsName
	if res, bad := unreachable(n, r.src); bad {
		return res
	}
	inv, err := r.inventory(ctx)
	if err != nil {
		return warn(n, err.Error(), "Check that the source user may read information_schema.")
	}
	where := r.src.where()
	switch {
	case inv.noObject:
		return fail(n, "no object is selected: DatabaseInfo is empty",
			"List the databases or tables to migrate in DatabaseInfo, or migrate the whole instance (MigrateObject 1).")
	case inv.noName > 0:
		return fail(n, fmt.Sprintf("%d DatabaseInfo element(s) name no database", inv.noName),
			"Give every DatabaseInfo element its DBName.")
	case len(inv.system) > 0:
		return fail(n, fmt.Sprintf("system database(s) %s cannot be selected", strings.Join(inv.system, ", ")),
			"Leave them out of DatabaseInfo; to move accounts, migrate the whole instance (MigrateObject 1).")
	case len(inv.missing) > 0:
		return fail(n, fmt.Sprintf("not found on the %s: %s", where, joinLimited(inv.missing, ", ", 20)),
			"Correct the names in DatabaseInfo. If they do exist, grant the source user privileges on them: a user does not see objects it has no privilege on.")
	case len(inv.dbs) == 0:
		return warn(n, fmt.Sprintf("the %s has no database besides the system ones: there is nothing to migrate", where),
			"Check SrcInfo: it may point at the wrong instance.")
	}
	return pass(n, "found the selected objects on the %s: %d database(s), %d table(s) and view(s)", where, len(inv.dbs), len(inv.objects))
}

type dstEmptyCheck struct{}

func (dstEmptyCheck) Name() string { return dstEmptyName }

// Check fails for every selected table or view that already exists on the
// target: opendts creates what it migrates and never overwrites. An
// existing database is fine as long as none of its tables is in the way.
func (dstEmptyCheck) Check(ctx context.Context, r *run) engine.CheckItem {
	const n = dstEmptyName
	if res, bad := unreachable(n, r.src, r.dst); bad {
		return res
	}
	inv, err := r.inventory(ctx)
	if err != nil {
		return warn(n, err.Error(), "Check that the source user may read information_schema.")
	}
	if len(inv.objects) == 0 {
		return pass(n, "no table or view is selected, so none can conflict on the %s", r.dst.where())
	}
	vars, err := r.dst.globalVars(ctx)
	if err != nil {
		return warn(n, err.Error(), "Check the target by hand for tables with the selected names.")
	}
	fold := vars["lower_case_table_names"] != "" && vars["lower_case_table_names"] != "0"

	q := "SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA IN (" +
		placeholders(len(inv.dbs)) + ")"
	existing, err := queryObjects(ctx, r.dst.db, q, inv.dbs)
	if err != nil {
		return warn(n, fmt.Sprintf("list the %s's tables: %s", r.dst.where(), err),
			"Check that the target user may read information_schema.")
	}
	key := func(db, name string) tableKey {
		if fold {
			return tableKey{strings.ToLower(db), strings.ToLower(name)}
		}
		return tableKey{db, name}
	}
	there := make(map[tableKey]object, len(existing))
	for _, o := range existing {
		there[key(o.db, o.name)] = o
	}
	var conflicts []string
	for _, o := range inv.objects {
		if t, ok := there[key(o.db, o.name)]; ok {
			conflicts = append(conflicts, fmt.Sprintf("%s (%s)", t, strings.ToLower(t.kind)))
		}
	}
	if len(conflicts) > 0 {
		return fail(n, fmt.Sprintf("the %s already has %d of the selected object(s): %s", r.dst.where(), len(conflicts), joinLimited(conflicts, ", ", 20)),
			"Drop or rename them on the target, or leave them out of DatabaseInfo: opendts does not overwrite existing tables.")
	}
	return pass(n, "none of the %d selected table(s) and view(s) exists on the %s", len(inv.objects), r.dst.where())
}

// placeholders returns "?, ?, ..." for an IN list of n values.
func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

func args(values []string) []any {
	out := make([]any, len(values))
	for i, v := range values {
		out[i] = v
	}
	return out
}

func queryStrings(ctx context.Context, db *sql.DB, q string, params ...any) ([]string, error) {
	rows, err := db.QueryContext(ctx, q, params...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// queryObjects runs q, which selects schema, name and type, with dbs as its
// parameters.
func queryObjects(ctx context.Context, db *sql.DB, q string, dbs []string) ([]object, error) {
	rows, err := db.QueryContext(ctx, q, args(dbs)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []object
	for rows.Next() {
		var o object
		if err := rows.Scan(&o.db, &o.name, &o.kind); err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, rows.Err()
}
