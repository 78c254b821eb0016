package mysql

import "testing"

func TestDDLTarget(t *testing.T) {
	tests := map[string]string{
		"ALTER TABLE t ADD COLUMN c INT":             "t",
		"alter table `db`.`my tab` add c int":        "`db`.`my tab`",
		"/* gh-ost */ ALTER TABLE `t` DROP COLUMN c": "`t`",
		"CREATE OR REPLACE TABLE x (a INT)":          "x",
		"CREATE TABLE IF NOT EXISTS y.z (a INT)":     "y.z",
		"DROP TABLE IF EXISTS `a``b`":                "`a``b`",
		"TRUNCATE k":                                 "k",
		"TRUNCATE TABLE db.k":                        "db.k",
		"RENAME TABLE a TO b":                        "a",
		"CREATE UNIQUE INDEX i ON db.t (c)":          "db.t",
		"DROP INDEX `i` ON `t`":                      "`t`",
		"CREATE INDEX IF NOT EXISTS i ON t (c)":      "t",
		"CREATE VIEW v AS SELECT 1":                  "",
		"GRANT SELECT ON db.* TO u":                  "",
		"/* a */ /* b */ DROP TABLE t2":              "t2",
	}
	for q, want := range tests {
		got, ok := ddlTarget(q)
		if (want == "") == ok || got != want {
			t.Errorf("ddlTarget(%q) = %q, %v; want %q", q, got, ok, want)
		}
	}
	if db, name := splitQualified("`db`.`my tab`", "x"); db != "db" || name != "my tab" {
		t.Errorf("splitQualified: %q %q", db, name)
	}
}
