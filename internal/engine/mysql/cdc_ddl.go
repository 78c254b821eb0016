package mysql

import (
	"fmt"
	"regexp"
	"strings"
	"unicode"
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
