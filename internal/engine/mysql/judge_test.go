package mysql

import (
	"strings"
	"testing"

	"github.com/opendts/opendts/internal/engine"
)

func TestParseVersion(t *testing.T) {
	cases := []struct {
		raw     string
		want    string
		mariadb bool
	}{
		{"8.0.36", "MySQL 8.0.36", false},
		{"5.7.44-log", "MySQL 5.7.44", false},
		{"8.0.35-27", "MySQL 8.0.35", false},
		{"10.11.6-MariaDB-0+deb12u1-log", "MariaDB 10.11.6", true},
		{"5.5.5-10.1.48-MariaDB", "MariaDB 10.1.48", true},
		{"11.4", "MySQL 11.4.0", false},
	}
	for _, c := range cases {
		v, err := parseVersion(c.raw)
		if err != nil || v.String() != c.want || v.mariadb != c.mariadb {
			t.Errorf("parseVersion(%q) = %v, %v; want %s", c.raw, v, err, c.want)
		}
	}
	if _, err := parseVersion("banana"); err == nil {
		t.Error("parseVersion accepted garbage")
	}
}

func TestCompareVersions(t *testing.T) {
	cases := []struct {
		src, dst, want, mention string
	}{
		{"10.11.6-MariaDB", "10.11.2-MariaDB", engine.ResultPass, "compatible"},
		{"10.6.1-MariaDB", "11.4.2-MariaDB", engine.ResultPass, "compatible"},
		{"10.11.6-MariaDB", "10.6.16-MariaDB", engine.ResultFail, "older than the source"},
		{"8.0.36", "5.7.44", engine.ResultFail, "older"},
		{"5.7.44", "8.0.36", engine.ResultPass, ""},
		{"5.7.44", "10.11.6-MariaDB", engine.ResultPass, ""},
		{"5.7.44", "10.1.48-MariaDB", engine.ResultWarning, "10.2"},
		{"8.0.36", "10.11.6-MariaDB", engine.ResultWarning, "utf8mb4_0900"},
		{"10.11.6-MariaDB", "8.0.36", engine.ResultWarning, "MariaDB-only"},
		{"5.1.73", "8.0.36", engine.ResultFail, "5.5"},
	}
	for _, c := range cases {
		src, _ := parseVersion(c.src)
		dst, _ := parseVersion(c.dst)
		got := compareVersions(src, dst)
		if got.Result != c.want || !strings.Contains(got.Message, c.mention) {
			t.Errorf("%s -> %s: %s %q, want %s mentioning %q", c.src, c.dst, got.Result, got.Message, c.want, c.mention)
		}
	}
}

func TestJudgeBinlog(t *testing.T) {
	good := map[string]string{"log_bin": "ON", "binlog_format": "ROW", "binlog_row_image": "FULL", "server_id": "7",
		"expire_logs_days": "0", "binlog_expire_logs_seconds": "0"}
	change := func(kv ...string) map[string]string {
		m := make(map[string]string)
		for k, v := range good {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == "-" {
				delete(m, kv[i])
			} else {
				m[kv[i]] = kv[i+1]
			}
		}
		return m
	}
	cases := []struct {
		name    string
		vars    map[string]string
		want    string
		mention []string
	}{
		{"good, kept forever", good, engine.ResultPass, []string{"forever"}},
		{"no row image variable", change("binlog_row_image", "-"), engine.ResultPass, nil},
		{"off", change("log_bin", "OFF"), engine.ResultFail, []string{"log_bin is OFF"}},
		{"mixed and minimal", change("binlog_format", "MIXED", "binlog_row_image", "MINIMAL"), engine.ResultFail,
			[]string{"binlog_format is MIXED", "binlog_row_image is MINIMAL"}},
		{"no server id", change("server_id", "0"), engine.ResultFail, []string{"server_id is 0"}},
		{"compressed transactions", change("binlog_transaction_compression", "ON"), engine.ResultFail, []string{"binlog_transaction_compression is ON"}},
		{"partial JSON", change("binlog_row_value_options", "PARTIAL_JSON"), engine.ResultFail, []string{"PARTIAL_JSON"}},
		{"seconds", change("binlog_expire_logs_seconds", "3600"), engine.ResultWarning, []string{"1h0m0s"}},
		{"days fraction", change("expire_logs_days", "0.5"), engine.ResultWarning, []string{"12h0m0s"}},
		{"seven days", change("expire_logs_days", "7"), engine.ResultPass, []string{"168h0m0s"}},
		{"seconds win", change("expire_logs_days", "0.1", "binlog_expire_logs_seconds", "604800"), engine.ResultPass, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := judgeBinlog("source 10.0.0.1:3306", c.vars)
			if got.Result != c.want {
				t.Errorf("%s: %s", got.Result, got.Message)
			}
			for _, m := range c.mention {
				if !strings.Contains(got.Message, m) {
					t.Errorf("message lacks %q: %s", m, got.Message)
				}
			}
		})
	}
}

func TestJudgeCollations(t *testing.T) {
	have := map[string]bool{}
	for _, c := range []string{"utf8mb3_general_ci", "utf8mb4_general_ci", "latin1_swedish_ci", "utf8mb4_uca1400_ai_ci"} {
		have[c] = true
	}
	uses := map[string][]string{
		"utf8_general_ci":    {"column `a`.`t`.`c`"}, // old spelling of utf8mb3_general_ci
		"utf8mb4_general_ci": {"database `a`"},
	}
	if got := judgeCollations("target x", uses, have); got.Result != engine.ResultPass {
		t.Errorf("utf8 vs utf8mb3: %s %s", got.Result, got.Message)
	}
	uses["utf8mb4_0900_ai_ci"] = []string{"table `a`.`t`"}
	got := judgeCollations("target x", uses, have)
	if got.Result != engine.ResultFail || !strings.Contains(got.Message, "utf8mb4_0900_ai_ci (used by table `a`.`t`)") ||
		!strings.Contains(got.Advice, "11.4.5") {
		t.Errorf("missing collation: %s %s / %s", got.Result, got.Message, got.Advice)
	}
}

func TestJudgeLowerCase(t *testing.T) {
	inv := func(objects ...object) *inventory {
		i := &inventory{}
		seen := map[string]bool{}
		for _, o := range objects {
			if !seen[o.db] {
				seen[o.db] = true
				i.dbs = append(i.dbs, o.db)
			}
		}
		i.objects = objects
		return i
	}
	lower := inv(object{db: "shop", name: "orders"})
	mixed := inv(object{db: "Shop", name: "Orders"})
	clash := inv(object{db: "shop", name: "Orders"}, object{db: "shop", name: "orders"})
	cases := []struct {
		name, src, dst string
		inv            *inventory
		want, mention  string
	}{
		{"lower names into folding target", "0", "1", lower, engine.ResultPass, "lower case already"},
		{"mixed names into folding target", "0", "1", mixed, engine.ResultWarning, "`Shop`.`Orders`"},
		{"clash", "0", "1", clash, engine.ResultFail, "`shop`.`Orders` and `shop`.`orders`"},
		{"folding source into sensitive target", "1", "0", lower, engine.ResultWarning, "compares names with their case"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := judgeLowerCase(c.src, c.dst, c.inv)
			if got.Result != c.want || !strings.Contains(got.Message, c.mention) {
				t.Errorf("%s %q, want %s mentioning %q", got.Result, got.Message, c.want, c.mention)
			}
		})
	}
}
