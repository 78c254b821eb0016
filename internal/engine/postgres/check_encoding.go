package postgres

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/opendts/opendts/internal/engine"
)

const encodingName = "EncodingCheck"

// encodingCheck checks that the target can hold each database as the
// source has it: a database the job creates gets the source's encoding,
// LC_COLLATE, LC_CTYPE and locale provider, so the target must know those
// locales; a database that exists already should have the same encoding.
// Columns of the selected tables with a collation of their own need it on
// the target too. Nothing is created to find out: the locales are looked
// up in the target's pg_collation and pg_database, which is what the
// target cluster knows.
type encodingCheck struct{}

func (encodingCheck) Name() string { return encodingName }

// dbLocale is a database's encoding and locale.
type dbLocale struct {
	encoding, collate, ctype string
	provider                 string // c (libc), i (ICU), b (builtin)
	icu                      string
}

// targetLocales is what the target cluster knows: its libc locales
// (normalised), its ICU locales, and its pg_catalog collations by name.
type targetLocales struct {
	libc       map[string]bool
	icu        map[string]bool
	hasICU     bool
	catalog    map[string]bool
	major      int
	dbEncoding map[string]dbLocale
}

func (encodingCheck) Check(ctx context.Context, r *checkRun) engine.CheckItem {
	const n = encodingName
	if res, bad := unreachable(n, r.src, r.dst); bad {
		return res
	}
	p, err := r.resolve(ctx)
	if err != nil {
		return warn(n, err.Error(), "See ObjectsExistCheck.")
	}
	tl, err := readTargetLocales(ctx, r.dst)
	if err != nil {
		return warn(n, err.Error(), "Check the target's locales by hand (SELECT collname, collcollate FROM pg_collation).")
	}
	srcVer, err := r.src.serverVersion(ctx)
	if err != nil {
		return warn(n, err.Error(), "Check that the source is PostgreSQL.")
	}
	dbs, unread := p.readable()
	var fails, warns, advice []string
	adviseOnce := func(a string) {
		if !slices.Contains(advice, a) {
			advice = append(advice, a)
		}
	}
	for _, d := range dbs {
		sl, err := readDBLocale(ctx, r.src.home, srcVer, d.Name)
		if err != nil {
			unread = append(unread, fmt.Sprintf("%s: %s", r.src.where(), err))
			continue
		}
		if tdl, exists := tl.dbEncoding[d.Name]; exists {
			if tdl.encoding != sl.encoding {
				fails = append(fails, fmt.Sprintf("database %s is %s on the source but %s on the target", shown(d.Name), sl.encoding, tdl.encoding))
				adviseOnce(fmt.Sprintf("Drop the target database if nothing in it is needed (DROP DATABASE %s;): the job then creates it with the source's encoding and locale; or migrate into another target.", shown(d.Name)))
			} else if tdl.collate != sl.collate || tdl.ctype != sl.ctype || tdl.provider != sl.provider || tdl.icu != sl.icu {
				warns = append(warns, fmt.Sprintf("database %s sorts by %s on the source but by %s on the target (text order and case rules may differ)", shown(d.Name), sl, tdl))
			}
		} else {
			for _, problem := range tl.cannotCreate(sl) {
				fails = append(fails, fmt.Sprintf("database %s (%s): %s", shown(d.Name), sl, problem))
				adviseOnce(localeAdvice)
			}
		}
		c, err := r.src.conn(ctx, d.Name)
		if err != nil {
			unread = append(unread, err.Error())
			continue
		}
		missing, err := columnCollations(ctx, c, srcVer, d, tl)
		if err != nil {
			unread = append(unread, fmt.Sprintf("%s, database %s: %s", r.src.where(), shown(d.Name), err))
			continue
		}
		fails = append(fails, missing...)
		if len(missing) > 0 {
			adviseOnce(localeAdvice)
		}
	}
	if len(fails) > 0 {
		return fail(n, "the target cannot hold the source's text as it is: "+listNames(fails), strings.Join(advice, " "))
	}
	if len(warns) > 0 {
		return warn(n, listNames(warns), "Indexes on text are rebuilt on the target, so nothing breaks, but ORDER BY and comparisons may give other results; migrate into a new database (the job creates it with the source's locale) to keep them.")
	}
	if len(unread) > 0 {
		return partly(n, unread)
	}
	return pass(n, "the target knows the encoding and locales of the %d selected database(s) and the collations of their columns", len(dbs))
}

const localeAdvice = "Generate the missing locales on the target server (Debian: uncomment them in /etc/locale.gen, run locale-gen and restart PostgreSQL), then make them known to it: SELECT pg_import_system_collations('pg_catalog'); in template1, postgres and each target database that exists. ICU locales need a target built with ICU."

func (l dbLocale) String() string {
	switch l.provider {
	case "i":
		return fmt.Sprintf("%s, ICU locale %s", l.encoding, l.icu)
	case "b":
		return fmt.Sprintf("%s, builtin locale %s", l.encoding, l.icu)
	}
	if l.collate == l.ctype {
		return fmt.Sprintf("%s, locale %s", l.encoding, l.collate)
	}
	return fmt.Sprintf("%s, LC_COLLATE %s, LC_CTYPE %s", l.encoding, l.collate, l.ctype)
}

// normLocale makes libc locale names comparable: en_US.UTF-8 and
// en_US.utf8 are one locale.
func normLocale(s string) string {
	s = strings.ToLower(s)
	if i := strings.IndexByte(s, '.'); i >= 0 {
		s = s[:i] + "." + strings.ReplaceAll(s[i+1:], "-", "")
	}
	return s
}

// cannotCreate says why CREATE DATABASE with l would fail on the target.
func (tl *targetLocales) cannotCreate(l dbLocale) []string {
	var out []string
	for _, loc := range []string{l.collate, l.ctype} {
		if !tl.libc[normLocale(loc)] {
			out = append(out, fmt.Sprintf("the target does not know the locale %s", loc))
			if l.collate == l.ctype {
				break
			}
		}
	}
	switch l.provider {
	case "i":
		if tl.major < 15 {
			out = append(out, "ICU as a database's locale provider needs PostgreSQL 15 or later on the target")
		} else if !tl.hasICU {
			out = append(out, "the target is built without ICU")
		} else if !tl.icu[strings.ToLower(l.icu)] {
			out = append(out, fmt.Sprintf("the target knows no ICU locale %s", l.icu))
		}
	case "b":
		if tl.major < 17 {
			out = append(out, "the builtin locale provider needs PostgreSQL 17 or later on the target")
		}
	}
	return out
}

// localeColumn is the ICU locale column of pg_database or pg_collation
// for a server version: colllocale / datlocale from PostgreSQL 17,
// colliculocale / daticulocale in 15 and 16, none before.
func localeColumn(version int, prefix string) string {
	switch {
	case version >= 170000:
		return "coalesce(" + prefix + "locale, '')"
	case version >= 150000:
		return "coalesce(" + prefix + "iculocale, '')"
	}
	return "''"
}

func providerColumn(version int, prefix string) string {
	if version >= 150000 {
		return prefix + "locprovider::text"
	}
	return "'c'"
}

// createDatabaseSQL is the CREATE DATABASE the job runs for source
// database db (the encoding and locale of the source's), for advice that
// has the DBA create it first.
func createDatabaseSQL(ctx context.Context, r *checkRun, db string) string {
	fallback := fmt.Sprintf("CREATE DATABASE %s TEMPLATE template0 ENCODING ... LOCALE ...; (the source's encoding and locale)", shown(db))
	v, err := r.src.serverVersion(ctx)
	if err != nil {
		return fallback
	}
	l, err := readDBLocale(ctx, r.src.home, v, db)
	if err != nil {
		return fallback
	}
	q := fmt.Sprintf("CREATE DATABASE %s TEMPLATE template0 ENCODING %s LC_COLLATE %s LC_CTYPE %s",
		shown(db), quoteLiteral(l.encoding), quoteLiteral(l.collate), quoteLiteral(l.ctype))
	switch l.provider {
	case "i":
		q += " LOCALE_PROVIDER icu ICU_LOCALE " + quoteLiteral(l.icu)
	case "b":
		q += " LOCALE_PROVIDER builtin BUILTIN_LOCALE " + quoteLiteral(l.icu)
	}
	return q + ";"
}

func readDBLocale(ctx context.Context, c *pgx.Conn, version int, db string) (dbLocale, error) {
	var l dbLocale
	err := c.QueryRow(ctx, `SELECT pg_encoding_to_char(encoding), datcollate, datctype, `+providerColumn(version, "dat")+`, `+localeColumn(version, "dat")+`
		FROM pg_database WHERE datname = $1`, db).Scan(&l.encoding, &l.collate, &l.ctype, &l.provider, &l.icu)
	if err != nil {
		return l, fmt.Errorf("read the encoding of database %s: %w", shown(db), err)
	}
	return l, nil
}

func readTargetLocales(ctx context.Context, s *checkSide) (*targetLocales, error) {
	v, err := s.serverVersion(ctx)
	if err != nil {
		return nil, err
	}
	tl := &targetLocales{libc: map[string]bool{"c": true, "posix": true, "c.utf8": true}, icu: map[string]bool{},
		catalog: map[string]bool{}, major: majorOf(v), dbEncoding: map[string]dbLocale{}}
	rows, err := s.home.Query(ctx, `SELECT collname, collprovider::text, coalesce(collcollate, ''), `+localeColumn(v, "coll")+`,
			collnamespace = 'pg_catalog'::regnamespace FROM pg_collation`)
	if err != nil {
		return nil, fmt.Errorf("%s: list collations: %w", s.where(), err)
	}
	for rows.Next() {
		var name, provider, collate, icu string
		var catalog bool
		if err := rows.Scan(&name, &provider, &collate, &icu, &catalog); err != nil {
			rows.Close()
			return nil, fmt.Errorf("%s: list collations: %w", s.where(), err)
		}
		switch provider {
		case "c":
			tl.libc[normLocale(collate)] = true
		case "i":
			tl.hasICU = true
			tl.icu[strings.ToLower(icu)] = true
		}
		if catalog {
			tl.catalog[name] = true
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: list collations: %w", s.where(), err)
	}
	rows, err = s.home.Query(ctx, `SELECT datname, pg_encoding_to_char(encoding), datcollate, datctype, `+providerColumn(v, "dat")+`, `+localeColumn(v, "dat")+` FROM pg_database`)
	if err != nil {
		return nil, fmt.Errorf("%s: list databases: %w", s.where(), err)
	}
	for rows.Next() {
		var name string
		var l dbLocale
		if err := rows.Scan(&name, &l.encoding, &l.collate, &l.ctype, &l.provider, &l.icu); err != nil {
			rows.Close()
			return nil, fmt.Errorf("%s: list databases: %w", s.where(), err)
		}
		tl.dbEncoding[name] = l
		// A locale a database of the target uses is one it knows.
		tl.libc[normLocale(l.collate)] = true
		tl.libc[normLocale(l.ctype)] = true
	}
	rows.Close()
	return tl, rows.Err()
}

// columnCollations names the selected tables' columns whose collation the
// target lacks: a pg_catalog collation by name, a user's collation (which
// the job creates) by the locale it is made from.
func columnCollations(ctx context.Context, c *pgx.Conn, version int, d *checkDB, tl *targetLocales) ([]string, error) {
	rows, err := c.Query(ctx, `
		SELECT n.nspname, cl.relname, a.attname, co.collname, co.collnamespace = 'pg_catalog'::regnamespace,
			co.collprovider::text, coalesce(co.collcollate, ''), `+localeColumn(version, "co.coll")+`
		FROM pg_attribute a JOIN pg_class cl ON cl.oid = a.attrelid JOIN pg_namespace n ON n.oid = cl.relnamespace
			JOIN pg_collation co ON co.oid = a.attcollation
		WHERE a.attnum > 0 AND NOT a.attisdropped AND cl.relkind IN ('r', 'p', 'v', 'm', 'f')
			AND co.collname <> 'default' AND `+systemSchemaFilter+`
		ORDER BY 1, 2, a.attnum`)
	if err != nil {
		return nil, fmt.Errorf("list column collations: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var schema, table, column, coll, provider, collate, icu string
		var catalog bool
		if err := rows.Scan(&schema, &table, &column, &coll, &catalog, &provider, &collate, &icu); err != nil {
			return nil, err
		}
		if !d.selected(schema, table) {
			continue
		}
		col := shown(d.Name, schema, table, column)
		switch {
		case catalog && !tl.catalog[coll]:
			out = append(out, fmt.Sprintf("column %s uses collation %s, which the target lacks", col, shown(coll)))
		case catalog:
		case provider == "c" && !tl.libc[normLocale(collate)]:
			out = append(out, fmt.Sprintf("column %s uses collation %s made from locale %s, which the target does not know", col, shown(coll), collate))
		case provider == "i" && !tl.hasICU:
			out = append(out, fmt.Sprintf("column %s uses ICU collation %s, and the target is built without ICU", col, shown(coll)))
		}
	}
	return out, rows.Err()
}
