package postgres

import (
	"context"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/opendts/opendts/internal/engine"
)

const dependencyName = "DependencyCheck"

// dependencyCheck applies to tables selected one by one. pg_dump -t
// brings a table with its columns, defaults, constraints, indexes and
// triggers, but not the types and functions they use from elsewhere: an
// enum or domain column, a default or CHECK calling a function of the
// user's, a trigger's function, another table's row type. Each must come
// with a schema the job selects whole, or be in the target database
// already; else pg_restore stops at the table. (Extension types are
// ExtensionCheck's.)
type dependencyCheck struct{}

func (dependencyCheck) Name() string { return dependencyName }

// hasTableSelections reports whether DatabaseInfo lists tables.
func hasTableSelections(spec engine.Spec) bool {
	return spec.MigrateObject == engine.MigrateObjectSelected &&
		slices.ContainsFunc(spec.Objects, func(o engine.ObjectSelection) bool { return len(o.Tables) > 0 })
}

// dependency is a type or routine a selected table uses.
type dependency struct {
	table        string // db.schema.table, for messages
	schema, name string
	args         string // a routine's identity arguments
	routine      bool
	relation     bool // the row type of a table or view
}

func (d dependency) key() string {
	if d.routine {
		return "routine\x00" + d.schema + "\x00" + d.name + "\x00" + d.args
	}
	return relKey(d.schema, d.name)
}

func (d dependency) String() string {
	switch {
	case d.routine:
		return "function " + shown(d.schema, d.name) + "(" + d.args + ")"
	case d.relation:
		return "the row type of " + shown(d.schema, d.name)
	}
	return "type " + shown(d.schema, d.name)
}

func (dependencyCheck) Check(ctx context.Context, r *checkRun) engine.CheckItem {
	const n = dependencyName
	if res, bad := unreachable(n, r.src, r.dst); bad {
		return res
	}
	p, err := r.resolve(ctx)
	if err != nil {
		return warn(n, err.Error(), "See ObjectsExistCheck.")
	}
	dbs, unread := p.readable()
	onTarget, err := targetDatabases(ctx, r.dst)
	if err != nil {
		return warn(n, err.Error(), "Check that the target user may read pg_database.")
	}
	var missing []string
	var schemas []string
	tables := 0
	for _, d := range dbs {
		if d.Whole || len(d.Tables) == 0 {
			continue
		}
		tables += len(d.Tables)
		c, err := r.src.conn(ctx, d.Name)
		if err != nil {
			unread = append(unread, err.Error())
			continue
		}
		deps, err := tableDependencies(ctx, c, d)
		if err != nil {
			unread = append(unread, fmt.Sprintf("%s, database %s: %s", r.src.where(), shown(d.Name), err))
			continue
		}
		if len(deps) == 0 {
			continue
		}
		there := map[string]bool{}
		if _, ok := onTarget[d.Name]; ok {
			tc, err := r.dst.conn(ctx, d.Name)
			if err != nil {
				unread = append(unread, err.Error())
				continue
			}
			objs, err := userObjects(ctx, tc)
			if err != nil {
				unread = append(unread, fmt.Sprintf("%s, database %s: %s", r.dst.where(), shown(d.Name), err))
				continue
			}
			for _, o := range objs {
				there[o.key] = true
			}
		}
		for _, dep := range deps {
			if there[dep.key()] {
				continue
			}
			missing = append(missing, fmt.Sprintf("%s uses %s", dep.table, dep))
			s := fmt.Sprintf(`{"Database":%q,"Schema":%q}`, d.Name, dep.schema)
			if !slices.Contains(schemas, s) {
				schemas = append(schemas, s)
			}
		}
	}
	if len(missing) > 0 {
		return fail(n, "selected tables use objects that neither the selection nor the target database has (a table selection brings the table, not the types and functions it uses): "+listNames(missing),
			fmt.Sprintf("Select their schemas whole too (add %s to DatabaseInfo), or create them in the target database before starting (pg_dump --schema-only of them on the source, replayed on the target).", listNames(schemas)))
	}
	if len(unread) > 0 {
		return partly(n, unread)
	}
	return pass(n, "the %d table(s) selected one by one use no type or function that the job would not bring or the target lacks", tables)
}

// tableDependencies lists the types and routines of the user's that the
// selected tables of d use (through their columns, defaults, constraints,
// indexes, triggers and policies) and that no whole-schema selection of d
// brings.
func tableDependencies(ctx context.Context, c *pgx.Conn, d *checkDB) ([]dependency, error) {
	rows, err := c.Query(ctx, `
		WITH tabs AS (
			SELECT c.oid, n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
			WHERE c.relkind IN ('r', 'p', 'f') AND `+systemSchemaFilter+`
		), parts AS (
			SELECT 'pg_class'::regclass AS classid, oid AS objid, oid AS tab FROM tabs
			UNION ALL SELECT 'pg_attrdef'::regclass, a.oid, a.adrelid FROM pg_attrdef a JOIN tabs ON tabs.oid = a.adrelid
			UNION ALL SELECT 'pg_constraint'::regclass, k.oid, k.conrelid FROM pg_constraint k JOIN tabs ON tabs.oid = k.conrelid
			UNION ALL SELECT 'pg_class'::regclass, i.indexrelid, i.indrelid FROM pg_index i JOIN tabs ON tabs.oid = i.indrelid
			UNION ALL SELECT 'pg_trigger'::regclass, g.oid, g.tgrelid FROM pg_trigger g JOIN tabs ON tabs.oid = g.tgrelid WHERE NOT g.tgisinternal
			UNION ALL SELECT 'pg_policy'::regclass, o.oid, o.polrelid FROM pg_policy o JOIN tabs ON tabs.oid = o.polrelid
		), refs AS (
			SELECT DISTINCT parts.tab, dep.refclassid, dep.refobjid FROM parts
				JOIN pg_depend dep ON dep.classid = parts.classid AND dep.objid = parts.objid AND dep.deptype = 'n'
			WHERE dep.refclassid IN ('pg_type'::regclass, 'pg_proc'::regclass)
		), objs AS (
			SELECT refs.tab, CASE WHEN t.typcategory = 'A' AND t.typelem <> 0 THEN t.typelem ELSE t.oid END AS oid, false AS routine
				FROM refs JOIN pg_type t ON refs.refclassid = 'pg_type'::regclass AND t.oid = refs.refobjid
			UNION ALL SELECT refs.tab, refs.refobjid, true FROM refs WHERE refs.refclassid = 'pg_proc'::regclass
		)
		SELECT DISTINCT tabs.nspname, tabs.relname, n.nspname, coalesce(t.typname, p.proname)::text,
			coalesce(pg_get_function_identity_arguments(p.oid), ''), objs.routine, coalesce(t.typrelid <> 0, false),
			coalesce(rc.relname, '')
		FROM objs JOIN tabs ON tabs.oid = objs.tab
			LEFT JOIN pg_type t ON NOT objs.routine AND t.oid = objs.oid
			LEFT JOIN pg_class rc ON rc.oid = t.typrelid
			LEFT JOIN pg_proc p ON objs.routine AND p.oid = objs.oid
			JOIN pg_namespace n ON n.oid = coalesce(t.typnamespace, p.pronamespace)
		WHERE `+systemSchemaFilter+`
			AND NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.objid = objs.oid AND e.deptype = 'e'
				AND e.classid = CASE WHEN objs.routine THEN 'pg_proc'::regclass ELSE 'pg_type'::regclass END)
		ORDER BY 1, 2, 3, 4`)
	if err != nil {
		return nil, fmt.Errorf("list what the tables use: %w", err)
	}
	defer rows.Close()
	var out []dependency
	for rows.Next() {
		var ts, tn, relName string
		var dep dependency
		if err := rows.Scan(&ts, &tn, &dep.schema, &dep.name, &dep.args, &dep.routine, &dep.relation, &relName); err != nil {
			return nil, err
		}
		if !d.selected(ts, tn) || slices.Contains(d.Schemas, ts) || slices.Contains(d.Schemas, dep.schema) {
			continue // not a table selected one by one, or it comes with a whole schema
		}
		if dep.relation {
			dep.name = relName
			if d.selected(dep.schema, relName) {
				continue // the row type of a table the job brings
			}
		}
		dep.table = "table " + shown(d.Name, ts, tn)
		out = append(out, dep)
	}
	return out, rows.Err()
}
