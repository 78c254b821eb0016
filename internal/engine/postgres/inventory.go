package postgres

import (
	"context"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/opendts/opendts/internal/engine"
)

// systemSchemas are never migrated: PostgreSQL's own, and opendts's marks.
const systemSchemaFilter = `n.nspname NOT IN ('pg_catalog', 'information_schema', '` + markSchema + `')
	AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp\_%'`

// database is one source database of the job and what moves out of it.
type database struct {
	Name string
	// Whole is set when every schema moves (no -n/-t for pg_dump).
	Whole bool
	// Schemas moved whole; Tables moved one by one (schema, name), for a
	// selection that names them.
	Schemas []string
	Tables  []engine.TableRef
	// Relations are the database's tables with rows to copy (ordinary
	// tables and partitions), sequences and populated materialized views
	// in the selection.
	Relations []*relation
	Sequences []engine.TableRef
	MatViews  []engine.TableRef
}

// relation is one table whose rows are copied.
type relation struct {
	Ref engine.TableRef
	OID uint32
	// Columns are the copied ones, in order: stored generated columns are
	// computed by the target and left out.
	Columns []string
	// Binary is set when every column has a built-in type, whose binary
	// COPY form the target reads whatever its OIDs; user-defined types
	// (enums, composites, domains, extension types, arrays of them) carry
	// OIDs in that form and go as text, as do the few built-in types
	// whose binary form does not round-trip (tsquery's empty query) or
	// does not exist (aclitem).
	Binary bool
	// Key is the primary key, or a unique key on NOT NULL columns.
	Key []string
	// IntKey is set when Key is one integer column: the table is split by
	// key ranges, which survive a new snapshot. Other tables are split by
	// ctid block ranges.
	IntKey   bool
	Unlogged bool
	// Rows and Pages are the planner's estimates; Bytes the heap's size,
	// TotalBytes with its TOAST table (values stored out of line).
	Rows       int64
	Pages      int64
	Bytes      int64
	TotalBytes int64
}

// listDatabases returns the source's databases that the selection moves:
// for a whole instance every database that takes connections but the
// templates, and postgres only when it holds user tables.
func (e *Engine) listDatabases(ctx context.Context, spec engine.Spec, c *pgx.Conn) ([]*database, error) {
	rows, err := c.Query(ctx, `SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate ORDER BY datname`)
	if err != nil {
		return nil, fmt.Errorf("source: list databases: %w", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("source: list databases: %w", err)
	}
	var out []*database
	if spec.MigrateObject != engine.MigrateObjectSelected {
		for _, n := range names {
			if n == maintenanceDB {
				used, err := e.holdsUserObjects(ctx, spec.Source, n)
				if err != nil {
					return nil, err
				}
				if !used {
					continue
				}
			}
			out = append(out, &database{Name: n, Whole: true})
		}
		return out, nil
	}
	byName := map[string]*database{}
	for _, o := range spec.Objects {
		if !slices.Contains(names, o.Database) {
			return nil, fmt.Errorf("source: database %q does not exist (DatabaseInfo names it)", o.Database)
		}
		d := byName[o.Database]
		if d == nil {
			d = &database{Name: o.Database}
			byName[o.Database] = d
			out = append(out, d)
		}
		switch {
		case o.Schema == "":
			d.Whole = true
		case len(o.Tables) == 0:
			d.Schemas = append(d.Schemas, o.Schema)
		default:
			for _, t := range o.Tables {
				d.Tables = append(d.Tables, engine.TableRef{Database: o.Database, Schema: o.Schema, Table: t})
			}
		}
	}
	slices.SortFunc(out, func(a, b *database) int { return cmpString(a.Name, b.Name) })
	return out, nil
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// holdsUserObjects reports whether a database has anything of a user's:
// a relation, type or routine outside the system schemas.
func (e *Engine) holdsUserObjects(ctx context.Context, src engine.Endpoint, db string) (bool, error) {
	c, err := e.connect(ctx, src, "source", db)
	if err != nil {
		return false, err
	}
	defer closeQuietly(c)
	var n int
	err = c.QueryRow(ctx, `SELECT (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE `+systemSchemaFilter+`)
		+ (SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE `+systemSchemaFilter+`)`).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("source %s: look for user objects: %w", db, err)
	}
	return n > 0, nil
}

// selected reports whether the database's selection takes schema.name.
func (d *database) selected(schema, name string) bool {
	if d.Whole || slices.Contains(d.Schemas, schema) {
		return true
	}
	for _, t := range d.Tables {
		if t.Schema == schema && t.Table == name {
			return true
		}
	}
	return false
}

// inventory fills d's relations, sequences and materialized views from
// the source database, read through c (a session in that database,
// inside the snapshot where there is one).
func inventory(ctx context.Context, c *pgx.Conn, d *database) error {
	rows, err := c.Query(ctx, `
		SELECT c.oid, n.nspname, c.relname, c.relkind::text, c.relpersistence = 'u',
			greatest(c.reltuples, 0)::bigint, c.relpages::bigint,
			CASE WHEN c.relkind = 'r' THEN pg_relation_size(c.oid) ELSE 0 END,
			CASE WHEN c.relkind = 'r' THEN pg_table_size(c.oid) ELSE 0 END,
			c.relkind <> 'm' OR c.relispopulated
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind IN ('r', 'S', 'm') AND c.relpersistence <> 't' AND `+systemSchemaFilter+`
			AND NOT EXISTS (SELECT 1 FROM pg_depend dep WHERE dep.classid = 'pg_class'::regclass
				AND dep.objid = c.oid AND dep.deptype = 'e')
		ORDER BY n.nspname, c.relname`)
	if err != nil {
		return fmt.Errorf("source %s: list tables: %w", d.Name, err)
	}
	var oids []uint32
	byOID := map[uint32]*relation{}
	var seqs []sequenceRef
	for rows.Next() {
		var (
			r                  relation
			kind               string
			populated          bool
			schema, name       string
			rowsEst, pages, sz int64
			total              int64
		)
		if err := rows.Scan(&r.OID, &schema, &name, &kind, &r.Unlogged, &rowsEst, &pages, &sz, &total, &populated); err != nil {
			rows.Close()
			return fmt.Errorf("source %s: list tables: %w", d.Name, err)
		}
		ref := engine.TableRef{Database: d.Name, Schema: schema, Table: name}
		switch kind {
		case "r":
			if !d.selected(schema, name) {
				continue
			}
			r.Ref, r.Rows, r.Pages, r.Bytes, r.TotalBytes = ref, rowsEst, pages, sz, total
			rr := r
			d.Relations = append(d.Relations, &rr)
			byOID[r.OID] = &rr
			oids = append(oids, r.OID)
		case "m":
			if populated && d.selected(schema, name) {
				d.MatViews = append(d.MatViews, ref)
			}
		case "S":
			seqs = append(seqs, sequenceRef{ref, r.OID})
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("source %s: list tables: %w", d.Name, err)
	}
	if err := fillSequences(ctx, c, d, seqs); err != nil {
		return err
	}
	if len(oids) == 0 {
		return nil
	}
	if err := fillColumns(ctx, c, d.Name, oids, byOID); err != nil {
		return err
	}
	return fillKeys(ctx, c, d.Name, oids, byOID)
}

// sequenceRef is a sequence found in the catalog.
type sequenceRef struct {
	ref engine.TableRef
	oid uint32
}

// fillSequences keeps the sequences the selection takes: those of whole
// databases and schemas, and those owned by a selected table.
func fillSequences(ctx context.Context, c *pgx.Conn, d *database, seqs []sequenceRef) error {
	if len(seqs) == 0 {
		return nil
	}
	owned := map[uint32][2]string{}
	if len(d.Tables) > 0 {
		rows, err := c.Query(ctx, `SELECT dep.objid, tn.nspname, t.relname
			FROM pg_depend dep JOIN pg_class t ON t.oid = dep.refobjid JOIN pg_namespace tn ON tn.oid = t.relnamespace
			WHERE dep.classid = 'pg_class'::regclass AND dep.refclassid = 'pg_class'::regclass
				AND dep.deptype IN ('a', 'i') AND (SELECT relkind FROM pg_class WHERE oid = dep.objid) = 'S'`)
		if err != nil {
			return fmt.Errorf("source %s: sequence owners: %w", d.Name, err)
		}
		for rows.Next() {
			var oid uint32
			var s, t string
			if err := rows.Scan(&oid, &s, &t); err != nil {
				rows.Close()
				return fmt.Errorf("source %s: sequence owners: %w", d.Name, err)
			}
			owned[oid] = [2]string{s, t}
		}
		rows.Close()
	}
	for _, s := range seqs {
		if d.selected(s.ref.Schema, s.ref.Table) && (d.Whole || slices.Contains(d.Schemas, s.ref.Schema)) {
			d.Sequences = append(d.Sequences, s.ref)
			continue
		}
		if o, ok := owned[s.oid]; ok && d.selected(o[0], o[1]) {
			d.Sequences = append(d.Sequences, s.ref)
		}
	}
	return nil
}

func fillColumns(ctx context.Context, c *pgx.Conn, db string, oids []uint32, byOID map[uint32]*relation) error {
	rows, err := c.Query(ctx, `
		SELECT a.attrelid, a.attname, a.attgenerated <> '',
			t.oid >= 16384 OR coalesce(et.oid >= 16384, false) OR t.typtype NOT IN ('b', 'p')
			-- Types without a binary form (aclitem), and tsquery, whose
			-- binary input refuses the empty query its output gives.
			OR t.typreceive = 0 OR t.typsend = 0 OR coalesce(et.typreceive = 0 OR et.typsend = 0, false)
			OR t.oid = 'tsquery'::regtype OR coalesce(et.oid = 'tsquery'::regtype, false)
		FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
			LEFT JOIN pg_type et ON et.oid = t.typelem AND t.typcategory = 'A'
		WHERE a.attnum > 0 AND NOT a.attisdropped AND a.attrelid = ANY($1)
		ORDER BY a.attrelid, a.attnum`, oids)
	if err != nil {
		return fmt.Errorf("source %s: list columns: %w", db, err)
	}
	defer rows.Close()
	for _, r := range byOID {
		r.Binary = true
	}
	for rows.Next() {
		var oid uint32
		var name string
		var generated, userType bool
		if err := rows.Scan(&oid, &name, &generated, &userType); err != nil {
			return fmt.Errorf("source %s: list columns: %w", db, err)
		}
		r := byOID[oid]
		if r == nil || generated {
			continue
		}
		r.Columns = append(r.Columns, name)
		if userType {
			r.Binary = false
		}
	}
	return rows.Err()
}

// fillKeys picks each table's key: the primary key, else the unique index
// on NOT NULL columns with the fewest columns.
func fillKeys(ctx context.Context, c *pgx.Conn, db string, oids []uint32, byOID map[uint32]*relation) error {
	rows, err := c.Query(ctx, `
		SELECT i.indrelid, i.indisprimary,
			array_agg(a.attname::text ORDER BY k.ord),
			bool_and(a.atttypid IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype))
		FROM pg_index i
			CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
			JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
		WHERE i.indrelid = ANY($1) AND i.indisunique AND i.indisvalid AND i.indpred IS NULL
			AND i.indexprs IS NULL AND k.ord <= i.indnkeyatts
		GROUP BY i.indexrelid, i.indrelid, i.indisprimary
		HAVING bool_and(a.attnotnull)
		ORDER BY i.indrelid, i.indisprimary DESC, count(*), i.indexrelid`, oids)
	if err != nil {
		return fmt.Errorf("source %s: list keys: %w", db, err)
	}
	defer rows.Close()
	for rows.Next() {
		var oid uint32
		var primary, ints bool
		var cols []string
		if err := rows.Scan(&oid, &primary, &cols, &ints); err != nil {
			return fmt.Errorf("source %s: list keys: %w", db, err)
		}
		r := byOID[oid]
		if r == nil || r.Key != nil {
			continue
		}
		r.Key = cols
		r.IntKey = len(cols) == 1 && ints
	}
	return rows.Err()
}
