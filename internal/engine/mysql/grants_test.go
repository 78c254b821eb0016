package mysql

import (
	"strings"
	"testing"

	"github.com/opendts/opendts/internal/engine"
)

func TestParseGrants(t *testing.T) {
	g := parseGrants([]string{
		"GRANT RELOAD, LOCK TABLES, REPLICATION SLAVE, BINLOG MONITOR ON *.* TO `u`@`%` IDENTIFIED BY PASSWORD '*D821809F681A40A6E379B50D0463EFAE20BDD122'",
		"GRANT SELECT, SHOW VIEW ON `shop`.* TO `u`@`%`",
		"GRANT ALL PRIVILEGES ON `app\\_%`.* TO `u`@`%`",
		"GRANT INSERT, UPDATE ON `odd``name`.`t 1` TO `u`@`%` WITH GRANT OPTION",
		"GRANT SELECT (`a`, `b`) ON `shop`.`secret` TO `u`@`%`",
		"GRANT UPDATE (`a`) ON `x`.`t` TO `u`@`%`",
		"GRANT EXECUTE ON PROCEDURE `shop`.`p` TO `u`@`%`",
		"GRANT PROXY ON ``@`%` TO `u`@`%` WITH GRANT OPTION",
		"GRANT `reporting` TO `u`@`%`",
		// ToUpper makes each ı one byte shorter: offsets into the upper
		// case text overran the line.
		"GRANT DELETE ON `ıııııııııııııııı`.`t` TO `u`@`%`",
	})
	cases := []struct {
		priv, db, table string
		want            bool
	}{
		{"RELOAD", "", "", true},
		{"BINLOG MONITOR", "", "", true},
		{"REPLICATION CLIENT", "", "", false},
		{"SELECT", "", "", false},
		{"SELECT", "shop", "", true},
		{"SELECT", "shop", "orders", true},
		{"SELECT", "shop2", "", false},
		{"TRIGGER", "shop", "", false},
		// ALL on a database pattern: db-level privileges only, \_ literal.
		{"CREATE ROUTINE", "app_one", "", true},
		{"CREATE ROUTINE", "appxone", "", false},
		{"CREATE USER", "app_one", "", false}, // not a database-level privilege
		{"INSERT", "odd`name", "t 1", true},
		{"GRANT OPTION", "odd`name", "t 1", true},
		{"GRANT OPTION", "", "", false},
		{"UPDATE", "x", "t", false},
		{"SELECT", "shop", "secret", true}, // from the db-level grant, not the column one
		{"EXECUTE", "shop", "", false},
		{"DELETE", "ıııııııııııııııı", "t", true},
	}
	for _, c := range cases {
		if got := g.has(c.priv, c.db, c.table); got != c.want {
			t.Errorf("has(%q, %q, %q) = %v, want %v", c.priv, c.db, c.table, got, c.want)
		}
	}
	if !g.roles {
		t.Error("role grant not noticed")
	}
}

func TestGlobalAllAndPartialRevoke(t *testing.T) {
	g := parseGrants([]string{
		"GRANT ALL PRIVILEGES ON *.* TO `root`@`localhost` WITH GRANT OPTION",
		"REVOKE INSERT ON `mysql`.* FROM `root`@`localhost`",
	})
	for _, p := range []string{"SELECT", "REPLICATION SLAVE", "READ_ONLY ADMIN", "CREATE USER", "GRANT OPTION"} {
		if !g.has(p, "", "") {
			t.Errorf("ALL PRIVILEGES WITH GRANT OPTION lacks %s", p)
		}
	}
	if g.has("INSERT", "mysql", "user") || !g.has("INSERT", "shop", "") {
		t.Error("partial revoke on mysql.* not applied to it alone")
	}
	if parseGrants([]string{"GRANT ALL ON *.* TO `a`@`%`"}).has("GRANT OPTION", "", "") {
		t.Error("ALL without WITH GRANT OPTION grants GRANT OPTION")
	}
}

func TestLikeMatch(t *testing.T) {
	cases := []struct {
		pattern, name string
		want          bool
	}{
		{"shop", "shop", true},
		{"shop", "Shop", false},
		{"sh_p", "shop", true},
		{"sh\\_p", "shop", false},
		{"sh\\_p", "sh_p", true},
		{"%", "anything", true},
		{"app%", "app", true},
		{"app%x", "app_1_x", true},
		{"app%x", "app_1_y", false},
	}
	for _, c := range cases {
		if got := likeMatch(c.pattern, c.name); got != c.want {
			t.Errorf("likeMatch(%q, %q) = %v", c.pattern, c.name, got)
		}
	}
}

func TestNeedsByJobType(t *testing.T) {
	names := func(needs []need) string {
		var out []string
		for _, n := range needs {
			out = append(out, n.names[0]+"@"+n.object())
		}
		return strings.Join(out, " ")
	}
	selected := engine.Spec{
		MigrateObject: engine.MigrateObjectSelected,
		Objects:       []engine.ObjectSelection{{Database: "a"}, {Database: "b", Tables: []string{"t"}}},
	}
	cases := []struct {
		name        string
		spec        engine.Spec
		source      bool
		want, never []string
	}{
		{"structure", with(selected, engine.MigrateStructure), true,
			[]string{"SELECT@`a`.*", "SELECT@`b`.`t`", "SHOW VIEW@`b`.`t`", "EVENT@`a`.*"},
			[]string{"EVENT@`b`", "LOCK TABLES", "REPLICATION"}},
		{"full", with(selected, engine.MigrateFull), true,
			[]string{"LOCK TABLES@`a`.*", "LOCK TABLES@`b`.*"},
			[]string{"REPLICATION"}},
		{"incremental", with(selected, engine.MigrateFullAndIncremental), true,
			[]string{"REPLICATION SLAVE@*.*", "REPLICATION CLIENT@*.*"}, nil},
		{"instance", engine.Spec{MigrateType: engine.MigrateFull, MigrateObject: engine.MigrateObjectWholeInstance}, true,
			[]string{"SELECT@*.*", "RELOAD@*.*"}, []string{"`"}},
		{"target selected", with(selected, engine.MigrateFull), false,
			[]string{"CREATE@`a`.*", "CREATE ROUTINE@`a`.*", "CREATE@`b`.`t`", "INSERT@`__opendts`.*", "CREATE@`__opendts`.*"},
			[]string{"CREATE ROUTINE@`b`", "CREATE USER"}},
		{"target instance", engine.Spec{MigrateType: engine.MigrateFull, MigrateObject: engine.MigrateObjectWholeInstance}, false,
			[]string{"CREATE USER@*.*", "GRANT OPTION@*.*", "CREATE@*.*"}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var got string
			if c.source {
				got = names(sourceNeeds(c.spec))
			} else {
				got = names(targetNeeds(c.spec))
			}
			for _, w := range c.want {
				if !strings.Contains(got, w) {
					t.Errorf("needs lack %s: %s", w, got)
				}
			}
			for _, w := range c.never {
				if strings.Contains(got, w) {
					t.Errorf("needs contain %s: %s", w, got)
				}
			}
		})
	}
}

func with(spec engine.Spec, migrateType engine.MigrateType) engine.Spec {
	spec.MigrateType = migrateType
	return spec
}
