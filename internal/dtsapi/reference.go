package dtsapi

import (
	"encoding/json"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/opendts/opendts/internal/cloudapi"
)

// The reference of the actions for people and for the command line: each
// action's parameters as the API names and types them, which are required,
// and an example. `opendts dts <Action> -h` prints it, and `opendts dts`
// converts command-line text into the declared types with it (as tccli
// does from the API's model). It reads the request types the server
// decodes, so the help and the server cannot disagree on a name or a type.

// ParamRef is one parameter of an action or one field of a structure.
type ParamRef struct {
	Name     string
	Type     string // Integer, String, Array of String, MigrateOption ...
	Required bool
	Doc      string
}

// StructRef is one structure a parameter uses, with its fields.
type StructRef struct {
	Name   string
	Fields []ParamRef
}

// ActionRef describes one action.
type ActionRef struct {
	Name    string
	Doc     string
	Params  []ParamRef
	Structs []StructRef
	// Example is a command line of `opendts dts`.
	Example string
	request reflect.Type
}

type actionSpec struct {
	name, doc string
	request   any
	required  []string
	example   string
}

var actionSpecs = []actionSpec{
	{"CreateMigrateJob", "Creates a migration job at status 1. Check it next (CreateMigrateCheckJob).",
		createMigrateJobRequest{},
		[]string{"JobName", "MigrateOption", "SrcDatabaseType", "SrcAccessType", "SrcInfo", "DstDatabaseType", "DstAccessType", "DstInfo"},
		`opendts dts CreateMigrateJob --JobName shop-move \
    --MigrateOption '{"RunMode":1,"MigrateType":3,"MigrateObject":2,"ConsistencyType":2}' \
    --SrcDatabaseType mysql --SrcAccessType extranet \
    --SrcInfo '{"Ip":"10.0.0.5","Port":3306,"User":"dts","Password":"..."}' \
    --DstDatabaseType mysql --DstAccessType extranet \
    --DstInfo '{"Ip":"10.0.0.6","Port":3306,"User":"dts","Password":"...","Region":"ap-guangzhou"}' \
    --DatabaseInfo '[{"Database":"shop"}]'`},
	{"ModifyMigrateJob", "Changes a job at status 1, 4, 5 or 10; fields not sent keep their value. The job returns to 1 and must be checked again.",
		modifyMigrateJobRequest{}, []string{"JobId"},
		`opendts dts ModifyMigrateJob --JobId dts-1kl0iy0v --SrcInfo.Password 'new password'`},
	{"DeleteMigrateJob", "Deletes a job that is not being checked, run, stopped or completed.",
		jobIDRequest{}, []string{"JobId"}, `opendts dts DeleteMigrateJob --JobId dts-1kl0iy0v`},
	{"DescribeMigrateJobs", "Lists jobs with their options, status, steps, progress, lag, errors and consistency results.",
		describeMigrateJobsRequest{}, nil, `opendts dts DescribeMigrateJobs --JobId dts-1kl0iy0v`},
	{"CreateMigrateCheckJob", "Starts the pre-migration check of a job at status 1, 4 or 5 (status 3, then 4 passed or 5 failed).",
		jobIDRequest{}, []string{"JobId"}, `opendts dts CreateMigrateCheckJob --JobId dts-1kl0iy0v`},
	{"DescribeMigrateCheckJob", "The check's status, progress and result, with every check item (CheckItems, an opendts extension).",
		jobIDRequest{}, []string{"JobId"}, `opendts dts DescribeMigrateCheckJob --JobId dts-1kl0iy0v`},
	{"StartMigrateJob", "Starts a job whose check passed (status 4): now (RunMode 1, status 7) or at ExpectTime (RunMode 2, status 6).",
		jobIDRequest{}, []string{"JobId"}, `opendts dts StartMigrateJob --JobId dts-1kl0iy0v`},
	{"StopMigrateJob", "Stops a job at status 6, 7 or 8; it ends at 10 (failed) and can be modified and run again.",
		jobIDRequest{}, []string{"JobId"}, `opendts dts StopMigrateJob --JobId dts-1kl0iy0v`},
	{"CompleteMigrateJob", "Finishes a full + incremental job at status 8: applies the source's binlog up to its position at the call, then 9. Stop writing to the source first.",
		completeMigrateJobRequest{}, []string{"JobId"}, `opendts dts CompleteMigrateJob --JobId dts-1kl0iy0v`},
	{"DescribeRegionConf", "Lists the regions this server serves.",
		emptyRequest{}, nil, `opendts dts DescribeRegionConf`},
}

// structNames are the API's names of the input structures.
var structNames = map[reflect.Type]string{
	reflect.TypeFor[migrateOptionIn]():     "MigrateOption",
	reflect.TypeFor[consistencyParamsIn](): "ConsistencyParams",
	reflect.TypeFor[srcInfoIn]():           "SrcInfo",
	reflect.TypeFor[dstInfoIn]():           "DstInfo",
	reflect.TypeFor[tagItemIn]():           "TagItem",
	reflect.TypeFor[tagFilterIn]():         "TagFilter",
}

// fieldDocs explain a field; "Action.Field" wins over "Struct.Field" and
// "Field".
var fieldDocs = map[string]string{
	"JobId":                                "the job's id, dts-xxxxxxxx",
	"JobName":                              "a name for people; need not be unique",
	"DescribeMigrateJobs.JobName":          "jobs whose name contains it",
	"MigrateOption":                        "how and what to migrate",
	"SrcDatabaseType":                      "mysql, mariadb or percona (the family opendts migrates today)",
	"DstDatabaseType":                      "mysql, mariadb or percona",
	"SrcAccessType":                        "extranet, cvm, dcg, vpncloud, vpnselfbuild or ccn (by Ip/Port), or cdb (by InstanceId, through the instance catalogue)",
	"DstAccessType":                        "as SrcAccessType",
	"SrcInfo":                              "the source server",
	"DstInfo":                              "the target server",
	"DatabaseInfo":                         `JSON text: [{"Database":"db1","Table":["t1","t2"]},{"Database":"db2"}]; "[]" or empty for the whole instance`,
	"Tags":                                 "tags to filter jobs by",
	"SrcNodeType":                          "single or cluster (stored)",
	"SrcInfoMulti":                         "the nodes of a cluster source (stored)",
	"CompleteMode":                         "waitForSync (default) or immediately",
	"Order":                                "JobId, Status, JobName, MigrateType, RunMode or CreateTime (default)",
	"OrderSeq":                             "ASC or DESC (default)",
	"Offset":                               "jobs to skip, default 0",
	"Limit":                                "jobs to return, 1..100, default 20",
	"TagFilters":                           "jobs carrying a tag key with one of the values (any value when none is given)",
	"MigrateOption.RunMode":                "1 start at StartMigrateJob, 2 at ExpectTime",
	"MigrateOption.ExpectTime":             "yyyy-mm-dd hh:mm:ss, with RunMode 2",
	"MigrateOption.MigrateType":            "1 structure, 2 full, 3 full + incremental",
	"MigrateOption.MigrateObject":          "1 whole instance, 2 the objects in DatabaseInfo",
	"MigrateOption.ConsistencyType":        "1 none (default), 2 full check, 3 sampled by ConsistencyParams, 4 taken as 2, 5 none",
	"MigrateOption.IsOverrideRoot":         "1 migrates the root account too (whole-instance jobs)",
	"MigrateOption.ExternParams":           `JSON text of engine extras; MySQL: {"TargetBinlog":"off"}`,
	"MigrateOption.ConsistencyParams":      "with ConsistencyType 3",
	"ConsistencyParams.SelectRowsPerTable": "percent of each table's rows compared, 1..100",
	"ConsistencyParams.TablesSelectAll":    "percent of tables whose rows are compared, 1..100",
	"ConsistencyParams.TablesSelectCount":  "percent of tables whose row count is compared, 1..100",
	"SrcInfo.Ip":                           "address (access types other than cdb)",
	"SrcInfo.Port":                         "port",
	"SrcInfo.User":                         "account opendts reads with",
	"SrcInfo.Password":                     "its password (sealed at rest, never returned)",
	"SrcInfo.InstanceId":                   "a catalogue instance id (access type cdb)",
	"SrcInfo.Region":                       "stored",
	"DstInfo.Ip":                           "address (access types other than cdb)",
	"DstInfo.Port":                         "port",
	"DstInfo.User":                         "account opendts writes with",
	"DstInfo.Password":                     "its password (sealed at rest, never returned)",
	"DstInfo.InstanceId":                   "a catalogue instance id (access type cdb)",
	"DstInfo.Region":                       "one of the served regions (default: the first); cannot change",
	"DstInfo.ReadOnly":                     "1 sets read_only on the target during the migration",
	"TagItem.TagKey":                       "required in each tag",
	"TagFilter.TagValue":                   "values; empty for any",
}

var requiredFields = map[string]bool{
	"MigrateOption.RunMode":     true,
	"MigrateOption.MigrateType": true,
	"TagItem.TagKey":            true,
	"TagFilter.TagKey":          true,
}

// Actions lists the actions opendts implements, in the order of a job's
// life.
func Actions() []ActionRef {
	out := make([]ActionRef, 0, len(actionSpecs))
	for _, s := range actionSpecs {
		out = append(out, s.ref())
	}
	return out
}

// LookupAction returns one action's reference.
func LookupAction(name string) (ActionRef, bool) {
	for _, s := range actionSpecs {
		if s.name == name {
			return s.ref(), true
		}
	}
	return ActionRef{}, false
}

func (s actionSpec) ref() ActionRef {
	t := reflect.TypeOf(s.request)
	a := ActionRef{Name: s.name, Doc: s.doc, Example: s.example, request: t}
	seen := map[string]bool{}
	var addStruct func(st reflect.Type)
	addStruct = func(st reflect.Type) {
		name := structNames[st]
		if seen[name] {
			return
		}
		seen[name] = true
		sr := StructRef{Name: name}
		for f := range st.Fields() {
			sr.Fields = append(sr.Fields, ParamRef{Name: f.Name, Type: typeName(f.Type),
				Required: requiredFields[name+"."+f.Name], Doc: doc(s.name, name, f.Name)})
		}
		a.Structs = append(a.Structs, sr)
		for f := range st.Fields() {
			if inner := structOf(f.Type); inner != nil {
				addStruct(inner)
			}
		}
	}
	for f := range t.Fields() {
		a.Params = append(a.Params, ParamRef{Name: f.Name, Type: typeName(f.Type),
			Required: slices.Contains(s.required, f.Name), Doc: doc(s.name, "", f.Name)})
	}
	for f := range t.Fields() {
		if inner := structOf(f.Type); inner != nil {
			addStruct(inner)
		}
	}
	return a
}

func doc(action, structName, field string) string {
	if structName != "" {
		if d, ok := fieldDocs[structName+"."+field]; ok {
			return d
		}
		// The network fields only a cloud uses.
		return "stored and returned"
	}
	if d, ok := fieldDocs[action+"."+field]; ok {
		return d
	}
	return fieldDocs[field]
}

// structOf returns the structure a field holds (directly, by pointer or as
// array elements), or nil.
func structOf(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
		t = t.Elem()
	}
	if t.Kind() == reflect.Struct {
		return t
	}
	return nil
}

// typeName is cloudapi's API type name with the structures named.
func typeName(t reflect.Type) string {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() == reflect.Slice {
		return "Array of " + typeName(t.Elem())
	}
	if name, ok := structNames[t]; ok {
		return name
	}
	return cloudapi.TypeName(t)
}

// Typed converts the text values of a command line (--Limit 10, dotted
// --TagFilters.0.TagKey k) into the types the action declares: integers as
// JSON numbers, booleans as true/false, numbered maps as arrays. A value that
// does not convert, and a name the action does not have, is left as it is
// for the server to refuse with its own message.
func (a ActionRef) Typed(params map[string]any) map[string]any {
	out, _ := typed(params, a.request).(map[string]any)
	return out
}

func typed(v any, t reflect.Type) any {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			return v
		}
		out := make(map[string]any, len(m))
		for k, val := range m {
			if f, ok := t.FieldByName(k); ok {
				out[k] = typed(val, f.Type)
			} else {
				out[k] = val
			}
		}
		return out
	case reflect.Slice:
		switch l := v.(type) {
		case []any:
			out := make([]any, len(l))
			for i, el := range l {
				out[i] = typed(el, t.Elem())
			}
			return out
		case map[string]any:
			out := make([]any, len(l))
			for k, el := range l {
				i, err := strconv.Atoi(k)
				if err != nil || i < 0 || i >= len(l) || out[i] != nil {
					return v
				}
				out[i] = typed(el, t.Elem())
			}
			return out
		}
		return v
	case reflect.Int, reflect.Int64, reflect.Int32, reflect.Uint, reflect.Uint64, reflect.Uint32, reflect.Float64:
		if s, ok := v.(string); ok {
			s = strings.TrimSpace(s)
			if _, err := strconv.ParseFloat(s, 64); err == nil {
				return json.Number(s)
			}
		}
	case reflect.Bool:
		if s, ok := v.(string); ok {
			if b, err := strconv.ParseBool(s); err == nil {
				return b
			}
		}
	}
	return v
}
