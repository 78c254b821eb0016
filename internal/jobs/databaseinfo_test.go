package jobs

import (
	"errors"
	"reflect"
	"testing"

	"github.com/opendts/opendts/internal/engine"
)

func TestParseDatabaseInfo(t *testing.T) {
	tests := []struct {
		name, dbType, text string
		want               []engine.ObjectSelection
		normal             string
		bad                bool
	}{
		{name: "empty is the whole instance", dbType: "mysql", text: "", normal: "[]"},
		{name: "empty array", dbType: "mysql", text: " [] ", normal: "[]"},
		{name: "document's database-table example", dbType: "mysql",
			text:   `[{"Database":"db1","Table":["table1","table2"]},{"Database":"db2"}]`,
			want:   []engine.ObjectSelection{{Database: "db1", Tables: []string{"table1", "table2"}}, {Database: "db2"}},
			normal: `[{"Database":"db1","Table":["table1","table2"]},{"Database":"db2"}]`},
		{name: "document's database-schema-table example", dbType: "postgresql",
			text: `[{"Database":"db1","Schema":"s1","Table":["table1","table2"]},{"Database":"db1","Schema":"s2","Table":["table1","table2"]},{"Database":"db2","Schema":"s1","Table":["table1","table2"]},{"Database":"db3"},{"Database":"db4","Schema":"s1"}]`,
			want: []engine.ObjectSelection{
				{Database: "db1", Schema: "s1", Tables: []string{"table1", "table2"}},
				{Database: "db1", Schema: "s2", Tables: []string{"table1", "table2"}},
				{Database: "db2", Schema: "s1", Tables: []string{"table1", "table2"}},
				{Database: "db3"}, {Database: "db4", Schema: "s1"},
			},
			normal: `[{"Database":"db1","Schema":"s1","Table":["table1","table2"]},{"Database":"db1","Schema":"s2","Table":["table1","table2"]},{"Database":"db2","Schema":"s1","Table":["table1","table2"]},{"Database":"db3"},{"Database":"db4","Schema":"s1"}]`},
		{name: "odd characters kept", dbType: "mariadb", text: `[{"Database":"my db","Table":["order","t😀"]}]`,
			want:   []engine.ObjectSelection{{Database: "my db", Tables: []string{"order", "t😀"}}},
			normal: `[{"Database":"my db","Table":["order","t😀"]}]`},
		{name: "schema on mysql", dbType: "mysql", text: `[{"Database":"a","Schema":"s"}]`, bad: true},
		{name: "tables without schema on postgresql", dbType: "postgresql", text: `[{"Database":"a","Table":["t"]}]`, bad: true},
		{name: "no database", dbType: "mysql", text: `[{"Table":["t"]}]`, bad: true},
		{name: "empty database", dbType: "mysql", text: `[{"Database":""}]`, bad: true},
		{name: "unknown key", dbType: "mysql", text: `[{"Database":"a","Tables":["t"]}]`, bad: true},
		{name: "duplicate table", dbType: "mysql", text: `[{"Database":"a","Table":["t","t"]}]`, bad: true},
		{name: "duplicate database", dbType: "mysql", text: `[{"Database":"a"},{"Database":"a"}]`, bad: true},
		{name: "empty table list", dbType: "mysql", text: `[{"Database":"a","Table":[]}]`, bad: true},
		{name: "empty table name", dbType: "mysql", text: `[{"Database":"a","Table":[""]}]`, bad: true},
		{name: "too long name", dbType: "mysql", text: `[{"Database":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}]`, bad: true},
		{name: "old unquoted form", dbType: "mysql", text: `[{Database:db1,Table:[table1]}]`, bad: true},
		{name: "an object, not an array", dbType: "mysql", text: `{"Database":"a"}`, bad: true},
		{name: "trailing garbage", dbType: "mysql", text: `[] []`, bad: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, normal, err := ParseDatabaseInfo(tt.dbType, tt.text)
			if tt.bad {
				var inv *InvalidError
				if !errors.As(err, &inv) || inv.Param != "DatabaseInfo" {
					t.Fatalf("err = %v, want an InvalidError on DatabaseInfo", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) || normal != tt.normal {
				t.Errorf("got %+v %s\nwant %+v %s", got, normal, tt.want, tt.normal)
			}
		})
	}
}

func TestOverlap(t *testing.T) {
	sel := func(db string, tables ...string) engine.ObjectSelection {
		return engine.ObjectSelection{Database: db, Tables: tables}
	}
	tests := []struct {
		name string
		a, b []engine.ObjectSelection
		hit  bool
	}{
		{"two whole instances", nil, nil, true},
		{"whole instance and a table", nil, []engine.ObjectSelection{sel("a", "t")}, true},
		{"same table", []engine.ObjectSelection{sel("a", "t", "u")}, []engine.ObjectSelection{sel("a", "u")}, true},
		{"database and its table", []engine.ObjectSelection{sel("a")}, []engine.ObjectSelection{sel("a", "u")}, true},
		{"other tables", []engine.ObjectSelection{sel("a", "t")}, []engine.ObjectSelection{sel("a", "u")}, false},
		{"other databases", []engine.ObjectSelection{sel("a")}, []engine.ObjectSelection{sel("b")}, false},
		{"other schemas", []engine.ObjectSelection{{Database: "a", Schema: "s"}}, []engine.ObjectSelection{{Database: "a", Schema: "r"}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := overlap(tt.a, tt.b) != ""; got != tt.hit {
				t.Errorf("overlap = %v, want %v", got, tt.hit)
			}
		})
	}
}
