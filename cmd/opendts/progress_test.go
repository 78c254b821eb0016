package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/opendts/opendts/internal/client"
)

// copyingJob is a DescribeMigrateJobs answer for a job copying rows, as
// opendts serve gives it.
const copyingJob = `{"JobId":"dts-copy0001","JobName":"copy","Status":%STATUS%,
 "MigrateOption":{"MigrateType":2},"SrcDatabaseType":"mysql","DstDatabaseType":"mysql",
 "SrcInfo":{"Ip":"127.0.0.1","Port":33306},"DstInfo":{"Ip":"127.0.0.1","Port":33307},
 "CreateTime":"2026-11-30 12:00:00","StartTime":"2026-11-30 12:00:01","EndTime":"0000-00-00 00:00:00","DatabaseInfo":"[]",
 "Detail":{"StepAll":4,"StepNow":3,"Progress":"50","CurrentStepProgress":"50","StepInfo":[
  {"StepNo":1,"StepId":"structure","StepName":"migrate structure","Status":1,"StartTime":"2026-11-30 12:00:01"},
  {"StepNo":2,"StepId":"dumper","StepName":"take a consistent snapshot of the source","Status":1,"StartTime":"2026-11-30 12:00:02"},
  {"StepNo":3,"StepId":"loader","StepName":"copy rows","Status":3,"StartTime":"2026-11-30 12:00:02"},
  {"StepNo":4,"StepId":"objects","StepName":"build secondary indexes","Status":4,"StartTime":"0000-00-00 00:00:00"}]},
 "ErrorInfo":[],"ConsistencyResult":[],
 "CopyProgress":{"RowsDone":1234567,"RowsTotal":2469134,"RowsPerSecond":12345,"EtaSeconds":100,"TablesDone":1,"TablesTotal":%TABLES%},
 "TableProgress":[
  {"Database":"shop","Schema":"","Table":"orders","RowsDone":1234557,"RowsTotal":2469124,"RowsPerSecond":12345,"Status":"copying"},
  {"Database":"shop","Schema":"","Table":"users","RowsDone":10,"RowsTotal":10,"RowsPerSecond":0,"Status":"done"}]}`

// fakeServer answers DescribeMigrateJobs with the job at the statuses
// given, one per call (the last one repeats), and DescribeMigrateCheckJob
// with a passed check.
func fakeServer(t *testing.T, tables string, statuses ...string) *client.Client {
	var mu sync.Mutex
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		var resp string
		switch r.Header.Get("X-TC-Action") {
		case "DescribeMigrateJobs":
			mu.Lock()
			st := statuses[min(calls, len(statuses)-1)]
			calls++
			mu.Unlock()
			job := strings.NewReplacer("%STATUS%", st, "%TABLES%", tables).Replace(copyingJob)
			resp = `{"TotalCount":1,"JobList":[` + job + `],"RequestId":"r"}`
		case "DescribeMigrateCheckJob":
			resp = `{"Status":"finished","CheckFlag":1,"CheckItems":[],"RequestId":"r"}`
		default:
			resp = `{"Error":{"Code":"InvalidAction","Message":"no"},"RequestId":"r"}`
		}
		if !json.Valid([]byte(resp)) {
			t.Errorf("the test's answer is not JSON: %s", resp)
		}
		io.WriteString(w, `{"Response":`+resp+`}`)
	}))
	t.Cleanup(srv.Close)
	return &client.Client{Endpoint: srv.URL, SecretID: "id", SecretKey: "key", Region: "ap-guangzhou"}
}

func TestJobShowsCopyProgress(t *testing.T) {
	var out strings.Builder
	if code := showJob(context.Background(), fakeServer(t, "2", "7"), "dts-copy0001", &out); code != 0 {
		t.Fatalf("exit %d\n%s", code, out.String())
	}
	want := `  copy       1,234,567 of ~2,469,134 rows (50%), 1 of 2 tables done, 12,000 rows/s, ends in ~1m40s
    shop.orders  copying  1,234,557 of ~2,469,124 rows (49%)  12,000 rows/s
    shop.users   done     10 of ~10 rows (100%)
`
	if !strings.Contains(out.String(), want) {
		t.Errorf("opendts job printed:\n%s\nwant it to contain:\n%s", out.String(), want)
	}

	out.Reset()
	showJob(context.Background(), fakeServer(t, "20000", "7"), "dts-copy0001", &out)
	if !strings.Contains(out.String(), "1 of 20000 tables done") || !strings.Contains(out.String(), "    ... and 19998 more table(s), not listed\n") {
		t.Errorf("a job of many tables:\n%s", out.String())
	}
}

func TestWatchShowsCopyProgress(t *testing.T) {
	// Without a terminal: one line per change, with the rows, the rate
	// and the copy's ETA; no table lines.
	var out strings.Builder
	if code := watchJobOn(context.Background(), fakeServer(t, "2", "7", "9"), "dts-copy0001", false, &out, false); code != 0 {
		t.Fatalf("exit %d\n%s", code, out.String())
	}
	lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(lines) != 2 || !strings.HasSuffix(lines[0], "  rows 1,234,567/~2,469,134 at 12,000 rows/s, tables 1/2  copy ends in ~1m40s") ||
		strings.Contains(lines[1], "rows/s") {
		t.Errorf("watch without a terminal printed:\n%s", out.String())
	}

	// On a terminal: the line and the tables being copied under it,
	// redrawn in place.
	out.Reset()
	if code := watchJobOn(context.Background(), fakeServer(t, "2", "7", "9"), "dts-copy0001", false, &out, true); code != 0 {
		t.Fatalf("exit %d\n%s", code, out.String())
	}
	got := out.String()
	table := "\n\r    shop.orders  1,234,557 of ~2,469,124 rows (49%), 12,000 rows/s\033[K\033[J"
	if !strings.Contains(got, "copy ends in ~1m40s\033[K"+table) {
		t.Errorf("the first drawing on a terminal lacks the table being copied: %q", got)
	}
	// The second drawing goes up over the table line, and clears it.
	if i := strings.Index(got, table); i < 0 || !strings.HasPrefix(got[i+len(table):], "\033[1A\r") {
		t.Errorf("the second drawing does not replace the first: %q", got)
	}
	if strings.Contains(got, "users") {
		t.Errorf("a done table is shown while watching: %q", got)
	}
}

func TestCountsAndRates(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", -1234567: "-1,234,567"} {
		if got := count(n); got != want {
			t.Errorf("count(%d) = %s, want %s", n, got, want)
		}
	}
	for r, want := range map[int64]string{0: "0 rows/s", 99: "99 rows/s", 255: "260 rows/s", 12345: "12,000 rows/s"} {
		if got := perSecond(r); got != want {
			t.Errorf("perSecond(%d) = %s, want %s", r, got, want)
		}
	}
}
