package mysql

import "strings"

// quoteIdent back-quotes a name, for SQL and for messages.
func quoteIdent(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

// tableID keys a table by database and name, as the server spells them.
func tableID(db, name string) string { return db + "\x00" + name }
