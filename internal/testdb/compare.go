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

// The Compare functions prove a migration faithful: the target must hold
// what the source holds, structure and rows, byte for byte. They read both
// servers as root and fail the test with the first few differences, each
// naming the object, the column and the row. Definers alone may differ (a
// migration may run as an account the source never had): they are logged.

// How much is shown: enough to see what went wrong without drowning the
// log when a whole table is off.
const (
	maxDiffs    = 40
	maxExamples = 5
	clipLen     = 80
)

// CompareDatabase fails t unless db is identical on src and dst: SHOW
// CREATE DATABASE, every table's SHOW CREATE TABLE and rows, views,
// triggers, routines and events.
func CompareDatabase(t testing.TB, src, dst *Server, db string) {
	t.Helper()
	compare(t, src, dst, db, true, nil)
}

// CompareDatabases runs CompareDatabase on each of dbs.
func CompareDatabases(t testing.TB, src, dst *Server, dbs ...string) {
	t.Helper()
	for _, db := range dbs {
		compare(t, src, dst, db, true, nil)
	}
}

// CompareSchema is CompareDatabase without the rows, for structure-only
// migrations.
func CompareSchema(t testing.TB, src, dst *Server, db string) {
	t.Helper()
	compare(t, src, dst, db, false, nil)
}

// CompareTables compares SHOW CREATE DATABASE and the named tables only:
// their structure, rows and triggers, for migrations of selected tables.
func CompareTables(t testing.TB, src, dst *Server, db string, tables ...string) {
	t.Helper()
	if len(tables) == 0 {
		t.Fatalf("testdb: CompareTables needs at least one table")
	}
	compare(t, src, dst, db, true, tables)
}

// Object is a named thing in a database. Kind is information_schema's
// TABLE_TYPE for tables and views (BASE TABLE, VIEW, ...), ROUTINE_TYPE for
// routines (PROCEDURE, FUNCTION), or TRIGGER or EVENT.
type Object struct {
	Kind, Name string
	// Table is the table a trigger belongs to, the name itself for tables
	// and views, "" for routines and events.
	Table string
}

// Objects lists what db holds on s, sorted by kind and name.
func Objects(t testing.TB, s *Server, db string) []Object {
	t.Helper()
	c := &comparison{t: t, ctx: context.Background(), db: db}
	sd := c.open("server", s)
	defer sd.conn.Close()
	return c.objects(sd)
}

// CompareAbsent fails t if any of the named objects (tables, views,
// routines, triggers or events) exists in db on dst, or, with no names, if
// db itself exists there.
func CompareAbsent(t testing.TB, dst *Server, db string, names ...string) {
	t.Helper()
	c := &comparison{t: t, ctx: context.Background(), db: db}
	sd := c.open("target", dst)
	defer sd.conn.Close()
	if len(names) == 0 {
		if c.exists(sd) {
			t.Errorf("testdb: database `%s` exists on the target %s; it should not", db, dst.addr())
		}
		return
	}
	var found []string
	for _, o := range c.objects(sd) {
		if slices.Contains(names, o.Name) {
			found = append(found, fmt.Sprintf("%s `%s`", strings.ToLower(o.Kind), o.Name))
		}
	}
	if len(found) > 0 {
		t.Errorf("testdb: these should not exist in `%s` on the target %s: %s", db, dst.addr(), strings.Join(found, ", "))
	}
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
	tables   []string // nil: the whole database
	src, dst *side
	diffs    []string
	omitted  int
}

func compare(t testing.TB, src, dst *Server, db string, rows bool, tables []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	c := &comparison{t: t, ctx: ctx, db: db, tables: tables}
	c.src = c.open("source", src)
	defer c.src.conn.Close()
	c.dst = c.open("target", dst)
	defer c.dst.conn.Close()

	if !c.exists(c.src) {
		t.Fatalf("testdb: database `%s` does not exist on the source %s", db, src.addr())
	}
	if !c.exists(c.dst) {
		c.add("the database is missing on the target")
	} else {
		c.showCreate("database", db, "SHOW CREATE DATABASE "+quoteIdent(db))
		var data []string
		for _, o := range c.common() {
			stmt := "SHOW CREATE " + o.Kind + " " + c.qualified(o.Name)
			switch o.Kind {
			case "TRIGGER": // compared from information_schema, with the order
			case "BASE TABLE", "SYSTEM VERSIONED", "SEQUENCE":
				c.showCreate("table", o.Name, "SHOW CREATE TABLE "+c.qualified(o.Name))
				if rows && o.Kind != "SEQUENCE" {
					data = append(data, o.Name)
				}
			default: // VIEW, PROCEDURE, FUNCTION, EVENT, PACKAGE, PACKAGE BODY
				c.showCreate(strings.ToLower(o.Kind), o.Name, stmt)
			}
		}
		c.triggers()
		for _, table := range data {
			c.rows(table)
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
		vals, ptrs := make([]sql.NullString, len(cols)), make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			c.fatal(s, q, err)
		}
		row := make([]string, len(cols))
		for i, v := range vals {
			row[i] = pick(v.Valid, v.String, "NULL")
		}
		out = append(out, row)
	}
	if err := rows.Err(); err != nil {
		c.fatal(s, q, err)
	}
	return cols, out
}

func (c *comparison) exists(s *side) bool {
	_, rows := c.query(s, "SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = ?", c.db)
	return len(rows) > 0
}

// objects lists db on s: everything, or the compared tables and their
// triggers.
func (c *comparison) objects(s *side) []Object {
	const q = "SELECT TABLE_TYPE, TABLE_NAME, TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? " +
		"UNION ALL SELECT ROUTINE_TYPE, ROUTINE_NAME, '' FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ? " +
		"UNION ALL SELECT 'TRIGGER', TRIGGER_NAME, EVENT_OBJECT_TABLE FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ? " +
		"UNION ALL SELECT 'EVENT', EVENT_NAME, '' FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ?"
	_, rows := c.query(s, q, c.db, c.db, c.db, c.db)
	var out []Object
	for _, r := range rows {
		if c.tables == nil || slices.Contains(c.tables, r[2]) {
			out = append(out, Object{r[0], r[1], r[2]})
		}
	}
	slices.SortFunc(out, func(a, b Object) int { return strings.Compare(a.Kind+"\x00"+a.Name, b.Kind+"\x00"+b.Name) })
	return out
}

// common reports the objects found on one side only, and returns those on
// both.
func (c *comparison) common() []Object {
	src, dst := c.objects(c.src), c.objects(c.dst)
	if c.tables != nil {
		for _, n := range c.tables {
			if !slices.ContainsFunc(src, func(o Object) bool { return o.Name == n }) {
				c.t.Fatalf("testdb: table `%s`.`%s` does not exist on the source", c.db, n)
			}
		}
	}
	var both []Object
	for _, o := range src {
		if slices.Contains(dst, o) {
			both = append(both, o)
		} else {
			c.add("%s `%s` is missing on the target", strings.ToLower(o.Kind), o.Name)
		}
	}
	for _, o := range dst {
		if !slices.Contains(src, o) {
			c.add("%s `%s` exists only on the target", strings.ToLower(o.Kind), o.Name)
		}
	}
	return both
}

// showCreate compares the one row of a SHOW CREATE statement: the
// statement, with the DEFINER clause left out, and the session settings
// stored with the object.
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
		var sd, dd string
		sv, sd = stripDefiner(sv)
		dv, dd = stripDefiner(dv)
		if sd != dd {
			c.t.Logf("testdb: %s `%s` is defined by %s on the source and %s on the target (allowed)", kind, name, sd, dd)
		}
		if sv != dv {
			c.add("%s `%s`: SHOW %s differs %s", kind, name, strings.ToUpper(cols[i]), lineDiff(sv, dv))
		}
	}
}

var definerRE = regexp.MustCompile("^(CREATE (?:ALGORITHM=\\w+ )?)DEFINER=(`(?:[^`]|``)*`(?:@`(?:[^`]|``)*`)?) ")

// stripDefiner returns stmt without its DEFINER clause, and the definer.
// Only the clause SHOW CREATE puts after CREATE matches, never a string in
// a body.
func stripDefiner(stmt string) (rest, definer string) {
	m := definerRE.FindStringSubmatchIndex(stmt)
	if m == nil {
		return stmt, "no definer"
	}
	return stmt[:m[3]] + stmt[m[1]:], stmt[m[4]:m[5]]
}

// triggers compares information_schema.TRIGGERS, which has the order of
// triggers of the same timing and event that SHOW CREATE TRIGGER lacks.
func (c *comparison) triggers() {
	const q = "SELECT TRIGGER_NAME, EVENT_OBJECT_TABLE, ACTION_TIMING, EVENT_MANIPULATION, ACTION_ORDER, " +
		"ACTION_ORIENTATION, ACTION_STATEMENT, SQL_MODE, CHARACTER_SET_CLIENT, COLLATION_CONNECTION, " +
		"DATABASE_COLLATION, DEFINER FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ? ORDER BY 1"
	cols, src := c.query(c.src, q, c.db)
	_, dst := c.query(c.dst, q, c.db)
	for _, s := range src {
		i := slices.IndexFunc(dst, func(d []string) bool { return d[0] == s[0] })
		if i < 0 || (c.tables != nil && !slices.Contains(c.tables, s[1])) {
			continue // reported missing by common, or not compared
		}
		for j, d := 1, dst[i]; j < len(cols); j++ {
			switch {
			case s[j] == d[j]:
			case cols[j] == "DEFINER":
				c.t.Logf("testdb: trigger `%s` is defined by %s on the source and %s on the target (allowed)", s[0], s[j], d[j])
			default:
				x, y := around(s[j], d[j])
				c.add("trigger `%s`: %s is %s on the source, %s on the target", s[0], cols[j], x, y)
			}
		}
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
	line := func(ls []string) string { // "" past the end
		if p < len(ls) {
			return ls[p]
		}
		return ""
	}
	x, y := around(line(al), line(bl))
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
	cut := func(s string) string { return pick(start > 0, "...", "") + strconv.Quote(clip(s[start:])) }
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

func pick[T any](cond bool, a, b T) T {
	if cond {
		return a
	}
	return b
}

// column is a column as the row comparison reads it.
type column struct{ name, dataType, columnType, charset string }

// hexed says whether expr reads col's values as the HEX() of their bytes.
func (col column) hexed() bool {
	switch col.dataType {
	case "tinyint", "smallint", "mediumint", "int", "bigint", "decimal", "float", "double",
		"date", "datetime", "timestamp", "time", "year", "enum", "set":
		return false
	}
	return true // strings, binaries, BIT, JSON, geometry: the stored bytes
}

// expr selects col so that equal stored values, and only those, read the
// same on both servers: 'N' for NULL, else 'V' and text keeping every bit.
func (col column) expr() string {
	q := quoteIdent(col.name)
	v := "HEX(" + q + ")"
	switch {
	case col.dataType == "float":
		// A FLOAT prints with 6 digits; as a DOUBLE, exactly.
		v = "CAST(CAST(" + q + " AS DOUBLE) AS CHAR)"
	case col.dataType == "enum" || col.dataType == "set":
		// The index too: an invalid ENUM value reads '' like a declared ''.
		v = "CONCAT(" + q + "+0, ':', HEX(" + q + "))"
	case !col.hexed():
		// Exact: MariaDB prints a DOUBLE round-trip exact, and TIMESTAMPs
		// in the session's UTC.
		v = "CAST(" + q + " AS CHAR)"
	}
	return "IF(" + q + " IS NULL, 'N', CONCAT('V', " + v + "))"
}

// show renders a value read through expr for a message: text as text, any
// other bytes (binary, latin1 high bytes) as hex.
func (col column) show(v string) string {
	if v == "N" {
		return "NULL"
	}
	v = v[1:]
	idx, h, enum := strings.Cut(v, ":")
	switch {
	case col.dataType == "bit":
		return "0x" + v
	case enum && (col.dataType == "enum" || col.dataType == "set"):
		return column{charset: col.charset}.show("V"+h) + " (#" + idx + ")"
	case !col.hexed():
		return v
	}
	b, _ := hex.DecodeString(v)
	if col.charset != "" && col.charset != "binary" && utf8.Valid(b) {
		return strconv.Quote(clip(string(b)))
	}
	if len(b) > clipLen/2 {
		return fmt.Sprintf("x'%X...' (%d bytes)", b[:clipLen/2], len(b))
	}
	return fmt.Sprintf("x'%X'", b)
}

// diff says how two values of col differ; for long values, where.
func (col column) diff(a, b string) string {
	if a != "N" && b != "N" && col.hexed() && col.dataType != "bit" && max(len(a), len(b)) > clipLen {
		x, _ := hex.DecodeString(a[1:])
		y, _ := hex.DecodeString(b[1:])
		p := 0
		for p < len(x) && p < len(y) && x[p] == y[p] {
			p++
		}
		at := func(v []byte) string { return fmt.Sprintf("x'%X'", v[p:min(len(v), p+8)]) }
		return fmt.Sprintf("%d bytes on the source, %d on the target, first difference at byte %d: %s vs %s",
			len(x), len(y), p, at(x), at(y))
	}
	return col.show(a) + " on the source, " + col.show(b) + " on the target"
}

// tableDiff collects the rows of one table without an identical twin on
// the other side: how many, and the first few for the report.
type tableDiff struct {
	table            string
	cols             []column
	key              []int // a primary or NOT NULL unique key, to name rows by
	srcOnly, dstOnly int
	srcEx, dstEx     [][]string
	counts           []string
}

// rows compares table as two streams of rows sorted by a hash of each row.
// A hash, not the values: ORDER BY reads only max_sort_length bytes of a
// value, so long ones would not sort alike on two servers. Identical rows
// hash alike, so duplicates meet and are counted.
func (c *comparison) rows(table string) {
	const q = "SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, IFNULL(CHARACTER_SET_NAME, '') " +
		"FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION"
	columns := func(s *side) (cols []column) {
		_, rows := c.query(s, q, c.db, table)
		for _, r := range rows {
			cols = append(cols, column{r[0], r[1], r[2], r[3]})
		}
		return cols
	}
	d := &tableDiff{table: table, cols: columns(c.src)}
	if !slices.Equal(d.cols, columns(c.dst)) {
		c.add("table `%s`: rows not compared, the columns differ", table)
		return
	}
	d.key = c.key(d)
	sel := d.selectSQL(c.qualified(table)) + " ORDER BY 1"
	a, b := c.cursor(c.src, sel), c.cursor(c.dst, sel)
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

// selectSQL reads the hash, then each column through expr. The hash is of
// the columns' hashes, so that no long value is copied into a longer one.
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

// group matches rows of one hash, counting each distinct row per side.
func (d *tableDiff) group(a, b [][]string) {
	type tally struct {
		row      []string
		src, dst int
	}
	var order []*tally
	seen := make(map[string]*tally)
	for i, r := range slices.Concat(a, b) {
		k := strings.Join(r[1:], ",") // values hold no commas
		x := seen[k]
		if x == nil {
			x = &tally{row: r}
			seen[k] = x
			order = append(order, x)
		}
		*pick(i < len(a), &x.src, &x.dst)++
	}
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
// unique key of whole NOT NULL columns; nil if there is none.
func (c *comparison) key(d *tableDiff) []int {
	const q = "SELECT INDEX_NAME, COLUMN_NAME, NULLABLE = 'YES' OR SUB_PART IS NOT NULL " +
		"FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND NON_UNIQUE = 0 " +
		"ORDER BY INDEX_NAME <> 'PRIMARY', INDEX_NAME, SEQ_IN_INDEX"
	_, rows := c.query(c.src, q, c.db, d.table)
	var key []int
	usable := true
	for i, r := range rows {
		pos := slices.IndexFunc(d.cols, func(col column) bool { return col.name == r[1] })
		usable = usable && pos >= 0 && r[2] == "0"
		key = append(key, pos)
		if i == len(rows)-1 || rows[i+1][0] != r[0] { // the index's last column
			if usable {
				return key
			}
			key, usable = nil, true
		}
	}
	return nil
}

// describe names a row by key, or by its first columns.
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
// looked up by its key on the other side, to tell a changed row (and which
// columns changed) from a missing one.
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
		here, there := pick(i == 0, "source", "target"), pick(i == 0, c.dst, c.src)
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
			src, dst := pick(i == 0, row, other), pick(i == 0, other, row)
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

// cursor streams one side's rows. row is the current one (the hash, then
// a value per column), nil after the last.
type cursor struct {
	s    *side
	q    string
	rows *sql.Rows
	raw  []sql.RawBytes
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
	cur := &cursor{s: s, q: q, rows: rows, raw: make([]sql.RawBytes, len(cols))}
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
	ptrs := make([]any, len(cur.raw))
	for i := range cur.raw {
		ptrs[i] = &cur.raw[i]
	}
	if err := cur.rows.Scan(ptrs...); err != nil {
		c.fatal(cur.s, cur.q, err)
	}
	cur.n++
	cur.row = make([]string, len(cur.raw))
	for i, v := range cur.raw {
		if v == nil {
			// expr is never NULL, unless HEX() made a value longer than
			// max_allowed_packet.
			c.t.Fatalf("testdb: %s %s: a value is too long to compare (max_allowed_packet): %s",
				cur.s.name, cur.s.srv.addr(), clip(cur.q))
		}
		cur.row[i] = string(v)
	}
}
