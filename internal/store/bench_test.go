package store

import (
	"fmt"
	"testing"
	"time"

	"github.com/opendts/opendts/internal/jobs"
)

// BenchmarkListJobs times the DescribeMigrateJobs queries of bench/api.sh
// on 100 and 10,000 stored jobs: the two should cost about the same.
func BenchmarkListJobs(b *testing.B) {
	for _, n := range []int{100, 10000} {
		s, err := Open(b.TempDir()+"/opendts.db", testBox(&testing.T{}))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.w.Exec(`PRAGMA synchronous = OFF`); err != nil {
			b.Fatal(err)
		}
		base := time.Now().Add(-time.Duration(n) * time.Minute)
		for i := range n {
			j := &jobs.Job{ID: fmt.Sprintf("dts-b%07d", i), Name: fmt.Sprintf("bench-job-%05d", i),
				Status: []jobs.Status{9, 9, 9, 9, 10, 10, 1, 4, 5, 9}[i%10], CreateTime: base.Add(time.Duration(i) * time.Minute),
				Option: jobs.MigrateOption{MigrateType: 2 + i%2, RunMode: 1}, SrcDatabaseType: "mysql",
				Dst:          jobs.DstInfo{Ip: fmt.Sprintf("10.2.%d.%d", i/250%250, i%250), Port: 3306, Password: "pw"},
				DatabaseInfo: fmt.Sprintf(`[{"Database":"app%d","Table":["orders","customers","items"]}]`, i),
				Tags:         []jobs.Tag{{Key: "env", Value: []string{"prod", "staging", "dev"}[i%3]}, {Key: "team", Value: fmt.Sprintf("t%d", i%20)}},
				Detail:       jobs.Detail{Steps: []jobs.Step{{No: 1, Name: "check"}, {No: 2, Name: "copy"}}},
			}
			if err := s.CreateJob(b.Context(), j); err != nil {
				b.Fatal(err)
			}
		}
		queries := []struct {
			name string
			q    jobs.Query
		}{
			{"first-page", jobs.Query{Limit: 20, Desc: true}},
			{"job-id", jobs.Query{JobID: fmt.Sprintf("dts-b%07d", n/2), Limit: 20, Desc: true}},
			{"job-name", jobs.Query{JobName: fmt.Sprintf("bench-job-%04d", n/20), Limit: 20, Desc: true}},
			{"order-status", jobs.Query{Order: "Status", Limit: 20}},
			{"tag", jobs.Query{Tags: []jobs.TagFilter{{Key: "team", Values: []string{"t3"}}}, Limit: 20, Desc: true}},
			{"deep-offset", jobs.Query{Offset: n * 9 / 10, Limit: 20, Desc: true}},
			{"count-by-status", jobs.Query{}},
		}
		for _, q := range queries {
			b.Run(fmt.Sprintf("%s/%d", q.name, n), func(b *testing.B) {
				for b.Loop() {
					if q.name == "count-by-status" {
						_, err = s.CountByStatus(b.Context())
					} else {
						_, _, err = s.ListJobs(b.Context(), q.q)
					}
					if err != nil {
						b.Fatal(err)
					}
				}
			})
		}
		s.Close()
	}
}
