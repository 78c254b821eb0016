package mysql

import (
	"context"
	"testing"
	"time"

	"github.com/opendts/opendts/internal/engine"
	"github.com/opendts/opendts/internal/testdb"
)

// A fenced run's writer session that sits idle inside a transaction (its
// node paused) is ended by the server after FencedIdleTimeout: the row
// locks it held stop blocking the job's new owner.
func TestFenceMySQLIdleWriterReleasesLocks(t *testing.T) {
	src, dst := testdb.Shared(t)
	db := src.NewDatabase(t, "fenceidle")
	t.Cleanup(func() { dst.Exec(t, "DROP DATABASE IF EXISTS `"+db+"`") })
	dst.Exec(t, "CREATE DATABASE `"+db+"`", "CREATE TABLE `"+db+"`.t (id INT PRIMARY KEY)")
	e := New(Config{Workers: 1, FencedIdleTimeout: 2 * time.Second})
	spec := engine.Spec{JobID: "dts-fenceidle", MigrateType: engine.MigrateFull, MigrateObject: engine.MigrateObjectSelected,
		Objects: []engine.ObjectSelection{{Database: db}}, Epoch: 5,
		Source: engine.Endpoint{DatabaseType: "mariadb", Host: src.Host, Port: src.Port, User: "root"},
		Target: engine.Endpoint{DatabaseType: "mariadb", Host: dst.Host, Port: dst.Port, User: "root"}}
	ctx := context.Background()
	mi, err := e.Open(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	defer mi.Close()
	w, closeW, err := mi.(*migration).writerPool(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer closeW()
	tx, err := w.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.Exec("INSERT INTO `" + db + "`.t VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	// The new owner writes the same row; it waits for the paused
	// transaction, which the server ends.
	started := time.Now()
	owner := dst.DB(t)
	if _, err := owner.Exec("INSERT INTO `" + db + "`.t VALUES (1)"); err != nil {
		t.Fatalf("the new owner's write: %v", err)
	}
	waited := time.Since(started)
	t.Logf("the new owner waited %s", waited.Round(time.Millisecond))
	if waited > 10*time.Second {
		t.Fatalf("the new owner waited %s on the paused transaction", waited)
	}
	if err := tx.Commit(); err == nil {
		t.Fatal("the paused transaction committed after the server ended its session")
	}

	// Without an epoch the writers are the run's own pool, as before.
	spec.Epoch = 0
	m0, err := e.Open(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	defer m0.Close()
	if w0, _, _ := m0.(*migration).writerPool(ctx); w0 != m0.(*migration).dst {
		t.Fatal("an epoch 0 run opened a pool of its own for the writers")
	}
}
