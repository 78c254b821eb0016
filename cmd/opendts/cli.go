package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/opendts/opendts/internal/client"
)

var statusNames = map[int]string{
	1: "created", 3: "checking", 4: "check passed", 5: "check failed", 6: "scheduled",
	7: "running", 8: "ready to complete", 9: "succeeded", 10: "failed", 11: "stopping", 12: "completing",
}

var migrateTypes = map[int]string{1: "structure", 2: "full", 3: "full+incremental"}

// endpointView is the part of SrcInfo and DstInfo the commands show.
type endpointView struct {
	Ip, InstanceId string
	Port           int
}

// String is the side as a DBA tells instances apart: the catalogue id, or
// host:port.
func (e endpointView) String() string {
	if e.InstanceId != "" {
		return e.InstanceId
	}
	if e.Port == 0 {
		return e.Ip
	}
	return net.JoinHostPort(e.Ip, strconv.Itoa(e.Port))
}

// when shows an API time, or "-" for one not set.
func when(t string) string {
	if t == "" || strings.HasPrefix(t, "0000-00-00") {
		return "-"
	}
	return t
}

// jobView is what the friendly commands read of MigrateJobInfo.
type jobView struct {
	JobId           string
	JobName         string
	Status          int
	CreateTime      string
	StartTime       string
	EndTime         string
	DatabaseInfo    string
	MigrateOption   struct{ MigrateType, MigrateObject, ConsistencyType int }
	SrcDatabaseType string
	DstDatabaseType string
	SrcInfo         endpointView
	DstInfo         endpointView
	Detail          struct {
		StepAll, StepNow                         int
		Progress, CurrentStepProgress            string
		SecondsBehindMaster, MasterSlaveDistance int64
		WaitingForWorker                         bool
		StepInfo                                 []struct {
			StepNo           int
			StepId, StepName string
			Status           int
			StartTime        string
		}
	}
	ErrorInfo []struct{ ErrorLog string }
	// Node owns the job's work in cluster mode.
	Node              string
	ConsistencyResult []struct {
		Database, Table, Method, Detail string
		Rows, Differences               int64
		FirstKeys                       []string
	}
	copyView
}

func decode(resp map[string]any, v any) error {
	b, err := json.Marshal(resp)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

func describe(ctx context.Context, c *client.Client, params map[string]any) ([]jobView, int, error) {
	resp, err := c.Call(ctx, "DescribeMigrateJobs", params)
	if err != nil {
		return nil, 0, err
	}
	var out struct {
		TotalCount int
		JobList    []jobView
	}
	if err := decode(resp, &out); err != nil {
		return nil, 0, err
	}
	return out.JobList, out.TotalCount, nil
}

const friendlyUsage = `Usage:
  opendts jobs [client flags]                         every job as a table: type, status, progress, lag (and, in cluster mode, the node that runs it)
  opendts nodes [client flags]                        the service's nodes: address, lease age and TTL left, jobs owned
  opendts job <JobId> [client flags]                  one job: steps, copy by table (rows, rows/s, ETA), errors, check items with advice, verification
  opendts watch <JobId> [--until-ready] [client flags]
      progress and lag until the job ends (exit 0 at 9, 1 at 10); with
      --until-ready, until status 8 (ready to complete). While rows are
      copied: rows, rows per second and the copy's ETA. On a terminal the
      line is redrawn in place, with the tables being copied under it;
      otherwise one line is printed per change.

Client flags: --endpoint, --region, --secret-id, --secret-key,
--credentials-file, as in opendts dts -h.
`

// runFriendly runs `opendts jobs`, `job` and `watch`.
func runFriendly(cmd string, args []string) int {
	for _, a := range args {
		if a == "-h" || a == "--help" || a == "-help" {
			fmt.Print(friendlyUsage)
			return 0
		}
	}
	flags, rest, err := clientFlags(args)
	if err != nil {
		fmt.Fprintln(os.Stderr, "opendts:", err)
		return 2
	}
	c, err := newClient(flags)
	if err != nil {
		fmt.Fprintln(os.Stderr, "opendts:", err)
		return 2
	}
	ctx := context.Background()
	switch cmd {
	case "jobs":
		return listJobs(ctx, c, os.Stdout)
	case "nodes":
		return listNodes(ctx, c, os.Stdout)
	case "job", "watch":
		if len(rest) < 1 || strings.HasPrefix(rest[0], "-") {
			fmt.Fprintf(os.Stderr, "usage: opendts %s <JobId>%s\n", cmd, map[bool]string{true: " [--until-ready]"}[cmd == "watch"])
			return 2
		}
		if cmd == "job" {
			return showJob(ctx, c, rest[0], os.Stdout)
		}
		untilReady := len(rest) > 1 && rest[1] == "--until-ready"
		return watchJob(ctx, c, rest[0], untilReady, os.Stdout)
	}
	return 2
}

func listJobs(ctx context.Context, c *client.Client, w io.Writer) int {
	list, total, err := describe(ctx, c, map[string]any{"Limit": 100})
	if err != nil {
		return exitFor(err)
	}
	// The node column appears when some job has an owner (cluster mode).
	nodes := false
	for _, j := range list {
		nodes = nodes || j.Node != ""
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	head := "JOB ID\tNAME\tTYPE\tSTATUS\tPROGRESS\tLAG\tCREATED"
	if nodes {
		head += "\tNODE"
	}
	fmt.Fprintln(tw, head)
	for _, j := range list {
		lag := "-"
		if j.Status == 7 || j.Status == 8 || j.Status == 12 {
			lag = fmt.Sprintf("%ds %dMB", j.Detail.SecondsBehindMaster, j.Detail.MasterSlaveDistance)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d %s\t%s%%\t%s\t%s", j.JobId, j.JobName, migrateTypes[j.MigrateOption.MigrateType],
			j.Status, statusNames[j.Status], j.Detail.Progress, lag, j.CreateTime)
		if nodes {
			node := j.Node
			if node == "" {
				node = "-"
			}
			fmt.Fprintf(tw, "\t%s", node)
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
	fmt.Fprintf(w, "%d job(s)\n", total)
	return 0
}

func oneJob(ctx context.Context, c *client.Client, id string) (*jobView, error) {
	list, _, err := describe(ctx, c, map[string]any{"JobId": id})
	if err != nil {
		return nil, err
	}
	if len(list) == 0 {
		return nil, &client.APIError{Code: "ResourceNotFound.JobNotExist", Message: "The migration job does not exist."}
	}
	return &list[0], nil
}

func showJob(ctx context.Context, c *client.Client, id string, w io.Writer) int {
	j, err := oneJob(ctx, c, id)
	if err != nil {
		return exitFor(err)
	}
	fmt.Fprintf(w, "%s  %s\n", j.JobId, j.JobName)
	fmt.Fprintf(w, "  status     %d %s\n", j.Status, statusNames[j.Status])
	fmt.Fprintf(w, "  type       %s, consistency check %d\n", migrateTypes[j.MigrateOption.MigrateType], j.MigrateOption.ConsistencyType)
	fmt.Fprintf(w, "  objects    %s\n", j.DatabaseInfo)
	fmt.Fprintf(w, "  source     %s %s\n", j.SrcDatabaseType, j.SrcInfo)
	fmt.Fprintf(w, "  target     %s %s\n", j.DstDatabaseType, j.DstInfo)
	if j.Node != "" {
		fmt.Fprintf(w, "  node       %s\n", j.Node)
	}
	fmt.Fprintf(w, "  times      created %s, started %s, ended %s\n", when(j.CreateTime), when(j.StartTime), when(j.EndTime))
	fmt.Fprintf(w, "  progress   %s%% (step %d of %d at %s%%)", j.Detail.Progress, j.Detail.StepNow, j.Detail.StepAll, j.Detail.CurrentStepProgress)
	if j.Status == 7 || j.Status == 8 || j.Status == 12 {
		fmt.Fprintf(w, ", lag %ds / %d MB", j.Detail.SecondsBehindMaster, j.Detail.MasterSlaveDistance)
	}
	if j.Detail.WaitingForWorker {
		fmt.Fprint(w, ", waiting for a copy worker (every one of the node's is busy)")
	}
	fmt.Fprintln(w)
	stepStatus := map[int]string{0: "-", 1: "done", 2: "failed", 3: "running", 4: "waiting"}
	for _, st := range j.Detail.StepInfo {
		fmt.Fprintf(w, "    %d. %-9s %-8s %-62s %s\n", st.StepNo, st.StepId, stepStatus[st.Status], st.StepName, when(st.StartTime))
	}
	showCopy(w, j.copyView)
	for _, e := range j.ErrorInfo {
		fmt.Fprintf(w, "  error      %s\n", e.ErrorLog)
	}
	for _, v := range j.ConsistencyResult {
		verdict := "equal"
		if v.Differences > 0 {
			verdict = fmt.Sprintf("%d difference(s) %s %s", v.Differences, strings.Join(v.FirstKeys, ","), v.Detail)
		}
		fmt.Fprintf(w, "  verified   %s.%s (%s, %d rows): %s\n", v.Database, v.Table, v.Method, v.Rows, verdict)
	}
	resp, err := c.Call(ctx, "DescribeMigrateCheckJob", map[string]any{"JobId": id})
	if err != nil {
		return exitFor(err)
	}
	var check struct {
		Status     string
		CheckFlag  int
		CheckItems []struct{ Name, Result, Message, Advice string }
	}
	if err := decode(resp, &check); err != nil {
		return exitFor(err)
	}
	fmt.Fprintf(w, "  check      %s, flag %d\n", check.Status, check.CheckFlag)
	for _, it := range check.CheckItems {
		fmt.Fprintf(w, "    [%-7s] %s: %s\n", it.Result, it.Name, it.Message)
		if it.Advice != "" && it.Result != "pass" {
			fmt.Fprintf(w, "              advice: %s\n", it.Advice)
		}
	}
	return 0
}

// eta estimates what is left of a step at pct % after elapsed, at the
// pace seen so far; ok is false until there is enough to go by. It is
// rounded (to 5 s past a minute) so the line does not churn.
func eta(elapsed time.Duration, pct int) (time.Duration, bool) {
	if pct < 2 || pct >= 100 || elapsed < 2*time.Second {
		return 0, false
	}
	left := elapsed * time.Duration(100-pct) / time.Duration(pct)
	if left >= time.Minute {
		return left.Round(5 * time.Second), true
	}
	return left.Round(time.Second), true
}

func bar(pct string, width int) string {
	n, _ := strconv.Atoi(pct)
	fill := n * width / 100
	return "[" + strings.Repeat("#", fill) + strings.Repeat(".", width-fill) + "]"
}

// watchJob redraws a job's progress until it ends (9 or 10), or reaches 8
// with untilReady. Exit 0 on success (or ready), 1 on failure.
func watchJob(ctx context.Context, c *client.Client, id string, untilReady bool, w io.Writer) int {
	return watchJobOn(ctx, c, id, untilReady, w, isTerminal(w))
}

func watchJobOn(ctx context.Context, c *client.Client, id string, untilReady bool, w io.Writer, tty bool) int {
	last := ""
	// drawn counts the lines drawn on the terminal.
	drawn := 0
	// The current step and when this watch first saw it, for the ETA.
	var stepSeen string
	var stepSince time.Time
	for {
		j, err := oneJob(ctx, c, id)
		if err != nil {
			if tty && last != "" {
				// End the redrawn progress line, so the error stands on
				// its own line instead of being glued to it.
				fmt.Fprintln(w)
			}
			return exitFor(err)
		}
		step := ""
		for _, st := range j.Detail.StepInfo {
			if st.StepNo == j.Detail.StepNow {
				step = st.StepId
			}
		}
		line := fmt.Sprintf("%s %-17s %s %3s%%  step %d/%d %-8s %s %3s%%", j.JobId, statusNames[j.Status], bar(j.Detail.Progress, 30), j.Detail.Progress,
			j.Detail.StepNow, j.Detail.StepAll, step, bar(j.Detail.CurrentStepProgress, 10), j.Detail.CurrentStepProgress)
		if j.Status == 7 || j.Status == 8 || j.Status == 12 {
			line += fmt.Sprintf("  lag %ds %dMB", j.Detail.SecondsBehindMaster, j.Detail.MasterSlaveDistance)
		}
		if j.Detail.WaitingForWorker {
			line += "  waiting for a copy worker"
		}
		if step != stepSeen {
			stepSeen, stepSince = step, time.Now()
		}
		// While rows are copied, the server's figures: rows, rate, the
		// copy's ETA and the tables being copied.
		var copyEta string
		var tables []string
		if step == "loader" && j.Status == 7 {
			var add string
			add, copyEta, tables = watchCopy(j.copyView)
			line += add
		}
		pct, _ := strconv.Atoi(j.Detail.CurrentStepProgress)
		switch {
		case copyEta != "":
			line += "  copy ends in ~" + copyEta
		case j.Status == 7 && step != "sinker":
			if left, ok := eta(time.Since(stepSince), pct); ok {
				line += "  step ends in ~" + left.String()
			}
		}
		switch {
		case tty:
			drawn = redraw(w, drawn, append([]string{line}, tables...))
		case line != last:
			fmt.Fprintln(w, line)
		}
		last = line
		done := j.Status == 9 || j.Status == 10 || (untilReady && j.Status == 8)
		if done {
			if tty {
				fmt.Fprintln(w)
			}
			for _, e := range j.ErrorInfo {
				fmt.Fprintln(w, "error:", e.ErrorLog)
			}
			if j.Status == 10 {
				return 1
			}
			return 0
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// listNodes prints DescribeNodes as a table.
func listNodes(ctx context.Context, c *client.Client, w io.Writer) int {
	resp, err := c.Call(ctx, "DescribeNodes", map[string]any{})
	if err != nil {
		return exitFor(err)
	}
	var out struct {
		Cluster bool
		Nodes   []struct {
			Name, Address, StartTime, RegisterTime string
			LeaseAgeSeconds, LeaseRemainingSeconds int64
			JobCount, MaxJobs                      int64
		}
	}
	if err := decode(resp, &out); err != nil {
		return exitFor(err)
	}
	if !out.Cluster {
		fmt.Fprintln(w, "single node (no -etcd-endpoints): this server runs every job itself")
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tADDRESS\tSTARTED\tLEASE AGE\tTTL LEFT\tJOBS")
	for _, n := range out.Nodes {
		age, ttl := "-", "-"
		if out.Cluster {
			age = (time.Duration(n.LeaseAgeSeconds) * time.Second).String()
			ttl = (time.Duration(n.LeaseRemainingSeconds) * time.Second).String()
		}
		jobs := fmt.Sprint(n.JobCount)
		if n.MaxJobs > 0 {
			jobs += fmt.Sprintf(" of %d", n.MaxJobs)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", n.Name, n.Address, n.StartTime, age, ttl, jobs)
	}
	tw.Flush()
	fmt.Fprintf(w, "%d node(s)\n", len(out.Nodes))
	return 0
}
