package testredis

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"testing"

	"github.com/redis/go-redis/v9"
)

// Populate writes every type in every encoding Redis 7 saves, binary
// keys and values with every byte, TTLs and a function library, into the
// client's database; c must hold one connection (PoolSize 1): it ends in
// database 3, where the caller may write more.
func Populate(t testing.TB, c *redis.Client) {
	t.Helper()
	ctx := context.Background()
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	do := func(args ...any) {
		t.Helper()
		if err := c.Do(ctx, args...).Err(); err != nil {
			t.Fatalf("%v: %v", args[:min(len(args), 3)], err)
		}
	}
	do("SET", "s:raw", "hello")
	do("SET", "s:int", "12345")
	do("SET", "s:neg", "-5")
	do("SET", "s:int16", "-30000")
	do("SET", "s:int32", "2000000000")
	do("SET", "s:big-int", "4294967296")
	do("SET", "s:lzf", bytes.Repeat([]byte("compress me please "), 5000))
	do("SET", all, all)
	do("SET", "s:ttl", "soon", "PX", 3600000)
	do("SET", "s:empty", "")
	do("RPUSH", "l:small", "a", "1", "-2", "300", "70000", "-9000000000", string(all))
	for i := range 3000 {
		do("RPUSH", "l:big", strconv.Itoa(i), fmt.Sprintf("element-%d", i))
	}
	do("RPUSH", "l:wide", bytes.Repeat([]byte("x"), 20000), "y")
	do("SADD", "set:int", 1, 2, 3, -100, 70000, 5000000000)
	do("SADD", "set:str", "a", "b", string(all))
	for i := range 600 {
		do("SADD", "set:big", fmt.Sprintf("m%d", i))
	}
	do("HSET", "h:small", "f1", "v1", "f2", "2", string(all), string(all))
	for i := range 300 {
		do("HSET", "h:big", fmt.Sprintf("f%d", i), fmt.Sprintf("v%d", i))
	}
	do("HSET", "h:long", "f", bytes.Repeat([]byte("v"), 100))
	do("ZADD", "z:small", 1.5, "a", "-inf", "b", 3, "c", 1e300, string(all))
	for i := range 300 {
		do("ZADD", "z:big", float64(i)/7, fmt.Sprintf("m%d", i))
	}
	do("ZADD", "z:big", "+inf", "top")
	for i := range 250 {
		if i%3 == 0 {
			do("XADD", "x:s", "*", "a", i, "b", "same")
		} else {
			do("XADD", "x:s", "*", "other", i)
		}
	}
	do("XADD", "x:s", "*", "bin", string(all))
	do("XGROUP", "CREATE", "x:s", "g1", "0")
	do("XGROUP", "CREATE", "x:s", "g2", "$")
	do("XREADGROUP", "GROUP", "g1", "alice", "COUNT", 5, "STREAMS", "x:s", ">")
	do("XREADGROUP", "GROUP", "g1", "bob", "COUNT", 3, "STREAMS", "x:s", ">")
	ids, _ := c.XRange(ctx, "x:s", "-", "+").Result()
	do("XDEL", "x:s", ids[10].ID, ids[20].ID)
	do("XADD", "x:empty", "*", "a", 1)
	do("XTRIM", "x:empty", "MAXLEN", 0)
	do("PEXPIRE", "h:small", 7200000)
	do("FUNCTION", "LOAD", "#!lua name=mylib\nredis.register_function('f1', function() return 1 end)")
	do("SELECT", 3) // on a one-connection client: the caller continues in database 3
}
