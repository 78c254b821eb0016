package cloudapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/url"
	"reflect"
	"sort"
	"strconv"
	"strings"
)

// Params are an action's business parameters, parsed from whichever
// encoding the client used into one tree: objects are map[string]any,
// arrays []any, and leaves string, json.Number, bool or nil. Flattened
// encodings (GET query, form body) give maps with "0", "1", ... keys where
// the schema has arrays; Decode turns those into slices.
type Params struct {
	tree map[string]any
	// flat is set for the flattened encodings, where every leaf is text:
	// there a number or a boolean arrives as a string and is converted. A
	// JSON body has types of its own, and a string where the API declares
	// an Integer is a type error, as the documentation of each field says.
	flat bool
}

// Decode fills dst, a pointer to a struct whose fields carry json tags, from
// the parameters. Unknown names are UnknownParameter; a value of the wrong
// type is InvalidParameter naming the parameter, the type the API declares
// (Integer, String, Array, Object ...) and the type received, never a Go
// type. Numbers as text are accepted only in the flattened encodings.
func (p *Params) Decode(dst any) error {
	v := reflect.ValueOf(dst)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return errors.New("cloudapi: Decode needs a pointer to a struct")
	}
	d := decoder{flat: p.flat}
	return d.value(map[string]any(p.tree), v.Elem(), "")
}

// Text returns a top-level parameter sent as a string, for messages that
// name what the request was about (the JobId of a job that does not exist).
func (p *Params) Text(name string) string {
	if p == nil {
		return ""
	}
	s, _ := p.tree[name].(string)
	return s
}

// Has reports whether a top-level parameter was sent.
func (p *Params) Has(name string) bool {
	_, ok := p.tree[name]
	return ok
}

// parseJSONParams parses a TC3 JSON body. An empty body means no parameters.
func parseJSONParams(body []byte) (map[string]any, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return map[string]any{}, nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, Errorf(CodeInvalidParameter, "The request body is not valid JSON: %s.", jsonErrorText(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, Errorf(CodeInvalidParameter, "The request body holds more than one JSON value.")
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, Errorf(CodeInvalidParameter, "The request body must be a JSON object.")
	}
	return m, nil
}

func jsonErrorText(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return se.Error() + " at offset " + strconv.FormatInt(se.Offset, 10)
	}
	return err.Error()
}

// unflatten turns flattened parameters (MigrateOption.RunMode=1,
// Table.0=a, A.0.B=x) into a tree. skip names parameters that are not
// business parameters (the common ones) and stay out of the tree.
func unflatten(values url.Values, skip func(string) bool) (map[string]any, error) {
	keys := make([]string, 0, len(values))
	for k := range values {
		keys = append(keys, k)
	}
	// Sorted so that errors are deterministic.
	sort.Strings(keys)
	root := map[string]any{}
	for _, key := range keys {
		if skip(key) {
			continue
		}
		vals := values[key]
		if len(vals) != 1 {
			return nil, Errorf(CodeInvalidParameter, "The parameter `%s` is given %d times; send it once.", key, len(vals))
		}
		parts := strings.Split(key, ".")
		for _, part := range parts {
			if part == "" {
				return nil, Errorf(CodeInvalidParameter, "The parameter name `%s` is malformed.", key)
			}
		}
		node := root
		for i, part := range parts[:len(parts)-1] {
			next, exists := node[part]
			if !exists {
				child := map[string]any{}
				node[part] = child
				node = child
				continue
			}
			child, ok := next.(map[string]any)
			if !ok {
				return nil, Errorf(CodeInvalidParameter, "The parameter `%s` is both a value and a structure.", strings.Join(parts[:i+1], "."))
			}
			node = child
		}
		last := parts[len(parts)-1]
		if _, exists := node[last]; exists {
			return nil, Errorf(CodeInvalidParameter, "The parameter `%s` is both a value and a structure.", key)
		}
		node[last] = vals[0]
	}
	return root, nil
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// typeError names the parameter, the type the API declares for it and the
// kind of value the client sent, in the words of the API's documentation.
func typeError(path, want string, got any) error {
	return Errorf(CodeInvalidParameter, "Parameter `%s` type error: expected %s, got %s.", path, want, kindOf(got))
}

// kindOf names what a client sent in the words of JSON, never Go's.
func kindOf(v any) string {
	switch v := v.(type) {
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	case string:
		return "the string " + strconv.Quote(short(v))
	case json.Number:
		return "the number " + short(v.String())
	case bool:
		return "a boolean"
	}
	return "a value of another type"
}

// short cuts a client's value at 40 characters for a message, so that a
// message stays short whatever was sent.
func short(s string) string {
	if r := []rune(s); len(r) > 40 {
		s = string(r[:40]) + "..."
	}
	return s
}

// TypeName names a field's type as the API's documentation does: Integer,
// String, Boolean, Float, Array of ..., Object.
func TypeName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Pointer:
		return TypeName(t.Elem())
	case reflect.String:
		return "String"
	case reflect.Int, reflect.Int64, reflect.Int32, reflect.Uint, reflect.Uint64, reflect.Uint32:
		return "Integer"
	case reflect.Float64:
		return "Float"
	case reflect.Bool:
		return "Boolean"
	case reflect.Slice:
		return "Array of " + TypeName(t.Elem())
	case reflect.Struct:
		return "Object"
	}
	return "a value"
}

type decoder struct {
	flat bool
}

func (d decoder) value(src any, dst reflect.Value, path string) error {
	if src == nil {
		// JSON null: the field stays unset, as if it had not been sent.
		return nil
	}
	switch dst.Kind() {
	case reflect.Pointer:
		elem := reflect.New(dst.Type().Elem())
		if err := d.value(src, elem.Elem(), path); err != nil {
			return err
		}
		dst.Set(elem)
		return nil
	case reflect.String:
		s, ok := src.(string)
		if !ok {
			return typeError(path, "String", src)
		}
		dst.SetString(s)
		return nil
	case reflect.Int, reflect.Int64, reflect.Int32:
		text, ok := d.numberText(src)
		if !ok {
			return typeError(path, "Integer", src)
		}
		n, err := strconv.ParseInt(text, 10, 64)
		if err != nil || dst.OverflowInt(n) {
			return typeError(path, "Integer", src)
		}
		dst.SetInt(n)
		return nil
	case reflect.Uint, reflect.Uint64, reflect.Uint32:
		text, ok := d.numberText(src)
		if !ok {
			return typeError(path, "a non-negative Integer", src)
		}
		n, err := strconv.ParseUint(text, 10, 64)
		if err != nil || dst.OverflowUint(n) {
			return typeError(path, "a non-negative Integer", src)
		}
		dst.SetUint(n)
		return nil
	case reflect.Float64:
		text, ok := d.numberText(src)
		if !ok {
			return typeError(path, "Float", src)
		}
		f, err := strconv.ParseFloat(text, 64)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return typeError(path, "Float", src)
		}
		dst.SetFloat(f)
		return nil
	case reflect.Bool:
		switch b := src.(type) {
		case bool:
			dst.SetBool(b)
			return nil
		case string:
			if v, err := strconv.ParseBool(b); err == nil && d.flat {
				dst.SetBool(v)
				return nil
			}
		}
		return typeError(path, "Boolean", src)
	case reflect.Slice:
		items, err := d.asList(src, dst.Type(), path)
		if err != nil {
			return err
		}
		out := reflect.MakeSlice(dst.Type(), len(items), len(items))
		for i, item := range items {
			if err := d.value(item, out.Index(i), path+"."+strconv.Itoa(i)); err != nil {
				return err
			}
		}
		dst.Set(out)
		return nil
	case reflect.Struct:
		m, ok := src.(map[string]any)
		if !ok {
			return typeError(path, "Object", src)
		}
		fields := structFields(dst.Type())
		names := make([]string, 0, len(m))
		for name := range m {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			idx, ok := fields[name]
			if !ok {
				return Errorf(CodeUnknownParameter, "The parameter `%s` is not recognized.", join(path, name))
			}
			if err := d.value(m[name], dst.Field(idx), join(path, name)); err != nil {
				return err
			}
		}
		return nil
	}
	return Errorf(CodeInternalError, "cannot decode parameter `%s`", path)
}

// numberText accepts a JSON number, or in a flattened encoding (which
// carries every value as text) a string holding one.
func (d decoder) numberText(src any) (string, bool) {
	switch v := src.(type) {
	case json.Number:
		return v.String(), true
	case string:
		if d.flat {
			return strings.TrimSpace(v), true
		}
	}
	return "", false
}

// asList accepts a JSON array or, in a flattened encoding, a map keyed
// 0..n-1.
func (d decoder) asList(src any, t reflect.Type, path string) ([]any, error) {
	switch v := src.(type) {
	case []any:
		return v, nil
	case map[string]any:
		if !d.flat {
			break
		}
		out := make([]any, len(v))
		for k, item := range v {
			i, err := strconv.Atoi(k)
			if err != nil || i < 0 || i >= len(v) || strconv.Itoa(i) != k {
				return nil, Errorf(CodeInvalidParameter, "Parameter `%s` is a list: its elements are numbered from 0 without gaps, not `%s`.", path, join(path, k))
			}
			out[i] = item
		}
		return out, nil
	}
	return nil, typeError(path, TypeName(t), src)
}

// structFields maps the json names of a struct's fields to their index.
// Fields tagged "-" are not parameters.
func structFields(t reflect.Type) map[string]int {
	out := make(map[string]int, t.NumField())
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name := f.Name
		if tag, ok := f.Tag.Lookup("json"); ok {
			tagName, _, _ := strings.Cut(tag, ",")
			if tagName == "-" {
				continue
			}
			if tagName != "" {
				name = tagName
			}
		}
		out[name] = i
	}
	return out
}
