package cluster

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/opendts/opendts/internal/jobs"
	"github.com/opendts/opendts/internal/testetcd"
)

// BenchmarkList10k: DescribeMigrateJobs's reads with 10,000 jobs stored.
// "etcd" is the whole call (a linearizable read of Keys.Changed, then the
// copy); "copy" is the part answered from memory, which must stay well
// under 10 ms for a page of 20.
//
//	go test -run '^$' -bench List10k ./internal/cluster/
func BenchmarkList10k(b *testing.B) {
	c := testetcd.Shared(b)
	s := openNode(b, c, testetcd.Prefix(b), testBox(b, key1))
	ctx := b.Context()
	const n = 10000
	r := rand.New(rand.NewPCG(5, 6))
	start := time.Now()
	// Written in transactions of 30 jobs (4 ops each, within etcd's
	// default 128), the way CreateJob writes one.
	var ops []clientv3.Op
	flush := func() {
		if len(ops) == 0 {
			return
		}
		ops = append(ops, clientv3.OpPut(s.keys.Changed(), ""))
		if _, err := s.c.Txn(ctx).Then(ops...).Commit(); err != nil {
			b.Fatal(err)
		}
		ops = ops[:0]
	}
	for i := range n {
		j := randomJob(r, i)
		j.ID = fmt.Sprintf("dts-%08d", i)
		w, err := s.jobWrite(j)
		if err != nil {
			b.Fatal(err)
		}
		ops = append(ops, w[:3]...) // all but Changed, which a transaction may put once
		if len(ops) >= 90 {
			flush()
		}
	}
	flush()
	if _, total, err := s.ListJobs(ctx, jobs.Query{Limit: 1}); err != nil || total != n {
		b.Fatalf("%d jobs listed (%v), want %d", total, err, n)
	}
	b.Logf("10,000 jobs written and watched in %v", time.Since(start).Round(time.Millisecond))
	start = time.Now()
	openNode(b, c, s.keys.Prefix, testBox(b, key1))
	b.Logf("another node opened the store (read and decoded the 10,000 jobs) in %v", time.Since(start).Round(time.Millisecond))
	queries := map[string]jobs.Query{
		"page20":             {Limit: 20, Desc: true},
		"page20-offset5000":  {Limit: 20, Offset: 5000, Order: "JobName"},
		"name-page20":        {JobName: "orders", Limit: 20},
		"tag-status-page20":  {Tags: []jobs.TagFilter{{Key: "env", Values: []string{"prod"}}}, Statuses: []jobs.Status{7, 8}, Limit: 20},
		"all-unpaged-sorted": {Order: "Status"},
	}
	for name, q := range queries {
		by := orders[q.Order]
		b.Run("etcd/"+name, func(b *testing.B) {
			for b.Loop() {
				if _, _, err := s.ListJobs(ctx, q); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("copy/"+name, func(b *testing.B) {
			for b.Loop() {
				s.list(q, by)
			}
		})
	}
	b.Run("etcd/count", func(b *testing.B) {
		for b.Loop() {
			if _, err := s.CountByStatus(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("etcd/writing-into", func(b *testing.B) {
		for b.Loop() {
			if _, err := s.WritingInto(ctx, []string{"db1.example:3306"}, []string{"app1"}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
