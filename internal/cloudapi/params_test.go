package cloudapi

import (
	"net/url"
	"reflect"
	"testing"
)

type sampleOption struct {
	RunMode           *int64
	ExpectTime        *string
	ConsistencyParams *struct{ SelectRowsPerTable *int64 }
}

type sampleTag struct {
	TagKey   *string
	TagValue []string
}

type sampleRequest struct {
	JobId         *string
	MigrateOption *sampleOption
	Table         []string
	Tags          []sampleTag
	Offset        *uint64
	Flag          *bool
}

func ptr[T any](v T) *T { return &v }

func decodeForm(t *testing.T, query string) (sampleRequest, error) {
	t.Helper()
	values, err := url.ParseQuery(query)
	if err != nil {
		t.Fatal(err)
	}
	var out sampleRequest
	tree, err := unflatten(values, func(k string) bool { return commonParams[k] })
	if err != nil {
		return out, err
	}
	err = (&Params{tree: tree, flat: true}).Decode(&out)
	return out, err
}

func TestFlattenedParams(t *testing.T) {
	tests := []struct {
		name  string
		query string
		want  sampleRequest
		code  string
	}{
		{name: "nested object", query: "MigrateOption.RunMode=1&MigrateOption.ExpectTime=2026-01-01+00:00:00",
			want: sampleRequest{MigrateOption: &sampleOption{RunMode: ptr(int64(1)), ExpectTime: ptr("2026-01-01 00:00:00")}}},
		{name: "two levels", query: "MigrateOption.ConsistencyParams.SelectRowsPerTable=10",
			want: sampleRequest{MigrateOption: &sampleOption{ConsistencyParams: &struct{ SelectRowsPerTable *int64 }{ptr(int64(10))}}}},
		{name: "list of strings in order", query: "Table.1=b&Table.0=a&Table.2=c",
			want: sampleRequest{Table: []string{"a", "b", "c"}}},
		{name: "list of objects with a list inside", query: "Tags.0.TagKey=k&Tags.0.TagValue.0=v1&Tags.0.TagValue.1=v2",
			want: sampleRequest{Tags: []sampleTag{{TagKey: ptr("k"), TagValue: []string{"v1", "v2"}}}}},
		{name: "common parameters are not business parameters", query: "Action=X&Version=1&Nonce=3&JobId=dts-1",
			want: sampleRequest{JobId: ptr("dts-1")}},
		{name: "unsigned integer and bool", query: "Offset=5&Flag=true",
			want: sampleRequest{Offset: ptr(uint64(5)), Flag: ptr(true)}},
		{name: "a gap in a list", query: "Table.0=a&Table.2=c", code: CodeInvalidParameter},
		{name: "list index with a leading zero", query: "Table.00=a", code: CodeInvalidParameter},
		{name: "text where an integer belongs", query: "MigrateOption.RunMode=one", code: CodeInvalidParameter},
		{name: "negative unsigned", query: "Offset=-1", code: CodeInvalidParameter},
		{name: "unknown parameter", query: "MigrateOption.Bogus=1", code: CodeUnknownParameter},
		{name: "value and structure at once", query: "MigrateOption=1&MigrateOption.RunMode=1", code: CodeInvalidParameter},
		{name: "repeated parameter", query: "JobId=a&JobId=b", code: CodeInvalidParameter},
		{name: "empty name part", query: "MigrateOption..RunMode=1", code: CodeInvalidParameter},
		{name: "structure where a string belongs", query: "JobId.0=a", code: CodeInvalidParameter},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeForm(t, tt.query)
			if tt.code != "" {
				if e := AsError(err); e == nil || e.Code != tt.code {
					t.Fatalf("error = %v, want code %s", err, tt.code)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestJSONParams(t *testing.T) {
	tests := []struct {
		name string
		body string
		want sampleRequest
		code string
	}{
		{name: "numbers as JSON numbers", body: `{"MigrateOption":{"RunMode":1}}`, want: sampleRequest{MigrateOption: &sampleOption{RunMode: ptr(int64(1))}}},
		{name: "number as a string", body: `{"MigrateOption":{"RunMode":"2"}}`, code: CodeInvalidParameter},
		{name: "boolean as a string", body: `{"Flag":"true"}`, code: CodeInvalidParameter},
		{name: "object where an array belongs", body: `{"Table":{"0":"a"}}`, code: CodeInvalidParameter},
		{name: "null is not sent", body: `{"JobId":null}`, want: sampleRequest{}},
		{name: "empty body", body: ``, want: sampleRequest{}},
		{name: "integer where a string belongs", body: `{"JobId":5}`, code: CodeInvalidParameter},
		{name: "fraction where an integer belongs", body: `{"MigrateOption":{"RunMode":1.5}}`, code: CodeInvalidParameter},
		{name: "huge integer", body: `{"MigrateOption":{"RunMode":99999999999999999999}}`, code: CodeInvalidParameter},
		{name: "array where an object belongs", body: `{"MigrateOption":[1]}`, code: CodeInvalidParameter},
		{name: "not an object", body: `[1,2]`, code: CodeInvalidParameter},
		{name: "broken JSON", body: `{"JobId":`, code: CodeInvalidParameter},
		{name: "two values", body: `{} {}`, code: CodeInvalidParameter},
		{name: "unknown parameter", body: `{"Bogus":1}`, code: CodeUnknownParameter},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got sampleRequest
			tree, err := parseJSONParams([]byte(tt.body))
			if err == nil {
				err = (&Params{tree: tree}).Decode(&got)
			}
			if tt.code != "" {
				if e := AsError(err); e == nil || e.Code != tt.code {
					t.Fatalf("error = %v, want code %s", err, tt.code)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}
