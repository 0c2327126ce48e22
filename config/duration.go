package config

import (
	"fmt"
	"time"
)

// Duration is a time.Duration written in TOML as a Go duration string
// ("30s", "1m30s"). TOML has no duration type; being a struct, Duration
// makes a bare integer an error instead of a count of nanoseconds, which
// nobody means.
type Duration struct {
	time.Duration
}

// MarshalText writes d as a duration string.
func (d Duration) MarshalText() ([]byte, error) {
	return []byte(d.Duration.String()), nil
}

// UnmarshalText reads a duration string such as "15s".
func (d *Duration) UnmarshalText(text []byte) error {
	v, err := time.ParseDuration(string(text))
	if err != nil {
		return fmt.Errorf("not a duration (write e.g. \"15s\" or \"2m\"): %w", err)
	}
	d.Duration = v
	return nil
}
