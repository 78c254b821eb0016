package mysql

import (
	"context"
	"fmt"
	"testing"

	"github.com/opendts/opendts/internal/engine"
	"github.com/opendts/opendts/internal/engine/driver"
	"github.com/opendts/opendts/internal/testdb"
)

type quietReport struct{}

func (quietReport) Plan([]engine.StepDef)               {}
func (quietReport) StepStarted(string)                  {}
func (quietReport) Progress(int, int)                   {}
func (quietReport) Lag(int64, int64)                    {}
func (quietReport) CaughtUp()                           {}
func (quietReport) Verified([]engine.TableVerification) {}
func (quietReport) TableProgress(engine.TableProgress)  {}

// With more small tables than its readers should read, the snapshot opens
// spare readers at the same moment, and workers move to them: every row
// still comes from that one moment.
func TestSpareReadersShareTheSnapshot(t *testing.T) {
	old := readerTables
	readerTables = 10
	t.Cleanup(func() { readerTables = old })
	src, dst := testdb.Shared(t)
	db := src.NewDatabase(t, "spare")
	t.Cleanup(func() { dst.Exec(t, "DROP DATABASE IF EXISTS `"+db+"`") })
	var stmts, names []string
	for i := range 80 {
		names = append(names, fmt.Sprintf("s%02d", i))
		stmts = append(stmts,
			fmt.Sprintf("CREATE TABLE `%s`.s%02d (id INT PRIMARY KEY, v INT)", db, i),
			fmt.Sprintf("INSERT INTO `%s`.s%02d VALUES (1, %d), (2, %d)", db, i, i, -i))
	}
	src.Exec(t, stmts...)
	spec := engine.Spec{
		JobID: "dts-spare01", MigrateType: engine.MigrateFull, MigrateObject: engine.MigrateObjectSelected,
		Objects:         []engine.ObjectSelection{{Database: db}},
		Source:          engine.Endpoint{DatabaseType: "mariadb", Host: src.Host, Port: src.Port, User: "root"},
		Target:          engine.Endpoint{DatabaseType: "mariadb", Host: dst.Host, Port: dst.Port, User: "root"},
		ConsistencyType: 5,
	}
	e := New(Config{Workers: 2})
	if err := driver.Migrate(context.Background(), e, spec, quietReport{}, nil); err != nil {
		t.Fatal(err)
	}
	sum := func(s *testdb.Server) string {
		out := ""
		for _, n := range names {
			var a, b int64
			if err := s.DB(t).QueryRow("SELECT COUNT(*), SUM(v * id) FROM `"+db+"`."+n).Scan(&a, &b); err != nil {
				t.Fatal(err)
			}
			out += fmt.Sprintf("%s:%d:%d ", n, a, b)
		}
		return out
	}
	if got, want := sum(dst), sum(src); got != want {
		t.Errorf("target %s\nsource %s", got, want)
	}
	infos := make([]*tableInfo, 80)
	for i := range infos {
		infos[i] = &tableInfo{estRows: 2}
	}
	if got := spareReaders(infos, 2); got != 6 {
		t.Errorf("spare readers for 80 small tables and 2 workers: %d, want 6", got)
	}
}
