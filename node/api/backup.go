package api

import (
	"net/http"
	"time"
)

// MediaBackup is the media type of a backup (the format is store's:
// "Backups" in its package doc).
const MediaBackup = "application/octet-stream"

// handleBackup serves GET /v1/backup (the operator's): a backup of the
// node's store, streamed as it is written (store.Backup). The store is
// read at one snapshot while the node goes on; a backup outlasts the
// server's write timeout, so each write has its own. A failure after the
// first bytes aborts the connection: the file then lacks its end, which
// entente restore refuses.
func (a *API) handleBackup(w http.ResponseWriter, r *http.Request) {
	if _, err := queryParams(r); err != nil {
		a.writeError(w, r, err)
		return
	}
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", MediaBackup)
	h.Set("Content-Disposition", `attachment; filename="entente.backup"`)
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	bw := &deadlineWriter{w: w, rc: rc, timeout: a.cfg.Limits.WriteTimeout}
	start := time.Now()
	info, err := a.cfg.Store.Backup(r.Context(), bw)
	if err != nil {
		if bw.n == 0 {
			a.writeError(w, r, err)
			return
		}
		a.log.Error("backup failed while streaming; aborting the connection", "request_id", requestID(r), "bytes", bw.n, "err", err)
		panic(http.ErrAbortHandler)
	}
	a.log.Info("backup served", "request_id", requestID(r), "records", info.Tree.Size, "bytes", info.Bytes,
		"duration", time.Since(start).Round(time.Millisecond))
}

// deadlineWriter writes each write within its own deadline.
type deadlineWriter struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
	n       int64
}

func (d *deadlineWriter) Write(b []byte) (int, error) {
	if err := d.rc.SetWriteDeadline(time.Now().Add(d.timeout)); err != nil {
		return 0, err
	}
	n, err := d.w.Write(b)
	d.n += int64(n)
	return n, err
}
