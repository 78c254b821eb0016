package postgres

import (
	"regexp"
	"strings"
)

// splitStatements splits a query string into its statements, as the
// server would: semicolons inside quotes, quoted names, dollar-quoted
// bodies and comments do not split. Empty statements are dropped.
func splitStatements(sql string) []string {
	var out []string
	start := 0
	flush := func(end int) {
		if s := strings.TrimSpace(sql[start:end]); s != "" && strings.TrimSpace(stripComments(s)) != "" {
			out = append(out, s)
		}
		start = end + 1
	}
	for i := 0; i < len(sql); i++ {
		switch c := sql[i]; {
		case c == ';':
			flush(i)
		case c == '\'':
			// E'...' strings take backslash escapes.
			escapes := i > 0 && (sql[i-1] == 'E' || sql[i-1] == 'e') && (i < 2 || !isIdentChar(sql[i-2]))
			for i++; i < len(sql); i++ {
				if escapes && sql[i] == '\\' {
					i++
					continue
				}
				if sql[i] == '\'' {
					if i+1 < len(sql) && sql[i+1] == '\'' {
						i++
						continue
					}
					break
				}
			}
		case c == '"':
			for i++; i < len(sql); i++ {
				if sql[i] == '"' {
					if i+1 < len(sql) && sql[i+1] == '"' {
						i++
						continue
					}
					break
				}
			}
		case c == '-' && i+1 < len(sql) && sql[i+1] == '-':
			for i < len(sql) && sql[i] != '\n' {
				i++
			}
		case c == '/' && i+1 < len(sql) && sql[i+1] == '*':
			depth := 0
			for ; i < len(sql); i++ {
				if sql[i] == '/' && i+1 < len(sql) && sql[i+1] == '*' {
					depth++
					i++
				} else if sql[i] == '*' && i+1 < len(sql) && sql[i+1] == '/' {
					depth--
					i++
					if depth == 0 {
						break
					}
				}
			}
		case c == '$' && (i == 0 || !isIdentChar(sql[i-1])):
			if tag := dollarTag.FindString(sql[i:]); tag != "" {
				if end := strings.Index(sql[i+len(tag):], tag); end >= 0 {
					i += len(tag) + end + len(tag) - 1
				} else {
					i = len(sql)
				}
			}
		}
	}
	flush(len(sql))
	return out
}

var dollarTag = regexp.MustCompile(`^\$([A-Za-z_][A-Za-z0-9_]*)?\$`)

func isIdentChar(c byte) bool {
	return c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80
}

// stripComments removes leading comments, to find a statement's first word.
func stripComments(s string) string {
	for {
		s = strings.TrimSpace(s)
		switch {
		case strings.HasPrefix(s, "--"):
			if i := strings.IndexByte(s, '\n'); i >= 0 {
				s = s[i+1:]
			} else {
				return ""
			}
		case strings.HasPrefix(s, "/*"):
			if i := strings.Index(s, "*/"); i >= 0 {
				s = s[i+2:]
			} else {
				return ""
			}
		default:
			return s
		}
	}
}

// ddlStatement reports whether a statement is one that fires event
// triggers (and so was logged), by its first words.
func ddlStatement(s string) bool {
	f := strings.Fields(strings.ToUpper(stripComments(s)))
	if len(f) == 0 {
		return false
	}
	switch f[0] {
	case "CREATE", "ALTER", "DROP", "COMMENT", "GRANT", "REVOKE", "SECURITY", "IMPORT", "REFRESH", "REINDEX":
		return true
	case "SELECT":
		// SELECT ... INTO creates a table.
		return strings.Contains(" "+strings.Join(f, " ")+" ", " INTO ")
	}
	return false
}

var concurrently = regexp.MustCompile(`(?i)\b(INDEX|REINDEX[^;]*?|PARTITION[^;]*?)\s+CONCURRENTLY\b`)

// inTransaction makes a statement runnable inside the target's
// transaction: CONCURRENTLY (which cannot run in one) goes.
func inTransaction(s string) string {
	return concurrently.ReplaceAllString(s, "$1")
}

// replicationDDL reports DDL of publications and subscriptions.
func replicationDDL(s string) bool {
	f := strings.Fields(strings.ToUpper(stripComments(s)))
	return len(f) >= 2 && (f[1] == "PUBLICATION" || f[1] == "SUBSCRIPTION")
}
