package jobs

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/opendts/opendts/internal/engine"
)

// hasSchemas reports whether a family names tables database.schema.table
// (PostgreSQL, SQL Server) rather than database.table.
func hasSchemas(f engine.Family) bool {
	return f == engine.FamilyPostgreSQL || f == engine.FamilySQLServer
}

// ParseDatabaseInfo validates DatabaseInfo, the JSON string that selects
// objects, for the given source database type, and returns the selection
// and its normalised text. Empty text and "[]" select nothing (a whole
// instance job).
func ParseDatabaseInfo(databaseType, text string) ([]engine.ObjectSelection, string, error) {
	if strings.TrimSpace(text) == "" {
		return nil, "[]", nil
	}
	example := `[{"Database":"db1","Table":["t1","t2"]},{"Database":"db2"}]`
	schemas := hasSchemas(engine.FamilyOf(databaseType))
	if schemas {
		example = `[{"Database":"db1","Schema":"s1","Table":["t1"]},{"Database":"db2"}]`
	}
	raw, err := decodeSelection(text, example)
	if err != nil {
		return nil, "", err
	}
	if len(raw) == 0 {
		return nil, "[]", nil
	}
	seen := map[string]int{}
	out := make([]engine.ObjectSelection, 0, len(raw))
	for i, el := range raw {
		at := fmt.Sprintf("DatabaseInfo element %d", i)
		if el.Database == nil || *el.Database == "" {
			return nil, "", invalid("DatabaseInfo", "%s has no Database; every element names one, like %s", at, example)
		}
		sel := engine.ObjectSelection{Database: *el.Database}
		if err := checkName(at, "Database", sel.Database); err != nil {
			return nil, "", err
		}
		if el.Schema != nil {
			if !schemas {
				return nil, "", invalid("DatabaseInfo", "%s names Schema %q, but %s has no schemas: use {\"Database\":...,\"Table\":[...]}", at, *el.Schema, databaseType)
			}
			if *el.Schema == "" {
				return nil, "", invalid("DatabaseInfo", "%s has an empty Schema", at)
			}
			if err := checkName(at, "Schema", *el.Schema); err != nil {
				return nil, "", err
			}
			sel.Schema = *el.Schema
		}
		if schemas && sel.Schema == "" && el.Table != nil {
			return nil, "", invalid("DatabaseInfo", "%s lists tables of database %q without a Schema; name the schema they are in", at, sel.Database)
		}
		if el.Table != nil && len(el.Table) == 0 {
			return nil, "", invalid("DatabaseInfo", "%s has an empty Table list; leave Table out to select the whole database", at)
		}
		tables := map[string]bool{}
		for _, t := range el.Table {
			if t == "" {
				return nil, "", invalid("DatabaseInfo", "%s lists an empty table name", at)
			}
			if err := checkName(at, "Table", t); err != nil {
				return nil, "", err
			}
			if tables[t] {
				return nil, "", invalid("DatabaseInfo", "%s lists table %q twice", at, t)
			}
			tables[t] = true
			sel.Tables = append(sel.Tables, t)
		}
		key := sel.Database + "\x00" + sel.Schema
		if j, dup := seen[key]; dup {
			return nil, "", invalid("DatabaseInfo", "%s selects %s again (already selected by element %d); merge them into one element", at, describeScope(sel), j)
		}
		seen[key] = i
		out = append(out, sel)
	}
	normal, err := json.Marshal(toWire(out))
	if err != nil {
		return nil, "", fmt.Errorf("encode DatabaseInfo: %w", err)
	}
	return out, string(normal), nil
}

func checkName(at, field, name string) error {
	if strings.ContainsRune(name, 0) {
		return invalid("DatabaseInfo", "%s: %s %q contains a NUL character", at, field, name)
	}
	if len([]rune(name)) > 64 {
		return invalid("DatabaseInfo", "%s: %s %q is longer than 64 characters", at, field, name)
	}
	return nil
}

func describeScope(s engine.ObjectSelection) string {
	if s.Schema != "" {
		return fmt.Sprintf("database %q schema %q", s.Database, s.Schema)
	}
	return fmt.Sprintf("database %q", s.Database)
}

type wireSelection struct {
	Database string
	Schema   string   `json:",omitempty"`
	Table    []string `json:",omitempty"`
}

func toWire(sel []engine.ObjectSelection) []wireSelection {
	out := make([]wireSelection, len(sel))
	for i, s := range sel {
		out[i] = wireSelection{Database: s.Database, Schema: s.Schema, Table: s.Tables}
	}
	return out
}

// overlap returns a description of objects both selections write, or "" if
// none. An empty selection is the whole instance.
func overlap(a, b []engine.ObjectSelection) string {
	if len(a) == 0 && len(b) == 0 {
		return "the whole instance"
	}
	if len(a) == 0 {
		return describeSelection(b)
	}
	if len(b) == 0 {
		return describeSelection(a)
	}
	for _, x := range a {
		for _, y := range b {
			if x.Database != y.Database {
				continue
			}
			if x.Schema != "" && y.Schema != "" && x.Schema != y.Schema {
				continue
			}
			if len(x.Tables) == 0 || len(y.Tables) == 0 {
				if len(x.Tables) == 0 && len(y.Tables) == 0 {
					return describeScope(x)
				}
				if len(x.Tables) == 0 {
					return tablesOf(y)
				}
				return tablesOf(x)
			}
			var common []string
			for _, t := range x.Tables {
				for _, u := range y.Tables {
					if t == u {
						common = append(common, t)
					}
				}
			}
			if len(common) > 0 {
				return tablesOf(engine.ObjectSelection{Database: x.Database, Schema: x.Schema, Tables: common})
			}
		}
	}
	return ""
}

func describeSelection(sel []engine.ObjectSelection) string {
	parts := make([]string, 0, len(sel))
	for _, s := range sel {
		if len(s.Tables) > 0 {
			parts = append(parts, tablesOf(s))
		} else {
			parts = append(parts, describeScope(s))
		}
	}
	return strings.Join(parts, ", ")
}

func tablesOf(s engine.ObjectSelection) string {
	prefix := s.Database + "."
	if s.Schema != "" {
		prefix += s.Schema + "."
	}
	names := make([]string, len(s.Tables))
	for i, t := range s.Tables {
		names[i] = prefix + t
	}
	return "table " + strings.Join(names, ", ")
}

// rawSelection is one element of DatabaseInfo as sent.
type rawSelection struct {
	Database *string
	Schema   *string
	Table    []string
}

// decodeSelection reads DatabaseInfo's JSON by hand rather than through
// encoding/json's struct decoding, whose errors name Go types ("cannot
// unmarshal object into Go value of type []struct ..."): every message here
// names the element and the field, and says what was expected in the API's
// words.
func decodeSelection(text, example string) ([]rawSelection, error) {
	dec := json.NewDecoder(bytes.NewReader([]byte(text)))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, invalid("DatabaseInfo", "DatabaseInfo must be JSON text, an array like %s: %s", example, jsonSyntax(err))
	}
	if dec.More() {
		return nil, invalid("DatabaseInfo", "DatabaseInfo holds more than one JSON value; send one array like %s", example)
	}
	list, ok := v.([]any)
	if !ok {
		return nil, invalid("DatabaseInfo", "DatabaseInfo must be an array like %s, not %s", example, jsonKind(v))
	}
	out := make([]rawSelection, len(list))
	for i, el := range list {
		at := fmt.Sprintf("DatabaseInfo element %d", i)
		m, ok := el.(map[string]any)
		if !ok {
			return nil, invalid("DatabaseInfo", "%s must be an object like %s, not %s", at, `{"Database":"db1","Table":["t1"]}`, jsonKind(el))
		}
		for _, k := range slices.Sorted(maps.Keys(m)) {
			val := m[k]
			switch k {
			case "Database", "Schema":
				if val == nil {
					continue
				}
				s, ok := val.(string)
				if !ok {
					return nil, invalid("DatabaseInfo", "%s: %s must be a string, not %s", at, k, jsonKind(val))
				}
				if k == "Database" {
					out[i].Database = &s
				} else {
					out[i].Schema = &s
				}
			case "Table":
				if val == nil {
					continue
				}
				tables, ok := val.([]any)
				if !ok {
					return nil, invalid("DatabaseInfo", "%s: Table must be an array of strings like [\"t1\",\"t2\"], not %s", at, jsonKind(val))
				}
				out[i].Table = make([]string, len(tables))
				for n, t := range tables {
					s, ok := t.(string)
					if !ok {
						return nil, invalid("DatabaseInfo", "%s: Table element %d must be a string, not %s", at, n, jsonKind(t))
					}
					out[i].Table[n] = s
				}
			default:
				return nil, invalid("DatabaseInfo", "%s has an unknown field %q; the fields are Database, Table and (for engines with schemas) Schema", at, k)
			}
		}
	}
	return out, nil
}

// jsonKind names a JSON value's kind for messages.
func jsonKind(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	case string:
		return "a string"
	case json.Number:
		return "the number " + v.String()
	case bool:
		return "a boolean"
	}
	return "another kind of value"
}

// jsonSyntax says where JSON text broke, without the package's prefix.
func jsonSyntax(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("%s at offset %d", se.Error(), se.Offset)
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return "it ends too early"
	}
	return "it is not valid JSON"
}
