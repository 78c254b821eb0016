package postgres

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/opendts/opendts/internal/engine"
)

const objectsExistName = "ObjectsExistCheck"

// objectsExistCheck verifies that what DatabaseInfo names exists on the
// source: databases, schemas and tables.
type objectsExistCheck struct{}

func (objectsExistCheck) Name() string { return objectsExistName }

func (objectsExistCheck) Check(ctx context.Context, r *checkRun) engine.CheckItem {
	const n = objectsExistName
	if res, bad := unreachable(n, r.src); bad {
		return res
	}
	if r.spec.MigrateObject == engine.MigrateObjectSelected && len(r.spec.Objects) == 0 {
		return fail(n, "MigrateObject is 2 (selected objects) but DatabaseInfo selects nothing",
			`Name the databases, schemas or tables to migrate in DatabaseInfo (for example [{"Database":"db1"}]), or set MigrateObject to 1 for the whole instance.`)
	}
	p, err := r.resolve(ctx)
	if err != nil {
		return warn(n, err.Error(), "Check that the source user may read pg_database and connect to the selected databases.")
	}
	missing := slices.Clone(p.missingDBs)
	dbs, unread := p.readable()
	schemas, tables := 0, 0
	for _, d := range dbs {
		missing = append(missing, d.missingSchemas...)
		missing = append(missing, d.missingTables...)
		schemas += len(d.schemas)
		tables += len(d.tables())
	}
	if p.unnamed > 0 {
		missing = append(missing, fmt.Sprintf("%d DatabaseInfo element(s) without a Database", p.unnamed))
	}
	if len(missing) > 0 {
		return fail(n, fmt.Sprintf("the %s lacks what DatabaseInfo selects: %s", r.src.where(), listNames(missing)),
			"Correct DatabaseInfo: PostgreSQL names are case-sensitive when quoted (a table created as \"Orders\" is Orders, one created as Orders is orders); list the source's tables with \\dt *.* in psql.")
	}
	if len(unread) > 0 {
		return partly(n, unread)
	}
	if len(p.dbs) == 0 {
		return fail(n, fmt.Sprintf("the %s has no database to migrate (only templates and an empty postgres)", r.src.where()),
			"Check SrcInfo: it should point to the instance holding the data.")
	}
	names := make([]string, len(p.dbs))
	for i, d := range p.dbs {
		names[i] = shown(d.Name)
	}
	msg := fmt.Sprintf("%d database(s) (%s), %d schema(s) and %d table(s) selected, all found on the source",
		len(p.dbs), listNames(names), schemas, tables)
	if r.spec.MigrateObject != engine.MigrateObjectSelected && !slices.ContainsFunc(p.dbs, func(d *checkDB) bool { return d.Name == maintenanceDB }) {
		msg += "; the maintenance database postgres holds no user objects and is not migrated"
	}
	return pass(n, "%s", msg)
}

const dstConflictName = "DstConflictCheck"

// dstConflictCheck looks for what the job would create that the target
// has already: a whole database selected whose target database exists and
// is not empty, or, for schemas and tables, the same schema, relation,
// type or routine in the target database. pg_restore stops at the first.
type dstConflictCheck struct{}

func (dstConflictCheck) Name() string { return dstConflictName }

func (dstConflictCheck) Check(ctx context.Context, r *checkRun) engine.CheckItem {
	const n = dstConflictName
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
	var conflicts, drops []string
	for _, d := range dbs {
		if _, ok := onTarget[d.Name]; !ok {
			continue
		}
		tc, err := r.dst.conn(ctx, d.Name)
		if err != nil {
			unread = append(unread, err.Error())
			continue
		}
		there, err := userObjects(ctx, tc)
		if err != nil {
			unread = append(unread, fmt.Sprintf("%s, database %s: %s", r.dst.where(), shown(d.Name), err))
			continue
		}
		if d.Whole {
			if len(there) > 0 {
				labels := make([]string, len(there))
				for i, o := range there {
					labels[i] = o.label
				}
				conflicts = append(conflicts, fmt.Sprintf("database %s exists and is not empty (%s)", shown(d.Name), listNames(labels)))
				drops = append(drops, "DROP DATABASE "+shown(d.Name)+";")
			}
			continue
		}
		sc, err := r.src.conn(ctx, d.Name)
		if err != nil {
			unread = append(unread, err.Error())
			continue
		}
		mine, err := userObjects(ctx, sc)
		if err != nil {
			unread = append(unread, fmt.Sprintf("%s, database %s: %s", r.src.where(), shown(d.Name), err))
			continue
		}
		keys := map[string]bool{}
		for _, o := range mine {
			if slices.Contains(d.Schemas, o.schema) {
				keys[o.key] = true
			}
		}
		for _, rel := range d.rels {
			if !slices.Contains(d.Schemas, rel.schema) {
				keys[relKey(rel.schema, rel.name)] = true
			}
		}
		for _, o := range there {
			if keys[o.key] {
				conflicts = append(conflicts, o.label+" in database "+shown(d.Name))
				drops = append(drops, o.drop)
			}
		}
	}
	if len(conflicts) > 0 {
		if len(drops) > 3 {
			drops = append(drops[:3], "...")
		}
		return fail(n, fmt.Sprintf("the %s already has what the job would create: %s", r.dst.where(), listNames(conflicts)),
			fmt.Sprintf("Drop them on the target if they are not needed (%s), migrate into another target, or leave them out of DatabaseInfo.", strings.Join(drops, " ")))
	}
	if len(unread) > 0 {
		return partly(n, unread)
	}
	return pass(n, "nothing the job creates exists on the target yet")
}

// targetDatabases are the target's databases, with whether each takes
// connections.
func targetDatabases(ctx context.Context, s *checkSide) (map[string]bool, error) {
	rows, err := s.home.Query(ctx, `SELECT datname, datallowconn FROM pg_database`)
	if err != nil {
		return nil, fmt.Errorf("%s: list databases: %w", s.where(), err)
	}
	out := map[string]bool{}
	for rows.Next() {
		var name string
		var ok bool
		if err := rows.Scan(&name, &ok); err != nil {
			rows.Close()
			return nil, fmt.Errorf("%s: list databases: %w", s.where(), err)
		}
		out[name] = ok
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: list databases: %w", s.where(), err)
	}
	return out, nil
}

// userObject is a schema, relation, type or routine of a user's.
type userObject struct {
	schema string
	// key names it so that the same object matches on both sides:
	// relations and types share a namespace (a table makes a type of its
	// name), routines are told apart by their arguments.
	key   string
	label string // "table public.orders", for messages
	drop  string // the statement that removes it
}

func relKey(schema, name string) string { return "rel\x00" + schema + "\x00" + name }

// notExtension keeps out objects a CREATE EXTENSION made.
func notExtension(catalog, oid string) string {
	return `NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = '` + catalog + `'::regclass AND e.objid = ` + oid + ` AND e.deptype = 'e')`
}

// userObjects lists the database's schemas (but public), relations, types
// and routines outside the system schemas and opendts's own.
func userObjects(ctx context.Context, c *pgx.Conn) ([]userObject, error) {
	rows, err := c.Query(ctx, `
		SELECT n.nspname, '', 'schema', format('%I', n.nspname), '' FROM pg_namespace n
			WHERE `+systemSchemaFilter+` AND n.nspname <> 'public' AND `+notExtension("pg_namespace", "n.oid")+`
		UNION ALL
		SELECT n.nspname, c.relname, CASE c.relkind WHEN 'r' THEN 'table' WHEN 'p' THEN 'table' WHEN 'v' THEN 'view'
				WHEN 'm' THEN 'materialized view' WHEN 'S' THEN 'sequence' WHEN 'f' THEN 'foreign table' ELSE 'type' END,
			format('%I.%I', n.nspname, c.relname), '' FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
			WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f', 'c') AND c.relpersistence <> 't' AND `+systemSchemaFilter+`
				AND `+notExtension("pg_class", "c.oid")+`
		UNION ALL
		SELECT n.nspname, t.typname, 'type', format('%I.%I', n.nspname, t.typname), '' FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
			WHERE t.typtype IN ('e', 'd', 'r') AND `+systemSchemaFilter+` AND `+notExtension("pg_type", "t.oid")+`
		UNION ALL
		SELECT n.nspname, p.proname, CASE p.prokind WHEN 'p' THEN 'procedure' WHEN 'a' THEN 'aggregate' ELSE 'function' END,
			format('%I.%I', n.nspname, p.proname), pg_get_function_identity_arguments(p.oid)
			FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
			WHERE `+systemSchemaFilter+` AND `+notExtension("pg_proc", "p.oid")+`
		ORDER BY 1, 2, 3`)
	if err != nil {
		return nil, fmt.Errorf("list objects: %w", err)
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (userObject, error) {
		var o userObject
		var raw, kind, name, args string
		if err := row.Scan(&o.schema, &raw, &kind, &name, &args); err != nil {
			return o, err
		}
		switch kind {
		case "schema":
			o.key = "schema\x00" + o.schema
			o.label = "schema " + name
			o.drop = "DROP SCHEMA " + name + " CASCADE;"
		case "function", "procedure", "aggregate":
			o.key = "routine\x00" + o.schema + "\x00" + raw + "\x00" + args
			o.label = kind + " " + name + "(" + args + ")"
			o.drop = "DROP " + strings.ToUpper(kind) + " " + name + "(" + args + ");"
		default:
			o.key = relKey(o.schema, raw)
			o.label = kind + " " + name
			o.drop = "DROP " + strings.ToUpper(kind) + " " + name + ";"
		}
		return o, nil
	})
}
