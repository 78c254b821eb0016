package mysql

import (
	"context"
	"maps"
	"slices"
	"testing"

	"github.com/opendts/opendts/internal/testdb"
)

// A DDL forgets the cached shapes of the table it names and of the tables
// a foreign key links to it, before or after; the others stay.
func TestDDLForgetsOnlyTheShapesItTouches(t *testing.T) {
	_, dst := testdb.Shared(t)
	db := dst.NewDatabase(t, "shapes")
	dst.Exec(t,
		"CREATE TABLE `"+db+"`.parent (id INT PRIMARY KEY)",
		"CREATE TABLE `"+db+"`.child (id INT PRIMARY KEY, p INT, KEY (p))",
		"CREATE TABLE `"+db+"`.old_parent (id INT PRIMARY KEY)",
		"CREATE TABLE `"+db+"`.linked (id INT PRIMARY KEY, o INT, KEY (o), FOREIGN KEY (o) REFERENCES `"+db+"`.old_parent (id))",
		"CREATE TABLE `"+db+"`.other (id INT PRIMARY KEY)",
	)
	inc := &incremental{m: &migration{dst: dst.DB(t)}}
	fill := func() {
		inc.tables = map[string]*cdcTable{}
		for _, n := range []string{"parent", "child", "old_parent", "linked", "other"} {
			inc.tables[tableID(db, n)] = &cdcTable{db: db, name: n}
		}
	}
	cached := func() []string {
		var out []string
		for k := range maps.Keys(inc.tables) {
			out = append(out, k[len(db)+1:])
		}
		slices.Sort(out)
		return out
	}
	ctx := context.Background()
	apply := func(q string, multi bool) {
		t.Helper()
		forget := inc.shapesTouched(ctx, q, db, multi)
		dst.Exec(t, "USE `"+db+"`", q)
		forget()
	}

	fill()
	apply("ALTER TABLE child ADD FOREIGN KEY (p) REFERENCES parent (id)", false)
	if got, want := cached(), []string{"linked", "old_parent", "other"}; !slices.Equal(got, want) {
		t.Errorf("after a new foreign key: cached %v, want %v", got, want)
	}
	fill()
	apply("ALTER TABLE linked DROP FOREIGN KEY linked_ibfk_1", false)
	if got, want := cached(), []string{"child", "other", "parent"}; !slices.Equal(got, want) {
		t.Errorf("after a dropped foreign key: cached %v, want %v", got, want)
	}
	fill()
	apply("RENAME TABLE other TO other2", true)
	if got := cached(); len(got) != 0 {
		t.Errorf("after a statement about several tables: cached %v, want none", got)
	}
}
