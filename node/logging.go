package node

import (
	"log"
	"log/slog"
)

// slogErrorLog routes net/http's internal error log to slog at debug level:
// those errors (bad TLS handshakes, broken connections) are caused by
// clients.
func slogErrorLog(l *slog.Logger) *log.Logger {
	return slog.NewLogLogger(l.With("component", "http").Handler(), slog.LevelDebug)
}
