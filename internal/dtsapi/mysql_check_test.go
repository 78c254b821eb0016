package dtsapi_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	dts "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/dts/v20180330"

	"github.com/opendts/opendts/internal/app"
	"github.com/opendts/opendts/internal/testdb"
)

func TestMain(m *testing.M) { testdb.Main(m) }

// The real MySQL-family check, driven through the API with the official
// SDK against real MariaDB servers.
func TestMySQLCheckThroughTheAPI(t *testing.T) {
	src, dst := testdb.Shared(t)
	e := newEnv(t, func(c *app.Config) { c.Engines = nil }) // the built-in engines
	db := src.NewDatabase(t, "apicheck")
	src.Exec(t,
		fmt.Sprintf("CREATE TABLE `%s`.orders (id BIGINT PRIMARY KEY, note VARCHAR(20)) CHARSET utf8mb4", db),
		fmt.Sprintf("CREATE TABLE `%s`.audit_log (at DATETIME, what TEXT)", db),
	)
	job := func(name string, srcPort int64, password string) *dts.CreateMigrateJobRequest {
		req := newJobRequest(name)
		req.MigrateOption.MigrateType = ip(3)
		req.SrcInfo = &dts.SrcInfo{Ip: sp(src.Host), Port: ip(srcPort), User: sp("root"), Password: sp(password)}
		req.DstInfo = &dts.DstInfo{Ip: sp(dst.Host), Port: ip(int64(dst.Port)), User: sp("root"), Password: sp(""), Region: sp(testRegion)}
		req.DatabaseInfo = sp(fmt.Sprintf(`[{"Database":%q}]`, db))
		return req
	}

	t.Run("a good setup passes, with a warning for the table without a key", func(t *testing.T) {
		id := e.create(job("good", int64(src.Port), ""))
		e.check(id)
		e.waitStatus(id, 4)
		resp := checkResult(t, e, id)
		if resp["CheckFlag"].(float64) != 1 || resp["ErrorMessage"] != "ok" {
			t.Fatalf("check: %v", resp)
		}
		var warned bool
		for _, it := range resp["CheckItems"].([]any) {
			item := it.(map[string]any)
			if item["Result"] == "fail" {
				t.Errorf("failed item in a good setup: %v", item)
			}
			if item["Name"] == "PrimaryKeyCheck" && item["Result"] == "warning" && strings.Contains(item["Message"].(string), "audit_log") {
				warned = true
			}
		}
		if !warned {
			t.Errorf("no PrimaryKeyCheck warning naming audit_log: %v", resp["CheckItems"])
		}
		if err := e.jobCall("Delete", id); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("a wrong password fails and says so", func(t *testing.T) {
		user := src.NewUser(t, "apicheck", "right-password", "SELECT ON *.*")
		req := job("wrong password", int64(src.Port), "wrong-password")
		req.SrcInfo.User = sp(user)
		id := e.create(req)
		e.check(id)
		e.waitStatus(id, 5)
		resp := checkResult(t, e, id)
		msg := resp["ErrorMessage"].(string)
		if !strings.Contains(msg, "ConnectDBCheck") || !strings.Contains(strings.ToLower(msg), "password") {
			t.Errorf("ErrorMessage does not name the cause: %s", msg)
		}
		if strings.Contains(msg, "wrong-password") {
			t.Error("the password is in the message")
		}
		// The cause once: the items that need the source say they did
		// not run, and the message counts them instead of repeating it.
		if n := strings.Count(msg, "ConnectDBCheck"); n != 1 || len(msg) > 600 || !strings.Contains(msg, "not run") {
			t.Errorf("ErrorMessage should name the connection once (%d times), briefly (%d characters), and count the items not run: %s", n, len(msg), msg)
		}
		notRun := 0
		for _, it := range resp["CheckItems"].([]any) {
			item := it.(map[string]any)
			switch {
			case item["Name"] == "SrcPrivilegeCheck" && item["Result"] != "notRun":
				t.Errorf("SrcPrivilegeCheck needs the source and cannot run: %v", item)
			case item["Result"] == "notRun":
				notRun++
			}
		}
		if notRun == 0 {
			t.Errorf("no item is shown as not run: %v", resp["CheckItems"])
		}
		if err := e.jobCall("Delete", id); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("a port nothing listens on fails within seconds", func(t *testing.T) {
		id := e.create(job("nobody home", 1, ""))
		start := time.Now()
		e.check(id)
		e.waitStatus(id, 5)
		if took := time.Since(start); took > 15*time.Second {
			t.Errorf("the check took %v", took)
		}
		resp := checkResult(t, e, id)
		if msg := resp["ErrorMessage"].(string); !strings.Contains(msg, "127.0.0.1:1") {
			t.Errorf("ErrorMessage does not name the address: %s", msg)
		}
	})
}
