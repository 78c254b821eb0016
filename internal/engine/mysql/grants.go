package mysql

import (
	"context"
	"fmt"
	"strings"
)

// grantSet is what SHOW GRANTS says the connected account may do, at the
// three levels a migration cares about: global, database and table.
// Column and routine grants are ignored: a migration reads and writes
// whole tables.
type grantSet struct {
	// account is CURRENT_USER() as 'user'@'host', for GRANT advice.
	account string
	global  privSet
	dbs     []dbGrant
	tables  map[tableKey]privSet
	// revoked holds MySQL's partial revokes (REVOKE ... ON db.* lines).
	revoked []dbGrant
	// roles is set when the account has roles: MySQL's SHOW GRANTS leaves
	// their privileges out, so a missing privilege may be granted there.
	roles bool
}

type tableKey struct{ db, table string }

// dbGrant is a database-level grant; pattern keeps the grant's wildcards
// (_ and %, with \ escaping them), as the server matches it.
type dbGrant struct {
	pattern string
	privs   privSet
}

// privSet is a set of privilege names, upper case with single spaces.
type privSet struct {
	all   bool // ALL [PRIVILEGES]
	names map[string]bool
}

func (p *privSet) add(name string) {
	if p.names == nil {
		p.names = make(map[string]bool)
	}
	p.names[name] = true
}

// ALL PRIVILEGES means different things at each level: only what can be
// granted there. Global ALL is everything but GRANT OPTION (and PROXY).
var (
	dbLevelPrivs = setOf("SELECT", "INSERT", "UPDATE", "DELETE", "CREATE", "DROP",
		"REFERENCES", "INDEX", "ALTER", "CREATE TEMPORARY TABLES", "LOCK TABLES",
		"EXECUTE", "CREATE VIEW", "SHOW VIEW", "CREATE ROUTINE", "ALTER ROUTINE",
		"EVENT", "TRIGGER", "DELETE HISTORY")
	tableLevelPrivs = setOf("SELECT", "INSERT", "UPDATE", "DELETE", "CREATE", "DROP",
		"REFERENCES", "INDEX", "ALTER", "CREATE VIEW", "SHOW VIEW", "TRIGGER", "DELETE HISTORY")
)

func setOf(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

type level int

const (
	levelGlobal level = iota
	levelDB
	levelTable
)

func (p privSet) has(name string, at level) bool {
	if p.names[name] {
		return true
	}
	if !p.all {
		return false
	}
	switch at {
	case levelDB:
		return dbLevelPrivs[name]
	case levelTable:
		return tableLevelPrivs[name]
	}
	return name != "GRANT OPTION" && name != "PROXY"
}

// has reports whether the account holds privilege name on db.table; db ""
// asks about *.*, table "" about db.*. A grant at a wider level counts.
func (g *grantSet) has(name, db, table string) bool {
	if db != "" {
		for _, r := range g.revoked {
			if likeMatch(r.pattern, db) && r.privs.has(name, levelDB) {
				return false
			}
		}
	}
	if g.global.has(name, levelGlobal) {
		return true
	}
	if db == "" {
		return false
	}
	for _, d := range g.dbs {
		if likeMatch(d.pattern, db) && d.privs.has(name, levelDB) {
			return true
		}
	}
	if table == "" {
		return false
	}
	return g.tables[tableKey{db, table}].has(name, levelTable)
}

// grantSet reads the account's grants once per side.
func (s *side) grantSet(ctx context.Context) (*grantSet, error) {
	return s.grants.get(func() (*grantSet, error) {
		var user string
		if err := s.db.QueryRowContext(ctx, "SELECT CURRENT_USER()").Scan(&user); err != nil {
			return nil, fmt.Errorf("read the %s account: %w", s.name, err)
		}
		// SHOW GRANTS without FOR also lists, on MariaDB, the privileges of
		// the role that is enabled for the session.
		rows, err := s.db.QueryContext(ctx, "SHOW GRANTS")
		if err != nil {
			return nil, fmt.Errorf("read the %s account's grants: %w", s.name, err)
		}
		defer rows.Close()
		var lines []string
		for rows.Next() {
			var line string
			if err := rows.Scan(&line); err != nil {
				return nil, fmt.Errorf("read the %s account's grants: %w", s.name, err)
			}
			lines = append(lines, line)
		}
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("read the %s account's grants: %w", s.name, err)
		}
		g := parseGrants(lines)
		g.account = formatAccount(user)
		return g, nil
	})
}

// formatAccount turns CURRENT_USER()'s user@host into 'user'@'host'.
func formatAccount(user string) string {
	i := strings.LastIndex(user, "@")
	if i < 0 {
		return "'" + user + "'"
	}
	return "'" + user[:i] + "'@'" + user[i+1:] + "'"
}

// parseGrants reads the lines of SHOW GRANTS. Lines it does not understand
// (PROXY, routine grants, future syntax) grant nothing: a privilege they
// hold is reported missing, which the DBA can see through, rather than
// assumed, which would hide a real gap.
func parseGrants(lines []string) *grantSet {
	g := &grantSet{tables: make(map[tableKey]privSet)}
	for _, line := range lines {
		parseGrantLine(g, line)
	}
	return g
}

func parseGrantLine(g *grantSet, line string) {
	line = strings.TrimSpace(line)
	upper := strings.ToUpper(line)
	var rest string
	revoke := false
	switch {
	case strings.HasPrefix(upper, "GRANT "):
		rest = line[len("GRANT "):]
	case strings.HasPrefix(upper, "REVOKE "):
		rest = line[len("REVOKE "):]
		revoke = true
	default:
		return
	}
	on := indexTopLevel(rest, " ON ")
	if on < 0 {
		// GRANT `role` TO `user`: a role, not privileges.
		g.roles = true
		return
	}
	privPart, objPart := rest[:on], rest[on+len(" ON "):]
	to := indexTopLevel(objPart, " TO ")
	if revoke {
		to = indexTopLevel(objPart, " FROM ")
	}
	if to < 0 {
		return
	}
	tail := strings.ToUpper(objPart[to:])
	db, table, ok := parseObject(strings.TrimSpace(objPart[:to]))
	if !ok {
		return
	}

	var ps privSet
	for _, p := range splitTopLevel(privPart, ',') {
		if strings.Contains(p, "(") {
			continue // column grant: not the whole table
		}
		name := strings.Join(strings.Fields(strings.ToUpper(p)), " ")
		switch name {
		case "ALL", "ALL PRIVILEGES":
			ps.all = true
		case "USAGE", "PROXY", "":
		default:
			ps.add(name)
		}
	}
	if !revoke && strings.Contains(tail, "WITH GRANT OPTION") {
		ps.add("GRANT OPTION")
	}

	switch {
	case revoke:
		if db != "" && table == "" {
			g.revoked = append(g.revoked, dbGrant{pattern: db, privs: ps})
		}
	case db == "":
		g.global.all = g.global.all || ps.all
		for n := range ps.names {
			g.global.add(n)
		}
	case table == "":
		g.dbs = append(g.dbs, dbGrant{pattern: db, privs: ps})
	default:
		k := tableKey{db, table}
		cur := g.tables[k]
		cur.all = cur.all || ps.all
		for n := range ps.names {
			cur.add(n)
		}
		g.tables[k] = cur
	}
}

// parseObject reads the object of a grant: *.* (db ""), `db`.* (table "")
// or `db`.`table`. Routine grants (PROCEDURE db.p, FUNCTION ...) are not
// objects a migration needs: ok is false.
func parseObject(s string) (db, table string, ok bool) {
	if s == "*.*" || s == "*" {
		return "", "", true
	}
	if strings.HasPrefix(s, "`") || !strings.Contains(s, " ") {
		db, rest, ok := readIdent(s)
		if !ok || !strings.HasPrefix(rest, ".") {
			return "", "", false
		}
		rest = rest[1:]
		if rest == "*" {
			return db, "", db != ""
		}
		table, rest, ok = readIdent(rest)
		return db, table, ok && rest == "" && db != "" && table != ""
	}
	return "", "", false
}

// readIdent reads one identifier, bare or back-quoted (a doubled back-quote
// inside stands for one).
func readIdent(s string) (ident, rest string, ok bool) {
	if !strings.HasPrefix(s, "`") {
		i := strings.IndexByte(s, '.')
		if i < 0 {
			return s, "", s != ""
		}
		return s[:i], s[i:], i > 0
	}
	return readQuotedIdent(s)
}

// readQuotedIdent reads a back-quoted identifier at the start of s.
func readQuotedIdent(s string) (ident, rest string, ok bool) {
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		if s[i] != '`' {
			b.WriteByte(s[i])
			continue
		}
		if i+1 < len(s) && s[i+1] == '`' {
			b.WriteByte('`')
			i++
			continue
		}
		return b.String(), s[i+1:], true
	}
	return "", "", false
}

// indexTopLevel finds sep outside quotes and parentheses (column lists,
// quoted names that contain " ON ").
func indexTopLevel(s, sep string) int {
	depth := 0
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '`' || c == '\'' || c == '"':
			quote = c
		case c == '(':
			depth++
		case c == ')':
			depth--
		case depth == 0 && hasPrefixFold(s[i:], sep):
			return i
		}
	}
	return -1
}

// hasPrefixFold is strings.HasPrefix ignoring case. It compares in place:
// strings.ToUpper(s) can be shorter or longer than s (ı becomes I, bytes
// that are not UTF-8 become U+FFFD), so offsets into it are not offsets
// into s.
func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// splitTopLevel splits s at sep outside parentheses.
func splitTopLevel(s string, sep byte) []string {
	var parts []string
	depth, start := 0, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '(':
			depth++
		case ')':
			depth--
		case sep:
			if depth == 0 {
				parts = append(parts, strings.TrimSpace(s[start:i]))
				start = i + 1
			}
		}
	}
	return append(parts, strings.TrimSpace(s[start:]))
}

// likeMatch matches name against a database grant pattern the way the
// server does: _ is any one character, % any run, \ makes either literal.
// It compares bytes, as it always has. On a mismatch it goes back to the
// last % only, taking one more byte into it: time is at most
// len(pattern)*len(name), where trying every split at every % took
// minutes on a 17-byte pattern like %a%a%a%a%a%a%a%ab.
func likeMatch(pattern, name string) bool {
	p, n := 0, 0
	star, mark := -1, 0 // the last % seen, and where in name its run ends
	for n < len(name) {
		if p < len(pattern) {
			switch c := pattern[p]; {
			case c == '%':
				star, mark = p, n
				p++
				continue
			case c == '_':
				p, n = p+1, n+1
				continue
			case c == '\\' && p+1 < len(pattern):
				if name[n] == pattern[p+1] {
					p, n = p+2, n+1
					continue
				}
			case c == name[n]:
				p, n = p+1, n+1
				continue
			}
		}
		if star < 0 {
			return false
		}
		mark++
		p, n = star+1, mark
	}
	for p < len(pattern) && pattern[p] == '%' {
		p++
	}
	return p == len(pattern)
}
