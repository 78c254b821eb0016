package testpg

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// The Compare functions prove a PostgreSQL migration faithful: the target
// database must hold what the source database holds, structure and rows,
// byte for byte. They read both servers as the superuser and report every
// kind of difference they find, each naming the object (and the first
// differing row of a table). Four things are compared:
//
//   - the structure as `pg_dump --schema-only` prints it, after removing
//     only what must differ between two dumps of equal databases (see
//     normalizeDump);
//   - every row of every table (partitions and inheritance children each
//     on their own, FROM ONLY), as multisets: each side streams COPY TO
//     STDOUT of its rows sorted by the row's text form, and the two
//     streams must be equal line for line;
//   - every sequence's last_value and is_called (a schema-only dump has
//     neither);
//   - every materialized view: populated or not, and its rows when it is.
//
// Large objects and unlogged tables are compared like anything else only
// in so far as pg_dump --schema-only shows them.

// CompareOptions narrows or bends a comparison. The zero value compares
// everything, database-level properties included, with the same role
// names on both sides.
type CompareOptions struct {
	// Roles maps a source role to the target role that stands for it, for
	// migrations that rename roles or run as another account: the source's
	// dump is rewritten with these names where a role is named (OWNER TO,
	// GRANT, REVOKE, policies, default privileges, dump comments' Owner:).
	Roles map[string]string
	// Schemas limits the comparison to these schemas (pg_dump -n, exact
	// names). Database-level properties are then not compared.
	Schemas []string
	// Tables limits the comparison to these tables, "schema.table" or
	// "table" (schema public), exact names (pg_dump -t). Database-level
	// properties are then not compared.
	Tables []string
	// NoDatabase leaves out the database's own properties (CREATE
	// DATABASE's encoding and locale, its owner, comment, grants and
	// settings): for a target database that the test, not the migration,
	// created.
	NoDatabase bool
	// NoRows compares structure only: no rows, sequence values or
	// materialized view contents (MigrateType 1).
	NoRows bool
}

// How much is shown: enough to see what went wrong without drowning the
// log when a whole table is off.
const (
	maxDiffLines = 60
	clipLen      = 160
)

// CompareDatabase fails t unless srcDB on src and dstDB on dst hold the
// same structure, rows, sequence values and materialized views.
func CompareDatabase(t testing.TB, src, dst *Server, srcDB, dstDB string) {
	t.Helper()
	CompareDatabaseWith(t, src, dst, srcDB, dstDB, CompareOptions{})
}

// CompareDatabaseWith is CompareDatabase with options.
func CompareDatabaseWith(t testing.TB, src, dst *Server, srcDB, dstDB string, opt CompareOptions) {
	t.Helper()
	if diffs := Differences(t, src, dst, srcDB, dstDB, opt); len(diffs) > 0 {
		t.Errorf("testpg: database %q on the source %s differs from %q on the target %s:\n%s",
			srcDB, src.Addr(), dstDB, dst.Addr(), strings.Join(diffs, "\n"))
	}
}

// Differences returns what differs between srcDB on src and dstDB on dst,
// one message per object, empty when they are equal. It fails t only when
// it cannot compare (a server unreachable, pg_dump failing).
func Differences(t testing.TB, src, dst *Server, srcDB, dstDB string, opt CompareOptions) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	c := &comparison{t: t, ctx: ctx, opt: opt}
	c.src = &side{name: "source", srv: src, db: srcDB}
	c.dst = &side{name: "target", srv: dst, db: dstDB}
	for _, s := range []*side{c.src, c.dst} {
		if !c.exists(s) {
			return []string{fmt.Sprintf("database %q does not exist on the %s %s", s.db, s.name, s.srv.Addr())}
		}
	}
	c.schema()
	if !opt.NoRows {
		c.open(c.src)
		defer c.src.conn.Close(context.Background())
		c.open(c.dst)
		defer c.dst.conn.Close(context.Background())
		c.sequences()
		c.relations()
	}
	return c.diffs
}

type side struct {
	name string // source or target
	srv  *Server
	db   string
	conn *pgx.Conn
}

type comparison struct {
	t        testing.TB
	ctx      context.Context
	opt      CompareOptions
	src, dst *side
	diffs    []string
}

func (c *comparison) add(format string, args ...any) {
	c.diffs = append(c.diffs, fmt.Sprintf(format, args...))
}

func (c *comparison) exists(s *side) bool {
	c.t.Helper()
	conn, err := pgx.Connect(c.ctx, s.srv.SuperURL("postgres"))
	if err != nil {
		c.t.Fatalf("testpg: compare: %s %s: %v", s.name, s.srv.Addr(), err)
	}
	defer conn.Close(context.Background())
	var ok bool
	if err := conn.QueryRow(c.ctx, "SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)", s.db).Scan(&ok); err != nil {
		c.t.Fatalf("testpg: compare: %s %s: %v", s.name, s.srv.Addr(), err)
	}
	return ok
}

// open connects to a side's database with the same output settings on
// both sides, so that equal values print as equal text whatever each
// server's defaults: dates, intervals, floats (shortest exact form),
// bytea, money (lc_monetary picks its symbol and separators) and the time
// zone timestamptz is shown in. search_path pg_catalog: no user function
// or operator can stand in for a built-in one in the queries below.
func (c *comparison) open(s *side) {
	c.t.Helper()
	conn, err := pgx.Connect(c.ctx, s.srv.SuperURL(s.db))
	if err != nil {
		c.t.Fatalf("testpg: compare: %s %s/%s: %v", s.name, s.srv.Addr(), s.db, err)
	}
	const settings = `SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'postgres'; SET TimeZone = 'UTC';
		SET extra_float_digits = 1; SET bytea_output = 'hex'; SET lc_monetary = 'C';
		SET xmloption = content; SET client_encoding = 'UTF8'; SET standard_conforming_strings = on;
		SET search_path = pg_catalog; SET row_security = off; SET statement_timeout = 0`
	if _, err := conn.Exec(c.ctx, settings); err != nil {
		conn.Close(context.Background())
		c.t.Fatalf("testpg: compare: %s %s/%s: %v", s.name, s.srv.Addr(), s.db, err)
	}
	s.conn = conn
}

// ---------------------------------------------------------------- schema

func (c *comparison) schema() {
	c.t.Helper()
	var wg sync.WaitGroup
	var dumps [2][]string
	var errs [2]error
	for i, s := range []*side{c.src, c.dst} {
		wg.Go(func() { dumps[i], errs[i] = c.dump(s) })
	}
	wg.Wait()
	for i, s := range []*side{c.src, c.dst} {
		if errs[i] != nil {
			c.t.Fatalf("testpg: compare: pg_dump of the %s %s/%s: %v", s.name, s.srv.Addr(), s.db, errs[i])
		}
	}
	a := normalizeDump(dumps[0], c.src.db, c.opt.Roles)
	b := normalizeDump(dumps[1], c.dst.db, nil)
	if d := unifiedDiff(a, b, "source "+c.src.srv.Addr()+"/"+c.src.db, "target "+c.dst.srv.Addr()+"/"+c.dst.db); d != "" {
		c.add("schema (pg_dump --schema-only) differs:\n%s", d)
	}
}

// dump runs the installed (newest) pg_dump, the same binary for both
// sides, so that the two dumps differ only where the databases do.
func (c *comparison) dump(s *side) ([]string, error) {
	args := []string{"--schema-only", "--no-password", "--dbname=" + s.srv.SuperURL(s.db)}
	whole := len(c.opt.Schemas) == 0 && len(c.opt.Tables) == 0
	if whole && !c.opt.NoDatabase {
		// --create adds the database itself: encoding, locale, owner,
		// comment, grants and ALTER DATABASE SET.
		args = append(args, "--create")
	}
	for _, n := range c.opt.Schemas {
		args = append(args, "--schema="+dumpPattern(n))
	}
	for _, tb := range c.opt.Tables {
		sch, name := splitTable(tb)
		args = append(args, "--table="+dumpPattern(sch)+"."+dumpPattern(name))
	}
	cmd := exec.CommandContext(c.ctx, filepath.Join(BinDir(), "pg_dump"), args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return strings.Split(string(out), "\n"), nil
}

// dumpPattern makes a name a pg_dump pattern matching that name only:
// inside double quotes *, ? and . are literal.
func dumpPattern(name string) string {
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}

func splitTable(name string) (schema, table string) {
	if i := strings.IndexByte(name, '.'); i >= 0 {
		return name[:i], name[i+1:]
	}
	return "public", name
}

var bareIdent = regexp.MustCompile(`^[a-z_][a-z0-9_$]*$`)

// dumpIdent spells a name as pg_dump does: bare when it can be, else
// double-quoted (keywords aside, which test names avoid).
func dumpIdent(name string) string {
	if bareIdent.MatchString(name) {
		return name
	}
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}

// replaceIdent replaces name, spelled as pg_dump spells it, wherever it
// stands as a whole identifier in line.
func replaceIdent(line, name, with string) string {
	id := dumpIdent(name)
	re := regexp.MustCompile(`(^|[^A-Za-z0-9_$"])` + regexp.QuoteMeta(id) + `($|[^A-Za-z0-9_$"])`)
	// Twice: adjacent matches share a boundary character.
	for range 2 {
		line = re.ReplaceAllString(line, "${1}"+strings.ReplaceAll(with, "$", "$$")+"${2}")
	}
	return line
}

var (
	// Lines where the database is named: with --create, its CREATE, ALTER,
	// COMMENT, grants, \connect and their dump comments.
	databaseLine = regexp.MustCompile(`\bDATABASE\b|^\\connect `)
	// Lines where a role is named.
	roleLine = regexp.MustCompile(`OWNER TO |; Owner: |^GRANT |^REVOKE |DEFAULT PRIVILEGES|^CREATE POLICY |^ALTER POLICY `)
)

// normalizeDump removes from a pg_dump script only what differs between
// two dumps of equal databases:
//   - `\restrict KEY` and `\unrestrict KEY` (pg_dump 15.14 and later): KEY is
//     random in every dump;
//   - "Dumped from database version" and "Dumped by pg_dump version": a
//     target may run a newer release than its source;
//   - the database's own name, on lines that name the database, as
//     <database>: source and target databases may be named differently
//     (tests often put both on one cluster);
//   - with roles (source only), role names mapped to the target's names.
//
// SET lines stay: the same pg_dump binary prints the same preamble for
// both, and those between objects (default_tablespace,
// default_table_access_method) carry the objects' properties. Blank
// lines and the other comments stay too: they give the diff its context.
func normalizeDump(lines []string, db string, roles map[string]string) []string {
	out := make([]string, 0, len(lines))
	names := make([]string, 0, len(roles))
	for r := range roles {
		names = append(names, r)
	}
	slices.Sort(names)
	for _, l := range lines {
		if strings.HasPrefix(l, `\restrict `) || strings.HasPrefix(l, `\unrestrict `) ||
			strings.HasPrefix(l, "-- Dumped from database version") || strings.HasPrefix(l, "-- Dumped by pg_dump version") {
			continue
		}
		if databaseLine.MatchString(l) {
			l = replaceIdent(l, db, "<database>")
			l = strings.ReplaceAll(l, "dbname='"+strings.ReplaceAll(db, "'", `\'`)+"'", "dbname='<database>'")
		}
		if len(names) > 0 && roleLine.MatchString(l) {
			// Through placeholders, so that a map that swaps two names
			// does not rename twice.
			for i, r := range names {
				l = replaceIdent(l, r, fmt.Sprintf("\x00role%d\x00", i))
			}
			for i, r := range names {
				l = strings.ReplaceAll(l, fmt.Sprintf("\x00role%d\x00", i), dumpIdent(roles[r]))
			}
		}
		out = append(out, l)
	}
	return out
}

// ---------------------------------------------------------------- sequences

type relation struct {
	schema, name string
	kind         string // r table, m materialized view, S sequence
	populated    bool
}

func (r relation) qualified() string { return pgx.Identifier{r.schema, r.name}.Sanitize() }

// String is the name as pg_dump spells it, as in the schema diff.
func (r relation) String() string { return dumpIdent(r.schema) + "." + dumpIdent(r.name) }

// list returns the side's relations of the given kinds outside the system
// schemas, within the options' schemas or tables, sorted by name.
func (c *comparison) list(s *side, kinds string) []relation {
	c.t.Helper()
	rows, err := s.conn.Query(c.ctx, `
		SELECT n.nspname, r.relname, r.relkind::text, r.relispopulated
		FROM pg_class r JOIN pg_namespace n ON n.oid = r.relnamespace
		WHERE r.relkind = ANY (string_to_array($1, NULL)::"char"[])
			AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
			AND n.nspname NOT LIKE 'pg\_temp\_%' AND n.nspname NOT LIKE 'pg\_toast\_temp\_%'
			AND r.relpersistence <> 't'
		ORDER BY n.nspname COLLATE "C", r.relname COLLATE "C"`, kinds)
	if err != nil {
		c.t.Fatalf("testpg: compare: list relations on the %s: %v", s.name, err)
	}
	all, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (relation, error) {
		var x relation
		err := r.Scan(&x.schema, &x.name, &x.kind, &x.populated)
		return x, err
	})
	if err != nil {
		c.t.Fatalf("testpg: compare: list relations on the %s: %v", s.name, err)
	}
	var out []relation
	for _, r := range all {
		if len(c.opt.Schemas) > 0 && !slices.Contains(c.opt.Schemas, r.schema) {
			continue
		}
		if len(c.opt.Tables) > 0 && !slices.ContainsFunc(c.opt.Tables, func(t string) bool {
			sch, name := splitTable(t)
			return sch == r.schema && name == r.name
		}) {
			continue
		}
		out = append(out, r)
	}
	return out
}

// pair matches the two sides' lists by name; an object on one side only
// is reported (the schema diff shows it too, but may be narrowed).
func (c *comparison) pair(what string, a, b []relation) [][2]relation {
	var out [][2]relation
	byName := map[relation]relation{}
	key := func(r relation) relation { return relation{schema: r.schema, name: r.name} }
	for _, r := range b {
		byName[key(r)] = r
	}
	for _, r := range a {
		if o, ok := byName[key(r)]; ok {
			out = append(out, [2]relation{r, o})
			delete(byName, key(r))
		} else {
			c.add("%s %s: missing on the target", what, r)
		}
	}
	for _, r := range b {
		if _, ok := byName[key(r)]; ok {
			c.add("%s %s: on the target only", what, r)
		}
	}
	return out
}

func (c *comparison) sequences() {
	c.t.Helper()
	for _, p := range c.pair("sequence", c.list(c.src, "S"), c.list(c.dst, "S")) {
		var v [2]string
		for i, s := range []*side{c.src, c.dst} {
			q := "SELECT last_value::text || ' is_called=' || is_called::text FROM " + p[i].qualified()
			if err := s.conn.QueryRow(c.ctx, q).Scan(&v[i]); err != nil {
				c.t.Fatalf("testpg: compare: sequence %s on the %s: %v", p[i], s.name, err)
			}
		}
		if v[0] != v[1] {
			c.add("sequence %s: last_value %s on the source, %s on the target", p[0], v[0], v[1])
		}
	}
}

// ---------------------------------------------------------------- rows

// relations compares the rows of every table and materialized view.
func (c *comparison) relations() {
	c.t.Helper()
	for _, p := range c.pair("table", c.list(c.src, "rm"), c.list(c.dst, "rm")) {
		if p[0].kind != p[1].kind {
			c.add("%s: relkind %s on the source, %s on the target", p[0], p[0].kind, p[1].kind)
			continue
		}
		if p[0].kind == "m" && p[0].populated != p[1].populated {
			c.add("materialized view %s: populated %v on the source, %v on the target", p[0], p[0].populated, p[1].populated)
			continue
		}
		if p[0].kind == "m" && !p[0].populated {
			continue // nothing to read: selecting from it is an error
		}
		c.rows(p[0])
	}
}

// rows streams a table's rows from both sides, sorted by the row's text
// form in byte order: every type has a text form, not every type has a
// btree ordering (point, json, xml), and equal rows sort next to each
// other, so that duplicates in a table without a key are counted. COPY's
// text format prints each row on one line.
func (c *comparison) rows(r relation) {
	c.t.Helper()
	only := "ONLY "
	what := "table"
	if r.kind == "m" {
		only, what = "", "materialized view"
	}
	q := fmt.Sprintf(`COPY (SELECT * FROM %s%s AS r ORDER BY (r.*)::text COLLATE "C") TO STDOUT`, only, r.qualified())
	ctx, cancel := context.WithCancel(c.ctx)
	defer cancel()
	a, b := startCopy(ctx, c.src.conn, q), startCopy(ctx, c.dst.conn, q)
	var n [2]int64
	var first [2][]byte
	firstAt := int64(-1)
	for {
		la, errA := a.next()
		lb, errB := b.next()
		if errA != nil && errA != io.EOF || errB != nil && errB != io.EOF {
			cancel()
			a.wait()
			b.wait()
			c.t.Fatalf("testpg: compare: reading %s %s: source: %v; target: %v", what, r, errA, errB)
		}
		if errA == nil {
			n[0]++
		}
		if errB == nil {
			n[1]++
		}
		if firstAt < 0 && (errA == nil || errB == nil) && !bytes.Equal(la, lb) {
			firstAt = max(n[0], n[1])
			first = [2][]byte{bytes.Clone(la), bytes.Clone(lb)}
			if errA != nil {
				first[0] = nil
			}
			if errB != nil {
				first[1] = nil
			}
		}
		if errA == io.EOF && errB == io.EOF {
			break
		}
	}
	if err := a.wait(); err != nil {
		c.t.Fatalf("testpg: compare: %s %s on the source: %v", what, r, err)
	}
	if err := b.wait(); err != nil {
		c.t.Fatalf("testpg: compare: %s %s on the target: %v", what, r, err)
	}
	if firstAt < 0 {
		return
	}
	msg := fmt.Sprintf("%s %s: %d rows on the source, %d on the target; the first difference is at row %d in the order of the rows' text:\n    source: %s\n    target: %s",
		what, r, n[0], n[1], firstAt, showRow(first[0]), showRow(first[1]))
	if first[0] != nil && first[1] != nil {
		msg += c.firstColumn(r, first[0], first[1])
	}
	c.add("%s", msg)
}

// firstColumn names the first column whose text differs between two
// rows (the same row when only a value changed).
func (c *comparison) firstColumn(r relation, a, b []byte) string {
	fa, fb := bytes.Split(bytes.TrimSuffix(a, []byte("\n")), []byte("\t")), bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\t"))
	if len(fa) != len(fb) {
		return fmt.Sprintf("\n    (%d columns on the source, %d on the target)", len(fa), len(fb))
	}
	rows, err := c.src.conn.Query(c.ctx, `SELECT attname FROM pg_attribute
		WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum`, r.qualified())
	if err != nil {
		return ""
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(names) != len(fa) {
		return ""
	}
	for i := range fa {
		if !bytes.Equal(fa[i], fb[i]) {
			return fmt.Sprintf("\n    first differing column %q: %s", names[i], showDifference(fa[i], fb[i]))
		}
	}
	return ""
}

func showRow(line []byte) string {
	if line == nil {
		return "(no more rows)"
	}
	return clip(bytes.TrimSuffix(line, []byte("\n")))
}

// showDifference shows two values; long ones around their first
// differing byte.
func showDifference(a, b []byte) string {
	if len(a) <= clipLen && len(b) <= clipLen {
		return fmt.Sprintf("source %q, target %q", a, b)
	}
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	from := max(0, i-40)
	window := func(v []byte) []byte { return v[min(from, len(v)):min(len(v), i+40)] }
	return fmt.Sprintf("%d and %d bytes, first differing at byte %d (in COPY text form): source ...%q..., target ...%q...",
		len(a), len(b), i, window(a), window(b))
}

// clip shortens a value for the log, saying how long it was.
func clip(b []byte) string {
	if len(b) <= clipLen {
		return fmt.Sprintf("%q", b)
	}
	return fmt.Sprintf("%q... (%d bytes)", b[:clipLen], len(b))
}

// copyStream is one side's COPY TO STDOUT, read line by line while the
// server writes: a table is never held in memory.
type copyStream struct {
	r     *bufio.Reader
	pr    *io.PipeReader
	done  chan error
	err   error
	ended bool
}

func startCopy(ctx context.Context, conn *pgx.Conn, q string) *copyStream {
	pr, pw := io.Pipe()
	s := &copyStream{r: bufio.NewReaderSize(pr, 1<<16), pr: pr, done: make(chan error, 1)}
	go func() {
		_, err := conn.PgConn().CopyTo(ctx, pw, q)
		pw.CloseWithError(err) // nil: the reader sees io.EOF
		s.done <- err
	}()
	return s
}

// next returns the next line, with its newline; io.EOF at the end.
func (s *copyStream) next() ([]byte, error) {
	line, err := s.r.ReadBytes('\n')
	if err == io.EOF && len(line) > 0 {
		return nil, fmt.Errorf("COPY output ends inside a row")
	}
	return line, err
}

// wait drains what is left (so that the server's COPY can finish) and
// returns the COPY's error.
func (s *copyStream) wait() error {
	if !s.ended {
		io.Copy(io.Discard, s.pr)
		s.err = <-s.done
		s.ended = true
	}
	return s.err
}
