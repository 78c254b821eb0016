package rdb

import (
	"context"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/opendts/opendts/internal/testredis"
	"github.com/redis/go-redis/v9"
)

func TestCRC64(t *testing.T) {
	// The check value of Redis's crc64.c.
	if got := CRC64(0, []byte("123456789")); got != 0xe9c6d914c4b8d9ca {
		t.Fatalf("crc64 = %x", got)
	}
}

func TestParseSavedRDB(t *testing.T) {
	s := testredis.Start(t)
	ctx := context.Background()
	c := redis.NewClient(&redis.Options{Addr: s.Addr(), PoolSize: 1})
	defer c.Close()
	testredis.Populate(t, c)
	if err := c.Set(ctx, "in-db3", "x", 0).Err(); err != nil { // the SELECT 3 above
		t.Fatal(err)
	}
	if err := c.Do(ctx, "SAVE").Err(); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(s.Dir, "dump.rdb"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p, err := NewParser(f)
	if err != nil {
		t.Fatal(err)
	}
	if p.Version != 10 {
		t.Errorf("version %d, want 10 from Redis 7.0", p.Version)
	}
	keys, functions := 0, 0
	for {
		e, err := p.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(e.Function) > 0 {
			functions++
			continue
		}
		keys++
		checkEntry(t, p.Version, redis.NewClient(&redis.Options{Addr: s.Addr(), DB: e.DB}), e)
	}
	if keys != 24 || functions != 1 {
		t.Fatalf("read %d keys and %d functions, want 24 and 1", keys, functions)
	}
}

// checkEntry compares an entry with the server's key: DUMP bytes, TTL and
// the decoded value.
func checkEntry(t *testing.T, version int, c *redis.Client, e *Entry) {
	t.Helper()
	defer c.Close()
	ctx := context.Background()
	key := string(e.Key)
	dump, err := c.Dump(ctx, key).Result()
	if err != nil {
		t.Fatalf("DUMP %q: %v", key, err)
	}
	if want := string(Payload(version, e.Type, e.Payload)); dump != want {
		t.Errorf("%q: DUMP differs from the payload read (type %d, %d vs %d bytes)", key, e.Type, len(dump), len(want))
	}
	pttl := c.PTTL(ctx, key).Val()
	if (e.ExpireMs != 0) != (pttl > 0) {
		t.Errorf("%q: expiry %d, server PTTL %v", key, e.ExpireMs, pttl)
	}
	v, err := Decode(e.Type, e.Payload)
	if err != nil {
		t.Fatalf("decode %q: %v", key, err)
	}
	typ := c.Type(ctx, key).Val()
	if string(v.Kind) != typ {
		t.Errorf("%q: kind %s, server says %s", key, v.Kind, typ)
	}
	switch v.Kind {
	case KindString:
		if got := c.Get(ctx, key).Val(); got != string(v.Str) {
			t.Errorf("%q: string differs", key)
		}
	case KindList:
		want := c.LRange(ctx, key, 0, -1).Val()
		if !slices.Equal(strs(v.Items), want) {
			t.Errorf("%q: list differs (%d vs %d)", key, len(v.Items), len(want))
		}
	case KindSet:
		want := c.SMembers(ctx, key).Val()
		got := strs(v.Items)
		slices.Sort(want)
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("%q: set differs", key)
		}
	case KindHash:
		want := c.HGetAll(ctx, key).Val()
		if len(want) != len(v.Pairs) {
			t.Errorf("%q: hash has %d fields, decoded %d", key, len(want), len(v.Pairs))
		}
		for _, p := range v.Pairs {
			if want[string(p[0])] != string(p[1]) {
				t.Errorf("%q: field %q differs", key, p[0])
			}
		}
	case KindZSet:
		want := c.ZRangeWithScores(ctx, key, 0, -1).Val()
		if len(want) != len(v.Z) {
			t.Fatalf("%q: zset has %d members, decoded %d", key, len(want), len(v.Z))
		}
		scores := map[string]float64{}
		for _, z := range v.Z {
			scores[string(z.Member)] = z.Score
		}
		for _, z := range want {
			if got := scores[z.Member.(string)]; got != z.Score && !(math.IsInf(got, 0) && got == z.Score) {
				t.Errorf("%q: member %q score %v, server %v", key, z.Member, got, z.Score)
			}
		}
	case KindStream:
		want := c.XRange(ctx, key, "-", "+").Val()
		if len(want) != len(v.Stream.Entries) || uint64(len(want)) != v.Stream.Length {
			t.Fatalf("%q: stream has %d entries, decoded %d (length %d)", key, len(want), len(v.Stream.Entries), v.Stream.Length)
		}
		for i, m := range want {
			got := v.Stream.Entries[i]
			if got.ID.String() != m.ID || len(got.Fields) != 2*len(m.Values) {
				t.Fatalf("%q: entry %d is %s with %d fields, server %s with %d", key, i, got.ID, len(got.Fields)/2, m.ID, len(m.Values))
			}
			for k := 0; k < len(got.Fields); k += 2 {
				if m.Values[string(got.Fields[k])] != string(got.Fields[k+1]) {
					t.Errorf("%q: entry %s field %q differs", key, m.ID, got.Fields[k])
				}
			}
		}
		groups := c.XInfoGroups(ctx, key).Val()
		if len(groups) != len(v.Stream.Groups) {
			t.Fatalf("%q: %d groups, decoded %d", key, len(groups), len(v.Stream.Groups))
		}
		for i, g := range groups {
			dg := v.Stream.Groups[i]
			if g.Name != string(dg.Name) || g.Pending != int64(len(dg.Pending)) || g.Consumers != int64(len(dg.Consumers)) || g.LastDeliveredID != dg.LastID.String() {
				t.Errorf("%q: group %+v, decoded %s pending %d consumers %d last %s", key, g, dg.Name, len(dg.Pending), len(dg.Consumers), dg.LastID)
			}
		}
	}
}

func strs(b [][]byte) []string {
	out := make([]string, len(b))
	for i, x := range b {
		out[i] = string(x)
	}
	return out
}

func TestLZF(t *testing.T) {
	// A literal "a", then a back reference repeating it 8 more times.
	out, err := lzfDecompress([]byte{0, 'a', 6 << 5, 0}, 9)
	if err != nil || string(out) != "aaaaaaaaa" {
		t.Fatalf("lzf = %q, %v", out, err)
	}
	if _, err := lzfDecompress([]byte{1 << 5, 5}, 3); err == nil {
		t.Fatal("a reference before the start was accepted")
	}
}
