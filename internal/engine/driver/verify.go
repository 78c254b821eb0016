package driver

import (
	"context"
	"fmt"
	"strings"

	"github.com/opendts/opendts/internal/engine"
)

// verify runs the consistency check ConsistencyType asks for and fails
// the job, naming the tables and their first differing keys, when
// anything differs. For full + incremental jobs it runs at Complete, after
// the last change: writes to the source must have stopped.
func (r *run) verify(ctx context.Context) error {
	r.report.StepStarted(StepVerify.ID)
	tables := r.m.VerifyTables()
	var results []engine.TableVerification
	var bad []string
	for i, t := range tables {
		method, pct := engine.VerifyPlan(r.spec.ConsistencyType, r.spec.ConsistencyParams, t.String())
		var res engine.TableVerification
		var err error
		switch method {
		case engine.VerifyContent:
			res, err = r.m.VerifyContent(ctx, t, pct)
		case engine.VerifyCount:
			res, err = r.m.VerifyCount(ctx, t)
		default:
			continue
		}
		if err != nil {
			return err
		}
		results = append(results, res)
		if res.Differences > 0 {
			desc := "`" + strings.ReplaceAll(t.Database, "`", "``") + "`.`" + strings.ReplaceAll(t.Table, "`", "``") + "`"
			if len(res.FirstKeys) > 0 {
				desc += " (first differing keys: " + strings.Join(res.FirstKeys, ", ") + ")"
			} else if res.Detail != "" {
				desc += " (" + res.Detail + ")"
			}
			bad = append(bad, desc)
		}
		r.report.Progress(bandObjects+bandVerifyWidth*(i+1)/len(tables), 100*(i+1)/len(tables))
	}
	r.report.Verified(results)
	if len(bad) > 0 {
		return fmt.Errorf("the consistency check found differences in %d table(s): %s", len(bad), strings.Join(bad, "; "))
	}
	return nil
}
