package main

import (
	"io"
	"log/slog"

	"github.com/entente-net/entente/config"
)

func newLogger(w io.Writer, lc config.Log) *slog.Logger {
	return slog.New(lc.Handler(w))
}
