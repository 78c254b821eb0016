package dtsapi_test

import (
	"encoding/json"
	"testing"

	"github.com/opendts/opendts/internal/dtsapi"
)

// The command line's text becomes the declared types, and what does not
// convert stays for the server to refuse in its own words.
func TestTypedCommandLine(t *testing.T) {
	create, _ := dtsapi.LookupAction("CreateMigrateJob")
	got := create.Typed(map[string]any{
		"JobName":       "42",
		"MigrateOption": map[string]any{"RunMode": "1", "MigrateType": 3.0, "ConsistencyParams": map[string]any{"SelectRowsPerTable": "10"}},
		"SrcInfo":       map[string]any{"Port": "3306", "Ip": "10.0.0.1"},
		"DstInfo":       map[string]any{"Port": "many"},
		"DatabaseInfo":  `[{"Database":"shop"}]`,
		"Tags":          map[string]any{"0": map[string]any{"TagKey": "k"}},
		"Bogus":         "1",
	})
	b, _ := json.Marshal(got)
	want := `{"Bogus":"1","DatabaseInfo":"[{\"Database\":\"shop\"}]","DstInfo":{"Port":"many"},"JobName":"42","MigrateOption":{"ConsistencyParams":{"SelectRowsPerTable":10},"MigrateType":3,"RunMode":1},"SrcInfo":{"Ip":"10.0.0.1","Port":3306},"Tags":[{"TagKey":"k"}]}`
	if string(b) != want {
		t.Errorf("got  %s\nwant %s", b, want)
	}
	describe, _ := dtsapi.LookupAction("DescribeMigrateJobs")
	if b, _ := json.Marshal(describe.Typed(map[string]any{"Limit": "10", "TagFilters": []any{map[string]any{"TagKey": "k", "TagValue": map[string]any{"0": "a"}}}})); string(b) != `{"Limit":10,"TagFilters":[{"TagKey":"k","TagValue":["a"]}]}` {
		t.Errorf("got %s", b)
	}
}

// Every action the server answers has a reference, and every reference a
// required parameter list the server agrees with.
func TestReferenceCoversTheActions(t *testing.T) {
	names := map[string]bool{}
	for _, a := range dtsapi.Actions() {
		names[a.Name] = true
		if a.Doc == "" || a.Example == "" {
			t.Errorf("%s has no doc or example", a.Name)
		}
	}
	for _, want := range []string{"CreateMigrateJob", "ModifyMigrateJob", "DeleteMigrateJob", "DescribeMigrateJobs", "CreateMigrateCheckJob",
		"DescribeMigrateCheckJob", "StartMigrateJob", "StopMigrateJob", "CompleteMigrateJob", "DescribeRegionConf"} {
		if !names[want] {
			t.Errorf("no reference for %s", want)
		}
	}
	e := newEnv(t)
	for _, a := range dtsapi.Actions() {
		for _, p := range a.Params {
			if !p.Required {
				continue
			}
			// Sending nothing names a required parameter as missing.
			if code := errCode(e.rawTC3(a.Name, `{}`, nil)); code != "MissingParameter" {
				t.Errorf("%s without %s: %s", a.Name, p.Name, code)
			}
			break
		}
	}
}
