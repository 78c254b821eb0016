package dtsapi

import (
	"context"
	"time"

	"github.com/opendts/opendts/internal/cloudapi"
	"github.com/opendts/opendts/internal/jobs"
)

// LagHistoryAction is the opendts extension action that returns a job's
// recent lag and copy rate, as the web console charts them.
const LagHistoryAction = "DescribeMigrateJobLagHistory"

// RegisterLagHistory adds the LagHistoryAction, answered from hist, to srv.
func RegisterLagHistory(srv *cloudapi.Server, svc *jobs.Service, hist *jobs.LagHistory) {
	srv.Handle(LagHistoryAction, 0, wrap(func(ctx context.Context, req *cloudapi.Request) (any, error) {
		id, err := jobIDOf(req)
		if err != nil {
			return nil, err
		}
		if _, err := svc.Get(ctx, id); err != nil {
			return nil, err
		}
		type sample struct {
			Time                string
			UnixTime            int64
			SecondsBehindMaster int64
			MasterSlaveDistance int64
			RowsPerSecond       int64
			Progress            int64
		}
		out := struct {
			JobId           string
			IntervalSeconds int64
			MaxSamples      int64
			Samples         []sample
		}{JobId: id, IntervalSeconds: int64(hist.Interval / time.Second), MaxSamples: int64(hist.Keep), Samples: []sample{}}
		for _, s := range hist.Of(id) {
			out.Samples = append(out.Samples, sample{
				Time:                s.Time.In(time.Local).Format(time.DateTime),
				UnixTime:            s.Time.Unix(),
				SecondsBehindMaster: s.SecondsBehindMaster,
				MasterSlaveDistance: s.MasterSlaveDistance,
				RowsPerSecond:       s.RowsPerSecond,
				Progress:            int64(s.Progress),
			})
		}
		return out, nil
	}))
}
