package mysql

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode"

	gmysql "github.com/go-sql-driver/mysql"
	"github.com/opendts/opendts/internal/engine"
)

// Statements that name several tables (DROP TABLE a, b; RENAME TABLE a TO
// b, c TO d) may name selected and unselected tables at once: the target
// gets the statement cut down to the selected ones, since it has only
// those.

var dropTablesDDL = regexp.MustCompile(`(?is)^\s*DROP\s+TABLES?\s+(?:IF\s+EXISTS\s+)?`)
var renameTablesDDL = regexp.MustCompile(`(?is)^\s*RENAME\s+TABLES?\s+(?:IF\s+EXISTS\s+)?`)
var waitClause = regexp.MustCompile(`(?is)^\s*(?:WAIT\s+\d+|NOWAIT)\b`)
var toKeyword = regexp.MustCompile(`(?is)^\s*TO\b`)

// tableName is a possibly qualified name as a statement spells it.
type tableName struct{ db, name string }

func (n tableName) String() string { return quoteIdent(n.db) + "." + quoteIdent(n.name) }

// multiTableDDL rewrites a DROP TABLE or RENAME TABLE for the target.
// handled is false for other statements (and for lists it cannot read,
// left to the one-table rules); stmt is "" when nothing of it concerns the
// job.
func multiTableDDL(q, schema string, selected func(db, name string) bool) (stmt string, handled bool, err error) {
	q = stripLeadingComments(q)
	if m := dropTablesDDL.FindStringIndex(q); m != nil {
		list, ok := parseNameList(q[m[1]:], schema, false)
		if !ok {
			return "", false, nil
		}
		var keep []tableName
		for _, n := range list {
			if selected(n.db, n.name) {
				keep = append(keep, n)
			}
		}
		switch {
		case len(keep) == 0:
			return "", true, nil
		case len(keep) == len(list):
			return q, true, nil
		}
		parts := make([]string, len(keep))
		for i, n := range keep {
			parts[i] = n.String()
		}
		return "DROP TABLE IF EXISTS " + strings.Join(parts, ", "), true, nil
	}
	if m := renameTablesDDL.FindStringIndex(q); m != nil {
		pairs, ok := parseNameList(q[m[1]:], schema, true)
		if !ok || len(pairs)%2 != 0 {
			return "", false, nil
		}
		// A name an earlier pair moved a replicated table to holds it now.
		movedIn := map[tableName]bool{}
		var keep []string
		for i := 0; i < len(pairs); i += 2 {
			from, to := pairs[i], pairs[i+1]
			switch {
			case selected(from.db, from.name) || movedIn[from]:
				delete(movedIn, from)
				movedIn[to] = true
				keep = append(keep, from.String()+" TO "+to.String())
			case selected(to.db, to.name):
				return "", true, fmt.Errorf("RENAME TABLE moved %s, which this job does not replicate, to %s, which it does: the target has no such table to rename. Select both names, or neither, and start the job again", from, to)
			}
		}
		switch {
		case len(keep) == 0:
			return "", true, nil
		case len(keep) == len(pairs)/2:
			return q, true, nil
		}
		return "RENAME TABLE " + strings.Join(keep, ", "), true, nil
	}
	return "", false, nil
}

// stripLeadingComments drops the comments in front of a statement. It
// slices past each one rather than rebuilding the rest of the statement,
// which made a statement of n comments take n² time.
func stripLeadingComments(q string) string {
	for {
		m := leadingComment.FindStringIndex(q)
		if m == nil {
			return q
		}
		q = q[m[1]:]
	}
}

// parseNameList reads "a, db.b, `c`" (pairs: "a TO b, c TO d") from the
// start of s.
func parseNameList(s, schema string, pairs bool) ([]tableName, bool) {
	var out []tableName
	for {
		n, rest, ok := parseTableName(s, schema)
		if !ok {
			return nil, false
		}
		out = append(out, n)
		s = rest
		if pairs {
			if m := waitClause.FindStringIndex(s); m != nil {
				s = s[m[1]:]
			}
			m := toKeyword.FindStringIndex(s)
			if m == nil {
				return nil, false
			}
			to, rest, ok := parseTableName(s[m[1]:], schema)
			if !ok {
				return nil, false
			}
			out = append(out, to)
			s = rest
		}
		t := strings.TrimLeftFunc(s, unicode.IsSpace)
		if !strings.HasPrefix(t, ",") {
			return out, true
		}
		s = t[1:]
	}
}

// parseTableName reads one possibly qualified, possibly quoted name.
func parseTableName(s, schema string) (tableName, string, bool) {
	first, rest, ok := parseIdent(s)
	if !ok {
		return tableName{}, s, false
	}
	if t := strings.TrimLeftFunc(rest, unicode.IsSpace); strings.HasPrefix(t, ".") {
		second, rest2, ok := parseIdent(t[1:])
		if !ok {
			return tableName{}, s, false
		}
		return tableName{first, second}, rest2, true
	}
	return tableName{schema, first}, rest, true
}

func parseIdent(s string) (string, string, bool) {
	s = strings.TrimLeftFunc(s, unicode.IsSpace)
	if strings.HasPrefix(s, "`") {
		return readQuotedIdent(s)
	}
	// The characters of ddlTarget's [\p{L}\p{N}_$]: both must end a bare
	// name at the same place, or "DROP TABLE t², u" drops t to one and t²
	// to the other.
	end := strings.IndexFunc(s, func(r rune) bool {
		return !(unicode.IsLetter(r) || unicode.IsNumber(r) || r == '_' || r == '$')
	})
	if end == -1 {
		end = len(s)
	}
	if end == 0 {
		return "", s, false
	}
	return s[:end], s[end:], true
}

var tableDDL = regexp.MustCompile("(?is)^\\s*(?:CREATE(?:\\s+OR\\s+REPLACE)?|ALTER|DROP|RENAME|TRUNCATE)\\s+(?:TEMPORARY\\s+)?(?:ONLINE\\s+|IGNORE\\s+)?TABLE\\s+(?:IF\\s+(?:NOT\\s+)?EXISTS\\s+)?((?:`(?:[^`]|``)+`|[\\p{L}\\p{N}_$]+)(?:\\s*\\.\\s*(?:`(?:[^`]|``)+`|[\\p{L}\\p{N}_$]+))?)")
var truncateDDL = regexp.MustCompile("(?is)^\\s*TRUNCATE\\s+((?:`(?:[^`]|``)+`|[\\p{L}\\p{N}_$]+)(?:\\s*\\.\\s*(?:`(?:[^`]|``)+`|[\\p{L}\\p{N}_$]+))?)")
var indexDDL = regexp.MustCompile("(?is)^\\s*(?:CREATE(?:\\s+OR\\s+REPLACE)?\\s+(?:UNIQUE\\s+|FULLTEXT\\s+|SPATIAL\\s+)?INDEX|DROP\\s+INDEX)\\s+(?:IF\\s+(?:NOT\\s+)?EXISTS\\s+)?(?:`(?:[^`]|``)+`|[\\p{L}\\p{N}_$]+)\\s+ON\\s+((?:`(?:[^`]|``)+`|[\\p{L}\\p{N}_$]+)(?:\\s*\\.\\s*(?:`(?:[^`]|``)+`|[\\p{L}\\p{N}_$]+))?)")

// (?s): a comment in front of a statement may span lines.
var leadingComment = regexp.MustCompile(`(?s)^\s*/\*.*?\*/`)

// ddlTarget names the table a table or index statement is about, after
// any leading comments, or reports that it is about none.
func ddlTarget(q string) (string, bool) {
	q = stripLeadingComments(q)
	for _, re := range []*regexp.Regexp{tableDDL, truncateDDL, indexDDL} {
		if m := re.FindStringSubmatch(q); m != nil {
			return m[1], true
		}
	}
	return "", false
}

var createTableDDL = regexp.MustCompile(`(?is)^\s*(?:/\*.*?\*/\s*)*CREATE\s+(?:OR\s+REPLACE\s+)?(?:TEMPORARY\s+)?TABLE\b`)

var databaseDDL = regexp.MustCompile("(?is)^\\s*(?:CREATE|DROP)\\s+(?:DATABASE|SCHEMA)\\b")

func unquote(ident string) string {
	ident = strings.TrimSpace(ident)
	if strings.HasPrefix(ident, "`") && strings.HasSuffix(ident, "`") {
		return strings.ReplaceAll(ident[1:len(ident)-1], "``", "`")
	}
	return ident
}

// splitQualified reads the name ddlTarget found into database and table.
// It reads it as a sequence of identifiers, not by searching for "`.":
// quoted names hold dots and doubled back-quotes, and the dot may have
// spaces around it ("`d` . `t`").
func splitQualified(name, defaultDB string) (string, string) {
	n, rest, ok := parseTableName(name, defaultDB)
	if !ok || strings.TrimSpace(rest) != "" {
		return defaultDB, unquote(name)
	}
	return n.db, n.name
}

// ddl applies a statement on selected tables (CREATE, ALTER, DROP, RENAME,
// TRUNCATE TABLE) or, in whole-instance jobs, databases, in binlog order;
// others are left out and logged. A statement the target refuses fails
// the job rather than let the schemas drift apart.
func (inc *incremental) ddl(ctx context.Context, schema, q string, next position, inTxn bool) error {
	m := inc.m
	apply := false
	// A table copied from a later snapshot than this statement holds the
	// rows after it: a TRUNCATE or DROP TABLE from before would destroy
	// them (its CREATE again finds the table there). Other DDL is applied:
	// the table on the target was created before the first snapshot.
	selected := m.selected
	if bare := stripLeadingComments(q); truncateDDL.MatchString(bare) || dropTablesDDL.MatchString(bare) {
		selected = func(db, name string) bool {
			if since, ok := inc.since[tableID(db, name)]; ok && !since.less(next) {
				return false
			}
			return m.selected(db, name)
		}
	}
	stmt, multi, err := multiTableDDL(q, schema, selected)
	switch {
	case multi:
		if err != nil {
			return &applyError{fmt.Errorf("DDL at %s:%d: %w", next.File, next.Pos, err)}
		}
		if apply = stmt != ""; apply && stmt != q {
			m.e.cfg.Logger.Info("DDL cut down to the selected tables", "job_id", m.spec.JobID, "statement", stmt)
		}
		q = stmt
	case databaseDDL.MatchString(q):
		apply = m.spec.MigrateObject == engine.MigrateObjectWholeInstance
	default:
		if target, ok := ddlTarget(q); ok {
			db, name := splitQualified(target, schema)
			apply = selected(db, name)
		}
	}
	if apply {
		// The shapes the statement may change are forgotten once it is
		// applied (shapes.go); a DDL the target does not see changes none.
		forget := inc.shapesTouched(ctx, q, schema, multi)
		defer forget()
		// DDL commits by itself, outside any transaction the fence could
		// join: the fence is read right before it, which leaves a
		// window of one statement (README, How a MySQL-family migration works).
		if err := m.cp.fence.check(ctx, m.dst, fmt.Sprintf("DDL at %s:%d", next.File, next.Pos)); err != nil {
			return err
		}
		conn, err := m.dst.Conn(ctx)
		if err != nil {
			return err
		}
		defer conn.Close()
		if schema != "" {
			// The session's database may be one the job does not copy
			// (1049) when the statement names its table in full.
			if _, err := conn.ExecContext(ctx, "USE "+quoteIdent(schema)); err != nil && !isExists(err) && !isUnknownDatabase(err) {
				return &applyError{fmt.Errorf("apply DDL at %s:%d: %w", next.File, next.Pos, err)}
			}
		}
		if _, err := conn.ExecContext(ctx, q); err != nil && !isExists(err) && !(inc.replaying && ddlAlreadyDone(err)) {
			return &applyError{fmt.Errorf("the target refused DDL at %s:%d (%.200s): %w", next.File, next.Pos, q, err)}
		}
		m.e.cfg.Logger.Info("DDL applied", "job_id", m.spec.JobID, "file", next.File, "pos", next.Pos)
		inc.replaying = false
		if inTxn {
			return nil
		}
		if err := m.cp.fence.savePosition(ctx, m.dst, next); err != nil {
			return err
		}
		inc.saved(next)
	}
	if !inTxn {
		inc.advance(next)
	}
	return nil
}

func isUnknownDatabase(err error) bool {
	var myErr *gmysql.MySQLError
	return errors.As(err, &myErr) && myErr.Number == 1049
}

// ddlAlreadyDone recognises a DDL replayed after a crash that came between
// applying it and saving the position after it.
func ddlAlreadyDone(err error) bool {
	var myErr *gmysql.MySQLError
	if !errors.As(err, &myErr) {
		return false
	}
	switch myErr.Number {
	case 1060, 1061, 1091, 1051, 1146: // duplicate column/key, can't drop, unknown table
		return true
	}
	return false
}
