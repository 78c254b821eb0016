package engine

import "testing"

func TestSelection(t *testing.T) {
	spec := Spec{MigrateObject: MigrateObjectSelected, Objects: []ObjectSelection{
		{Database: "Shop", Tables: []string{"Orders", "items"}},
		{Database: "logs"},
		{Database: "pg", Schema: "Sales", Tables: []string{"t1"}},
		{Database: "pg2", Schema: "s1"},
	}}
	exact, folded := NewSelection(spec, false), NewSelection(spec, true)
	for _, tt := range []struct {
		db, schema, table string
		exact, folded     bool
	}{
		{"Shop", "", "Orders", true, true},
		{"shop", "", "orders", false, true},
		{"SHOP", "", "ITEMS", false, true},
		{"Shop", "", "other", false, false},
		{"logs", "", "anything", true, true},
		{"Logs", "", "anything", false, true},
		{"pg", "Sales", "t1", true, true},
		{"pg", "sales", "t1", false, true},
		{"pg", "other", "t1", false, false},
		{"pg2", "s1", "x", true, true},
		{"pg2", "s2", "x", false, false},
		{"nope", "", "t", false, false},
	} {
		if got := exact.Table(tt.db, tt.schema, tt.table); got != tt.exact {
			t.Errorf("exact %s.%s.%s = %v", tt.db, tt.schema, tt.table, got)
		}
		if got := folded.Table(tt.db, tt.schema, tt.table); got != tt.folded {
			t.Errorf("folded %s.%s.%s = %v", tt.db, tt.schema, tt.table, got)
		}
	}
	if !folded.WholeDatabase("LOGS") || exact.WholeDatabase("LOGS") || folded.WholeDatabase("shop") || folded.WholeDatabase("pg2") {
		t.Error("WholeDatabase")
	}
	whole := NewSelection(Spec{MigrateObject: MigrateObjectWholeInstance}, false)
	if !whole.Table("any", "", "t") || !whole.WholeDatabase("any") || !whole.WholeInstance() {
		t.Error("whole instance")
	}
}
