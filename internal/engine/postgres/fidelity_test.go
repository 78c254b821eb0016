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
