package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/go-sql-driver/mysql"

	"github.com/opendts/opendts/internal/engine"
)

const (
	charsetName   = "CharsetCheck"
	lowerCaseName = "LowerCaseTableNamesCheck"
)

type charsetCheck struct{}

func (charsetCheck) Name() string { return charsetName }

// Check fails for every collation the selected databases, tables and
// columns use that the target does not have: CREATE TABLE would fail there.
// A collation names its character set, so checking collations covers both.
func (charsetCheck) Check(ctx context.Context, r *run) engine.CheckItem {
	const n = charsetName
	if res, bad := unreachable(n, r.src, r.dst); bad {
		return res
	}
	inv, err := r.inventory(ctx)
	if err != nil {
		return warn(n, err.Error(), "Check that the source user may read information_schema.")
	}
	if len(inv.dbs) == 0 {
		return pass(n, "nothing selected uses a character set")
	}
	uses, err := collationUses(ctx, r.src.db, inv)
	if err != nil {
		return warn(n, fmt.Sprintf("read the %s's collations: %s", r.src.where(), err), "Compare the collations by hand.")
	}
	have, err := targetCollations(ctx, r.dst.db)
	if err != nil {
		return warn(n, fmt.Sprintf("read the %s's collations: %s", r.dst.where(), err), "Compare the collations by hand.")
	}
	return judgeCollations(r.dst.where(), uses, have)
}

// collationUses maps each collation the selection uses to where it is used
// (a few places each: enough to find them, short enough to read).
func collationUses(ctx context.Context, db *sql.DB, inv *inventory) (map[string][]string, error) {
	uses := make(map[string][]string)
	add := func(coll, where string) {
		if coll == "" {
			return
		}
		if len(uses[coll]) < 3 {
			uses[coll] = append(uses[coll], where)
		}
	}
	in := placeholders(len(inv.dbs))
	selected := inv.objectSet()

	rows, err := db.QueryContext(ctx, "SELECT SCHEMA_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME IN ("+in+")", args(inv.dbs)...)
	if err != nil {
		return nil, err
	}
	err = scanAll(rows, func() error {
		var schema, coll string
		if err := rows.Scan(&schema, &coll); err != nil {
			return err
		}
		add(coll, "database "+quoteIdent(schema))
		return nil
	})
	if err != nil {
		return nil, err
	}

	rows, err = db.QueryContext(ctx, "SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_COLLATION FROM information_schema.TABLES WHERE TABLE_SCHEMA IN ("+in+") AND TABLE_COLLATION IS NOT NULL", args(inv.dbs)...)
	if err != nil {
		return nil, err
	}
	err = scanAll(rows, func() error {
		var schema, table, coll string
		if err := rows.Scan(&schema, &table, &coll); err != nil {
			return err
		}
		if o, ok := selected[tableKey{schema, table}]; ok {
			add(coll, "table "+o.String())
		}
		return nil
	})
	if err != nil {
		return nil, err
	}

	rows, err = db.QueryContext(ctx, "SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME, COLLATION_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA IN ("+in+") AND COLLATION_NAME IS NOT NULL", args(inv.dbs)...)
	if err != nil {
		return nil, err
	}
	err = scanAll(rows, func() error {
		var schema, table, column, coll string
		if err := rows.Scan(&schema, &table, &column, &coll); err != nil {
			return err
		}
		if o, ok := selected[tableKey{schema, table}]; ok {
			add(coll, "column "+o.String()+"."+quoteIdent(column))
		}
		return nil
	})
	return uses, err
}

// targetCollations lists every collation the target can create. MariaDB
// 10.10+ lists UCA 14 collations once without their character set
// (uca1400_ai_ci) in COLLATIONS; their full names (utf8mb4_uca1400_ai_ci)
// are in COLLATION_CHARACTER_SET_APPLICABILITY.FULL_COLLATION_NAME, a
// column other servers lack.
func targetCollations(ctx context.Context, db *sql.DB) (map[string]bool, error) {
	names, err := queryStrings(ctx, db, "SELECT COLLATION_NAME FROM information_schema.COLLATIONS")
	if err != nil {
		return nil, err
	}
	full, err := queryStrings(ctx, db, "SELECT FULL_COLLATION_NAME FROM information_schema.COLLATION_CHARACTER_SET_APPLICABILITY")
	var myErr *mysql.MySQLError
	if err != nil && !(errors.As(err, &myErr) && myErr.Number == erUnknownColumn) {
		return nil, err
	}
	have := make(map[string]bool, len(names)+len(full))
	for _, c := range append(names, full...) {
		have[normalizeCollation(c)] = true
	}
	return have, nil
}

func judgeCollations(where string, uses map[string][]string, have map[string]bool) engine.CheckItem {
	const n = charsetName
	var missing []string
	for coll := range uses {
		if !have[normalizeCollation(coll)] {
			missing = append(missing, coll)
		}
	}
	if len(missing) == 0 {
		return pass(n, "the %s has all %d collation(s) the selected objects use", where, len(uses))
	}
	sort.Strings(missing)
	var parts []string
	for _, coll := range missing {
		parts = append(parts, fmt.Sprintf("%s (used by %s)", coll, strings.Join(uses[coll], ", ")))
	}
	advice := "Use a target version that has these collations, or convert the objects on the source (ALTER TABLE ... CONVERT TO CHARACTER SET ... COLLATE ...) before migrating."
	if strings.Contains(strings.Join(missing, " "), "_0900_") {
		advice += " MySQL 8's utf8mb4_0900 collations exist on MariaDB from 11.4.5 on."
	}
	return fail(n, fmt.Sprintf("the %s lacks collation(s) %s", where, joinLimited(parts, "; ", 10)), advice)
}

// normalizeCollation makes the old and new spellings of MySQL's 3-byte
// UTF-8 compare equal: MySQL 8.0.30 and MariaDB 10.6 report utf8mb3_*
// where older servers say utf8_*, and accept both.
func normalizeCollation(c string) string {
	c = strings.ToLower(c)
	if strings.HasPrefix(c, "utf8_") {
		return "utf8mb3_" + strings.TrimPrefix(c, "utf8_")
	}
	return c
}

func scanAll(rows *sql.Rows, scan func() error) error {
	defer rows.Close()
	for rows.Next() {
		if err := scan(); err != nil {
			return err
		}
	}
	return rows.Err()
}

type lowerCaseCheck struct{}

func (lowerCaseCheck) Name() string { return lowerCaseName }

func (lowerCaseCheck) Check(ctx context.Context, r *run) engine.CheckItem {
	const n = lowerCaseName
	if res, bad := unreachable(n, r.src, r.dst); bad {
		return res
	}
	sv, err := r.src.globalVars(ctx)
	if err != nil {
		return warn(n, err.Error(), "Compare lower_case_table_names by hand.")
	}
	dv, err := r.dst.globalVars(ctx)
	if err != nil {
		return warn(n, err.Error(), "Compare lower_case_table_names by hand.")
	}
	src, dst := orZero(sv["lower_case_table_names"]), orZero(dv["lower_case_table_names"])
	if src == dst {
		return pass(n, "lower_case_table_names is %s on both sides", src)
	}
	inv, err := r.inventory(ctx)
	if err != nil {
		return warn(n, err.Error(), "Check that the source user may read information_schema.")
	}
	return judgeLowerCase(src, dst, inv)
}

// judgeLowerCase compares lower_case_table_names. A case-sensitive source
// (0) into a folding target (1, 2) breaks only for names that differ in
// case alone, which would collide, and changes the spelling of the others;
// a folding source into a case-sensitive target keeps the names but breaks
// applications that spell them in another case.
func judgeLowerCase(src, dst string, inv *inventory) engine.CheckItem {
	const n = lowerCaseName
	both := fmt.Sprintf("lower_case_table_names is %s on the source and %s on the target", src, dst)
	if src != "0" {
		return warn(n, both+": the target compares names with their case, the source does not",
			"Make queries spell names exactly as the tables are named, or set lower_case_table_names on the target (only possible when its data directory is created).")
	}
	if dst == "0" {
		return pass(n, "%s", both)
	}
	seen := make(map[string]string)
	var collide, mixed []string
	note := func(key, name string) {
		if prev, ok := seen[key]; ok {
			collide = append(collide, prev+" and "+name)
			return
		}
		seen[key] = name
		if name != strings.ToLower(name) {
			mixed = append(mixed, name)
		}
	}
	for _, db := range inv.dbs {
		note(strings.ToLower(db), quoteIdent(db))
	}
	for _, o := range inv.objects {
		note(strings.ToLower(o.db)+"."+strings.ToLower(o.name), o.String())
	}
	switch {
	case len(collide) > 0:
		return fail(n, fmt.Sprintf("%s: these names differ only in case and would collide: %s", both, joinLimited(collide, "; ", 10)),
			"Rename one of each pair on the source, or leave one out of DatabaseInfo.")
	case len(mixed) > 0:
		return warn(n, fmt.Sprintf("%s: these names will be stored in lower case: %s", both, joinLimited(mixed, ", ", 10)),
			"Nothing to do if applications do not depend on the stored case; otherwise use a target with lower_case_table_names=0.")
	}
	return pass(n, "%s; every selected name is lower case already", both)
}

func orZero(v string) string {
	if v == "" {
		return "0"
	}
	return v
}
