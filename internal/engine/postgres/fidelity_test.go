package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/opendts/opendts/internal/engine"
	"github.com/opendts/opendts/internal/engine/driver"
	"github.com/opendts/opendts/internal/engine/postgres"
	"github.com/opendts/opendts/internal/testpg"
)

// The fidelity data set (one of every structure and row kind issue 12
// lists: internal/testpg/testdata/fidelity.sql) migrates whole: the schema
// as pg_dump prints it, every row, sequence values and materialized views
// are equal on both sides, and the consistency check finds nothing.
func TestFidelity(t *testing.T) {
	src, dst := testpg.Shared(t)
	db := src.NewDatabase(t, "fidelity")
	t.Cleanup(func() { dst.DropDatabase(db) })
	f := testpg.LoadFidelity(t, src, db)
	// The roles exist on the target, as a DBA (or a whole-instance job)
	// makes them: owners and grants go with the objects.
	f.CreateRoles(t, dst)
	spec := engine.Spec{
		JobID: "pg-fidelity-" + db, MigrateType: engine.MigrateFull, MigrateObject: engine.MigrateObjectSelected,
		Objects: []engine.ObjectSelection{{Database: db}},
		Source:  endpoint(src), Target: endpoint(dst), ConsistencyType: engine.ConsistencyFull,
	}
	rec := &recorder{}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := driver.Migrate(ctx, postgres4(), spec, rec, nil); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	testpg.CompareDatabase(t, src, dst, db, db)
	for _, v := range rec.verified {
		if v.Differences != 0 {
			t.Errorf("verify %s: %d differences: %s %v", v.Table, v.Differences, v.Detail, v.FirstKeys)
		}
	}
	if len(rec.verified) == 0 {
		t.Error("the consistency check looked at no table")
	}
}

// postgres4 is the engine as serve runs it by default, but with chunks
// small enough to split the data set's big table.
func postgres4() *postgres.Engine {
	return postgres.New(postgres.Config{Workers: 4, ChunkRows: 20_000})
}

// A structure-only job (MigrateType 1) gives the target the same schema
// as pg_dump prints it, and no rows.
func TestFidelityStructureOnly(t *testing.T) {
	src, dst := testpg.Shared(t)
	db := src.NewDatabase(t, "fidstruct")
	t.Cleanup(func() { dst.DropDatabase(db) })
	f := testpg.LoadFidelity(t, src, db)
	f.CreateRoles(t, dst)
	spec := engine.Spec{
		JobID: "pg-fidstruct-" + db, MigrateType: engine.MigrateStructure, MigrateObject: engine.MigrateObjectSelected,
		Objects: []engine.ObjectSelection{{Database: db}},
		Source:  endpoint(src), Target: endpoint(dst), ConsistencyType: engine.ConsistencyNever,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := driver.Migrate(ctx, postgres4(), spec, &recorder{}, nil); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	testpg.CompareDatabaseWith(t, src, dst, db, db, testpg.CompareOptions{NoRows: true})
	var rows int64
	if err := dst.Conn(t, db).QueryRow(ctx, `SELECT coalesce(sum((xpath('/row/c/text()', query_to_xml(format('SELECT count(*) AS c FROM ONLY %I.%I', schemaname, tablename), false, true, '')))[1]::text::bigint), 0)::bigint
		FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')`).Scan(&rows); err != nil || rows != 0 {
		t.Errorf("a structure-only job left %d rows on the target (%v)", rows, err)
	}
}
