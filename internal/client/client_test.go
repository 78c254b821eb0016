package client

import (
	"encoding/json"
	"testing"
)

func TestParseArgs(t *testing.T) {
	got, err := ParseArgs([]string{
		"--JobName", "demo", "--MigrateOption", `{"RunMode":1,"MigrateType":3}`, "--MigrateOption.MigrateObject=2",
		"--DatabaseInfo", `[{"Database":"shop"}]`, "--Limit", "10",
	})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(got)
	want := `{"DatabaseInfo":"[{\"Database\":\"shop\"}]","JobName":"demo","Limit":"10","MigrateOption":{"MigrateObject":"2","MigrateType":3,"RunMode":1}}`
	if string(b) != want {
		t.Errorf("got  %s\nwant %s", b, want)
	}
	for _, bad := range [][]string{{"JobName", "x"}, {"--JobName"}, {"--X", "{bad"}} {
		if _, err := ParseArgs(bad); err == nil {
			t.Errorf("ParseArgs(%q) accepted", bad)
		}
	}
}
