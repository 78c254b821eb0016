package testredis

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

// Compare fails the test unless databases dbs of src and dst hold the
// same keys with equal values (DUMP bytes, or equal reads where the
// encodings differ) and remaining lives within toleranceMs. opendts's own
// keys ("opendts:{...") on dst are left out.
func Compare(t testing.TB, src, dst *Server, dbs []int, toleranceMs int64) {
	t.Helper()
	ctx := context.Background()
	for _, db := range dbs {
		a, b := src.Client(t, db), dst.Client(t, db)
		sk, dk := keys(t, a), keys(t, b)
		// Keys about to expire may be gone on one side first.
		dropExpiring(ctx, a, sk, dk)
		dropExpiring(ctx, b, sk, dk)
		if len(sk) != len(dk) {
			t.Errorf("database %d: the source holds %d keys that are not about to expire, the target %d", db, len(sk), len(dk))
		}
		bad := 0
		report := func(format string, args ...any) {
			if bad++; bad <= 10 {
				t.Errorf(format, args...)
			}
		}
		var common []string
		for k := range sk {
			if dk[k] {
				common = append(common, k)
			} else {
				report("database %d: key %q is missing on the target", db, k)
			}
		}
		for k := range dk {
			if !sk[k] {
				report("database %d: key %q is on the target only", db, k)
			}
		}
		for len(common) > 0 {
			n := min(len(common), 1000)
			sa, sb := states(ctx, a, common[:n]), states(ctx, b, common[:n])
			for i, k := range common[:n] {
				if sa[i] == sb[i] {
					continue
				}
				if msg := diffKey(ctx, a, b, k, toleranceMs); msg != "" {
					report("database %d: key %q: %s", db, k, msg)
				}
			}
			common = common[n:]
		}
	}
}

// states reads each key's type, DUMP and whether it expires, pipelined.
func states(ctx context.Context, c *redis.Client, keys []string) []string {
	pipe := c.Pipeline()
	types := make([]*redis.StatusCmd, len(keys))
	dumps := make([]*redis.StringCmd, len(keys))
	ttls := make([]*redis.DurationCmd, len(keys))
	for i, k := range keys {
		types[i], dumps[i], ttls[i] = pipe.Type(ctx, k), pipe.Dump(ctx, k), pipe.PTTL(ctx, k)
	}
	pipe.Exec(ctx)
	out := make([]string, len(keys))
	for i := range keys {
		out[i] = types[i].Val() + "\x00" + dumps[i].Val() + "\x00" + strconv.FormatBool(ttls[i].Val() < 0)
	}
	return out
}

func keys(t testing.TB, c *redis.Client) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	iter := c.Scan(context.Background(), 0, "", 1000).Iterator()
	for iter.Next(context.Background()) {
		if !strings.HasPrefix(iter.Val(), "opendts:{") {
			out[iter.Val()] = true
		}
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func diffKey(ctx context.Context, a, b *redis.Client, k string, tol int64) string {
	ta, tb := a.Type(ctx, k).Val(), b.Type(ctx, k).Val()
	if ta != tb {
		return "type " + ta + " on the source, " + tb + " on the target"
	}
	pa, pb := a.PTTL(ctx, k).Val().Milliseconds(), b.PTTL(ctx, k).Val().Milliseconds()
	if (pa < 0) != (pb < 0) || pa >= 0 && (pa-pb > tol || pb-pa > tol) {
		return "remaining life " + strconv.FormatInt(pa, 10) + " ms on the source, " + strconv.FormatInt(pb, 10) + " ms on the target"
	}
	if a.Dump(ctx, k).Val() == b.Dump(ctx, k).Val() {
		return ""
	}
	same := false
	switch ta {
	case "string":
		same = a.Get(ctx, k).Val() == b.Get(ctx, k).Val()
	case "list":
		same = equal(a.LRange(ctx, k, 0, -1).Val(), b.LRange(ctx, k, 0, -1).Val())
	case "set":
		same = equal(sorted(a.SMembers(ctx, k).Val()), sorted(b.SMembers(ctx, k).Val()))
	case "hash":
		ha, hb := a.HGetAll(ctx, k).Val(), b.HGetAll(ctx, k).Val()
		same = len(ha) == len(hb)
		for f, v := range ha {
			if hb[f] != v {
				same = false
			}
		}
	case "zset":
		za, zb := a.ZRangeWithScores(ctx, k, 0, -1).Val(), b.ZRangeWithScores(ctx, k, 0, -1).Val()
		same = len(za) == len(zb)
		for i := range za {
			if same && (za[i].Member != zb[i].Member || za[i].Score != zb[i].Score) {
				same = false
			}
		}
	}
	if !same {
		return "values differ"
	}
	return ""
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func sorted(s []string) []string {
	slices.Sort(s)
	return s
}

// dropExpiring removes from both sets the keys c says expire within 5 s
// (or are gone).
func dropExpiring(ctx context.Context, c *redis.Client, sets ...map[string]bool) {
	for _, m := range sets {
		var ks []string
		for k := range m {
			ks = append(ks, k)
		}
		for len(ks) > 0 {
			n := min(len(ks), 1000)
			pipe := c.Pipeline()
			cmds := make([]*redis.DurationCmd, n)
			for i, k := range ks[:n] {
				cmds[i] = pipe.PTTL(ctx, k)
			}
			pipe.Exec(ctx)
			for i, k := range ks[:n] {
				if d := cmds[i].Val(); d >= 0 && d.Milliseconds() < 5000 || d == -2 {
					for _, s := range sets {
						delete(s, k)
					}
				}
			}
			ks = ks[n:]
		}
	}
}
