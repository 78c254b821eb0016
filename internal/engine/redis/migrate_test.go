package redis_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/opendts/opendts/internal/engine"
	"github.com/opendts/opendts/internal/engine/driver"
	"github.com/opendts/opendts/internal/engine/redis"
	"github.com/opendts/opendts/internal/testredis"
)

// recorder is the job service's side of a run, for tests.
type recorder struct {
	mu       sync.Mutex
	steps    []string
	caught   chan struct{}
	once     sync.Once
	lag      engine.Lag
	verified []engine.TableVerification
}

func newRecorder() *recorder { return &recorder{caught: make(chan struct{})} }

func (r *recorder) Plan([]engine.StepDef) {}
func (r *recorder) StepStarted(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.steps = append(r.steps, id)
}
func (r *recorder) Progress(int, int) {}
func (r *recorder) Lag(s, b int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lag = engine.Lag{Seconds: s, Bytes: b}
}
func (r *recorder) CaughtUp()                          { r.once.Do(func() { close(r.caught) }) }
func (r *recorder) TableProgress(engine.TableProgress) {}
func (r *recorder) Verified(v []engine.TableVerification) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.verified = v
}

func endpoint(s *testredis.Server) engine.Endpoint {
	return engine.Endpoint{DatabaseType: "redis", Host: s.Host, Port: s.Port, Password: s.Password}
}

func spec(id string, src, dst *testredis.Server, t engine.MigrateType) engine.Spec {
	return engine.Spec{JobID: id, MigrateType: t, MigrateObject: engine.MigrateObjectWholeInstance,
		Source: endpoint(src), Target: endpoint(dst), ConsistencyType: engine.ConsistencyFull}
}

func populated(t *testing.T, args ...string) *testredis.Server {
	src := testredis.Start(t, args...)
	c := goredis.NewClient(&goredis.Options{Addr: src.Addr(), Password: src.Password, PoolSize: 1})
	defer c.Close()
	testredis.Populate(t, c)
	ctx := context.Background()
	for i := range 2000 {
		c.Set(ctx, fmt.Sprintf("db3:%d", i), i, 0)
	}
	return src
}

func newEngine() *redis.Engine {
	return redis.New(redis.Config{RetryFor: 20 * time.Second, BigKeyBytes: 64 << 10, BatchElements: 100})
}

func TestFullMigration(t *testing.T) {
	for _, diskless := range []string{"yes", "no"} {
		t.Run("diskless="+diskless, func(t *testing.T) {
			src := populated(t, "--repl-diskless-sync", diskless, "--repl-diskless-sync-delay", "0")
			dst := testredis.Start(t, "--requirepass", "target-pw")
			rec := newRecorder()
			if err := driver.Migrate(context.Background(), newEngine(), spec("job-full", src, dst, engine.MigrateFull), rec, nil); err != nil {
				t.Fatal(err)
			}
			testredis.Compare(t, src, dst, []int{0, 3}, 2000)
			if len(rec.verified) == 0 {
				t.Fatal("no consistency check ran")
			}
			if fn := dst.Do(t, "FUNCTION", "LIST"); fmt.Sprint(fn) == "[]" {
				t.Error("the function library did not move")
			}
		})
	}
}

// load writes non-idempotent commands until stop, and returns how many
// increments it made.
func load(t *testing.T, s *testredis.Server, stop <-chan struct{}) func() int {
	c := goredis.NewClient(&goredis.Options{Addr: s.Addr(), Password: s.Password})
	done := make(chan int, 1)
	go func() {
		defer c.Close()
		ctx := context.Background()
		n := 0
		for {
			select {
			case <-stop:
				done <- n
				return
			default:
			}
			pipe := c.TxPipeline()
			pipe.Incr(ctx, "counter")
			pipe.LPush(ctx, "log", n)
			pipe.Append(ctx, "appended", "x")
			pipe.Set(ctx, "short:"+strconv.Itoa(n), n, 300*time.Millisecond)
			pipe.Set(ctx, "long:"+strconv.Itoa(n%500), n, time.Hour)
			pipe.Del(ctx, "long:"+strconv.Itoa((n+250)%500))
			if _, err := pipe.Exec(ctx); err != nil {
				t.Errorf("load: %v", err)
				done <- n
				return
			}
			n++
			if n%100 == 0 {
				c3 := goredis.NewClient(&goredis.Options{Addr: s.Addr(), Password: s.Password, DB: 3})
				c3.Incr(ctx, "counter3")
				c3.Close()
			}
		}
	}()
	return func() int { return <-done }
}

func TestIncrementalAndResume(t *testing.T) {
	src := populated(t)
	dst := testredis.Start(t)
	e := newEngine()
	sp := spec("job-incr", src, dst, engine.MigrateFullAndIncremental)
	stopLoad := make(chan struct{})
	loaded := load(t, src, stopLoad)

	// First run: cancelled in the middle of the stream, as a stop or a
	// crash would end it.
	ctx, cancel := context.WithCancel(context.Background())
	rec := newRecorder()
	done := make(chan error, 1)
	go func() { done <- driver.Migrate(ctx, e, sp, rec, make(chan string)) }()
	select {
	case <-rec.caught:
	case err := <-done:
		t.Fatalf("the run ended before catching up: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("not caught up after 60 s")
	}
	time.Sleep(500 * time.Millisecond)
	cancel()
	<-done

	// Second run resumes by a partial resync.
	sp.Resume = true
	rec = newRecorder()
	complete := make(chan string, 1)
	go func() { done <- driver.Migrate(context.Background(), e, sp, rec, complete) }()
	select {
	case <-rec.caught:
	case err := <-done:
		t.Fatalf("the resumed run ended before catching up: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("resumed run not caught up after 60 s")
	}
	close(stopLoad)
	n := loaded()
	complete <- engine.CompleteWaitForSync
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got, _ := strconv.Atoi(fmt.Sprint(dst.Do(t, "GET", "counter")))
	if got != n {
		t.Fatalf("counter is %d on the target, %d increments were made", got, n)
	}
	testredis.Compare(t, src, dst, []int{0, 3}, 2000)
	// The source's settings are back.
	if v := fmt.Sprint(src.Do(t, "CONFIG", "GET", "repl-backlog-size")); !strings.Contains(v, "1048576") {
		t.Errorf("the source's repl-backlog-size was not restored: %s", v)
	}
}
