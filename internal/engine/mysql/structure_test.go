package mysql

import (
	"reflect"
	"testing"
)

func TestBatchesGroupSmallWholeTables(t *testing.T) {
	var chunks []chunk
	for i := range 100 {
		chunks = append(chunks, chunk{ID: i + 1, DB: "d", Table: "t", EstRows: 3})
	}
	chunks = append(chunks,
		chunk{ID: 101, DB: "d", Table: "big", Where: "`id` < 10", EstRows: 10},
		chunk{ID: 102, DB: "d", Table: "s1", EstRows: 1500},
		chunk{ID: 103, DB: "d", Table: "s2", EstRows: 1000}, // would pass batchRows with s1
		chunk{ID: 104, DB: "d", Table: "large", EstRows: 5000},
		chunk{ID: 105, DB: "d", Table: "empty", EstRows: 0},
	)
	var sizes []int
	seen := 0
	for _, b := range batches(chunks) {
		sizes = append(sizes, len(b))
		for _, ch := range b {
			if ch.ID != seen+1 {
				t.Fatalf("chunk %d after %d: batches must keep the order", ch.ID, seen)
			}
			seen = ch.ID
		}
	}
	if want := []int{batchChunks, 100 - batchChunks, 1, 1, 1, 1, 1}; !reflect.DeepEqual(sizes, want) {
		t.Errorf("batch sizes %v, want %v", sizes, want)
	}
	if seen != 105 {
		t.Errorf("%d chunks batched, want 105", seen)
	}
}

func TestWavesFollowForeignKeys(t *testing.T) {
	o := func(name string) object { return object{db: "d", name: name, kind: "BASE TABLE"} }
	id := func(name string) string { return tableID("d", name) }
	tables := []object{o("child"), o("grandchild"), o("parent"), o("free"), o("a"), o("b")}
	parents := map[string][]string{
		id("child"):      {id("parent")},
		id("grandchild"): {id("child"), id("parent")},
		id("a"):          {id("b")},
		id("b"):          {id("a")}, // a cycle
	}
	var got [][]string
	for _, w := range waves(tables, parents) {
		var names []string
		for _, t := range w {
			names = append(names, t.name)
		}
		got = append(got, names)
	}
	want := [][]string{{"parent", "free"}, {"child"}, {"grandchild"}, {"a", "b"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("waves %v, want %v", got, want)
	}
}

func TestScopesReadWholeDatabasesWhole(t *testing.T) {
	var tables []object
	for i := range metaBatch + 1 {
		tables = append(tables, object{db: "some", name: string(rune('a'+i%26)) + string(rune('0'+i%10))})
	}
	tables = append(tables, object{db: "all", name: "x"}, object{db: "all", name: "y"})
	got := scopes(tables, map[string]bool{"all": true})
	if len(got) != 3 || len(got[0].tables) != metaBatch || len(got[1].tables) != 1 || got[2].db != "all" || got[2].tables != nil {
		t.Errorf("scopes %+v", got)
	}
}
