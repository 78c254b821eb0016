package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	sdkerrors "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/errors"
	sdk "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/dts/v20180330"

	goredis "github.com/redis/go-redis/v9"

	"github.com/opendts/opendts/internal/testredis"
)

func redisJob(src, dst *testredis.Server, migrateType int64, dbInfo string) *sdk.CreateMigrateJobRequest {
	req := sdk.NewCreateMigrateJobRequest()
	req.JobName = sp("e2e redis")
	req.MigrateOption = &sdk.MigrateOption{RunMode: ip(1), MigrateType: ip(migrateType), MigrateObject: ip(2), ConsistencyType: ip(2),
		ExternParams: sp(`{"ReplBacklogSize":64,"ClientOutputBufferHardLimit":512}`)}
	req.SrcDatabaseType, req.SrcAccessType = sp("redis"), sp("extranet")
	// No User: Redis's default user, with its password.
	req.SrcInfo = &sdk.SrcInfo{Ip: sp(src.Host), Port: ip(int64(src.Port)), Password: sp(src.Password)}
	req.DstDatabaseType, req.DstAccessType = sp("redis"), sp("extranet")
	req.DstInfo = &sdk.DstInfo{Ip: sp(dst.Host), Port: ip(int64(dst.Port)), Password: sp(dst.Password)}
	req.DatabaseInfo = sp(dbInfo)
	return req
}

func apiCode(err error) string {
	if e, ok := err.(*sdkerrors.TencentCloudSDKError); ok {
		return e.GetCode()
	}
	return ""
}

// A Redis full + incremental job through the official SDK, under a write
// load of INCR, LPUSH, APPEND, expiring keys and deletes, survives a kill
// -9 of `opendts serve` in its incremental phase: after Complete the
// target equals the source key by key and the counters are exact.
func TestRedisIncrementalThroughAPISurvivesKill(t *testing.T) {
	src := testredis.Start(t, "--requirepass", "src-secret-pw")
	dst := testredis.Start(t, "--requirepass", "dst-secret-pw")
	ctx := context.Background()
	sc := goredis.NewClient(&goredis.Options{Addr: src.Addr(), Password: src.Password, PoolSize: 1})
	defer sc.Close()
	testredis.Populate(t, sc)
	for i := range 5000 {
		sc.Set(ctx, "db3:"+strconv.Itoa(i), i, 0)
	}
	// Database 5 is not selected: it must not move.
	src.Client(t, 5).Set(ctx, "not-selected", 1, 0)

	s := startServer(t)
	// What the API refuses for Redis.
	if _, err := s.client().CreateMigrateJob(redisJob(src, dst, 1, `[{"Database":"0"}]`)); apiCode(err) != "InvalidParameterValue" {
		t.Fatalf("MigrateType 1 for redis: %v", err)
	}
	if _, err := s.client().CreateMigrateJob(redisJob(src, dst, 3, `[{"Database":"shop"}]`)); !strings.HasPrefix(apiCode(err), "InvalidParameter") {
		t.Fatalf("a named database for redis: %v", err)
	}
	resp, err := s.client().CreateMigrateJob(redisJob(src, dst, 3, `[{"Database":"0"},{"Database":"3"}]`))
	if err != nil {
		t.Fatal(err)
	}
	id := *resp.Response.JobId
	check := sdk.NewCreateMigrateCheckJobRequest()
	check.JobId = &id
	if _, err := s.client().CreateMigrateCheckJob(check); err != nil {
		t.Fatal(err)
	}
	s.wait(id, 4, 30*time.Second)

	stop := make(chan struct{})
	writes := make(chan int, 1)
	go func() {
		c := goredis.NewClient(&goredis.Options{Addr: src.Addr(), Password: src.Password})
		defer c.Close()
		n := 0
		for {
			select {
			case <-stop:
				writes <- n
				return
			default:
			}
			pipe := c.TxPipeline()
			pipe.Incr(ctx, "counter")
			pipe.LPush(ctx, "log", n)
			pipe.Append(ctx, "appended", "x")
			pipe.Set(ctx, "short:"+strconv.Itoa(n), n, 200*time.Millisecond)
			pipe.Set(ctx, "ring:"+strconv.Itoa(n%300), n, time.Hour)
			pipe.Del(ctx, "ring:"+strconv.Itoa((n+150)%300))
			if _, err := pipe.Exec(ctx); err != nil {
				t.Errorf("load: %v", err)
				writes <- n
				return
			}
			n++
		}
	}()

	start := sdk.NewStartMigrateJobRequest()
	start.JobId = &id
	if _, err := s.client().StartMigrateJob(start); err != nil {
		t.Fatal(err)
	}
	s.wait(id, 8, 60*time.Second)
	lagReq := sdk.NewDescribeMigrateJobsRequest()
	lagReq.JobId = &id
	lagResp, err := s.client().DescribeMigrateJobs(lagReq)
	if err != nil {
		t.Fatal(err)
	}
	if d := lagResp.Response.JobList[0].Detail; d == nil || d.SecondsBehindMaster == nil || *d.SecondsBehindMaster > 1 || d.MasterSlaveDistance == nil {
		t.Errorf("status 8 without a lag of at most 1 s in Detail: %+v", d)
	} else {
		t.Logf("at status 8 under load: SecondsBehindMaster %d, MasterSlaveDistance %d", *d.SecondsBehindMaster, *d.MasterSlaveDistance)
	}
	time.Sleep(500 * time.Millisecond)
	s.kill()
	time.Sleep(500 * time.Millisecond)
	s.start()
	s.wait(id, 8, 60*time.Second)
	time.Sleep(300 * time.Millisecond)
	close(stop)
	n := <-writes

	complete := sdk.NewCompleteMigrateJobRequest()
	complete.JobId = &id
	if _, err := s.client().CompleteMigrateJob(complete); err != nil {
		t.Fatal(err)
	}
	s.wait(id, 9, 60*time.Second)
	t.Logf("%d source transactions while the job ran", n)
	if got := dst.Do(t, "GET", "counter"); fmt.Sprint(got) != strconv.Itoa(n) {
		t.Fatalf("counter = %v on the target, the source made %d increments", got, n)
	}
	if got := dst.Do(t, "LLEN", "log"); fmt.Sprint(got) != strconv.Itoa(n) {
		t.Fatalf("log has %v elements on the target, want %d", got, n)
	}
	if got := dst.Do(t, "STRLEN", "appended"); fmt.Sprint(got) != strconv.Itoa(n) {
		t.Fatalf("appended is %v bytes on the target, want %d", got, n)
	}
	testredis.Compare(t, src, dst, []int{0, 3}, 2000)
	if n := dst.Client(t, 5).DBSize(ctx).Val(); n != 0 {
		t.Errorf("database 5 was not selected but %d keys moved", n)
	}
	if log := readAll(s.log.Name()); strings.Contains(log, "src-secret-pw") || strings.Contains(log, "dst-secret-pw") {
		t.Error("a password is in opendts's log")
	}
}

// kill -9 of `opendts serve` while the RDB is being written to the
// target: the restarted job empties what it wrote and starts over, then
// replicates and completes with the target equal to the source.
func TestRedisKillDuringRDB(t *testing.T) {
	src := testredis.Start(t)
	dst := testredis.Start(t)
	src.Do(t, "DEBUG", "POPULATE", 400000, "k", 100)
	s := startServer(t)
	req := redisJob(src, dst, 3, "")
	req.MigrateOption.MigrateObject = ip(1)
	resp, err := s.client().CreateMigrateJob(req)
	if err != nil {
		t.Fatal(err)
	}
	id := *resp.Response.JobId
	check := sdk.NewCreateMigrateCheckJobRequest()
	check.JobId = &id
	if _, err := s.client().CreateMigrateCheckJob(check); err != nil {
		t.Fatal(err)
	}
	s.wait(id, 4, 30*time.Second)
	start := sdk.NewStartMigrateJobRequest()
	start.JobId = &id
	if _, err := s.client().StartMigrateJob(start); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	var n int64
	for n < 1000 && time.Now().Before(deadline) {
		n, _ = dst.Do(t, "DBSIZE").(int64)
		time.Sleep(time.Millisecond)
	}
	s.kill()
	if n >= 400000 || n < 1000 {
		t.Fatalf("the kill did not land during the RDB (%d keys on the target)", n)
	}
	t.Logf("killed with %d of 400000 keys on the target", n)
	// Changes while opendts is down: a delete must not survive the
	// restart of the copy.
	src.Do(t, "DEL", "k:1", "k:2")
	src.Do(t, "SET", "while-down", "1")
	s.start()
	s.wait(id, 8, 120*time.Second)
	src.Do(t, "INCR", "after")
	complete := sdk.NewCompleteMigrateJobRequest()
	complete.JobId = &id
	if _, err := s.client().CompleteMigrateJob(complete); err != nil {
		t.Fatal(err)
	}
	s.wait(id, 9, 120*time.Second)
	testredis.Compare(t, src, dst, []int{0}, 2000)
}
