package dtsapi_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/opendts/opendts/internal/dtsapi"
)

// goWords are what a message must never show a client: Go's types and the
// JSON decoder's own wording.
var goWords = []string{"Go value", "Go struct", "struct", "[]string", "[]any", "int64", "json:", "map[", "interface", "*dtsapi", "reflect"}

func assertAPIWords(t *testing.T, msg string) {
	t.Helper()
	for _, w := range goWords {
		if strings.Contains(msg, w) {
			t.Errorf("message shows %q: %s", w, msg)
		}
	}
}

// wrongValues are values of every JSON kind but the one a type wants.
func wrongValues(typ string) []any {
	obj, arr, str, num, boolean := map[string]any{"x": 1}, []any{1}, "33306", json.Number("5"), true
	switch {
	case typ == "Integer":
		return []any{str, obj, arr, boolean, json.Number("1.5"), json.Number("99999999999999999999")}
	case typ == "String":
		return []any{num, obj, arr, boolean}
	case strings.HasPrefix(typ, "Array of "):
		return []any{obj, str, num, boolean}
	}
	return []any{arr, str, num, boolean} // a structure
}

// nest builds the body that puts v at path (Tags.0.TagKey gives
// {"Tags":[{"TagKey":v}]}).
func nest(path []string, v any) any {
	if len(path) == 0 {
		return v
	}
	if path[0] == "0" {
		return []any{nest(path[1:], v)}
	}
	return map[string]any{path[0]: nest(path[1:], v)}
}

// TestWrongTypesNameTheParameter sends, to every parameter of every action
// and to every field of the structures they take (nested ones and array
// elements included), a value of each wrong JSON kind. Each answer is
// InvalidParameter naming the parameter's full path and its API type, in the
// API's words: no Go type ever reaches a client.
func TestWrongTypesNameTheParameter(t *testing.T) {
	e := newEnv(t)
	cases := 0
	for _, a := range dtsapi.Actions() {
		structs := map[string][]dtsapi.ParamRef{}
		for _, s := range a.Structs {
			structs[s.Name] = s.Fields
		}
		// paths walks a parameter and the fields under it.
		var walk func(prefix []string, p dtsapi.ParamRef, depth int)
		walk = func(prefix []string, p dtsapi.ParamRef, depth int) {
			path := append(append([]string{}, prefix...), p.Name)
			for _, v := range wrongValues(p.Type) {
				body, _ := json.Marshal(nest(path, v))
				name := strings.Join(path, ".")
				cases++
				resp := e.rawTC3(a.Name, string(body), nil)
				code, msg := errCode(resp), errMessage(resp)
				if code != "InvalidParameter" || !strings.Contains(msg, "`"+name+"`") || !strings.Contains(msg, "expected") {
					t.Errorf("%s %s: got %s %q, want InvalidParameter naming `%s` and what was expected", a.Name, body, code, msg, name)
				}
				assertAPIWords(t, msg)
				if testing.Verbose() && cases%40 == 1 {
					t.Logf("%s %s: %s", a.Name, body, msg)
				}
			}
			elem := strings.TrimPrefix(p.Type, "Array of ")
			fields, ok := structs[elem]
			if !ok || depth > 3 {
				return
			}
			if elem != p.Type {
				path = append(path, "0")
			}
			for _, f := range fields {
				walk(path, f, depth+1)
			}
		}
		for _, p := range a.Params {
			walk(nil, p, 0)
		}
	}
	t.Logf("%d wrong-typed requests answered in the API's words", cases)
	if cases < 200 {
		t.Errorf("only %d cases: the reference lost parameters", cases)
	}
}

// DatabaseInfo is JSON inside a String: a wrong shape inside it is named by
// element and field, in the API's words.
func TestDatabaseInfoShapes(t *testing.T) {
	e := newEnv(t)
	base := map[string]any{
		"JobName":         "shapes",
		"MigrateOption":   map[string]any{"RunMode": 1, "MigrateType": 2},
		"SrcDatabaseType": "mysql", "SrcAccessType": "extranet",
		"SrcInfo":         map[string]any{"Ip": "10.0.0.1", "Port": 3306, "User": "u", "Password": "p"},
		"DstDatabaseType": "mysql", "DstAccessType": "extranet",
		"DstInfo": map[string]any{"Ip": "10.0.0.2", "Port": 3306, "User": "u", "Password": "p", "Region": testRegion},
	}
	tests := []struct {
		info    string
		mention []string
	}{
		{`{"Database":"shop"}`, []string{"DatabaseInfo", "array", "an object"}},
		{`["shop"]`, []string{"element 0", "object", "a string"}},
		{`[{"Database":5}]`, []string{"element 0", "Database", "string", "the number 5"}},
		{`[{"Database":"shop","Table":"orders"}]`, []string{"element 0", "Table", "array of strings", "a string"}},
		{`[{"Database":"shop","Table":[1]}]`, []string{"element 0", "Table element 0", "the number 1"}},
		{`[{"Database":"shop"},{"Databse":"blog"}]`, []string{"element 1", `"Databse"`}},
		{`[{"Database":"shop"`, []string{"DatabaseInfo", "JSON"}},
		{`[{"Database":"shop"}] x`, []string{"DatabaseInfo", "more than one"}},
	}
	for _, tt := range tests {
		t.Run(tt.info, func(t *testing.T) {
			body := map[string]any{"DatabaseInfo": tt.info}
			for k, v := range base {
				body[k] = v
			}
			b, _ := json.Marshal(body)
			resp := e.rawTC3("CreateMigrateJob", string(b), nil)
			code, msg := errCode(resp), errMessage(resp)
			if code != "InvalidParameter" {
				t.Fatalf("got %s %q", code, msg)
			}
			for _, m := range tt.mention {
				if !strings.Contains(msg, m) {
					t.Errorf("%q does not mention %q", msg, m)
				}
			}
			assertAPIWords(t, msg)
		})
	}
	t.Run("a Port sent as text", func(t *testing.T) {
		body := map[string]any{}
		for k, v := range base {
			body[k] = v
		}
		body["SrcInfo"] = map[string]any{"Ip": "10.0.0.1", "Port": "33306", "User": "u", "Password": "p"}
		b, _ := json.Marshal(body)
		resp := e.rawTC3("CreateMigrateJob", string(b), nil)
		if code, msg := errCode(resp), errMessage(resp); code != "InvalidParameter" || !strings.Contains(msg, "`SrcInfo.Port`") || !strings.Contains(msg, "Integer") || !strings.Contains(msg, `"33306"`) {
			t.Errorf("got %s %q", code, msg)
		}
	})
}

// A job that does not exist is named in the answer.
func TestJobNotExistNamesTheJob(t *testing.T) {
	e := newEnv(t)
	for _, action := range []string{"DescribeMigrateCheckJob", "StartMigrateJob", "DeleteMigrateJob", "CreateMigrateCheckJob", "StopMigrateJob", "CompleteMigrateJob", "ModifyMigrateJob"} {
		resp := e.rawTC3(action, `{"JobId":"dts-nothere1"}`, nil)
		if code, msg := errCode(resp), errMessage(resp); code != "ResourceNotFound.JobNotExist" || !strings.Contains(msg, "dts-nothere1") {
			t.Errorf("%s: got %s %q", action, code, msg)
		}
	}
}
