package mysql

import (
	"reflect"
	"testing"
)

func testTable(key ...int) *cdcTable {
	t := &cdcTable{db: "d", name: "t", cols: []cdcColumn{
		{name: "id", dataType: "int", kind: kindExact},
		{name: "v", dataType: "varchar", kind: kindText, charset: "utf8mb4"},
	}, stored: []int{0, 1}, key: key}
	t.keyStored = key
	return t
}

// The net effect of a group per key, written as few statements, deletes
// first.
func TestGroupFoldsChangesPerKey(t *testing.T) {
	tbl := testTable(0)
	row := func(id int32, v string) []any { return []any{id, v} }
	g := newGroup()
	g.add([]rowChange{
		{t: tbl, op: opInsert, after: row(1, "a")},
		{t: tbl, op: opUpdate, before: row(1, "a"), after: row(1, "b")},
		{t: tbl, op: opInsert, after: row(2, "x")},
		{t: tbl, op: opDelete, before: row(2, "x")},
		// A key change: 3 goes, 4 comes; then 4 goes back to 3.
		{t: tbl, op: opUpdate, before: row(3, "c"), after: row(4, "c")},
		{t: tbl, op: opUpdate, before: row(4, "c"), after: row(3, "d")},
		{t: tbl, op: opDelete, before: row(5, "e")},
	}, 7)
	got := g.statements(1<<20, nil)
	want := []string{
		"DELETE FROM `d`.`t` WHERE `id` IN (2,4,5)",
		"REPLACE INTO `d`.`t` (`id`, `v`) VALUES (1,_utf8mb4'b'),(3,_utf8mb4'd')",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("statements:\n got %q\nwant %q", got, want)
	}
	if g.changes != 7 || g.rows != 7 {
		t.Errorf("changes %d rows %d, want 7 and 7", g.changes, g.rows)
	}
}

// Composite keys are found by OR of conjunctions; statements are cut at
// the size given.
func TestGroupCompositeKeyAndSplit(t *testing.T) {
	tbl := testTable(0, 1)
	g := newGroup()
	g.add([]rowChange{
		{t: tbl, op: opDelete, before: []any{int32(1), "a"}},
		{t: tbl, op: opDelete, before: []any{int32(2), "b"}},
	}, 2)
	got := g.statements(1<<20, nil)
	want := []string{"DELETE FROM `d`.`t` WHERE (`id` <=> 1 AND `v` <=> _utf8mb4'a') OR (`id` <=> 2 AND `v` <=> _utf8mb4'b')"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("statements:\n got %q\nwant %q", got, want)
	}
	g = newGroup()
	for i := range 10 {
		g.add([]rowChange{{t: testTable(0), op: opInsert, after: []any{int32(i), "v"}}}, 1)
	}
	if n := len(g.statements(1, nil)); n != 10 {
		t.Errorf("with a 1-byte limit: %d statements, want one per row (10)", n)
	}
}

// Tables whose rows are not independent keep one statement per change, in
// order, before the folded tables.
func TestGroupSerialTablesKeepOrder(t *testing.T) {
	keyless := testTable()
	g := newGroup()
	g.add([]rowChange{
		{t: keyless, op: opInsert, after: []any{int32(1), "a"}},
		{t: keyless, op: opDelete, before: []any{int32(1), "a"}},
	}, 2)
	got := g.statements(1<<20, nil)
	want := []string{
		"INSERT INTO `d`.`t` (`id`, `v`) VALUES (1,_utf8mb4'a')",
		"DELETE FROM `d`.`t` WHERE `id` <=> 1 AND BINARY `v` <=> _utf8mb4'a' LIMIT 1",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("statements:\n got %q\nwant %q", got, want)
	}
}

// A key with a generated column (MySQL allows one in a primary key) is not
// in the row images written back: such rows are found by all their stored
// values, one at most.
func TestGeneratedKeyMatchesAllColumns(t *testing.T) {
	tbl := &cdcTable{db: "d", name: "t", cols: []cdcColumn{
		{name: "a", dataType: "int", kind: kindExact},
		{name: "g", dataType: "int", kind: kindExact, generated: true},
		{name: "v", dataType: "int", kind: kindExact},
	}, stored: []int{0, 2}, key: []int{0, 1}, keyStored: []int{0}, generatedKey: true}
	got, exact := serialSQL(rowChange{t: tbl, op: opUpdate, before: []any{int32(1), int32(2)}, after: []any{int32(1), int32(3)}})
	want := "UPDATE `d`.`t` SET `a` = 1, `v` = 3 WHERE `a` <=> 1 AND `v` <=> 2 LIMIT 1"
	if got != want || !exact {
		t.Errorf("got %q (exact %v), want %q", got, exact, want)
	}
}
