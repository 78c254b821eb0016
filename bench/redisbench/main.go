// Command redisbench is the measuring half of bench/redis.sh: it fills a
// Redis source with keys of mixed types, times a native replica
// (REPLICAOF) and an opendts full + incremental job (through the API, with
// the official SDK) to a synced target, then puts a fixed-rate write load
// on the source with a heartbeat key and reports the lag of both.
package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common"
	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/profile"
	sdk "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/dts/v20180330"
)

var (
	srcAddr    = flag.String("src", "", "source host:port")
	nativeAddr = flag.String("native", "", "server to make a native replica of the source")
	dstAddr    = flag.String("target", "", "opendts's target host:port")
	endpoint   = flag.String("endpoint", os.Getenv("OPENDTS_ENDPOINT"), "opendts API host:port")
	keys       = flag.Int("keys", 2_000_000, "keys to fill the source with")
	rate       = flag.Int("rate", 20_000, "writes per second during the load")
	duration   = flag.Duration("duration", 60*time.Second, "length of the load")
)

func die(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "redisbench: "+format+"\n", a...)
	os.Exit(1)
}

func client(addr string) *goredis.Client {
	return goredis.NewClient(&goredis.Options{Addr: addr, Protocol: 2, ReadTimeout: 5 * time.Minute, PoolSize: 8})
}

func main() {
	flag.Parse()
	ctx := context.Background()
	src, native, dst := client(*srcAddr), client(*nativeAddr), client(*dstAddr)

	t0 := time.Now()
	fill(ctx, src, *keys)
	n := src.DBSize(ctx).Val()
	info := src.Info(ctx, "memory").Val()
	fmt.Printf("source filled: %d keys of mixed types in %.1f s (%s)\n", n, time.Since(t0).Seconds(), field(info, "used_memory_human"))

	// Native replica.
	host, port, _ := strings.Cut(*srcAddr, ":")
	t0 = time.Now()
	if err := native.Do(ctx, "REPLICAOF", host, port).Err(); err != nil {
		die("REPLICAOF: %v", err)
	}
	for {
		in := native.Info(ctx, "replication").Val()
		if field(in, "master_link_status") == "up" && field(in, "master_sync_in_progress") == "0" {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	nativeSync := time.Since(t0)
	fmt.Printf("native replica: synced in %.2f s (%.0f keys/s)\n", nativeSync.Seconds(), float64(n)/nativeSync.Seconds())

	// opendts.
	api := sdkClient()
	id := createJob(api, *srcAddr, *dstAddr)
	check := sdk.NewCreateMigrateCheckJobRequest()
	check.JobId = &id
	if _, err := api.CreateMigrateCheckJob(check); err != nil {
		die("CreateMigrateCheckJob: %v", err)
	}
	waitStatus(api, id, 4, 2*time.Minute)
	start := sdk.NewStartMigrateJobRequest()
	start.JobId = &id
	t0 = time.Now()
	if _, err := api.StartMigrateJob(start); err != nil {
		die("StartMigrateJob: %v", err)
	}
	waitStatus(api, id, 8, 30*time.Minute)
	ours := time.Since(t0)
	fmt.Printf("opendts: synced (status 8) in %.2f s (%.0f keys/s), %.2fx the native replica's time\n", ours.Seconds(), float64(n)/ours.Seconds(), ours.Seconds()/nativeSync.Seconds())

	// Load with a heartbeat.
	fmt.Printf("load: %d writes/s for %s, heartbeat every 100 ms\n", *rate, *duration)
	lags := map[string]*[]time.Duration{"native": {}, "opendts": {}}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var lastBeat struct {
		sync.Mutex
		v int64
	}
	wg.Go(func() { writeLoad(ctx, src, *rate, stop) })
	wg.Go(func() {
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				v := time.Now().UnixNano()
				src.Set(ctx, "opendts-bench:heartbeat", v, 0)
				lastBeat.Lock()
				lastBeat.v = v
				lastBeat.Unlock()
			}
		}
	})
	var apiLag []string
	watchers := sync.WaitGroup{}
	watchDone := make(chan struct{})
	for name, c := range map[string]*goredis.Client{"native": native, "opendts": dst} {
		watchers.Go(func() { watch(ctx, c, lags[name], watchDone) })
	}
	wg.Go(func() {
		t := time.NewTicker(10 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				j := describe(api, id)
				if j.Detail != nil && j.Detail.SecondsBehindMaster != nil {
					apiLag = append(apiLag, fmt.Sprintf("%ds/%dB", *j.Detail.SecondsBehindMaster, *j.Detail.MasterSlaveDistance))
				}
			}
		}
	})
	time.Sleep(*duration)
	close(stop)
	stopped := time.Now()
	wg.Wait()
	lastBeat.Lock()
	final := lastBeat.v
	lastBeat.Unlock()
	for name, c := range map[string]*goredis.Client{"native": native, "opendts": dst} {
		for {
			v, _ := c.Get(ctx, "opendts-bench:heartbeat").Int64()
			if v >= final {
				break
			}
			time.Sleep(time.Millisecond)
		}
		fmt.Printf("%s: caught up %.0f ms after the load stopped\n", name, float64(time.Since(stopped).Microseconds())/1000)
	}
	close(watchDone)
	watchers.Wait()
	for _, name := range []string{"native", "opendts"} {
		l := *lags[name]
		slices.Sort(l)
		if len(l) == 0 {
			fmt.Printf("%s: no heartbeat seen\n", name)
			continue
		}
		fmt.Printf("%s lag over %d heartbeats: p50 %.1f ms, p99 %.1f ms, max %.1f ms\n", name, len(l),
			ms(l[len(l)/2]), ms(l[len(l)*99/100]), ms(l[len(l)-1]))
	}
	fmt.Printf("opendts lag as the API reported it every 10 s (SecondsBehindMaster/MasterSlaveDistance): %s\n", strings.Join(apiLag, " "))

	complete := sdk.NewCompleteMigrateJobRequest()
	complete.JobId = &id
	if _, err := api.CompleteMigrateJob(complete); err != nil {
		die("CompleteMigrateJob: %v", err)
	}
	waitStatus(api, id, 9, 5*time.Minute)
	// Keys with a TTL are left out: a replica waits for its master's DELs
	// while opendts's target, a master itself, expires them by its clock.
	sn, dn, nn := persistent(ctx, src), persistent(ctx, dst), persistent(ctx, native)
	fmt.Printf("completed (status 9): keys without a TTL: source %d, opendts target %d (1 is opendts's checkpoint), native replica %d\n", sn, dn, nn)
	if dn-1 != sn {
		os.Exit(1)
	}
}

// persistent is the number of keys without a TTL in database 0.
func persistent(ctx context.Context, c *goredis.Client) int64 {
	v := field(c.Info(ctx, "keyspace").Val(), "db0")
	var keys, expires int64
	for _, f := range strings.Split(v, ",") {
		k, n, _ := strings.Cut(f, "=")
		x, _ := strconv.ParseInt(n, 10, 64)
		switch k {
		case "keys":
			keys = x
		case "expires":
			expires = x
		}
	}
	return keys - expires
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func field(info, name string) string {
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), name+":"); ok {
			return v
		}
	}
	return ""
}

// fill writes n keys: 60% strings (DEBUG POPULATE), the rest hashes,
// lists, sets and sorted sets of 5 elements, by server-side loops.
func fill(ctx context.Context, c *goredis.Client, n int) {
	strs := n * 6 / 10
	if err := c.Do(ctx, "DEBUG", "POPULATE", strs, "str", 32).Err(); err != nil {
		die("DEBUG POPULATE: %v", err)
	}
	const script = `
local kind, from, to = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
for i = from, to do
  local k = kind .. ':' .. i
  if kind == 'hash' then redis.call('HSET', k, 'a', i, 'b', 'value-b', 'c', i * 2, 'd', 'value-d', 'e', 'e')
  elseif kind == 'list' then redis.call('RPUSH', k, i, 'two', 'three', i + 1, 'five')
  elseif kind == 'set' then redis.call('SADD', k, i, 'm2', 'm3', 'm4', 'm5')
  else redis.call('ZADD', k, 1, 'a', 2, 'b', 3, i, 4, 'd', 5.5, 'e') end
end
return 1`
	per := (n - strs) / 4
	for _, kind := range []string{"hash", "list", "set", "zset"} {
		for from := 0; from < per; from += 50_000 {
			to := min(per, from+50_000) - 1
			if err := c.Eval(ctx, script, nil, kind, from, to).Err(); err != nil {
				die("fill %s: %v", kind, err)
			}
		}
	}
}

// writeLoad writes rate commands a second of mixed kinds, in pipelines
// every 10 ms, until stop.
func writeLoad(ctx context.Context, c *goredis.Client, rate int, stop <-chan struct{}) {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	per := rate / 100
	i := 0
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		pipe := c.Pipeline()
		for range per {
			k := strconv.Itoa(rand.IntN(200_000))
			switch i % 6 {
			case 0:
				pipe.Set(ctx, "load:s:"+k, i, 0)
			case 1:
				pipe.HSet(ctx, "load:h:"+k, "f", i)
			case 2:
				pipe.LPush(ctx, "load:l:"+strconv.Itoa(i%1000), i)
			case 3:
				pipe.ZAdd(ctx, "load:z:"+strconv.Itoa(i%1000), goredis.Z{Score: float64(i), Member: k})
			case 4:
				pipe.Incr(ctx, "load:counter")
			default:
				pipe.Set(ctx, "load:ttl:"+k, i, time.Duration(1+rand.IntN(30))*time.Second)
			}
			i++
		}
		if _, err := pipe.Exec(ctx); err != nil {
			die("load: %v", err)
		}
	}
}

// watch polls the heartbeat on c every 2 ms and records, for each new
// value, how long after it was written it appeared.
func watch(ctx context.Context, c *goredis.Client, lags *[]time.Duration, done <-chan struct{}) {
	var last int64
	for {
		select {
		case <-done:
			return
		default:
		}
		v, err := c.Get(ctx, "opendts-bench:heartbeat").Int64()
		if err == nil && v > last {
			last = v
			*lags = append(*lags, time.Since(time.Unix(0, v)))
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func sdkClient() *sdk.Client {
	cpf := profile.NewClientProfile()
	cpf.HttpProfile.Endpoint = *endpoint
	cpf.HttpProfile.Scheme = "http"
	c, err := sdk.NewClient(common.NewCredential(os.Getenv("OPENDTS_SECRET_ID"), os.Getenv("OPENDTS_SECRET_KEY")), "ap-guangzhou", cpf)
	if err != nil {
		die("sdk: %v", err)
	}
	return c
}

func sp(s string) *string { return &s }
func ip(i int64) *int64   { return &i }

func createJob(api *sdk.Client, src, dst string) string {
	sh, spt, _ := strings.Cut(src, ":")
	dh, dpt, _ := strings.Cut(dst, ":")
	sport, _ := strconv.ParseInt(spt, 10, 64)
	dport, _ := strconv.ParseInt(dpt, 10, 64)
	req := sdk.NewCreateMigrateJobRequest()
	req.JobName = sp("redis bench")
	req.MigrateOption = &sdk.MigrateOption{RunMode: ip(1), MigrateType: ip(3), MigrateObject: ip(1), ConsistencyType: ip(5)}
	req.SrcDatabaseType, req.SrcAccessType = sp("redis"), sp("extranet")
	req.SrcInfo = &sdk.SrcInfo{Ip: sp(sh), Port: ip(sport), Password: sp("")}
	req.DstDatabaseType, req.DstAccessType = sp("redis"), sp("extranet")
	req.DstInfo = &sdk.DstInfo{Ip: sp(dh), Port: ip(dport), Password: sp("")}
	resp, err := api.CreateMigrateJob(req)
	if err != nil {
		die("CreateMigrateJob: %v", err)
	}
	return *resp.Response.JobId
}

func describe(api *sdk.Client, id string) *sdk.MigrateJobInfo {
	req := sdk.NewDescribeMigrateJobsRequest()
	req.JobId = &id
	resp, err := api.DescribeMigrateJobs(req)
	if err != nil || len(resp.Response.JobList) != 1 {
		die("DescribeMigrateJobs: %v", err)
	}
	return resp.Response.JobList[0]
}

func waitStatus(api *sdk.Client, id string, want int64, timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for {
		j := describe(api, id)
		if *j.Status == want {
			return
		}
		if *j.Status == 5 || *j.Status == 10 || time.Now().After(deadline) {
			var msgs []string
			for _, e := range j.ErrorInfo {
				msgs = append(msgs, *e.ErrorLog)
			}
			die("job %s at status %d, want %d: %s", id, *j.Status, want, strings.Join(msgs, "; "))
		}
		time.Sleep(20 * time.Millisecond)
	}
}
