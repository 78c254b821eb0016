package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	sdk "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/dts/v20180330"

	"github.com/opendts/opendts/internal/testdb"
)

// browser is a headless Debian Chromium driven by chromedp, with every
// console error, uncaught exception and error entry of the browser log kept.
type browser struct {
	t      *testing.T
	ctx    context.Context
	mu     sync.Mutex
	errors []string
}

// chromiumPath finds Debian's Chromium: scripts/test.sh installs it. A
// machine that cannot have it sets OPENDTS_SKIP_BROWSER=1.
func chromiumPath(t *testing.T) string {
	t.Helper()
	if os.Getenv("OPENDTS_SKIP_BROWSER") == "1" {
		t.Skip("OPENDTS_SKIP_BROWSER=1: the browser tests are skipped")
	}
	for _, name := range []string{"chromium", "/usr/bin/chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("chromium is not installed: scripts/test.sh installs Debian's chromium and chromium-driver (set OPENDTS_SKIP_BROWSER=1 where it cannot be)")
	return ""
}

func newBrowser(t *testing.T, extra ...chromedp.ExecAllocatorOption) *browser {
	t.Helper()
	// Nothing is fetched from the network: the flags keep Chromium from
	// calling home, and the user data directory is new.
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		// A name that is not loopback for the secure-context check; it
		// resolves to the loopback address, nothing leaves the machine.
		chromedp.Flag("host-resolver-rules", "MAP opendts-console.test 127.0.0.1"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	}
	opts = append(opts, extra...)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	b := &browser{t: t, ctx: ctx}
	// The first Run starts the browser; it must not have a timeout.
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleException {
				b.mu.Lock()
				b.errors = append(b.errors, fmt.Sprintf("%s (%s:%d)", m.String(), m.URL, m.Line))
				b.mu.Unlock()
			}
		}
	}()
	// The listener hears the page: an error written on purpose arrives
	// (else "no console errors" would prove nothing), and is then dropped.
	eval[bool](b, "write a console error", `console.error('opendts console self-check'); true`)
	deadline := time.Now().Add(10 * time.Second)
	for len(b.consoleErrors()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the browser's console errors do not reach the test")
		}
		time.Sleep(20 * time.Millisecond)
	}
	b.mu.Lock()
	b.errors = nil
	b.mu.Unlock()
	return b
}

func (b *browser) consoleErrors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.errors...)
}

func (b *browser) fail(what string, err error) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	body, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("main")))
	b.t.Fatalf("%s: %v\npage shows: %.2000s\nconsole errors: %v", what, err, body, b.consoleErrors())
}

// run runs steps with a timeout, failing the test with what step failed.
func (b *browser) run(what string, timeout time.Duration, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, timeout)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.fail(what, err)
	}
}

func (b *browser) text(sel string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		b.fail("read "+sel, err)
	}
	return s
}

func (b *browser) value(sel string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Value(chromedp.CSS(sel)))
	if err != nil {
		b.fail("read the value of "+sel, err)
	}
	return s
}

// eval evaluates expr in the page, awaiting a promise.
func eval[T any](b *browser, what, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		b.fail(what, err)
	}
	return v
}

// screenshot saves the page to docs/NAME, where the README shows it.
func (b *browser) screenshot(name string) {
	b.t.Helper()
	// The last action's notice would cover part of the picture.
	eval[bool](b, "hide the notice", `document.getElementById('toast').className = ''; true`)
	time.Sleep(300 * time.Millisecond)
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.fail("screenshot "+name, err)
	}
	// The README's pictures are rewritten only on request, so that a test
	// run leaves the working tree as it found it; otherwise they go to the
	// test's own directory, taken all the same.
	dir := b.t.TempDir()
	if os.Getenv("OPENDTS_SCREENSHOTS") == "1" {
		dir = filepath.Join("..", "..", "docs")
	}
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// axe runs axe-core (tests/node's pinned copy) on the page and fails on
// serious and critical violations.
func (b *browser) axe(page string) {
	b.t.Helper()
	src, err := os.ReadFile(filepath.Join("..", "..", "tests", "node", "node_modules", "axe-core", "axe.min.js"))
	if err != nil {
		if _, nodeErr := exec.LookPath("node"); nodeErr != nil {
			b.t.Logf("node is not installed, so neither is axe-core: the %s is not checked for accessibility", page)
			return
		}
		b.t.Fatalf("axe-core is not installed (scripts/test.sh runs npm ci in tests/node): %v", err)
	}
	if !eval[bool](b, "inject axe-core", string(src)+";\ntypeof axe === 'object'") {
		b.t.Fatal("axe-core did not load")
	}
	out := eval[string](b, "run axe-core on the "+page, `axe.run(document, {resultTypes: ['violations']}).then((r) => JSON.stringify(
		r.violations.map((v) => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map((n) => n.target.join(' '))}))))`)
	var violations []struct {
		ID, Impact, Help string
		Nodes            []string
	}
	if err := json.Unmarshal([]byte(out), &violations); err != nil {
		b.t.Fatalf("axe-core answered %q: %v", out, err)
	}
	for _, v := range violations {
		if v.Impact == "serious" || v.Impact == "critical" {
			b.t.Errorf("accessibility of the %s: %s (%s): %s at %v", page, v.ID, v.Impact, v.Help, v.Nodes)
		} else {
			b.t.Logf("accessibility of the %s, %s: %s (%s) at %v", page, v.Impact, v.ID, v.Help, v.Nodes)
		}
	}
}

func (b *browser) waitStatus(sel string, status int, timeout time.Duration) {
	b.t.Helper()
	b.run(fmt.Sprintf("wait for status %d at %s", status, sel), timeout,
		chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`%s .badge[data-status="%d"]`, sel, status))))
}

// confirm accepts the page's confirmation dialog.
func (b *browser) confirm() {
	b.t.Helper()
	b.run("confirm", 10*time.Second,
		chromedp.WaitVisible(chromedp.CSS("#confirm-ok")),
		chromedp.Click(chromedp.CSS("#confirm-ok")))
}

// A DBA's whole job through the console in Chromium: a wrong key's error,
// sign-in, a full + incremental job between two MariaDB servers created in
// the form (a field error first, the objects picked in the tree), checked,
// started, ready to complete, completed with its verification, deleted,
// sign-out; no error in the browser's console, and axe-core finds no
// serious accessibility violation on any page.
func TestConsoleDrivesAJob(t *testing.T) {
	b := newBrowser(t)
	src, dst := testdb.Shared(t)
	db := src.NewDatabase(t, "console")
	t.Cleanup(func() { dst.Exec(t, "DROP DATABASE IF EXISTS `"+db+"`") })
	src.Exec(t,
		"CREATE TABLE `"+db+"`.orders (id INT PRIMARY KEY, customer INT, note VARCHAR(100))",
		"INSERT INTO `"+db+"`.orders SELECT seq, seq % 97, CONCAT('order ', seq) FROM `"+db+"`.seq_1_to_40000",
		"CREATE TABLE `"+db+"`.customers (id INT PRIMARY KEY, name VARCHAR(64))",
		"INSERT INTO `"+db+"`.customers SELECT seq, CONCAT('customer ', seq) FROM `"+db+"`.seq_1_to_97",
		"CREATE TABLE `"+db+"`.audit (at INT, what VARCHAR(64))",
		"ANALYZE TABLE `"+db+"`.orders, `"+db+"`.customers")
	s := startServer(t)
	base := "http://" + s.addr + "/console/"
	catalogue := fmt.Sprintf(`[{"InstanceId":"cdb-console-target","Engine":"mariadb","Host":%q,"Port":%d,"User":"root"}]`, dst.Host, dst.Port)
	if err := os.WriteFile(filepath.Join(s.dir, "instances.json"), []byte(catalogue), 0o600); err != nil {
		t.Fatal(err)
	}

	// Over plain HTTP on a name other than localhost the browser gives no
	// Web Crypto: the page says so and does not offer to sign in.
	insecure := strings.Replace(base, "127.0.0.1", "opendts-console.test", 1)
	b.run("open the console by a non-loopback name", 30*time.Second,
		chromedp.Navigate(insecure),
		chromedp.WaitVisible(chromedp.CSS("#insecure")))
	if msg := b.text("#insecure"); !strings.Contains(msg, "-tls-cert") {
		t.Errorf("the insecure-context notice says %q", msg)
	}
	if !eval[bool](b, "the sign-in button", `document.getElementById('signin-submit').disabled`) {
		t.Error("sign-in is offered without Web Crypto")
	}

	// Sign-in: a wrong key is told apart from an unknown id.
	b.run("open the console", 30*time.Second,
		chromedp.Navigate(base),
		chromedp.WaitVisible(chromedp.CSS("#secretId")))
	b.axe("sign-in page")
	b.run("sign in with a wrong key", 15*time.Second,
		chromedp.SendKeys(chromedp.CSS("#secretId"), "AKIDe2e"),
		chromedp.SendKeys(chromedp.CSS("#secretKey"), "not-the-key"),
		chromedp.Click(chromedp.CSS("#signin-submit")),
		chromedp.WaitVisible(chromedp.CSS("#signin-error")))
	if msg := b.text("#signin-error"); !strings.Contains(msg, "SecretKey does not match") {
		t.Errorf("a wrong key shows %q", msg)
	}
	stored := eval[string](b, "read sessionStorage", `sessionStorage.getItem('opendts.credentials') || ''`)
	if stored != "" {
		t.Errorf("a refused key was kept: %q", stored)
	}
	// The refused key's field has the focus: the right one is typed and
	// sent with the keyboard alone.
	if !eval[bool](b, "the focus after a refused key", `document.activeElement.id === 'secretKey'`) {
		t.Error("after a refused key the focus is not on the SecretKey")
	}
	b.run("sign in with the keyboard", 15*time.Second,
		clearInput("#secretKey"),
		chromedp.KeyEvent("e2e-key"),
		chromedp.KeyEvent("\r"),
		chromedp.WaitVisible(chromedp.CSS("#jobs-body")))

	// The form: the API's own message at the field it names, then a job.
	b.run("open the form", 15*time.Second,
		chromedp.Click(chromedp.CSS("#new-job")),
		chromedp.WaitVisible(chromedp.CSS("#job-form")))
	b.axe("job form")
	set := func(param, value string) chromedp.Action[chromedp.Void] {
		return chromedp.SetValue(chromedp.CSS(`[data-param="`+param+`"]`), value)
	}
	b.run("fill the form", 15*time.Second,
		set("SrcDatabaseType", "mariadb"), set("SrcInfo.Ip", src.Host), set("SrcInfo.Port", fmt.Sprint(src.Port)), set("SrcInfo.User", "root"),
		// The target by InstanceId, from the instance catalogue.
		set("DstDatabaseType", "mariadb"), set("DstAccessType", "cdb"), dispatchChange(`[data-param="DstAccessType"]`),
		chromedp.WaitVisible(chromedp.CSS(`[data-param="DstInfo.InstanceId"]`)),
		chromedp.WaitNotVisible(chromedp.CSS(`[data-param="DstInfo.Ip"]`)),
		set("DstInfo.InstanceId", "cdb-console-target"),
		chromedp.Click(chromedp.CSS(`input[name="MigrateOption.MigrateType"][value="3"]`)),
		set("MigrateOption.ConsistencyType", "2"),
		chromedp.Click(chromedp.CSS("#form-submit")),
		chromedp.WaitVisible(chromedp.CSS(`[data-error-for="JobName"]`)))
	if msg := b.text(`[data-error-for="JobName"]`); !strings.Contains(msg, "JobName") {
		t.Errorf("the JobName field shows %q", msg)
	}
	b.run("a sampled verification out of range", 15*time.Second,
		set("JobName", "console "+db),
		dispatchChange(`[data-param="JobName"]`),
		chromedp.WaitNotVisible(chromedp.CSS(`[data-error-for="JobName"]`)),
		set("MigrateOption.ConsistencyType", "3"),
		dispatchChange(`[data-param="MigrateOption.ConsistencyType"]`),
		chromedp.WaitVisible(chromedp.CSS(`[data-param="MigrateOption.ConsistencyParams.SelectRowsPerTable"]`)),
		set("MigrateOption.ConsistencyParams.SelectRowsPerTable", "500"),
		chromedp.Click(chromedp.CSS("#form-submit")),
		chromedp.WaitVisible(chromedp.CSS(`[data-error-for="MigrateOption.ConsistencyParams.SelectRowsPerTable"]`)))
	t.Logf("the API's message at the field: %s", b.text(`[data-error-for="MigrateOption.ConsistencyParams.SelectRowsPerTable"]`))
	b.run("pick the objects in the tree", 30*time.Second,
		set("MigrateOption.ConsistencyType", "2"),
		dispatchChange(`[data-param="MigrateOption.ConsistencyType"]`),
		chromedp.Click(chromedp.CSS(`input[name="MigrateObject"][value="some"]`)),
		chromedp.WaitVisible(chromedp.CSS("#tree-load")),
		chromedp.Click(chromedp.CSS("#tree-load")),
		chromedp.WaitVisible(chromedp.CSS(`#tree input[data-dbbox="`+db+`"]`)),
		chromedp.Click(chromedp.CSS(`#tree input[data-dbbox="`+db+`"]`)))
	dbInfo := b.value(`[data-param="DatabaseInfo"]`)
	if want := fmt.Sprintf(`[{"Database":%q}]`, db); dbInfo != want {
		t.Errorf("the tree wrote DatabaseInfo %s, want %s", dbInfo, want)
	}
	b.axe("job form with the object tree")
	if eval[bool](b, "the sampling fields", `getComputedStyle(document.getElementById('sampling')).display !== 'none'`) {
		t.Error("the sampling fields show with ConsistencyType 2")
	}
	b.screenshot("console-form.png")
	b.run("create the job", 20*time.Second,
		chromedp.Click(chromedp.CSS("#form-submit")),
		chromedp.WaitVisible(chromedp.CSS("#job-status .badge")))
	hash := eval[string](b, "read the job's address", "location.hash")
	id := strings.TrimPrefix(hash, "#/jobs/")
	if !strings.HasPrefix(id, "dts-") {
		t.Fatalf("after create the console shows %q", hash)
	}
	b.waitStatus("#job-status", 1, 10*time.Second)

	// Modify: the form comes back filled (never with a password), a
	// change is saved.
	b.run("modify", 20*time.Second,
		chromedp.Click(chromedp.CSS(`#job-head a[data-action="modify"]`)),
		chromedp.WaitVisible(chromedp.CSS("#job-form")))
	if got := b.value(`[data-param="SrcInfo.Ip"]`); got != src.Host {
		t.Errorf("the modify form shows SrcInfo.Ip %q", got)
	}
	if got := b.value(`[data-param="SrcInfo.Password"]`); got != "" {
		t.Errorf("the modify form shows a password %q", got)
	}
	// The tree lists the job's stored source and ticks its selection.
	b.run("the tree of the job", 20*time.Second,
		chromedp.Click(chromedp.CSS("#tree-load")),
		chromedp.WaitVisible(chromedp.CSS(`#tree input[data-dbbox="`+db+`"]`)))
	if !eval[bool](b, "the ticked database", `document.querySelector('#tree input[data-dbbox="`+db+`"]').checked`) {
		t.Error("the tree of a modified job does not tick its selection")
	}
	b.run("save the change", 20*time.Second,
		set("JobName", "console "+db+" nightly"),
		chromedp.Click(chromedp.CSS("#form-submit")),
		chromedp.WaitVisible(chromedp.CSS("#job-status .badge")))
	b.run("the new name", 10*time.Second, chromedp.WaitVisible(chromedp.CSS(`#job-title`)))
	if title := b.text("#job-title"); !strings.Contains(title, "nightly") {
		t.Errorf("after modify the title is %q", title)
	}

	// Check, start, ready to complete.
	b.run("check", 60*time.Second,
		chromedp.Click(chromedp.CSS(`#job-head button[data-action="check"]`)))
	b.waitStatus("#job-status", 4, 60*time.Second)
	b.run("the check items", 10*time.Second, chromedp.WaitVisible(chromedp.CSS("#check table")))
	if items := b.text("#check"); !strings.Contains(items, "ConnectDBCheck") || !strings.Contains(items, "passed") {
		t.Errorf("the check shows %q", items)
	}
	b.run("start", 10*time.Second, chromedp.Click(chromedp.CSS(`#job-head button[data-action="start"]`)))
	b.waitStatus("#job-status", 8, 120*time.Second)
	src.Exec(t, "INSERT INTO `"+db+"`.audit VALUES (1, 'written while the job follows the source')",
		"UPDATE `"+db+"`.orders SET note = 'changed' WHERE id <= 100")
	b.run("the tables and the lag chart", 30*time.Second,
		chromedp.WaitVisible(chromedp.CSS("#tables table")),
		chromedp.WaitVisible(chromedp.CSS("#lag svg")))
	if steps := b.text("#steps"); !strings.Contains(steps, "succeeded") || !strings.Contains(steps, "started") {
		t.Errorf("the steps show %q", steps)
	}
	if tables := b.text("#tables"); !strings.Contains(tables, db+".orders") || !strings.Contains(tables, "done") {
		t.Errorf("the tables show %q", tables)
	}
	// Writes on the source for a few seconds, so that the chart has more
	// than a couple of samples.
	conn := src.DB(t)
	for i := 0; i < 60; i++ {
		if _, err := conn.Exec("INSERT INTO `"+db+"`.audit VALUES (?, 'a write while the job follows the source')", i); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(2 * time.Second)
	b.axe("job page")
	b.screenshot("console-job.png")

	// Another job, created through the SDK and left at status 1, so that the
	// list shows more than one.
	other := sdk.NewCreateMigrateJobRequest()
	other.JobName = sp("orders archive, structure only")
	other.MigrateOption = &sdk.MigrateOption{RunMode: ip(1), MigrateType: ip(1), ConsistencyType: ip(1)}
	other.SrcDatabaseType, other.SrcAccessType = sp("mysql"), sp("extranet")
	other.SrcInfo = &sdk.SrcInfo{Ip: sp(src.Host), Port: ip(int64(src.Port)), User: sp("root"), Password: sp("")}
	other.DstDatabaseType, other.DstAccessType = sp("mysql"), sp("extranet")
	other.DstInfo = &sdk.DstInfo{Ip: sp(dst.Host), Port: ip(int64(dst.Port)), User: sp("root"), Password: sp("")}
	other.DatabaseInfo = sp(fmt.Sprintf(`[{"Database":%q,"Table":["orders"]}]`, db))
	created, err := s.client().CreateMigrateJob(other)
	if err != nil {
		t.Fatal(err)
	}
	otherID := *created.Response.JobId

	// The list: the row is updated in place, not redrawn.
	b.run("the list", 15*time.Second,
		chromedp.Navigate(base+"#/jobs"),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-job="`+id+`"] .badge[data-status="8"]`)))
	eval[bool](b, "mark the row", `window.__row = document.querySelector('tr[data-job="`+id+`"]'); true`)
	time.Sleep(4500 * time.Millisecond)
	if !eval[bool](b, "compare the row", `document.querySelector('tr[data-job="`+id+`"]') === window.__row`) {
		t.Errorf("the list redrew the row of %s on refresh", id)
	}
	if row := b.text(`tr[data-job="` + id + `"]`); !strings.Contains(row, "full + incremental") || !strings.Contains(row, "ready to complete") ||
		!strings.Contains(row, fmt.Sprintf("mariadb %s:%d", src.Host, src.Port)) || !strings.Contains(row, "mariadb cdb-console-target") || !strings.Contains(row, " s · ") {
		t.Errorf("the row shows %q", row)
	}
	b.run("filter by status", 10*time.Second,
		chromedp.SetValue(chromedp.CSS("#filter-status"), "9"),
		dispatchChange("#filter-status"),
		chromedp.WaitNotPresent(chromedp.CSS(`tr[data-job="`+id+`"]`)),
		chromedp.SetValue(chromedp.CSS("#filter-status"), "all"),
		dispatchChange("#filter-status"),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-job="`+id+`"]`)))
	b.run("the other job", 10*time.Second, chromedp.WaitVisible(chromedp.CSS(`#jobs-body .badge[data-status="1"]`)))
	b.axe("job list")
	b.screenshot("console-list.png")

	// Complete from the list, confirmed with the keyboard (the dialog opens
	// on Cancel); the verification.
	b.run("complete", 10*time.Second,
		chromedp.Click(chromedp.CSS(`tr[data-job="`+id+`"] button[data-action="complete"]`)),
		chromedp.WaitVisible(chromedp.CSS("#confirm-ok")))
	if !eval[bool](b, "the dialog's focus", `document.activeElement.id === 'confirm-cancel'`) {
		t.Error("the confirmation does not open on Cancel")
	}
	b.run("confirm with the keyboard", 10*time.Second, chromedp.KeyEvent("\t"), chromedp.KeyEvent("\r"))
	b.waitStatus(`tr[data-job="`+id+`"]`, 9, 120*time.Second)
	b.run("the job page", 30*time.Second,
		chromedp.Click(chromedp.CSS(`tr[data-job="`+id+`"] a`)),
		chromedp.WaitVisible(chromedp.CSS("#verification table")))
	if v := b.text("#verification"); !strings.Contains(v, db+".orders") || !strings.Contains(v, "same") || strings.Contains(v, "✕") {
		t.Errorf("the verification shows %q", v)
	}
	if settings := b.text("#settings"); strings.Contains(strings.ToLower(settings), "password") {
		t.Errorf("the settings show a password field: %q", settings)
	}
	testdbCompare(t, src, dst, db, "orders", "customers", "audit")

	// Delete, after the confirmation.
	b.run("delete", 10*time.Second, chromedp.Click(chromedp.CSS(`#job-head button[data-action="delete"]`)))
	b.confirm()
	b.run("back to the list without the job", 20*time.Second,
		chromedp.WaitVisible(chromedp.CSS("#jobs-body")),
		chromedp.WaitNotPresent(chromedp.CSS(`tr[data-job="`+id+`"]`)))

	// A check that fails: the other job's table is on the target now.
	b.run("check the other job", 10*time.Second, chromedp.Click(chromedp.CSS(`tr[data-job="`+otherID+`"] button[data-action="check"]`)))
	b.waitStatus(`tr[data-job="`+otherID+`"]`, 5, 60*time.Second)
	b.run("the failed check", 20*time.Second,
		chromedp.Click(chromedp.CSS(`tr[data-job="`+otherID+`"] a`)),
		chromedp.WaitVisible(chromedp.CSS("#check table")))
	if c := b.text("#check"); !strings.Contains(c, "DstEmptyCheck") || !strings.Contains(c, "failed") {
		t.Errorf("the failed check shows %q", c)
	}
	b.axe("page of a job whose check failed")

	// Sign-out forgets the key.
	b.run("sign out", 10*time.Second,
		chromedp.Click(chromedp.CSS("#signout")),
		chromedp.WaitVisible(chromedp.CSS("#secretId")))
	stored = eval[string](b, "read sessionStorage", `sessionStorage.getItem('opendts.credentials') || ''`)
	if stored != "" {
		t.Errorf("sign-out kept the key: %q", stored)
	}
	if errs := b.consoleErrors(); len(errs) > 0 {
		t.Errorf("the browser's console has errors: %v", errs)
	}
}

// dispatchChange fires the change event a user's pick fires (SetValue does
// not).
func dispatchChange(sel string) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := chromedp.Evaluate[bool](`document.querySelector(`+"`"+sel+"`"+`).dispatchEvent(new Event('change', {bubbles: true}))`)(ctx, t)
		return chromedp.Void{}, err
	}
}

// clearInput empties an input the way a user's select-all and delete does
// (SetValue refuses an empty value).
func clearInput(sel string) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := chromedp.Evaluate[bool](`(document.querySelector(`+"`"+sel+"`"+`).value = '') === ''`)(ctx, t)
		return chromedp.Void{}, err
	}
}
