package mysql

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/opendts/opendts/internal/engine"
)

const binlogName = "BinlogParamCheck"

// minRetention is the binlog retention below which a full copy can outlive
// the binlog it must resume from.
const minRetention = 24 * time.Hour

type binlogCheck struct{}

func (binlogCheck) Name() string { return binlogName }

func (binlogCheck) Check(ctx context.Context, r *run) engine.CheckItem {
	if res, bad := unreachable(binlogName, r.src); bad {
		return res
	}
	vars, err := r.src.globalVars(ctx)
	if err != nil {
		return warn(binlogName, err.Error(), "Check log_bin, binlog_format, binlog_row_image and server_id by hand.")
	}
	return judgeBinlog(r.src.where(), vars)
}

// judgeBinlog says whether the source writes a binlog the incremental phase
// can replay: on, row-based, with full row images, from a server with an id.
func judgeBinlog(where string, vars map[string]string) engine.CheckItem {
	const n = binlogName
	var bad, fixes []string
	if !isOn(vars["log_bin"]) {
		bad = append(bad, fmt.Sprintf("log_bin is %s (must be ON)", orUnset(vars["log_bin"])))
		fixes = append(fixes, "log_bin=ON (a restart is needed)")
	}
	if f := vars["binlog_format"]; !strings.EqualFold(f, "ROW") {
		bad = append(bad, fmt.Sprintf("binlog_format is %s (must be ROW)", orUnset(f)))
		fixes = append(fixes, "binlog_format=ROW (SET GLOBAL binlog_format='ROW'; sessions already open keep the old format until they reconnect)")
	}
	// Servers without binlog_row_image always log full rows.
	if img, ok := vars["binlog_row_image"]; ok && !strings.EqualFold(img, "FULL") {
		bad = append(bad, fmt.Sprintf("binlog_row_image is %s (must be FULL)", img))
		fixes = append(fixes, "binlog_row_image=FULL (SET GLOBAL binlog_row_image='FULL')")
	}
	// MySQL 8.0.20+ can wrap transactions in compressed payload events and
	// log JSON updates as partial diffs: the incremental phase reads
	// neither, and would stall or misapply rather than fail.
	if isOn(vars["binlog_transaction_compression"]) {
		bad = append(bad, "binlog_transaction_compression is ON (must be OFF)")
		fixes = append(fixes, "binlog_transaction_compression=OFF (SET GLOBAL binlog_transaction_compression=OFF)")
	}
	if opts := vars["binlog_row_value_options"]; strings.Contains(strings.ToUpper(opts), "PARTIAL_JSON") {
		bad = append(bad, "binlog_row_value_options is PARTIAL_JSON (must be empty)")
		fixes = append(fixes, "binlog_row_value_options='' (SET GLOBAL binlog_row_value_options='')")
	}
	if id := vars["server_id"]; id == "" || id == "0" {
		bad = append(bad, "server_id is 0 (must be set)")
		fixes = append(fixes, "server_id to a non-zero number unique among the servers")
	}
	if len(bad) > 0 {
		return fail(n, fmt.Sprintf("the %s cannot feed the incremental phase: %s", where, strings.Join(bad, "; ")),
			"Set "+strings.Join(fixes, ", ")+", and persist the settings in the server's configuration file.")
	}

	retention, forever := binlogRetention(vars)
	if !forever && retention < minRetention {
		return warn(n, fmt.Sprintf("the %s keeps binlogs for %s only: a full copy that runs longer loses the position to resume from", where, retention),
			"Keep binlogs for at least a day (SET GLOBAL binlog_expire_logs_seconds = 86400, or expire_logs_days = 1 before MySQL 8.0 / MariaDB 10.6), longer for large databases.")
	}
	kept := "forever"
	if !forever {
		kept = retention.String()
	}
	return pass(n, "the %s writes a ROW binlog with FULL row images, server_id %s, binlogs kept %s", where, vars["server_id"], kept)
}

// binlogRetention reads how long binlogs are kept. MySQL 8 and MariaDB
// 10.6 have binlog_expire_logs_seconds, which wins when set; expire_logs_days
// (a fraction on MariaDB) is the older form. Both zero: never purged.
func binlogRetention(vars map[string]string) (retention time.Duration, forever bool) {
	if s, err := strconv.ParseFloat(vars["binlog_expire_logs_seconds"], 64); err == nil && s > 0 {
		return time.Duration(s) * time.Second, false
	}
	if d, err := strconv.ParseFloat(vars["expire_logs_days"], 64); err == nil && d > 0 {
		return time.Duration(d * float64(24*time.Hour)), false
	}
	return 0, true
}

func isOn(v string) bool { return strings.EqualFold(v, "ON") || v == "1" }

func orUnset(v string) string {
	if v == "" {
		return "unset"
	}
	return v
}
