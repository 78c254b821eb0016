package postgres

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/opendts/opendts/internal/engine"
)

const extensionName = "ExtensionCheck"

// extensionCheck checks that every extension installed in a selected
// source database can be created on the target, at the source's version
// or later (CREATE EXTENSION, as pg_dump writes it, installs the default
// version of pg_available_extensions). A schema or table selection does
// not create extensions (pg_dump -n/-t leaves them out): columns of an
// extension's type then need the extension in the target database first.
type extensionCheck struct{}

func (extensionCheck) Name() string { return extensionName }

// extVersion is an installed extension: its name and version.
type extVersion struct{ name, version string }

func (extensionCheck) Check(ctx context.Context, r *checkRun) engine.CheckItem {
	const n = extensionName
	if res, bad := unreachable(n, r.src, r.dst); bad {
		return res
	}
	p, err := r.resolve(ctx)
	if err != nil {
		return warn(n, err.Error(), "See ObjectsExistCheck.")
	}
	rows, err := r.dst.home.Query(ctx, `SELECT name, coalesce(default_version, '') FROM pg_available_extensions`)
	if err != nil {
		return warn(n, fmt.Sprintf("%s: list available extensions: %s", r.dst.where(), err), "Check the target's extensions by hand (SELECT * FROM pg_available_extensions).")
	}
	avail := map[string]string{}
	for rows.Next() {
		var name, v string
		if err := rows.Scan(&name, &v); err != nil {
			rows.Close()
			return warn(n, err.Error(), "Check the target's extensions by hand.")
		}
		avail[name] = v
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return warn(n, fmt.Sprintf("%s: list available extensions: %s", r.dst.where(), err), "Check the target's extensions by hand.")
	}
	dstMajor := 0
	if v, err := r.dst.serverVersion(ctx); err == nil {
		dstMajor = majorOf(v)
	}
	dbs, unread := p.readable()
	onTarget, err := targetDatabases(ctx, r.dst)
	if err != nil {
		return warn(n, err.Error(), "Check that the target user may read pg_database.")
	}
	var short, packages, notCreated, creates []string
	used := 0
	for _, d := range dbs {
		c, err := r.src.conn(ctx, d.Name)
		if err != nil {
			unread = append(unread, err.Error())
			continue
		}
		exts, err := installedExtensions(ctx, c)
		if err != nil {
			unread = append(unread, fmt.Sprintf("%s, database %s: %s", r.src.where(), shown(d.Name), err))
			continue
		}
		// A whole database creates its extensions; a schema or table
		// selection needs only those its tables' columns use, made by
		// the DBA beforehand.
		var needed []string
		if !d.Whole {
			if needed, err = extensionsOfColumns(ctx, c, d); err != nil {
				unread = append(unread, fmt.Sprintf("%s, database %s: %s", r.src.where(), shown(d.Name), err))
				continue
			}
			exts = slices.DeleteFunc(exts, func(e extVersion) bool { return !slices.Contains(needed, e.name) })
		}
		used += len(exts)
		for _, s := range extensionShortfalls(exts, avail) {
			short = append(short, s+" (database "+shown(d.Name)+")")
		}
		for _, e := range exts {
			if _, ok := avail[e.name]; !ok || compareVersions(avail[e.name], e.version) < 0 {
				if pkg := extensionPackage(e.name, dstMajor); !slices.Contains(packages, pkg) {
					packages = append(packages, pkg)
				}
			}
		}
		if d.Whole {
			continue
		}
		have := []string{}
		if _, ok := onTarget[d.Name]; ok && len(needed) > 0 {
			tc, err := r.dst.conn(ctx, d.Name)
			if err != nil {
				unread = append(unread, err.Error())
				continue
			}
			rows, err := tc.Query(ctx, `SELECT extname FROM pg_extension`)
			if err == nil {
				have, err = pgx.CollectRows(rows, pgx.RowTo[string])
			}
			if err != nil {
				unread = append(unread, fmt.Sprintf("%s, database %s: %s", r.dst.where(), shown(d.Name), err))
				continue
			}
		}
		_, exists := onTarget[d.Name]
		for _, e := range needed {
			if !slices.Contains(have, e) {
				notCreated = append(notCreated, fmt.Sprintf("%s (database %s)", e, shown(d.Name)))
				stmt := fmt.Sprintf("in database %s: CREATE EXTENSION %s;", shown(d.Name), shown(e))
				if !exists {
					stmt = fmt.Sprintf("%s then in it: CREATE EXTENSION %s;", createDatabaseSQL(ctx, r, d.Name), shown(e))
				}
				creates = append(creates, stmt)
			}
		}
	}
	if len(short) > 0 {
		return fail(n, fmt.Sprintf("the source uses extensions the %s cannot create: %s", r.dst.where(), listNames(short)),
			fmt.Sprintf("Install them on the target server (Debian/Ubuntu packages: %s; on a managed service, enable them in its console), then check again.", strings.Join(packages, ", ")))
	}
	if len(notCreated) > 0 {
		if len(creates) > 3 {
			creates = append(creates[:3], "...")
		}
		adv := "A schema or table selection does not create extensions: create them on the target before starting the job: " + strings.Join(creates, " ")
		return warn(n, "selected tables have columns of extension types, and the target database lacks the extension: "+listNames(notCreated), adv)
	}
	if len(unread) > 0 {
		return partly(n, unread)
	}
	if used == 0 {
		return pass(n, "the selection uses no extension but plpgsql")
	}
	return pass(n, "the %d extension(s) the selection uses are available on the target at their version or later", used)
}

// installedExtensions lists a database's extensions but plpgsql, which
// every database has.
func installedExtensions(ctx context.Context, c *pgx.Conn) ([]extVersion, error) {
	rows, err := c.Query(ctx, `SELECT extname, extversion FROM pg_extension WHERE extname <> 'plpgsql' ORDER BY 1`)
	if err != nil {
		return nil, fmt.Errorf("list extensions: %w", err)
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (extVersion, error) {
		var e extVersion
		return e, row.Scan(&e.name, &e.version)
	})
}

// extensionsOfColumns are the extensions whose types the selected tables'
// columns use (directly or as arrays).
func extensionsOfColumns(ctx context.Context, c *pgx.Conn, d *checkDB) ([]string, error) {
	rows, err := c.Query(ctx, `
		SELECT DISTINCT n.nspname, cl.relname, x.extname
		FROM pg_attribute a JOIN pg_class cl ON cl.oid = a.attrelid JOIN pg_namespace n ON n.oid = cl.relnamespace
			JOIN pg_type t ON t.oid = a.atttypid
			JOIN pg_depend dep ON dep.classid = 'pg_type'::regclass AND dep.deptype = 'e'
				AND dep.objid = CASE WHEN t.typcategory = 'A' THEN t.typelem ELSE t.oid END
			JOIN pg_extension x ON x.oid = dep.refobjid
		WHERE a.attnum > 0 AND NOT a.attisdropped AND cl.relkind IN ('r', 'p') AND `+systemSchemaFilter)
	if err != nil {
		return nil, fmt.Errorf("list columns of extension types: %w", err)
	}
	var out []string
	for rows.Next() {
		var schema, table, ext string
		if err := rows.Scan(&schema, &table, &ext); err != nil {
			rows.Close()
			return nil, err
		}
		if d.selected(schema, table) && !slices.Contains(out, ext) {
			out = append(out, ext)
		}
	}
	rows.Close()
	slices.Sort(out)
	return out, rows.Err()
}

// extensionShortfalls names the source's extensions the target cannot
// create at their version or later: avail is the target's
// pg_available_extensions, name to default version.
func extensionShortfalls(src []extVersion, avail map[string]string) []string {
	var out []string
	for _, e := range src {
		v, ok := avail[e.name]
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("%s %s (not installed on the target server)", e.name, e.version))
		case compareVersions(v, e.version) < 0:
			out = append(out, fmt.Sprintf("%s %s (the target offers %s)", e.name, e.version, v))
		}
	}
	return out
}

// compareVersions orders extension versions ("1.2", "3.3.2", "2.5.0dev",
// "1.0beta1"): numeric parts as numbers, the rest as text, and a release
// after its pre-releases (3.0 > 3.0beta1).
func compareVersions(a, b string) int {
	pa, pb := versionParts(a), versionParts(b)
	for i := 0; i < len(pa) || i < len(pb); i++ {
		if i >= len(pa) {
			return releaseOrder(pb[i])
		}
		if i >= len(pb) {
			return -releaseOrder(pa[i])
		}
		x, y := pa[i], pb[i]
		nx, ex := strconv.Atoi(x)
		ny, ey := strconv.Atoi(y)
		switch {
		case ex == nil && ey == nil:
			if nx != ny {
				return cmpInt(nx, ny)
			}
		case ex == nil:
			return 1 // a number is after a pre-release tag
		case ey == nil:
			return -1
		default:
			if c := strings.Compare(x, y); c != 0 {
				return c
			}
		}
	}
	return 0
}

// releaseOrder is how a version with one more part compares to the one
// without: 1.2.1 > 1.2, but 1.2beta1 < 1.2.
func releaseOrder(extra string) int {
	if _, err := strconv.Atoi(extra); err == nil {
		return -1
	}
	return 1
}

func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// versionParts splits "3.3.2dev" into 3, 3, 2, dev.
func versionParts(v string) []string {
	var out []string
	cur := ""
	digit := false
	flush := func() {
		if cur != "" {
			out = append(out, cur)
		}
		cur = ""
	}
	for _, r := range v {
		isDigit := r >= '0' && r <= '9'
		switch {
		case r == '.' || r == '-' || r == '_' || r == '+':
			flush()
		case cur != "" && isDigit != digit:
			flush()
			cur = string(r)
		default:
			cur += string(r)
		}
		digit = isDigit
	}
	flush()
	return out
}

// extensionPackage is the Debian/Ubuntu package that brings an extension
// for PostgreSQL major (the PGDG naming).
func extensionPackage(name string, major int) string {
	m := strconv.Itoa(major)
	if major == 0 {
		m = "N"
	}
	switch {
	case strings.HasPrefix(name, "postgis"), name == "address_standardizer", name == "address_standardizer_data_us":
		return "postgresql-" + m + "-postgis-3"
	case name == "vector":
		return "postgresql-" + m + "-pgvector"
	case name == "timescaledb":
		return "timescaledb-2-postgresql-" + m
	case name == "pgrouting":
		return "postgresql-" + m + "-pgrouting"
	case name == "pg_cron":
		return "postgresql-" + m + "-cron"
	case name == "pg_partman":
		return "postgresql-" + m + "-partman"
	case name == "hypopg", name == "pg_repack", name == "pgaudit", name == "orafce", name == "pg_hint_plan", name == "pglogical", name == "wal2json":
		return "postgresql-" + m + "-" + strings.ReplaceAll(name, "_", "-")
	case slices.Contains(contribExtensions, name):
		return "postgresql-contrib (postgresql-" + m + " on Debian)"
	}
	return "postgresql-" + m + "-" + strings.ReplaceAll(name, "_", "-") + " or the extension's own package"
}

// contribExtensions come with PostgreSQL's contrib modules.
var contribExtensions = []string{"adminpack", "amcheck", "autoinc", "bloom", "btree_gin", "btree_gist", "citext", "cube",
	"dblink", "dict_int", "dict_xsyn", "earthdistance", "file_fdw", "fuzzystrmatch", "hstore", "insert_username",
	"intagg", "intarray", "isn", "lo", "ltree", "moddatetime", "old_snapshot", "pageinspect", "pg_buffercache",
	"pg_freespacemap", "pg_prewarm", "pg_stat_statements", "pg_surgery", "pg_trgm", "pg_visibility", "pg_walinspect",
	"pgcrypto", "pgrowlocks", "pgstattuple", "postgres_fdw", "refint", "seg", "sslinfo", "tablefunc", "tcn",
	"tsm_system_rows", "tsm_system_time", "unaccent", "uuid-ossp", "xml2"}
