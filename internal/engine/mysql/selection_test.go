package mysql_test

import (
	"testing"
	"time"

	"github.com/opendts/opendts/internal/engine"
	"github.com/opendts/opendts/internal/engine/mysql"
	"github.com/opendts/opendts/internal/testdb"
)

// A selection spelled in another case than the source's names, on a
// source with lower_case_table_names=1, is matched the same way by the
// check, the copy and the change stream: the selected table moves whole
// and its changes follow; the table beside it stays behind.
func TestMixedCaseSelection(t *testing.T) {
	src := testdb.StartWith(t, "--lower-case-table-names=1")
	_, dst := testdb.Shared(t)
	db := "mixedcase"
	t.Cleanup(func() { dst.Exec(t, "DROP DATABASE IF EXISTS `"+db+"`") })
	src.Exec(t,
		"CREATE DATABASE MixedCase",
		"CREATE TABLE MixedCase.Orders (id INT PRIMARY KEY, v VARCHAR(20))",
		"INSERT INTO MixedCase.Orders VALUES (1, 'one'), (2, 'two')",
		"CREATE TABLE MixedCase.Other (id INT PRIMARY KEY)",
		"INSERT INTO MixedCase.Other VALUES (1)",
	)
	spec := fullSpec("dts-mixedcase", src, dst, db)
	spec.MigrateType = engine.MigrateFullAndIncremental
	spec.Objects = []engine.ObjectSelection{{Database: "MIXEDCASE", Tables: []string{"oRDERS"}}}
	e := mysql.New(mysql.Config{})

	for _, it := range runCheck(t, e, spec) {
		if it.Name == "SourceObjectsCheck" && it.Result != engine.ResultPass {
			t.Fatalf("the check does not find the selection: %+v", it)
		}
	}
	run := startCDC(t, e, spec)
	run.caughtUp(t)
	src.Exec(t,
		"INSERT INTO MixedCase.ORDERS VALUES (3, 'three')",
		"UPDATE mixedcase.orders SET v = 'uno' WHERE id = 1",
		"INSERT INTO MixedCase.Other VALUES (2)",
	)
	time.Sleep(300 * time.Millisecond)
	run.finish(t)
	testdb.CompareTables(t, src, dst, db, "orders")
	testdb.CompareAbsent(t, dst, db, "other")
}
