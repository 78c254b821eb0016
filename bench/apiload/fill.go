package main

import (
	"context"
	"flag"
	"fmt"
	"path/filepath"
	"time"

	"github.com/opendts/opendts/internal/jobs"
	"github.com/opendts/opendts/internal/secret"
	"github.com/opendts/opendts/internal/store"
)

// fill writes n jobs straight into the store of a data directory (the
// server must not be running): creating them through the API would measure
// CreateMigrateJob n times, which `create` does on its own.
func fill(args []string) error {
	fs := flag.NewFlagSet("fill", flag.ExitOnError)
	dir := fs.String("data-dir", "", "opendts data directory")
	n := fs.Int("jobs", 10000, "jobs to store")
	_ = fs.Parse(args)
	key, _, err := secret.LoadOrCreateKey("", *dir)
	if err != nil {
		return err
	}
	box, err := secret.New(key)
	if err != nil {
		return err
	}
	st, err := store.Open(filepath.Join(*dir, "opendts.db"), box)
	if err != nil {
		return err
	}
	defer st.Close()
	ctx := context.Background()
	base := time.Now().Add(-time.Duration(*n) * time.Minute)
	for i := range *n {
		if err := st.CreateJob(ctx, benchJob(i, base)); err != nil {
			return fmt.Errorf("job %d: %w", i, err)
		}
	}
	return nil
}

// statuses spreads the stored jobs the way a long-lived server has them:
// mostly finished, some waiting, a few running.
var statuses = []jobs.Status{9, 9, 9, 9, 10, 10, 1, 4, 5, 9}

// benchJobID is the id of the i-th job; the load knows ids without asking.
func benchJobID(i int) string { return fmt.Sprintf("dts-b%07d", i) }

func benchJob(i int, base time.Time) *jobs.Job {
	st := statuses[i%len(statuses)]
	created := base.Add(time.Duration(i) * time.Minute)
	j := &jobs.Job{
		ID: benchJobID(i), Name: fmt.Sprintf("bench-job-%05d", i),
		Option:          jobs.MigrateOption{RunMode: 1, MigrateType: 2 + i%2, MigrateObject: 2, ConsistencyType: 1},
		SrcDatabaseType: "mysql", SrcAccessType: "extranet",
		Src:             jobs.SrcInfo{Ip: fmt.Sprintf("10.1.%d.%d", i/250%250, i%250), Port: 3306, User: "dts", Password: "source-password"},
		DstDatabaseType: "mysql", DstAccessType: "extranet",
		Dst:          jobs.DstInfo{Ip: fmt.Sprintf("10.2.%d.%d", i/250%250, i%250), Port: 3306, User: "dts", Password: "target-password", Region: "ap-guangzhou"},
		DatabaseInfo: fmt.Sprintf(`[{"Database":"app%d","Table":["orders","customers","items"]}]`, i),
		Tags:         []jobs.Tag{{Key: "env", Value: []string{"prod", "staging", "dev"}[i%3]}, {Key: "team", Value: fmt.Sprintf("t%d", i%20)}},
		Status:       st,
		CreateTime:   created,
		Check:        jobs.CheckResult{Status: jobs.CheckUnavailable, Flag: jobs.CheckFlagNotChecked},
	}
	if st == 9 || st == 10 {
		j.StartTime, j.EndTime = created.Add(time.Second), created.Add(time.Minute)
		j.Detail = jobs.Detail{StepAll: 4, StepNow: 4, Progress: 100, CurrentStepProgress: 100}
		for k, name := range []string{"check", "structure", "full copy", "verify"} {
			j.Detail.Steps = append(j.Detail.Steps, jobs.Step{No: k + 1, Name: name, ID: name, Status: jobs.StepSucceeded, StartTime: created})
		}
		j.Check = jobs.CheckResult{Status: jobs.CheckFinished, Progress: 100, Flag: jobs.CheckFlagPassed, Message: "ok", StartTime: created, EndTime: created}
	}
	if st == 10 {
		j.ErrorInfo = []jobs.ErrorInfo{{ErrorLog: "FailedOperation.Stopped: the migration was stopped by StopMigrateJob"}}
	}
	return j
}
