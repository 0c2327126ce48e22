package api

import (
	"bytes"
	"context"
	"net/http"
	"time"

	"github.com/entente-net/entente/store"
)

// NoticeEvent is the data of an event of /v1/notices/stream: the consent,
// the record that revoked or superseded it, and the caller's decisions
// under it.
type NoticeEvent struct {
	Consent   string              `json:"consent"`
	By        string              `json:"by"`
	Decisions []store.DecisionRef `json:"decisions"`
}

// handleNoticeStream serves GET /v1/notices/stream: Server-Sent Events,
// one per notice to the caller (a controller: the recipient of the
// decisions it names; the operator: every notice), event consent-revoked
// or consent-superseded, its ID the notice's seq. With Last-Event-ID it
// resumes after that ID; without, it first replays the caller's notices
// whose decisions have not all reached a subscriber yet. A notice written
// to the caller marks its decisions as notified (when first).
func (a *API) handleNoticeStream(w http.ResponseWriter, r *http.Request) {
	after, resume, err := lastEventID(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	if _, err := queryParams(r, "last_event_id"); err != nil {
		a.writeError(w, r, err)
		return
	}
	recipient := ""
	if c := callerOf(r); !c.Operator {
		recipient = c.Peer.String()
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stop := context.AfterFunc(a.stopping, cancel)
	defer stop()
	send, ok := a.openStream(w, "notices")
	if !ok {
		return
	}
	keepalive := time.NewTicker(a.cfg.Streams.Keepalive)
	defer keepalive.Stop()
	reauth := time.NewTicker(time.Second)
	defer reauth.Stop()
	var buf bytes.Buffer
	for ctx.Err() == nil {
		var wake <-chan struct{}
		if a.cfg.Notices != nil {
			wake = a.cfg.Notices.Wait() // before reading
		}
		notices, err := a.cfg.Store.Notices(recipient, after, streamBatch)
		if err != nil {
			a.log.Error("notice stream: reading notices", "err", err, "after", after)
			return
		}
		for _, n := range notices {
			after = n.Seq
			if !resume && a.allNotified(n.Decisions) {
				continue // delivered before, to a subscriber that did not say so
			}
			buf.Reset()
			if err := writeEvent(&buf, n.Event, n.Seq, NoticeEvent{Consent: n.Consent, By: n.By, Decisions: n.Decisions}); err != nil {
				return
			}
			if err := send(buf.Bytes()); err != nil {
				return
			}
			if err := a.cfg.Store.MarkNotified(n.Decisions, time.Now().UnixMilli()); err != nil {
				a.log.Error("notice stream: marking decisions notified", "err", err)
			}
		}
		if len(notices) == streamBatch {
			continue
		}
		resume = true // replayed: from now on, every notice
		select {
		case <-wake:
		case <-reauth.C:
			if id, err := a.identify(r); err != nil || id != identityOf(r) {
				return
			}
		case <-keepalive.C:
			if err := send([]byte(": keepalive\n\n")); err != nil {
				return
			}
		case <-ctx.Done():
			return
		}
	}
}

// allNotified reports whether every decision of refs has been notified.
func (a *API) allNotified(refs []store.DecisionRef) bool {
	for _, ref := range refs {
		c, err := cidField("receipt", ref.Receipt)
		if err != nil {
			return false
		}
		if _, ok, err := a.cfg.Store.NotifiedAt(c, ref.Item); err != nil || !ok {
			return false
		}
	}
	return true
}

// openStream answers 200 with the headers of an event stream, sends the
// comment first, and returns how to send on it: each write within the
// stream's write timeout, and flushed. The server's timeouts bound
// ordinary requests; a stream lasts, each write with its own deadline.
func (a *API) openStream(w http.ResponseWriter, first string) (send func([]byte) error, ok bool) {
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	send = func(b []byte) error {
		if err := rc.SetWriteDeadline(time.Now().Add(a.cfg.Streams.WriteTimeout)); err != nil {
			return err
		}
		if _, err := w.Write(b); err != nil {
			return err
		}
		return rc.Flush()
	}
	return send, send([]byte(": "+first+"\n\n")) == nil
}
