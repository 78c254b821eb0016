package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common"
	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/profile"
	sdk "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/dts/v20180330"

	"github.com/opendts/opendts/internal/testdb"
	"github.com/opendts/opendts/internal/testetcd"
	"github.com/opendts/opendts/internal/testpg"
)

// runCLI runs the binary with env added to the test's, fails the test
// unless it exits with want, and returns what it printed.
func runCLI(t *testing.T, bin string, env []string, want int, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	if code != want {
		t.Fatalf("opendts %s: exit %d, want %d\n%s", strings.Join(args, " "), code, want, out)
	}
	return string(out)
}

func TestMain(m *testing.M) {
	// The binary built for the tests is 27 MB: it goes with the run, passed
	// or failed.
	testdb.Main(m, testpg.Stop, testetcd.StopShared, func() {
		if built.dir != "" {
			os.RemoveAll(built.dir)
		}
	})
}

// server is `opendts serve` as a separate process, so it can be killed
// with SIGKILL like a crashed server.
type server struct {
	t    *testing.T
	bin  string
	dir  string
	addr string
	cmd  *exec.Cmd
	log  *os.File
	// extra are more serve flags and env more environment (cluster
	// nodes).
	extra, env []string
}

var built struct {
	once sync.Once
	dir  string
	bin  string
	err  error
	out  []byte
}

// buildBinary builds opendts once for the test binary.
func buildBinary(t *testing.T) string {
	t.Helper()
	built.once.Do(func() {
		dir, err := os.MkdirTemp("", "opendts-e2e-")
		if err != nil {
			built.err = err
			return
		}
		built.dir = dir
		built.bin = filepath.Join(dir, "opendts")
		built.out, built.err = exec.Command("go", "build", "-o", built.bin, ".").CombinedOutput()
	})
	if built.err != nil {
		t.Fatalf("go build: %v\n%s", built.err, built.out)
	}
	return built.bin
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startServer starts `opendts serve` for one test, with its own data
// directory and log, and kills it when the test ends.
func startServer(t *testing.T) *server {
	t.Helper()
	logFile, err := os.Create(filepath.Join(t.TempDir(), "opendts.log"))
	if err != nil {
		t.Fatal(err)
	}
	s := &server{t: t, bin: buildBinary(t), dir: t.TempDir(), addr: freeAddr(t), log: logFile}
	s.start()
	t.Cleanup(func() {
		s.kill()
		logFile.Close()
	})
	return s
}

func (s *server) start() {
	s.t.Helper()
	s.cmd = exec.Command(s.bin, append([]string{"serve", "-listen", s.addr, "-data-dir", s.dir, "-chunk-rows", "5000", "-copy-workers", "2"}, s.extra...)...)
	s.cmd.Env = append(append(os.Environ(), "OPENDTS_SECRET_ID=AKIDe2e", "OPENDTS_SECRET_KEY=e2e-key"), s.env...)
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.Dial("tcp", s.addr)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("opendts did not start: see %s", s.log.Name())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *server) kill() {
	s.cmd.Process.Signal(syscall.SIGKILL)
	s.cmd.Wait()
}

func (s *server) client() *sdk.Client {
	cpf := profile.NewClientProfile()
	cpf.HttpProfile.Endpoint = s.addr
	cpf.HttpProfile.Scheme = "http"
	c, err := sdk.NewClient(common.NewCredential("AKIDe2e", "e2e-key"), "ap-guangzhou", cpf)
	if err != nil {
		s.t.Fatal(err)
	}
	return c
}

func (s *server) status(id string) (int64, string) {
	s.t.Helper()
	req := sdk.NewDescribeMigrateJobsRequest()
	req.JobId = &id
	resp, err := s.client().DescribeMigrateJobs(req)
	if err != nil {
		s.t.Fatalf("DescribeMigrateJobs: %v", err)
	}
	j := resp.Response.JobList[0]
	info := ""
	for _, e := range j.ErrorInfo {
		info += *e.ErrorLog
	}
	return *j.Status, info
}

func (s *server) wait(id string, want int64, timeout time.Duration) {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		st, info := s.status(id)
		if st == want {
			return
		}
		if st == 10 || time.Now().After(deadline) {
			s.t.Fatalf("job %s at status %d (%s), want %d; server log: %s", id, st, info, want, tail(s.log.Name()))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func tail(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) > 15 {
		lines = lines[len(lines)-15:]
	}
	return strings.Join(lines, "\n")
}

func sp(s string) *string { return &s }
func ip(i int64) *int64   { return &i }

// `opendts serve` killed with SIGKILL during the copy resumes after a
// restart from the chunks already committed, and the target ends equal to
// the source.
func TestKillDuringFullCopyResumes(t *testing.T) {
	src, dst := testdb.Shared(t)
	db := src.NewDatabase(t, "e2ekill")
	t.Cleanup(func() { dst.Exec(t, "DROP DATABASE IF EXISTS `"+db+"`") })
	src.Exec(t,
		"CREATE TABLE `"+db+"`.t (id INT PRIMARY KEY, v VARCHAR(64), b BLOB)",
		"INSERT INTO `"+db+"`.t SELECT seq, CONCAT('значение ', seq), REPEAT(UNHEX(SHA2(seq, 256)), 8) FROM `"+db+"`.seq_1_to_200000",
		"CREATE TABLE `"+db+"`.dup (a INT, b VARCHAR(5))",
		"INSERT INTO `"+db+"`.dup VALUES (1,'a'),(1,'a'),(NULL,NULL)",
		"ANALYZE TABLE `"+db+"`.t",
	)
	s := startServer(t)

	id := s.createAndCheck(src, dst, db)
	start := sdk.NewStartMigrateJobRequest()
	start.JobId = &id
	if _, err := s.client().StartMigrateJob(start); err != nil {
		t.Fatal(err)
	}
	// Kill once a few chunks are committed and before the copy ends.
	deadline := time.Now().Add(30 * time.Second)
	var chunks int
	for time.Now().Before(deadline) {
		_ = dst.DB(t).QueryRow("SELECT COUNT(*) FROM __opendts.migrate_chunks WHERE job_id = ?", id).Scan(&chunks)
		if chunks >= 3 {
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	s.kill()
	var copied int
	_ = dst.DB(t).QueryRow("SELECT COUNT(*) FROM `" + db + "`.t").Scan(&copied)
	t.Logf("killed with %d chunks committed, %d of 200000 rows on the target", chunks, copied)
	if chunks < 3 || copied >= 200000 {
		t.Fatalf("the kill did not land during the copy (%d chunks, %d rows)", chunks, copied)
	}

	s.start()
	s.wait(id, 9, 60*time.Second)
	testdbCompare(t, src, dst, db, "t", "dup")
	if !strings.Contains(readAll(s.log.Name()), "resuming") {
		t.Error("the log does not say the job resumed")
	}
}

func readAll(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// testdbCompare compares tables by content checksum and row count.
func testdbCompare(t *testing.T, src, dst *testdb.Server, db string, tables ...string) {
	t.Helper()
	for _, tb := range tables {
		var name string
		var a, b *int64
		var na, nb int64
		q := fmt.Sprintf("CHECKSUM TABLE `%s`.`%s` EXTENDED", db, tb)
		if err := src.DB(t).QueryRow(q).Scan(&name, &a); err != nil {
			t.Fatal(err)
		}
		if err := dst.DB(t).QueryRow(q).Scan(&name, &b); err != nil {
			t.Fatal(err)
		}
		src.DB(t).QueryRow(fmt.Sprintf("SELECT COUNT(*) FROM `%s`.`%s`", db, tb)).Scan(&na)
		dst.DB(t).QueryRow(fmt.Sprintf("SELECT COUNT(*) FROM `%s`.`%s`", db, tb)).Scan(&nb)
		if a == nil || b == nil || *a != *b || na != nb {
			t.Errorf("%s differs: source %d rows checksum %v, target %d rows checksum %v", tb, na, a, nb, b)
		}
	}
}

// StopMigrateJob during the copy stops it promptly (status 10 within
// seconds); while it ran, DescribeMigrateJobs showed the copy moving.
func TestStopDuringCopyAndProgress(t *testing.T) {
	src, dst := testdb.Shared(t)
	db := src.NewDatabase(t, "e2estop")
	t.Cleanup(func() { dst.Exec(t, "DROP DATABASE IF EXISTS `"+db+"`") })
	src.Exec(t,
		"CREATE TABLE `"+db+"`.t (id INT PRIMARY KEY, b BLOB)",
		"INSERT INTO `"+db+"`.t SELECT seq, REPEAT(UNHEX(SHA2(seq, 256)), 30) FROM `"+db+"`.seq_1_to_300000",
		"ANALYZE TABLE `"+db+"`.t",
	)
	s := startServer(t)
	id := s.createAndCheck(src, dst, db)
	start := sdk.NewStartMigrateJobRequest()
	start.JobId = &id
	if _, err := s.client().StartMigrateJob(start); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		req := sdk.NewDescribeMigrateJobsRequest()
		req.JobId = &id
		resp, err := s.client().DescribeMigrateJobs(req)
		if err != nil {
			t.Fatal(err)
		}
		j := resp.Response.JobList[0]
		if *j.Status != 7 {
			t.Fatalf("status %d before the stop", *j.Status)
		}
		if *j.Detail.StepNow == 3 && *j.Detail.CurrentStepProgress != "0" && *j.Detail.CurrentStepProgress != "100" {
			seen[*j.Detail.Progress] = true
		}
		if len(seen) >= 2 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(seen) < 2 {
		t.Fatalf("the copy's progress never moved: %v", seen)
	}
	// Prometheus sees the copy and the API calls.
	resp, err := http.Get("http://" + s.addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`opendts_rows_copied_total{job_id="` + id + `"}`,
		`opendts_api_requests_total{action="DescribeMigrateJobs",code=""}`,
		`opendts_jobs{status="7"} 1`,
		`opendts_job_progress_percent{job_id="` + id + `"}`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	stop := sdk.NewStopMigrateJobRequest()
	stop.JobId = &id
	stopped := time.Now()
	if _, err := s.client().StopMigrateJob(stop); err != nil {
		t.Fatal(err)
	}
	for {
		st, info := s.status(id)
		if st == 10 {
			if !strings.Contains(info, "StopMigrateJob") {
				t.Errorf("ErrorInfo %q", info)
			}
			break
		}
		if time.Since(stopped) > 5*time.Second {
			t.Fatalf("still at status %d 5 s after StopMigrateJob", st)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("stopped in %v, progress seen %v", time.Since(stopped).Round(time.Millisecond), seen)
}

func (s *server) createAndCheck(src, dst *testdb.Server, db string) string {
	return s.createAndCheckType(src, dst, db, 2)
}

// createAndCheckType creates a job of a MigrateType for one database, checks
// it and waits for the check to pass.
func (s *server) createAndCheckType(src, dst *testdb.Server, db string, migrateType int64) string {
	s.t.Helper()
	req := sdk.NewCreateMigrateJobRequest()
	req.JobName = sp("e2e " + db)
	req.MigrateOption = &sdk.MigrateOption{RunMode: ip(1), MigrateType: ip(migrateType), MigrateObject: ip(2), ConsistencyType: ip(5)}
	req.SrcDatabaseType, req.SrcAccessType = sp("mariadb"), sp("extranet")
	req.SrcInfo = &sdk.SrcInfo{Ip: sp(src.Host), Port: ip(int64(src.Port)), User: sp("root"), Password: sp("")}
	req.DstDatabaseType, req.DstAccessType = sp("mariadb"), sp("extranet")
	req.DstInfo = &sdk.DstInfo{Ip: sp(dst.Host), Port: ip(int64(dst.Port)), User: sp("root"), Password: sp("")}
	req.DatabaseInfo = sp(fmt.Sprintf(`[{"Database":%q}]`, db))
	resp, err := s.client().CreateMigrateJob(req)
	if err != nil {
		s.t.Fatal(err)
	}
	id := *resp.Response.JobId
	check := sdk.NewCreateMigrateCheckJobRequest()
	check.JobId = &id
	if _, err := s.client().CreateMigrateCheckJob(check); err != nil {
		s.t.Fatal(err)
	}
	s.wait(id, 4, 20*time.Second)
	return id
}

// A full + incremental job through the API under a live write load
// survives a kill -9 of `opendts serve` during its copy and another in its
// incremental phase: after Complete the target equals the source, nothing
// lost and nothing doubled (a keyless table included).
func TestIncrementalSurvivesKillAndCompletes(t *testing.T) {
	src, dst := testdb.Shared(t)
	db := src.NewDatabase(t, "e2ecdc")
	t.Cleanup(func() { dst.Exec(t, "DROP DATABASE IF EXISTS `"+db+"`") })
	src.Exec(t,
		"CREATE TABLE `"+db+"`.t (id INT PRIMARY KEY, v VARCHAR(64), n BIGINT)",
		"INSERT INTO `"+db+"`.t SELECT seq, CONCAT('v', seq), seq FROM `"+db+"`.seq_1_to_30000",
		// Keyless and big enough to be in the middle of its copy when the
		// first chunks of t are done.
		"CREATE TABLE `"+db+"`.log (at INT, what VARCHAR(200))",
		"INSERT INTO `"+db+"`.log SELECT seq % 10, REPEAT('x', 200) FROM `"+db+"`.seq_1_to_150000",
		"ANALYZE TABLE `"+db+"`.t, `"+db+"`.log",
	)
	s := startServer(t)

	stop := make(chan struct{})
	writes := make(chan int, 1)
	go func() {
		conn := src.DB(t)
		n := 0
		for {
			select {
			case <-stop:
				writes <- n
				return
			default:
			}
			n++
			tx, err := conn.Begin()
			if err != nil {
				writes <- n
				return
			}
			tx.Exec(fmt.Sprintf("UPDATE `%s`.t SET n = n + 1, v = 'changed' WHERE id = %d", db, n%30000+1))
			tx.Exec(fmt.Sprintf("INSERT INTO `%s`.t (id, v, n) VALUES (%d, 'new', 0)", db, 100000+n))
			tx.Exec(fmt.Sprintf("DELETE FROM `%s`.t WHERE id = %d", db, (n*7)%30000+1))
			// A primary-key change.
			tx.Exec(fmt.Sprintf("UPDATE `%s`.t SET id = id + 1000000 WHERE id = %d", db, (n*13)%30000+1))
			tx.Exec(fmt.Sprintf("INSERT INTO `%s`.log VALUES (%d, 'x')", db, n%10))
			tx.Exec(fmt.Sprintf("UPDATE `%s`.log SET what = 'y' WHERE at = %d LIMIT 1", db, (n+3)%10))
			tx.Exec(fmt.Sprintf("DELETE FROM `%s`.log WHERE at = %d LIMIT 1", db, (n+5)%10))
			tx.Commit()
			time.Sleep(2 * time.Millisecond)
		}
	}()

	id := s.createAndCheckType(src, dst, db, 3)
	start := sdk.NewStartMigrateJobRequest()
	start.JobId = &id
	if _, err := s.client().StartMigrateJob(start); err != nil {
		t.Fatal(err)
	}
	// kill -9 during the copy: a few chunks of t committed, log not yet.
	deadline := time.Now().Add(30 * time.Second)
	var chunks int
	for time.Now().Before(deadline) && chunks < 1 {
		_ = dst.DB(t).QueryRow("SELECT COUNT(*) FROM __opendts.migrate_chunks WHERE job_id = ?", id).Scan(&chunks)
		time.Sleep(2 * time.Millisecond)
	}
	s.kill()
	var total, logRows int
	if err := dst.DB(t).QueryRow("SELECT COUNT(*) FROM __opendts.migrate_chunks WHERE job_id = ?", id).Scan(&total); err != nil {
		t.Fatal(err)
	}
	if err := dst.DB(t).QueryRow("SELECT COUNT(*) FROM `" + db + "`.log").Scan(&logRows); err != nil {
		t.Fatal(err)
	}
	t.Logf("killed during the copy with %d chunks done, %d rows of log copied", total, logRows)
	// The keyless table is the biggest chunk: while it is not committed
	// the copy is not over.
	if total < 1 || logRows > 0 {
		t.Fatalf("the kill did not land during the copy (%d chunks done, %d rows of log copied)", total, logRows)
	}
	time.Sleep(300 * time.Millisecond)
	s.start()

	// A DDL under the load, then kill -9 again in the incremental phase.
	s.wait(id, 8, 60*time.Second)
	src.Exec(t, "ALTER TABLE `"+db+"`.t ADD COLUMN extra VARCHAR(10) DEFAULT 'x'")
	time.Sleep(300 * time.Millisecond)
	s.kill()
	time.Sleep(300 * time.Millisecond)
	s.start()
	s.wait(id, 8, 60*time.Second)
	time.Sleep(300 * time.Millisecond)

	close(stop)
	n := <-writes
	complete := sdk.NewCompleteMigrateJobRequest()
	complete.JobId = &id
	if _, err := s.client().CompleteMigrateJob(complete); err != nil {
		t.Fatal(err)
	}
	s.wait(id, 9, 60*time.Second)
	t.Logf("%d source transactions while the job ran", n)
	testdb.CompareDatabase(t, src, dst, db)
}

// A job driven from start to end through the CLI alone: opendts dts for
// the actions, watch until it ends, jobs and job to look at it.
func TestCLIDrivesAJob(t *testing.T) {
	src, dst := testdb.Shared(t)
	db := src.NewDatabase(t, "e2ecli")
	t.Cleanup(func() { dst.Exec(t, "DROP DATABASE IF EXISTS `"+db+"`") })
	src.Exec(t, "CREATE TABLE `"+db+"`.t (id INT PRIMARY KEY, v TEXT)",
		"INSERT INTO `"+db+"`.t SELECT seq, REPEAT('é', seq % 50) FROM `"+db+"`.seq_1_to_5000")
	s := startServer(t)
	cli := func(want int, args ...string) string {
		t.Helper()
		return runCLI(t, s.bin, []string{"OPENDTS_SECRET_ID=AKIDe2e", "OPENDTS_SECRET_KEY=e2e-key"}, want, append(args, "--endpoint", s.addr)...)
	}
	out := cli(0, "dts", "CreateMigrateJob", "--JobName", "cli job",
		"--MigrateOption", `{"RunMode":1,"MigrateType":2,"MigrateObject":2,"ConsistencyType":2}`,
		"--SrcDatabaseType", "mariadb", "--SrcAccessType", "extranet",
		"--SrcInfo", fmt.Sprintf(`{"Ip":%q,"Port":%d,"User":"root","Password":""}`, src.Host, src.Port),
		"--DstDatabaseType", "mariadb", "--DstAccessType", "extranet",
		"--DstInfo", fmt.Sprintf(`{"Ip":%q,"Port":%d,"User":"root","Password":""}`, dst.Host, dst.Port),
		"--DatabaseInfo", fmt.Sprintf(`[{"Database":%q}]`, db))
	var created struct{ JobId string }
	if err := json.Unmarshal([]byte(out), &created); err != nil || created.JobId == "" {
		t.Fatalf("CreateMigrateJob printed %s", out)
	}
	id := created.JobId
	// API errors exit 1 with the code.
	if out := cli(1, "dts", "StartMigrateJob", "--JobId", id); !strings.Contains(out, "FailedOperation.NotAllowOperation") {
		t.Errorf("start before check: %s", out)
	}
	cli(0, "dts", "CreateMigrateCheckJob", "--JobId", id)
	s.wait(id, 4, 20*time.Second)
	cli(0, "dts", "StartMigrateJob", "--JobId", id)
	watched := cli(0, "watch", id)
	if !strings.Contains(watched, "succeeded") || !strings.Contains(watched, "100%") {
		t.Errorf("watch printed %s", watched)
	}
	list := cli(0, "jobs")
	if !strings.Contains(list, id) || !strings.Contains(list, "9 succeeded") || !strings.Contains(list, "cli job") {
		t.Errorf("jobs printed %s", list)
	}
	shown := cli(0, "job", id)
	for _, want := range []string{"9 succeeded", "loader", "verified", "equal", "ConnectDBCheck"} {
		if !strings.Contains(shown, want) {
			t.Errorf("job does not show %q:\n%s", want, shown)
		}
	}
	testdbCompare(t, src, dst, db, "t")
}

// Every command answers -h with its help and exit 0; an action's help lists
// its parameters, their API types, the required ones and an example;
// version prints what was stamped at build time.
func TestHelpAndVersion(t *testing.T) {
	bin := buildBinary(t)
	run := func(want int, args ...string) string {
		t.Helper()
		// No server and no credentials: help must not need either.
		return runCLI(t, bin, []string{"OPENDTS_ENDPOINT=127.0.0.1:1", "OPENDTS_SECRET_ID=", "OPENDTS_SECRET_KEY="}, want, args...)
	}
	for _, args := range [][]string{{"-h"}, {"serve", "-h"}, {"dts", "-h"}, {"jobs", "-h"}, {"job", "-h"}, {"watch", "--help"}} {
		out := run(0, args...)
		if !strings.Contains(out, "Usage") || strings.Contains(out, "help requested") {
			t.Errorf("opendts %s printed:\n%s", strings.Join(args, " "), out)
		}
	}
	if out := run(0, "dts", "-h"); !strings.Contains(out, "CreateMigrateJob") || !strings.Contains(out, "CompleteMigrateJob") {
		t.Errorf("dts -h does not list the actions:\n%s", out)
	}
	out := run(0, "dts", "CreateMigrateJob", "-h")
	for _, want := range []string{"JobName", "String", "required", "MigrateOption:", "RunMode", "Integer", "SrcInfo:", "Port", "Example:", "opendts dts CreateMigrateJob --JobName"} {
		if !strings.Contains(out, want) {
			t.Errorf("CreateMigrateJob -h does not show %q:\n%s", want, out)
		}
	}
	run(2, "dts", "NoSuchAction", "-h")

	stamped := filepath.Join(t.TempDir(), "opendts")
	if out, err := exec.Command("go", "build", "-ldflags", "-X main.version=v9.9.9 -X main.commit=0123abc", "-o", stamped, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	if out, err := exec.Command(stamped, "version").Output(); err != nil || !strings.Contains(string(out), "v9.9.9") || !strings.Contains(string(out), "0123abc") {
		t.Errorf("version printed %q (%v)", out, err)
	}
}
