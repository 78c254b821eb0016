package postgres_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/opendts/opendts/internal/engine"
	"github.com/opendts/opendts/internal/engine/driver"
	"github.com/opendts/opendts/internal/engine/postgres"
	"github.com/opendts/opendts/internal/testpg"
)

// progressHook runs f once, when the copy has passed a share.
type progressHook struct {
	recorder
	at   int
	once sync.Once
	f    func()
}

func (p *progressHook) Progress(o, c int) {
	p.recorder.Progress(o, c)
	if o > 5 && c >= p.at && c < 100 {
		p.once.Do(func() { go p.f() })
	}
}

// A source or target restarted in the middle of the copy costs a pause,
// not the job: chunks that failed are copied again, and a lost snapshot
// is replaced by a new one.
func TestCopySurvivesRestarts(t *testing.T) {
	for _, side := range []string{"source", "target"} {
		t.Run(side, func(t *testing.T) {
			src, dst := testpg.Start(t), testpg.Start(t)
			src.CreateDatabase(t, "shop")
			src.Exec(t, "shop",
				`CREATE TABLE big (id int PRIMARY KEY, v text)`,
				`INSERT INTO big SELECT g, repeat(md5(g::text), 30) FROM generate_series(1, 150000) g`,
				`CREATE TABLE heap (v text)`,
				`INSERT INTO heap SELECT repeat(md5((g % 100)::text), 30) FROM generate_series(1, 60000) g`,
				`ANALYZE`)
			spec := engine.Spec{
				JobID: "pg-restart-" + side, MigrateType: engine.MigrateFull, MigrateObject: engine.MigrateObjectSelected,
				Objects: []engine.ObjectSelection{{Database: "shop"}},
				Source:  endpoint(src), Target: endpoint(dst), ConsistencyType: engine.ConsistencyFull,
			}
			victim := src
			if side == "target" {
				victim = dst
			}
			restarted := make(chan struct{})
			hook := &progressHook{at: 20, f: func() {
				victim.Restart(t, 500*time.Millisecond)
				close(restarted)
			}}
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			eng := postgres.New(postgres.Config{Workers: 2, ChunkRows: 5000, RetryFor: time.Minute})
			if err := driver.Migrate(ctx, eng, spec, hook, nil); err != nil {
				t.Fatalf("migrate: %v", err)
			}
			select {
			case <-restarted:
			default:
				t.Fatal("the copy ended before the restart")
			}
			sameRows(t, src, dst, "shop")
			for _, v := range hook.verified {
				if v.Differences != 0 {
					t.Errorf("verify %s: %s", v.Table, v.Detail)
				}
			}
		})
	}
}
