package config

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/pelletier/go-toml/v2"
)

// decodeStrict decodes a TOML document into v, refusing keys that v has no
// field for: a misspelt key must not silently fall back to a default.
func decodeStrict(data []byte, v any) error {
	dec := toml.NewDecoder(bytes.NewReader(data)).DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		return checkKeyCase(data, reflect.TypeOf(v))
	}
	var strictErr *toml.StrictMissingError
	if errors.As(err, &strictErr) {
		msgs := make([]string, 0, len(strictErr.Errors))
		for i := range strictErr.Errors {
			e := &strictErr.Errors[i]
			row, _ := e.Position()
			key := strings.Join(e.Key(), ".")
			msg := fmt.Sprintf("line %d: unknown key %q", row, key)
			if why, ok := removedKeys[key]; ok {
				msg += " (" + why + "; delete the line)"
			}
			msgs = append(msgs, msg)
		}
		return errors.New(strings.Join(msgs, "; "))
	}
	var decErr *toml.DecodeError
	if errors.As(err, &decErr) {
		row, col := decErr.Position()
		if key := decErr.Key(); len(key) > 0 {
			return fmt.Errorf("line %d, column %d: %s: %w", row, col, strings.Join(key, "."), err)
		}
		return fmt.Errorf("line %d, column %d: %w", row, col, err)
	}
	return err
}

// removedKeys are settings earlier versions wrote that are no longer
// read, and why, so that an old file gets a clear error.
var removedKeys = map[string]string{
	"gossip.fetch_timeout": "removed: it was never applied; fetching has fixed per-peer timeouts",
}

// checkKeyCase rejects keys that match a field only when case is ignored:
// the TOML decoder folds case ("Name" fills name), but TOML keys are
// case-sensitive and other readers of the file would not see that key.
func checkKeyCase(data []byte, t reflect.Type) error {
	var doc map[string]any
	if err := toml.Unmarshal(data, &doc); err != nil {
		return err
	}
	return checkTableKeys(doc, t, "")
}

func checkTableKeys(table map[string]any, t reflect.Type, prefix string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	fields := tomlFields(t)
	keys := make([]string, 0, len(table))
	for k := range table {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		path := k
		if prefix != "" {
			path = prefix + "." + k
		}
		ft, ok := fields[k]
		if !ok {
			for name := range fields {
				if strings.EqualFold(name, k) {
					return fmt.Errorf("unknown key %q (keys are case-sensitive: write %q)", path, name)
				}
			}
			return fmt.Errorf("unknown key %q", path)
		}
		switch v := table[k].(type) {
		case map[string]any:
			if err := checkTableKeys(v, ft, path); err != nil {
				return err
			}
		case []any:
			if ft.Kind() != reflect.Slice {
				continue
			}
			for i, e := range v {
				if m, ok := e.(map[string]any); ok {
					if err := checkTableKeys(m, ft.Elem(), fmt.Sprintf("%s[%d]", path, i)); err != nil {
						return err
					}
				}
			}
		}
	}
	return nil
}

// tomlFields maps the TOML key of each field of struct type t to its type.
func tomlFields(t reflect.Type) map[string]reflect.Type {
	fields := make(map[string]reflect.Type, t.NumField())
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name := f.Name
		if tag, ok := f.Tag.Lookup("toml"); ok {
			if tag == "-" {
				continue
			}
			if n, _, _ := strings.Cut(tag, ","); n != "" {
				name = n
			}
		}
		fields[name] = f.Type
	}
	return fields
}
