package postgres

import (
	"context"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/opendts/opendts/internal/engine"
)

// checkPlan is the job's selection resolved on the source, read once per
// check for every item that needs it.
type checkPlan struct {
	// dbs are the source databases the job moves that exist there.
	dbs []*checkDB
	// missingDBs are selected databases the source lacks, or that take no
	// connections (templates), said as the message shows them.
	missingDBs []string
	// unnamed counts DatabaseInfo elements without a Database.
	unnamed int
}

// checkDB is one source database of the job and what the check read in it.
type checkDB struct {
	*database
	// err is set when the database could not be read (no CONNECT, or a
	// query failed); the other fields are then empty.
	err error
	// schemas are the selected schemas that exist (for a whole database,
	// all of its own), with the source user's USAGE.
	schemas []schemaFact
	// rels are the selected relations: tables, partitioned tables, views,
	// materialized views, foreign tables, and the sequences of selected
	// schemas or owned by selected tables. Members of extensions are left
	// out: CREATE EXTENSION makes them.
	rels []relFact
	// Selected names the source lacks.
	missingSchemas, missingTables []string
	// temp counts other sessions' temporary tables, never migrated.
	temp int
}

type schemaFact struct {
	name  string
	usage bool
}

type relFact struct {
	schema, name string
	// kind is pg_class.relkind: r, p, v, m, f, S.
	kind      string
	unlogged  bool
	canSelect bool
}

func (r relFact) isTable() bool { return r.kind == "r" || r.kind == "p" }

// plan resolves the selection on the source, once.
func (r *checkRun) resolve(ctx context.Context) (*checkPlan, error) {
	return r.plan.get(func() (*checkPlan, error) {
		p := &checkPlan{}
		c := r.src.home
		spec := r.spec
		if spec.MigrateObject == engine.MigrateObjectSelected {
			rows, err := c.Query(ctx, `SELECT datname, datallowconn AND NOT datistemplate FROM pg_database`)
			if err != nil {
				return nil, fmt.Errorf("%s: list databases: %w", r.src.where(), err)
			}
			usable := map[string]bool{}
			for rows.Next() {
				var name string
				var ok bool
				if err := rows.Scan(&name, &ok); err != nil {
					rows.Close()
					return nil, fmt.Errorf("%s: list databases: %w", r.src.where(), err)
				}
				usable[name] = ok
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return nil, fmt.Errorf("%s: list databases: %w", r.src.where(), err)
			}
			var kept []engine.ObjectSelection
			for _, o := range spec.Objects {
				ok, exists := usable[o.Database]
				switch {
				case o.Database == "":
					p.unnamed++
				case !exists:
					if !slices.Contains(p.missingDBs, "database "+shown(o.Database)) {
						p.missingDBs = append(p.missingDBs, "database "+shown(o.Database))
					}
				case !ok:
					p.missingDBs = append(p.missingDBs, "database "+shown(o.Database)+" (a template, or it takes no connections)")
				default:
					kept = append(kept, o)
				}
			}
			spec.Objects = kept
			if len(kept) == 0 {
				return p, nil
			}
		}
		dbs, err := r.e.listDatabases(ctx, spec, c)
		if err != nil {
			return nil, err
		}
		for _, d := range dbs {
			p.dbs = append(p.dbs, r.readDB(ctx, d))
		}
		return p, nil
	})
}

// readDB reads what the items need of one source database.
func (r *checkRun) readDB(ctx context.Context, d *database) *checkDB {
	cd := &checkDB{database: d}
	c, err := r.src.conn(ctx, d.Name)
	if err != nil {
		cd.err = err
		return cd
	}
	if cd.err = cd.read(ctx, c); cd.err != nil {
		cd.err = fmt.Errorf("%s, database %s: %w", r.src.where(), shown(d.Name), cd.err)
	}
	return cd
}

func (cd *checkDB) read(ctx context.Context, c *pgx.Conn) error {
	rows, err := c.Query(ctx, `SELECT n.nspname, has_schema_privilege(n.oid, 'USAGE') FROM pg_namespace n
		WHERE `+systemSchemaFilter+` AND NOT EXISTS (SELECT 1 FROM pg_depend e
			WHERE e.classid = 'pg_namespace'::regclass AND e.objid = n.oid AND e.deptype = 'e')
		ORDER BY 1`)
	if err != nil {
		return fmt.Errorf("list schemas: %w", err)
	}
	all, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (schemaFact, error) {
		var s schemaFact
		return s, row.Scan(&s.name, &s.usage)
	})
	if err != nil {
		return fmt.Errorf("list schemas: %w", err)
	}
	rows, err = c.Query(ctx, `
		SELECT n.nspname, c.relname, c.relkind::text, c.relpersistence = 'u',
			CASE WHEN c.relkind = 'S' THEN has_sequence_privilege(c.oid, 'SELECT')
				ELSE has_table_privilege(c.oid, 'SELECT') END,
			coalesce(o.nspname, ''), coalesce(o.relname, ''),
			EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = 'pg_class'::regclass AND e.objid = c.oid AND e.deptype = 'e')
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
			LEFT JOIN LATERAL (SELECT tn.nspname, t.relname FROM pg_depend dep
				JOIN pg_class t ON t.oid = dep.refobjid JOIN pg_namespace tn ON tn.oid = t.relnamespace
				WHERE c.relkind = 'S' AND dep.classid = 'pg_class'::regclass AND dep.objid = c.oid
					AND dep.refclassid = 'pg_class'::regclass AND dep.deptype IN ('a', 'i') LIMIT 1) o ON true
		WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S') AND c.relpersistence <> 't' AND `+systemSchemaFilter+`
		ORDER BY 1, 2`)
	if err != nil {
		return fmt.Errorf("list tables: %w", err)
	}
	exists := map[[2]string]bool{}
	for rows.Next() {
		var f relFact
		var ownerSchema, ownerTable string
		var extension bool
		if err := rows.Scan(&f.schema, &f.name, &f.kind, &f.unlogged, &f.canSelect, &ownerSchema, &ownerTable, &extension); err != nil {
			rows.Close()
			return fmt.Errorf("list tables: %w", err)
		}
		exists[[2]string{f.schema, f.name}] = true
		if extension {
			continue
		}
		take := cd.selected(f.schema, f.name)
		if f.kind == "S" {
			take = cd.Whole || slices.Contains(cd.Schemas, f.schema) ||
				ownerTable != "" && cd.selected(ownerSchema, ownerTable)
		}
		if take {
			cd.rels = append(cd.rels, f)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("list tables: %w", err)
	}
	want := cd.Schemas
	for _, t := range cd.Tables {
		if !slices.Contains(want, t.Schema) {
			want = append(want, t.Schema)
		}
		if !exists[[2]string{t.Schema, t.Table}] && slices.ContainsFunc(all, func(s schemaFact) bool { return s.name == t.Schema }) {
			cd.missingTables = append(cd.missingTables, "table "+shown(cd.Name, t.Schema, t.Table))
		}
	}
	for _, s := range all {
		if cd.Whole || slices.Contains(want, s.name) {
			cd.schemas = append(cd.schemas, s)
		}
	}
	if !cd.Whole {
		for _, w := range want {
			if !slices.ContainsFunc(all, func(s schemaFact) bool { return s.name == w }) {
				cd.missingSchemas = append(cd.missingSchemas, "schema "+shown(cd.Name, w))
			}
		}
	}
	if err := c.QueryRow(ctx, `SELECT count(*) FROM pg_class WHERE relpersistence = 't' AND relkind IN ('r', 'p')`).Scan(&cd.temp); err != nil {
		return fmt.Errorf("count temporary tables: %w", err)
	}
	return nil
}

// tables are the selected tables (ordinary and partitioned).
func (cd *checkDB) tables() []relFact {
	var out []relFact
	for _, r := range cd.rels {
		if r.isTable() {
			out = append(out, r)
		}
	}
	return out
}

// schemaNames are the selected schemas that exist.
func (cd *checkDB) schemaNames() []string {
	out := make([]string, len(cd.schemas))
	for i, s := range cd.schemas {
		out[i] = s.name
	}
	return out
}

// readable are the databases the check could read, and a note for each
// it could not: short where the source user may not connect to it, which
// SrcPrivilegeCheck reports with the statement that fixes it.
func (p *checkPlan) readable() (dbs []*checkDB, unread []string) {
	for _, d := range p.dbs {
		switch {
		case d.err == nil:
			dbs = append(dbs, d)
		case sqlState(d.err) == "42501":
			unread = append(unread, fmt.Sprintf("database %s not checked: the source user may not connect to it (see SrcPrivilegeCheck)", shown(d.Name)))
		default:
			unread = append(unread, d.err.Error())
		}
	}
	return dbs, unread
}
