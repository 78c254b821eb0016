package testpg

import (
	"context"
	"testing"
)

func TestMain(m *testing.M) { Main(m) }

func TestSharedPairAndRole(t *testing.T) {
	src, dst := Shared(t)
	if src.Port == dst.Port {
		t.Fatalf("source and target share port %d", src.Port)
	}
	db := src.NewDatabase(t, "harness")
	src.Exec(t, db, "CREATE TABLE t (id int PRIMARY KEY)", "INSERT INTO t VALUES (1)")
	var level string
	if err := src.Conn(t, db).QueryRow(context.Background(), "SHOW wal_level").Scan(&level); err != nil || level != "logical" {
		t.Fatalf("wal_level = %q, %v; want logical", level, err)
	}
	role := src.NewRole(t, "harness", "s3cret")
	c := src.Conn(t, db)
	if _, err := c.Exec(context.Background(), "GRANT SELECT ON t TO "+role); err != nil {
		t.Fatal(err)
	}
}
