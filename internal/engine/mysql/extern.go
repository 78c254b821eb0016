package mysql

import (
	"bytes"
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
	dec := json.NewDecoder(bytes.NewReader([]byte(text)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return p, fmt.Errorf("MigrateOption.ExternParams for MySQL takes {\"TargetBinlog\":\"on\"|\"off\"}: %w", err)
	}
	switch p.TargetBinlog {
	case "", "on", "off":
	default:
		return p, fmt.Errorf("MigrateOption.ExternParams TargetBinlog must be on or off, not %q", p.TargetBinlog)
	}
	return p, nil
}
