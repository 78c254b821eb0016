package mysql

import (
	"encoding/json"
	"fmt"
	"strings"
)

// externParams are the MySQL engine's extras in MigrateOption.ExternParams
// (an opendts extension: the cloud defines none for MySQL).
type externParams struct {
	// TargetBinlog "off" writes the copied rows and structure without
	// binlogging them on the target (sql_log_bin=0, as myloader does by
	// default): about a third less work for the target, but replicas of
	// the target do not receive the copy. Default "on".
	TargetBinlog string
}

func parseExternParams(text string) (externParams, error) {
	var p externParams
	text = strings.TrimSpace(text)
	if text == "" || text == "[]" || text == "{}" {
		return p, nil
	}
	// Decoded by hand: encoding/json's struct errors name Go types, and
	// this message reaches the DBA as the job's error.
	const shape = `{"TargetBinlog":"on"|"off"}`
	var m map[string]any
	if err := json.Unmarshal([]byte(text), &m); err != nil {
		return p, fmt.Errorf("MigrateOption.ExternParams for MySQL takes %s: it is not a JSON object", shape)
	}
	for k, v := range m {
		s, ok := v.(string)
		if k != "TargetBinlog" || !ok {
			return p, fmt.Errorf("MigrateOption.ExternParams for MySQL takes %s, not the field %q with that value", shape, k)
		}
		p.TargetBinlog = s
	}
	switch p.TargetBinlog {
	case "", "on", "off":
	default:
		return p, fmt.Errorf("MigrateOption.ExternParams TargetBinlog must be on or off, not %q", p.TargetBinlog)
	}
	return p, nil
}
