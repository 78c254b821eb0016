package testdb

import (
	"context"
	"database/sql"
	"encoding/hex"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// The Compare functions prove a migration faithful: the database on the
// target must hold what the source holds, structure and rows, byte for
// byte. They read both servers as root and fail the test with the first
// few differences, each naming the object, the column and the row.
//
// Definers are the one thing allowed to differ (a migration may run as an
// account the source never had): they are logged, not reported.

// How much of a difference is shown: enough to see what went wrong without
// drowning the log when a whole table is off.
const (
	maxDiffs    = 40
	maxExamples = 5
	clipLen     = 80
)

// CompareDatabase fails t unless db is identical on src and dst: its
// SHOW CREATE DATABASE, every table's SHOW CREATE TABLE and rows, views,
// triggers, routines and events.
func CompareDatabase(t testing.TB, src, dst *Server, db string) {
	t.Helper()
	compare(t, src, dst, db, scope{rows: true})
}

// CompareDatabases runs CompareDatabase on each of dbs.
func CompareDatabases(t testing.TB, src, dst *Server, dbs ...string) {
	t.Helper()
	for _, db := range dbs {
		CompareDatabase(t, src, dst, db)
	}
}

// CompareSchema is CompareDatabase without the rows, for structure-only
// migrations.
func CompareSchema(t testing.TB, src, dst *Server, db string) {
	t.Helper()
	compare(t, src, dst, db, scope{})
}

// CompareTables compares db's SHOW CREATE DATABASE and the named tables
// (structure, rows and triggers) only, for migrations of selected tables.
func CompareTables(t testing.TB, src, dst *Server, db string, tables ...string) {
	t.Helper()
	if len(tables) == 0 {
		t.Fatalf("testdb: CompareTables needs at least one table")
	}
	compare(t, src, dst, db, scope{rows: true, tables: tables})
}

// Object is a named thing in a database. Kind is information_schema's
// TABLE_TYPE for tables and views (BASE TABLE, VIEW, ...), ROUTINE_TYPE for
// routines (PROCEDURE, FUNCTION), or TRIGGER or EVENT.
type Object struct{ Kind, Name string }

// Objects lists what db holds on s, in a fixed order.
func Objects(t testing.TB, s *Server, db string) []Object {
	t.Helper()
	pool, err := s.rootDB()
	if err != nil {
		t.Fatalf("testdb: %v", err)
	}
	var out []Object
	for _, q := range []string{
		"SELECT TABLE_TYPE, TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?",
		"SELECT ROUTINE_TYPE, ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ?",
		"SELECT 'TRIGGER', TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ?",
		"SELECT 'EVENT', EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ?",
	} {
		rows, err := pool.Query(q+" ORDER BY 2", db)
		if err != nil {
			t.Fatalf("testdb: %s: %s: %v", s.addr(), q, err)
		}
		for rows.Next() {
			var o Object
			if err := rows.Scan(&o.Kind, &o.Name); err != nil {
				t.Fatalf("testdb: %s: %v", s.addr(), err)
			}
			out = append(out, o)
		}
		if err := rows.Close(); err != nil {
			t.Fatalf("testdb: %s: %v", s.addr(), err)
		}
	}
	return out
}

// CompareAbsent fails t if any of the named objects (tables, views,
// routines, triggers or events) exists in db on dst, or, with no names, if
// db itself exists there.
func CompareAbsent(t testing.TB, dst *Server, db string, names ...string) {
	t.Helper()
	pool, err := dst.rootDB()
	if err != nil {
		t.Fatalf("testdb: %v", err)
	}
	if len(names) == 0 {
		var n int
		if err := pool.QueryRow("SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?", db).Scan(&n); err != nil {
			t.Fatalf("testdb: %s: %v", dst.addr(), err)
		}
		if n > 0 {
			t.Errorf("testdb: database `%s` exists on the target %s; it should not", db, dst.addr())
		}
		return
	}
	var found []string
	for _, o := range Objects(t, dst, db) {
		if slices.Contains(names, o.Name) {
			found = append(found, fmt.Sprintf("%s `%s`", strings.ToLower(o.Kind), o.Name))
		}
	}
	if len(found) > 0 {
		t.Errorf("testdb: these should not exist in `%s` on the target %s: %s", db, dst.addr(), strings.Join(found, ", "))
	}
}

// scope is what a comparison covers.
type scope struct {
	rows   bool
	tables []string // nil: the whole database
}

// side is one server's connection: one session, so that its time_zone and
// sql_mode hold for every query.
type side struct {
	name string
	srv  *Server
	conn *sql.Conn
}

type comparison struct {
	t        testing.TB
	ctx      context.Context
	db       string
	scope    scope
	src, dst *side
	diffs    []string
	omitted  int
}

func compare(t testing.TB, src, dst *Server, db string, sc scope) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	c := &comparison{t: t, ctx: ctx, db: db, scope: sc}
	c.src = c.open("source", src)
	defer c.src.conn.Close()
	c.dst = c.open("target", dst)
	defer c.dst.conn.Close()

	if c.database() {
		views, tables := c.tables()
		for _, v := range views {
			c.showCreate("view", v, "SHOW CREATE VIEW "+c.qualified(v))
		}
		c.triggers()
		if sc.tables == nil {
			c.routines()
			c.events()
		}
		if sc.rows {
			for _, table := range tables {
				c.rows(table)
			}
		}
	}
	if len(c.diffs) > 0 {
		if c.omitted > 0 {
			c.diffs = append(c.diffs, fmt.Sprintf("... and %d more differences", c.omitted))
		}
		t.Errorf("testdb: database `%s` differs between the source %s and the target %s:\n  %s",
			db, src.addr(), dst.addr(), strings.Join(c.diffs, "\n  "))
	}
}

func (c *comparison) open(name string, s *Server) *side {
	c.t.Helper()
	pool, err := s.rootDB()
	if err != nil {
		c.t.Fatalf("testdb: %v", err)
	}
	conn, err := pool.Conn(c.ctx)
	if err != nil {
		c.t.Fatalf("testdb: %s %s: %v", name, s.addr(), err)
	}
	// TIMESTAMPs must read the same instant on both sides, whatever each
	// server's zone; and an empty sql_mode prints SHOW CREATE canonically.
	if _, err := conn.ExecContext(c.ctx, "SET time_zone = '+00:00', sql_mode = ''"); err != nil {
		conn.Close()
		c.t.Fatalf("testdb: %s %s: %v", name, s.addr(), err)
	}
	return &side{name: name, srv: s, conn: conn}
}

func (c *comparison) add(format string, args ...any) {
	if len(c.diffs) >= maxDiffs {
		c.omitted++
		return
	}
	c.diffs = append(c.diffs, fmt.Sprintf(format, args...))
}

func (c *comparison) fatal(s *side, q string, err error) {
	c.t.Helper()
	c.t.Fatalf("testdb: %s %s: %s: %v", s.name, s.srv.addr(), clip(q), err)
}

func (c *comparison) qualified(name string) string { return quoteIdent(c.db) + "." + quoteIdent(name) }

// query reads a small result (a catalogue listing, a SHOW) whole; NULL
// reads as "NULL".
func (c *comparison) query(s *side, q string, args ...any) (cols []string, out [][]string) {
	c.t.Helper()
	rows, err := s.conn.QueryContext(c.ctx, q, args...)
	if err != nil {
		c.fatal(s, q, err)
	}
	defer rows.Close()
	if cols, err = rows.Columns(); err != nil {
		c.fatal(s, q, err)
	}
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			c.fatal(s, q, err)
		}
		row := make([]string, len(cols))
		for i, v := range vals {
			row[i] = cmp(v.Valid, v.String, "NULL")
		}
		out = append(out, row)
	}
	if err := rows.Err(); err != nil {
		c.fatal(s, q, err)
	}
	return cols, out
}

// names lists the first column of q's rows on s, sorted.
func (c *comparison) names(s *side, q string, args ...any) []string {
	_, rows := c.query(s, q, args...)
	out := make([]string, len(rows))
	for i, r := range rows {
		out[i] = r[0]
	}
	slices.Sort(out)
	return out
}

// common reports the names found on one side only and returns the others.
func (c *comparison) common(kind string, src, dst []string) []string {
	var both []string
	for _, n := range src {
		if slices.Contains(dst, n) {
			both = append(both, n)
		} else {
			c.add("%s `%s` is missing on the target", kind, n)
		}
	}
	for _, n := range dst {
		if !slices.Contains(src, n) {
			c.add("%s `%s` exists only on the target", kind, n)
		}
	}
	return both
}

// database compares SHOW CREATE DATABASE; false means the target has no
// such database and there is nothing more to compare.
func (c *comparison) database() bool {
	const q = "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?"
	if len(c.names(c.src, q, c.db)) == 0 {
		c.t.Fatalf("testdb: database `%s` does not exist on the source %s", c.db, c.src.srv.addr())
	}
	if len(c.names(c.dst, q, c.db)) == 0 {
		c.add("the database is missing on the target")
		return false
	}
	c.showCreate("database", c.db, "SHOW CREATE DATABASE "+quoteIdent(c.db))
	return true
}

// tables compares the listing and each table's SHOW CREATE TABLE, and
// returns the views and the tables whose rows are to be compared.
func (c *comparison) tables() (views, data []string) {
	const q = "SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?"
	kinds := func(s *side) map[string]string {
		_, rows := c.query(s, q, c.db)
		m := make(map[string]string, len(rows))
		for _, r := range rows {
			m[r[0]] = r[1]
		}
		return m
	}
	src, dst := kinds(c.src), kinds(c.dst)
	var names []string
	if c.scope.tables != nil {
		for _, n := range c.scope.tables {
			if src[n] == "" {
				c.t.Fatalf("testdb: table `%s`.`%s` does not exist on the source", c.db, n)
			}
		}
		names = c.scope.tables
	} else {
		for n := range src {
			names = append(names, n)
		}
		for n, k := range dst {
			if src[n] == "" {
				c.add("%s `%s` exists only on the target", strings.ToLower(k), n)
			}
		}
	}
	slices.Sort(names)
	for _, n := range names {
		switch k := src[n]; {
		case dst[n] == "":
			c.add("%s `%s` is missing on the target", strings.ToLower(k), n)
		case dst[n] != k:
			c.add("`%s` is a %s on the source but a %s on the target", n, k, dst[n])
		case k == "VIEW":
			views = append(views, n)
		default:
			c.showCreate("table", n, "SHOW CREATE TABLE "+c.qualified(n))
			if k == "BASE TABLE" || k == "SYSTEM VERSIONED" {
				data = append(data, n)
			}
		}
	}
	return views, data
}

// showCreate compares the one row of a SHOW CREATE statement: the
// statement text line by line, with the DEFINER clause of views, routines
// and events left out, and the session settings stored with the object.
func (c *comparison) showCreate(kind, name, stmt string) {
	cols, a := c.query(c.src, stmt)
	_, b := c.query(c.dst, stmt)
	if len(a) != 1 || len(b) != 1 {
		c.add("%s `%s`: %s returned %d rows on the source, %d on the target", kind, name, stmt, len(a), len(b))
		return
	}
	for i := 1; i < len(cols); i++ {
		sv, dv := a[0][i], b[0][i]
		if !strings.HasPrefix(cols[i], "Create ") {
			if sv != dv {
				c.add("%s `%s`: %s is %q on the source, %q on the target", kind, name, cols[i], sv, dv)
			}
			continue
		}
		if kind != "table" && kind != "database" {
			var sd, dd string
			sv, sd = stripDefiner(sv)
			dv, dd = stripDefiner(dv)
			if sd != dd {
				c.t.Logf("testdb: %s `%s` is defined by %s on the source and %s on the target (allowed)", kind, name, sd, dd)
			}
		}
		if sv != dv {
			c.add("%s `%s`: SHOW %s differs %s", kind, name, strings.ToUpper(cols[i]), lineDiff(sv, dv))
		}
	}
}

var definerRE = regexp.MustCompile("DEFINER\\s*=\\s*(?:`(?:[^`]|``)*`|'(?:[^']|'')*'|[^\\s@]+)(?:@(?:`(?:[^`]|``)*`|'(?:[^']|'')*'|\\S+))?\\s*")

// stripDefiner returns stmt without its DEFINER clause, and the clause.
func stripDefiner(stmt string) (rest, definer string) {
	loc := definerRE.FindStringIndex(stmt)
	if loc == nil {
		return stmt, "no definer"
	}
	return stmt[:loc[0]] + stmt[loc[1]:], strings.TrimSpace(stmt[loc[0]:loc[1]])
}

// triggers compares information_schema.TRIGGERS, of the compared tables
// only when the comparison is limited to some.
func (c *comparison) triggers() {
	const q = "SELECT TRIGGER_NAME, EVENT_OBJECT_TABLE, ACTION_TIMING, EVENT_MANIPULATION, ACTION_ORDER, " +
		"ACTION_ORIENTATION, ACTION_STATEMENT, SQL_MODE, CHARACTER_SET_CLIENT, COLLATION_CONNECTION, " +
		"DATABASE_COLLATION, DEFINER FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ?"
	byName := func(s *side) ([]string, map[string][]string) {
		cols, rows := c.query(s, q, c.db)
		m := make(map[string][]string)
		for _, r := range rows {
			if c.scope.tables == nil || slices.Contains(c.scope.tables, r[1]) {
				m[r[0]] = r
			}
		}
		return cols, m
	}
	cols, src := byName(c.src)
	_, dst := byName(c.dst)
	for _, n := range c.common("trigger", sortedKeys(src), sortedKeys(dst)) {
		for i := 1; i < len(cols); i++ {
			sv, dv := src[n][i], dst[n][i]
			switch {
			case sv == dv:
			case cols[i] == "DEFINER":
				c.t.Logf("testdb: trigger `%s` is defined by %s on the source and %s on the target (allowed)", n, sv, dv)
			default:
				x, y := around(sv, dv)
				c.add("trigger `%s`: %s is %s on the source, %s on the target", n, cols[i], x, y)
			}
		}
	}
}

func (c *comparison) routines() {
	for _, typ := range []string{"PROCEDURE", "FUNCTION", "PACKAGE", "PACKAGE BODY"} {
		const q = "SELECT ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ? AND ROUTINE_TYPE = ?"
		kind := strings.ToLower(typ)
		for _, n := range c.common(kind, c.names(c.src, q, c.db, typ), c.names(c.dst, q, c.db, typ)) {
			c.showCreate(kind, n, "SHOW CREATE "+typ+" "+c.qualified(n))
		}
	}
}

func (c *comparison) events() {
	const q = "SELECT EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ?"
	for _, n := range c.common("event", c.names(c.src, q, c.db), c.names(c.dst, q, c.db)) {
		c.showCreate("event", n, "SHOW CREATE EVENT "+c.qualified(n))
	}
}

// lineDiff shows where two statements part: the first line that differs,
// from a little before its first differing character.
func lineDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	p := 0
	for p < len(al) && p < len(bl) && al[p] == bl[p] {
		p++
	}
	var x, y string // "" where a statement has no more lines
	if p < len(al) {
		x = al[p]
	}
	if p < len(bl) {
		y = bl[p]
	}
	x, y = around(x, y)
	return fmt.Sprintf("at line %d:\n      source: %s\n      target: %s", p+1, x, y)
}

// around quotes a and b from a little before their first difference, so
// that a change deep in a long statement is visible.
func around(a, b string) (string, string) {
	p := 0
	for p < len(a) && p < len(b) && a[p] == b[p] {
		p++
	}
	start := max(0, p-clipLen/3)
	if i := strings.LastIndexAny(a[:start], " ,("); i >= 0 && start-i < clipLen/4 {
		start = i + 1 // at a word, easier to read
	}
	for start > 0 && !utf8.RuneStart(a[start]) {
		start--
	}
	cut := func(s string) string { return cmp(start > 0, "...", "") + strconv.Quote(clip(s[start:])) }
	return cut(a), cut(b)
}

// clip shortens s to about clipLen bytes, on a rune boundary.
func clip(s string) string {
	if len(s) <= clipLen {
		return s
	}
	n := clipLen
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}

func quoteIdent(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

func cmp[T any](cond bool, a, b T) T {
	if cond {
		return a
	}
	return b
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// hexBytes decodes a HEX() result; BIT values may have an odd length.
func hexBytes(h string) []byte {
	if len(h)%2 == 1 {
		h = "0" + h
	}
	b, _ := hex.DecodeString(h)
	return b
}

// column is what the row comparison needs to know of a column.
type column struct{ name, dataType, columnType, charset, nullable string }

// expr selects a column so that equal stored values, and only those, read
// the same on both servers: 'N' for NULL, else 'V' and a text that keeps
// every bit of the value.
func (col column) expr() string {
	q := quoteIdent(col.name)
	v := "HEX(" + q + ")" // the stored bytes of strings, binaries, BIT, JSON, geometry
	switch col.dataType {
	case "tinyint", "smallint", "mediumint", "int", "bigint", "decimal", "double",
		"date", "datetime", "timestamp", "time", "year":
		// Exact text; MariaDB prints doubles round-trip exact.
		v = "CAST(" + q + " AS CHAR)"
	case "float":
		// A FLOAT prints with 6 digits; as a DOUBLE it prints exactly.
		v = "CAST(CAST(" + q + " AS DOUBLE) AS CHAR)"
	case "enum", "set":
		// The index too: an invalid ENUM value reads '' like a declared ''.
		v = "CONCAT(" + q + "+0, ':', HEX(" + q + "))"
	}
	return "IF(" + q + " IS NULL, 'N', CONCAT('V', " + v + "))"
}

// show renders a value read through expr for a message.
func (col column) show(v string) string {
	if v == "N" {
		return "NULL"
	}
	v = v[1:]
	switch col.dataType {
	case "bit":
		return "0x" + v
	case "enum", "set":
		idx, h, _ := strings.Cut(v, ":")
		return showBytes(hexBytes(h), col.charset) + " (#" + idx + ")"
	}
	if !strings.Contains(col.expr(), "HEX(") {
		return v
	}
	return showBytes(hexBytes(v), col.charset)
}

// showBytes prints text as text and anything else (binary, latin1 high
// bytes) as the bytes it is.
func showBytes(b []byte, charset string) string {
	if charset != "" && charset != "binary" && utf8.Valid(b) {
		return strconv.Quote(clip(string(b)))
	}
	if len(b) > clipLen/2 {
		return fmt.Sprintf("x'%X...' (%d bytes)", b[:clipLen/2], len(b))
	}
	return fmt.Sprintf("x'%X'", b)
}

// diff says how two values of col differ; for long byte strings, where.
func (col column) diff(a, b string) string {
	if a != "N" && b != "N" && strings.HasPrefix(col.expr(), "IF") && col.show(a)[0] == 'x' {
		x, y := hexBytes(a[1:]), hexBytes(b[1:])
		if len(x) > clipLen/2 || len(y) > clipLen/2 {
			p := 0
			for p < len(x) && p < len(y) && x[p] == y[p] {
				p++
			}
			at := func(v []byte) string { return fmt.Sprintf("x'%X'", v[p:min(len(v), p+8)]) }
			return fmt.Sprintf("%d bytes on the source, %d on the target, first difference at byte %d: %s vs %s",
				len(x), len(y), p, at(x), at(y))
		}
	}
	return col.show(a) + " on the source, " + col.show(b) + " on the target"
}

// tableDiff collects the rows of one table that have no identical twin on
// the other side: counts, and the first few for the report.
type tableDiff struct {
	table            string
	cols             []column
	key              []int // a primary or NOT NULL unique key, to name rows by
	srcOnly, dstOnly int
	srcEx, dstEx     [][]string
	counts           []string
}

// rows compares the rows of table as two streams sorted by a hash of each
// row. A hash, not the values: ORDER BY looks at max_sort_length bytes
// only, so long values would sort differently on two servers. Identical
// rows hash alike, so duplicates meet and are counted.
func (c *comparison) rows(table string) {
	const colQ = "SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, IFNULL(CHARACTER_SET_NAME, ''), IS_NULLABLE " +
		"FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION"
	columns := func(s *side) (cols []column) {
		_, rows := c.query(s, colQ, c.db, table)
		for _, r := range rows {
			cols = append(cols, column{r[0], r[1], r[2], r[3], r[4]})
		}
		return cols
	}
	d := &tableDiff{table: table, cols: columns(c.src)}
	if !slices.Equal(d.cols, columns(c.dst)) {
		c.add("table `%s`: rows not compared, the columns differ", table)
		return
	}
	d.key = c.key(d)
	q := d.selectSQL(c.qualified(table)) + " ORDER BY 1"
	a, b := c.cursor(c.src, q), c.cursor(c.dst, q)
	defer a.rows.Close()
	defer b.rows.Close()
	for a.row != nil || b.row != nil {
		switch {
		case b.row == nil || a.row != nil && a.row[0] < b.row[0]:
			d.only(&d.srcOnly, &d.srcEx, a.row, 1)
			c.next(a)
		case a.row == nil || b.row[0] < a.row[0]:
			d.only(&d.dstOnly, &d.dstEx, b.row, 1)
			c.next(b)
		default:
			var ga, gb [][]string
			for h := a.row[0]; a.row != nil && a.row[0] == h; c.next(a) {
				ga = append(ga, a.row)
			}
			for h := ga[0][0]; b.row != nil && b.row[0] == h; c.next(b) {
				gb = append(gb, b.row)
			}
			d.group(ga, gb)
		}
	}
	c.report(d, a.n, b.n)
}

func (d *tableDiff) selectSQL(from string) string {
	exprs, hashes := make([]string, len(d.cols)), make([]string, len(d.cols))
	for i, col := range d.cols {
		exprs[i] = col.expr()
		hashes[i] = "MD5(" + exprs[i] + ")"
	}
	return "SELECT UNHEX(MD5(CONCAT_WS(',', " + strings.Join(hashes, ", ") + "))), " +
		strings.Join(exprs, ", ") + " FROM " + from
}

func (d *tableDiff) only(count *int, examples *[][]string, row []string, n int) {
	*count += n
	if len(*examples) < maxExamples {
		*examples = append(*examples, row)
	}
}

// group matches rows of equal hash, counting each distinct row per side.
func (d *tableDiff) group(a, b [][]string) {
	type tally struct {
		row      []string
		src, dst int
	}
	var order []*tally
	seen := make(map[string]*tally)
	count := func(rows [][]string, dst bool) {
		for _, r := range rows {
			k := strings.Join(r[1:], ",") // values hold no commas
			x := seen[k]
			if x == nil {
				x = &tally{row: r}
				seen[k] = x
				order = append(order, x)
			}
			*cmp(dst, &x.dst, &x.src)++
		}
	}
	count(a, false)
	count(b, true)
	for _, x := range order {
		switch {
		case x.src == x.dst:
		case x.dst == 0:
			d.only(&d.srcOnly, &d.srcEx, x.row, x.src)
		case x.src == 0:
			d.only(&d.dstOnly, &d.dstEx, x.row, x.dst)
		default:
			d.srcOnly += max(0, x.src-x.dst)
			d.dstOnly += max(0, x.dst-x.src)
			if len(d.counts) < maxExamples {
				d.counts = append(d.counts, fmt.Sprintf("table `%s`: row %s appears %d times on the source, %d on the target",
					d.table, d.describe(x.row, nil), x.src, x.dst))
			}
		}
	}
}

// key picks the columns that name a row: the primary key, else the first
// unique key of NOT NULL columns; nil if there is none.
func (c *comparison) key(d *tableDiff) []int {
	const q = "SELECT INDEX_NAME, COLUMN_NAME FROM information_schema.STATISTICS " +
		"WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND NON_UNIQUE = 0 AND SUB_PART IS NULL " +
		"ORDER BY INDEX_NAME <> 'PRIMARY', INDEX_NAME, SEQ_IN_INDEX"
	_, rows := c.query(c.src, q, c.db, d.table)
	var key []int
	for i, r := range rows {
		pos := slices.IndexFunc(d.cols, func(col column) bool { return col.name == r[1] })
		if pos < 0 || d.cols[pos].nullable == "YES" {
			key = []int{-1} // not usable: skip the rest of this index
		} else if key == nil || key[0] >= 0 {
			key = append(key, pos)
		}
		if i == len(rows)-1 || rows[i+1][0] != r[0] {
			if len(key) > 0 && key[0] >= 0 {
				return key
			}
			key = nil
		}
	}
	return nil
}

// describe names a row by its key, or by its first columns if it has none.
func (d *tableDiff) describe(row []string, key []int) string {
	if key == nil {
		for i := range min(len(d.cols), 6) {
			key = append(key, i)
		}
	}
	parts := make([]string, len(key))
	for i, k := range key {
		parts[i] = quoteIdent(d.cols[k].name) + "=" + d.cols[k].show(row[k+1])
	}
	return "(" + strings.Join(parts, ", ") + ")"
}

// report adds the table's differences. A row without an identical twin is
// looked up by its key on the other side, to tell a changed row (which
// columns differ) from a missing one.
func (c *comparison) report(d *tableDiff, srcRows, dstRows int) {
	if srcRows != dstRows {
		c.add("table `%s`: %d rows on the source, %d on the target", d.table, srcRows, dstRows)
	}
	if d.srcOnly+d.dstOnly == 0 {
		return
	}
	c.add("table `%s`: rows without an identical twin on the other side: %d on the source, %d on the target",
		d.table, d.srcOnly, d.dstOnly)
	for _, m := range d.counts {
		c.add("%s", m)
	}
	named := make(map[string]bool)
	for i, examples := range [][][]string{d.srcEx, d.dstEx} {
		here, there := cmp(i == 0, "source", "target"), cmp(i == 0, c.dst, c.src)
		for _, row := range examples {
			if d.key == nil {
				c.add("table `%s`: row %s only on the %s", d.table, d.describe(row, nil), here)
				continue
			}
			name := d.describe(row, d.key)
			if named[name] {
				continue
			}
			named[name] = true
			other := c.lookup(there, d, row)
			if other == nil {
				c.add("table `%s`: row %s only on the %s: %s", d.table, name, here, d.describe(row, nil))
				continue
			}
			src, dst := cmp(i == 0, row, other), cmp(i == 0, other, row)
			for j, col := range d.cols {
				if src[j+1] != dst[j+1] {
					c.add("table `%s`: row %s: column %s is %s", d.table, name, quoteIdent(col.name), col.diff(src[j+1], dst[j+1]))
				}
			}
		}
	}
}

// lookup finds the row with row's key on s, or nil.
func (c *comparison) lookup(s *side, d *tableDiff, row []string) []string {
	var where []string
	var args []any
	for _, k := range d.key {
		where = append(where, "CAST("+d.cols[k].expr()+" AS BINARY) = ?")
		args = append(args, row[k+1])
	}
	_, rows := c.query(s, d.selectSQL(c.qualified(d.table))+" WHERE "+strings.Join(where, " AND ")+" LIMIT 1", args...)
	if len(rows) == 0 {
		return nil
	}
	return rows[0]
}

// cursor streams one side's rows; row is the current one (the hash, then
// one value per column), nil after the last.
type cursor struct {
	s    *side
	q    string
	rows *sql.Rows
	raw  []sql.RawBytes
	ptrs []any
	row  []string
	n    int
}

func (c *comparison) cursor(s *side, q string) *cursor {
	rows, err := s.conn.QueryContext(c.ctx, q)
	if err != nil {
		c.fatal(s, q, err)
	}
	cols, err := rows.Columns()
	if err != nil {
		rows.Close()
		c.fatal(s, q, err)
	}
	cur := &cursor{s: s, q: q, rows: rows, raw: make([]sql.RawBytes, len(cols)), ptrs: make([]any, len(cols))}
	for i := range cur.raw {
		cur.ptrs[i] = &cur.raw[i]
	}
	c.next(cur)
	return cur
}

func (c *comparison) next(cur *cursor) {
	if !cur.rows.Next() {
		if err := cur.rows.Err(); err != nil {
			c.fatal(cur.s, cur.q, err)
		}
		cur.row = nil
		return
	}
	if err := cur.rows.Scan(cur.ptrs...); err != nil {
		c.fatal(cur.s, cur.q, err)
	}
	cur.n++
	cur.row = make([]string, len(cur.raw))
	for i, v := range cur.raw {
		if v == nil {
			// Only a value longer than max_allowed_packet, as HEX()
			// doubles it, reads as NULL here.
			c.t.Fatalf("testdb: %s %s: a value is too long to compare (max_allowed_packet): %s",
				cur.s.name, cur.s.srv.addr(), clip(cur.q))
		}
		cur.row[i] = string(v)
	}
}
