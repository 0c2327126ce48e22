package config

import "fmt"

// FieldError reports a value that breaks the rules of its field. Field is the
// TOML path of the value, as an operator would look for it in the file:
// "listen[0]", "limits.max_body_bytes", "jurisdiction[1].authority".
type FieldError struct {
	Field string
	Err   error
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Err.Error() }

func (e *FieldError) Unwrap() error { return e.Err }

func fieldErr(field string, format string, args ...any) error {
	return &FieldError{Field: field, Err: fmt.Errorf(format, args...)}
}
