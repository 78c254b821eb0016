package mysql

import (
	"encoding/json"
	"testing"
)

func TestPositionOrder(t *testing.T) {
	tests := []struct {
		a, b position
		less bool
	}{
		{position{File: "mysql-bin.000001", Pos: 4}, position{File: "mysql-bin.000001", Pos: 5}, true},
		{position{File: "mysql-bin.000002", Pos: 4}, position{File: "mysql-bin.000001", Pos: 900}, false},
		// The roll-over past six digits.
		{position{File: "mysql-bin.999999", Pos: 900}, position{File: "mysql-bin.1000000", Pos: 4}, true},
		{position{File: "mysql-bin.1000000", Pos: 4}, position{File: "mysql-bin.999999", Pos: 900}, false},
		{position{File: "mysql-bin.1000000", Pos: 4}, position{File: "mysql-bin.1000000", Pos: 4}, false},
		// Not numbered: as strings.
		{position{File: "a", Pos: 1}, position{File: "b", Pos: 0}, true},
	}
	for _, tt := range tests {
		if got := tt.a.less(tt.b); got != tt.less {
			t.Errorf("%v < %v = %v, want %v", tt.a, tt.b, got, tt.less)
		}
	}
}

// Checkpoints written before positions had one type keep loading.
func TestPositionJSONCompatible(t *testing.T) {
	var p position
	if err := json.Unmarshal([]byte(`{"File":"mariadb-bin.000003","Pos":1234,"GTID":"0-1-7"}`), &p); err != nil {
		t.Fatal(err)
	}
	if p != (position{File: "mariadb-bin.000003", Pos: 1234, GTID: "0-1-7"}) {
		t.Fatalf("decoded %+v", p)
	}
}
