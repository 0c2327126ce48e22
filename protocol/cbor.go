package protocol

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"

	"github.com/fxamacker/cbor/v2"
)

// MaxRecordSize is the largest encoded record accepted, in bytes.
const MaxRecordSize = 64 << 10

// encMode produces canonical DAG-CBOR for the types of this package: map
// keys (struct fields) sorted length-first then bytewise, shortest integer
// forms, definite lengths, nil lists as empty lists.
var encMode = mustEncMode()

// decMode decodes strictly. It is not enough on its own (it accepts
// non-minimal integers, for one): Decode re-encodes and compares bytes.
var decMode = mustDecMode()

// genericDecMode decodes into generic values, for diagnostics only.
var genericDecMode = mustGenericDecMode()

func mustEncMode() cbor.EncMode {
	m, err := cbor.EncOptions{
		Sort:          cbor.SortLengthFirst,
		ShortestFloat: cbor.ShortestFloatNone,
		NaNConvert:    cbor.NaNConvertReject,
		InfConvert:    cbor.InfConvertReject,
		IndefLength:   cbor.IndefLengthForbidden,
		NilContainers: cbor.NilContainerAsEmpty,
		TagsMd:        cbor.TagsAllowed,
	}.EncMode()
	if err != nil {
		panic(err)
	}
	return m
}

func baseDecOptions() cbor.DecOptions {
	return cbor.DecOptions{
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		IndefLength:       cbor.IndefLengthForbidden,
		TagsMd:            cbor.TagsAllowed,
		MaxNestedLevels:   16,
		MaxArrayElements:  MaxRecordSize,
		MaxMapPairs:       MaxRecordSize,
		UTF8:              cbor.UTF8RejectInvalid,
		FieldNameMatching: cbor.FieldNameMatchingCaseSensitive,
		BignumTag:         cbor.BignumTagForbidden,
		NaN:               cbor.NaNDecodeForbidden,
		Inf:               cbor.InfDecodeForbidden,
		BinaryUnmarshaler: cbor.BinaryUnmarshalerNone,
		TextUnmarshaler:   cbor.TextUnmarshalerNone,
	}
}

func mustDecMode() cbor.DecMode {
	o := baseDecOptions()
	o.ExtraReturnErrors = cbor.ExtraDecErrorUnknownField
	m, err := o.DecMode()
	if err != nil {
		panic(err)
	}
	return m
}

func mustGenericDecMode() cbor.DecMode {
	o := baseDecOptions()
	o.DefaultMapType = reflect.TypeOf(map[string]any(nil))
	m, err := o.DecMode()
	if err != nil {
		panic(err)
	}
	return m
}

// decodeStrict decodes data into v (a pointer to a struct of this package)
// and checks that data is exactly the canonical encoding of what it decoded
// to. field names the position of data for errors ("" or "body").
func decodeStrict(data []byte, v any, field string) error {
	if err := decMode.Unmarshal(data, v); err != nil {
		// Indefinite lengths are valid CBOR that DAG-CBOR does not allow:
		// a canonical-form fault (DESIGN.md §8), not a malformed record.
		var ile *cbor.IndefiniteLengthError
		if errors.As(err, &ile) {
			return errf(CodeNonCanonical, field, "%s", cleanCBORError(err))
		}
		var ufe *cbor.UnknownFieldError
		if errors.As(err, &ufe) {
			if p := findField(data, reflect.TypeOf(v).Elem(), field, unknownAt); p != "" {
				return errf(CodeMalformed, p, "unknown field")
			}
		}
		return errf(CodeMalformed, field, "%s", cleanCBORError(err))
	}
	again, err := encMode.Marshal(v)
	if err != nil {
		return errf(CodeMalformed, field, "%s", cleanCBORError(err))
	}
	if bytes.Equal(again, data) {
		return nil
	}
	// The bytes differ: either a required field is missing (re-encoding
	// put it back with its zero value), or the input is not canonical.
	t := reflect.TypeOf(v).Elem()
	if missing := findField(data, t, field, missingAt); missing != "" {
		return errf(CodeMalformed, missing, "missing required field")
	}
	if empty := findField(data, t, field, emptyOptionalAt); empty != "" {
		return errf(CodeNonCanonical, empty, "an optional field is left out when unused, never given empty or null")
	}
	return errf(CodeNonCanonical, field, "not the canonical DAG-CBOR encoding (map key order, shortest integer forms, definite lengths, no empty optional fields)")
}

func cleanCBORError(err error) string {
	var ute *cbor.UnknownFieldError
	if errors.As(err, &ute) {
		return "unknown field"
	}
	s := err.Error()
	s = strings.TrimPrefix(s, "cbor: ")
	return s
}

// A fieldCheck looks at one struct's map (m) and returns the name of the
// first field it finds at fault, or "".
type fieldCheck func(m map[string]any, fields map[string]fieldInfo) string

// findField walks a generic decoding of data alongside the struct type t
// and returns the path of the first field check reports, or "". It runs
// only on the slow path, to say what is wrong.
func findField(data []byte, t reflect.Type, path string, check fieldCheck) string {
	var v any
	if err := genericDecMode.Unmarshal(data, &v); err != nil {
		return ""
	}
	return findIn(v, t, path, check)
}

// missingAt: a required field absent.
func missingAt(m map[string]any, fields map[string]fieldInfo) string {
	for _, name := range sortedNames(fields) {
		if _, ok := m[name]; !ok && !fields[name].optional {
			return name
		}
	}
	return ""
}

// unknownAt: a key no field has.
func unknownAt(m map[string]any, fields map[string]fieldInfo) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if _, ok := fields[k]; !ok {
			return k
		}
	}
	return ""
}

// emptyOptionalAt: an optional field given as null or an empty list.
func emptyOptionalAt(m map[string]any, fields map[string]fieldInfo) string {
	for _, name := range sortedNames(fields) {
		v, ok := m[name]
		if !ok || !fields[name].optional {
			continue
		}
		if l, isList := v.([]any); v == nil || (isList && len(l) == 0) {
			return name
		}
	}
	return ""
}

func sortedNames(fields map[string]fieldInfo) []string {
	names := make([]string, 0, len(fields))
	for name := range fields {
		names = append(names, name)
	}
	sort.Strings(names)
	return names
}

var linkType = reflect.TypeOf(Link{})

func findIn(v any, t reflect.Type, path string, check fieldCheck) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		if t == linkType {
			return ""
		}
		m, ok := v.(map[string]any)
		if !ok {
			return ""
		}
		fields := structFields(t)
		if name := check(m, fields); name != "" {
			return joinPath(path, name)
		}
		for _, name := range sortedNames(fields) {
			if sub, present := m[name]; present {
				if p := findIn(sub, fields[name].typ, joinPath(path, name), check); p != "" {
					return p
				}
			}
		}
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return ""
		}
		list, ok := v.([]any)
		if !ok {
			return ""
		}
		for i, item := range list {
			if p := findIn(item, t.Elem(), fmt.Sprintf("%s[%d]", path, i), check); p != "" {
				return p
			}
		}
	}
	return ""
}

type fieldInfo struct {
	typ      reflect.Type
	optional bool
}

// structFields lists the CBOR fields of a struct type, flattening embedded
// structs as the encoder does.
func structFields(t reflect.Type) map[string]fieldInfo {
	out := map[string]fieldInfo{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if f.Anonymous && f.Type.Kind() == reflect.Struct {
			for k, v := range structFields(f.Type) {
				out[k] = v
			}
			continue
		}
		tag := f.Tag.Get("cbor")
		if tag == "" || tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		out[name] = fieldInfo{typ: f.Type, optional: strings.Contains(opts, "omitempty")}
	}
	return out
}

func joinPath(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}
