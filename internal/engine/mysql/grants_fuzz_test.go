package mysql

import (
	"strings"
	"testing"
)

// The privilege check reads SHOW GRANTS text: a line it misreads either
// hides a missing privilege (the job fails later, mid-copy) or reports
// one the account holds. These targets check what the parser reads, not
// only that it survives. Seeds are the unit tests' lines, so `go test`
// runs them in CI.

var grantSeeds = []string{
	"GRANT RELOAD, LOCK TABLES, REPLICATION SLAVE, BINLOG MONITOR ON *.* TO `u`@`%` IDENTIFIED BY PASSWORD '*D821809F681A40A6E379B50D0463EFAE20BDD122'",
	"GRANT SELECT, SHOW VIEW ON `shop`.* TO `u`@`%`",
	"GRANT ALL PRIVILEGES ON `app\\_%`.* TO `u`@`%`",
	"GRANT INSERT, UPDATE ON `odd``name`.`t 1` TO `u`@`%` WITH GRANT OPTION",
	"GRANT SELECT (`a`, `b`) ON `shop`.`secret` TO `u`@`%`",
	"GRANT UPDATE (`a`) ON `x`.`t` TO `u`@`%`",
	"GRANT EXECUTE ON PROCEDURE `shop`.`p` TO `u`@`%`",
	"GRANT PROXY ON ``@`%` TO `u`@`%` WITH GRANT OPTION",
	"GRANT `reporting` TO `u`@`%`",
	"GRANT ALL PRIVILEGES ON *.* TO `root`@`localhost` WITH GRANT OPTION",
	"REVOKE INSERT ON `mysql`.* FROM `root`@`localhost`",
	"GRANT USAGE ON *.* TO 'u'@'%'",
	"GRANT SELECT ON db.t TO u@h",
	"GRANT SELECT ON `ıııııııııııııııı`.`t` TO `u`@`%`",
}

// grantPrivs are privileges a generated line grants a subset of.
var grantPrivs = []string{
	"SELECT", "INSERT", "UPDATE", "DELETE", "CREATE", "DROP", "RELOAD", "LOCK TABLES",
	"REPLICATION SLAVE", "REPLICATION CLIENT", "SHOW VIEW", "TRIGGER", "EVENT", "PROCESS",
	"CREATE ROUTINE", "SUPER",
}

// FuzzParseGrants feeds arbitrary SHOW GRANTS output (one line per line)
// and asks about arbitrary objects: it must not panic, and a line that
// is not a GRANT or REVOKE grants nothing.
func FuzzParseGrants(f *testing.F) {
	for _, l := range grantSeeds {
		f.Add(l, "SELECT", "shop", "t")
	}
	f.Add(strings.Join(grantSeeds, "\n"), "INSERT", "odd`name", "t 1")
	f.Fuzz(func(t *testing.T, text, priv, db, table string) {
		lines := strings.Split(text, "\n")
		g := parseGrants(lines)
		g.has(priv, db, table)
		g.has(priv, db, "")
		g.has(priv, "", "")
		for _, l := range lines {
			up := strings.ToUpper(strings.TrimSpace(l))
			if strings.HasPrefix(up, "GRANT ") || strings.HasPrefix(up, "REVOKE ") {
				return
			}
		}
		if g.has(priv, db, table) || g.roles {
			t.Fatalf("no GRANT line in %q, yet has(%q, %q, %q) = true or roles", text, priv, db, table)
		}
	})
}

// escapeLike spells a database name as a grant pattern that matches it
// alone, as SHOW GRANTS shows a grant on a name with _ or % in it.
func escapeLike(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `_`, `\_`, `%`, `\%`)
	return r.Replace(s)
}

// FuzzGrantLine builds a GRANT line from generated privileges, database
// and table names, at the global, database or table level, and checks
// that exactly those privileges are held there and at narrower levels,
// and none wider.
func FuzzGrantLine(f *testing.F) {
	f.Add(uint16(0b1), "shop", "orders", uint8(0))
	f.Add(uint16(0b101), "app_1", "t 1", uint8(1))
	f.Add(uint16(0xffff), "odd`name", "a.b", uint8(2))
	f.Add(uint16(0b11000), "my ON db", " TO x", uint8(6))
	f.Add(uint16(0b10), "ıııııııııııııııı", "(t)", uint8(2))
	f.Add(uint16(0b10), "a%b", "c,d", uint8(1))
	f.Fuzz(func(t *testing.T, mask uint16, db, table string, form uint8) {
		if db == "" || table == "" {
			return // `` is no name MySQL accepts
		}
		var chosen []string
		held := map[string]bool{}
		for i, p := range grantPrivs {
			if mask&(1<<i) != 0 {
				chosen = append(chosen, p)
				held[p] = true
			}
		}
		if len(chosen) == 0 {
			return
		}
		lvl := level(form % 3)
		var obj string
		switch lvl {
		case levelGlobal:
			obj = "*.*"
		case levelDB:
			obj = quoteIdent(escapeLike(db)) + ".*"
		case levelTable:
			obj = quoteIdent(db) + "." + quoteIdent(table)
		}
		privs := strings.Join(chosen, ", ")
		if form&4 != 0 {
			privs = strings.ToLower(strings.Join(chosen, " ,  "))
		}
		line := "GRANT " + privs + " ON " + obj + " TO `u`@`%`"
		if form&8 != 0 {
			line += " WITH GRANT OPTION"
		}
		g := parseGrants([]string{line})
		for _, p := range grantPrivs {
			want := held[p]
			if got := g.has(p, db, table); got != want {
				t.Fatalf("%s\nhas(%q, %q, %q) = %v, want %v", line, p, db, table, got, want)
			}
			// Wider than granted: nothing.
			if lvl >= levelDB && g.has(p, "", "") {
				t.Fatalf("%s\nhas(%q) on *.* = true", line, p)
			}
			if lvl == levelTable && g.has(p, db, "") {
				t.Fatalf("%s\nhas(%q) on %q.* = true", line, p, db)
			}
			if lvl >= levelDB && g.has(p, db+"x", table) {
				t.Fatalf("%s\nhas(%q) on %q = true", line, p, db+"x")
			}
		}
		if got := g.has("GRANT OPTION", db, table); got != (form&8 != 0) {
			t.Fatalf("%s\nhas(GRANT OPTION) = %v", line, got)
		}
	})
}

// FuzzReadIdent: quoting a name and reading it back gives the name and
// the text after it; parseObject reads a quoted db.table back.
func FuzzReadIdent(f *testing.F) {
	f.Add("shop", ".*")
	f.Add("odd`name", ".`t 1`")
	f.Add("``", "")
	f.Add("a.b", " TO x")
	f.Fuzz(func(t *testing.T, name, rest string) {
		if strings.HasPrefix(rest, "`") {
			// `a`` then `b is `a```b: a doubled back-quote, not an end.
			// SHOW GRANTS never puts one name right after another.
			return
		}
		ident, r, ok := readIdent(quoteIdent(name) + rest)
		if !ok || ident != name || r != rest {
			t.Fatalf("readIdent(%q) = %q, %q, %v; want %q, %q", quoteIdent(name)+rest, ident, r, ok, name, rest)
		}
		readIdent(name + rest) // bare or broken: must not panic
		if name == "" || rest == "" {
			return
		}
		db, table, ok := parseObject(quoteIdent(name) + "." + quoteIdent(rest))
		if !ok || db != name || table != rest {
			t.Fatalf("parseObject(%q) = %q, %q, %v", quoteIdent(name)+"."+quoteIdent(rest), db, table, ok)
		}
		db, table, ok = parseObject(quoteIdent(name) + ".*")
		if !ok || db != name || table != "" {
			t.Fatalf("parseObject(%q) = %q, %q, %v", quoteIdent(name)+".*", db, table, ok)
		}
		parseObject(name + "." + rest)
	})
}

// FuzzSplitTopLevel: splitting then joining keeps every character but
// the separators at depth 0 and the spaces around parts, and a part
// holds a separator only inside parentheses.
func FuzzSplitTopLevel(f *testing.F) {
	f.Add("SELECT (`a`, `b`), INSERT")
	f.Add("a,,b")
	f.Add(")(,")
	f.Fuzz(func(t *testing.T, s string) {
		parts := splitTopLevel(s, ',')
		if got := len(strings.Join(parts, "")) + len(parts) - 1; got > len(s) {
			t.Fatalf("splitTopLevel(%q) = %q: longer than its input", s, parts)
		}
		if !strings.Contains(s, ",") && (len(parts) != 1 || parts[0] != strings.TrimSpace(s)) {
			t.Fatalf("splitTopLevel(%q) = %q; want the input alone", s, parts)
		}
		if !strings.ContainsAny(s, "()") && len(parts) != strings.Count(s, ",")+1 {
			t.Fatalf("splitTopLevel(%q) = %q; want %d parts", s, parts, strings.Count(s, ",")+1)
		}
	})
}

// likeRef is MySQL's LIKE for grant patterns written the slow, obvious
// way: a table of which pattern suffix matches which name suffix, byte
// by byte as likeMatch is.
func likeRef(pattern, name string) bool {
	// m[i][j]: pattern[i:] matches name[j:].
	m := make([][]bool, len(pattern)+2)
	for i := range m {
		m[i] = make([]bool, len(name)+1)
	}
	m[len(pattern)][len(name)] = true
	for i := len(pattern) - 1; i >= 0; i-- {
		for j := len(name); j >= 0; j-- {
			switch c := pattern[i]; {
			case c == '%':
				m[i][j] = m[i+1][j] || (j < len(name) && m[i][j+1])
			case c == '_':
				m[i][j] = j < len(name) && m[i+1][j+1]
			case c == '\\' && i+1 < len(pattern):
				m[i][j] = j < len(name) && name[j] == pattern[i+1] && m[i+2][j+1]
			default:
				m[i][j] = j < len(name) && name[j] == c && m[i+1][j+1]
			}
		}
	}
	return m[0][0]
}

// FuzzLikeMatch compares likeMatch with likeRef. Names are at most 64
// characters (MySQL's limit), patterns too.
func FuzzLikeMatch(f *testing.F) {
	f.Add("shop", "shop")
	f.Add("sh_p", "shop")
	f.Add("sh\\_p", "sh_p")
	f.Add("app%x", "app_1_x")
	f.Add("a\\", "a\\")
	f.Add("%\\%%", "100%")
	f.Add("%a%a%a%a%a%a%a%ab", strings.Repeat("a", 64))
	f.Fuzz(func(t *testing.T, pattern, name string) {
		if len(pattern) > 64*4 || len(name) > 64*4 {
			return
		}
		if got, want := likeMatch(pattern, name), likeRef(pattern, name); got != want {
			t.Fatalf("likeMatch(%q, %q) = %v, want %v", pattern, name, got, want)
		}
		if !likeMatch(escapeLike(name), name) {
			t.Fatalf("likeMatch(%q, %q) = false: an escaped name does not match itself", escapeLike(name), name)
		}
	})
}
