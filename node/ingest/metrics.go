package ingest

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/entente-net/entente/node/service"
	"github.com/entente-net/entente/protocol"
)

// count counts an ingest from src under its result, and times a new
// record's.
func (p *Pipeline) count(src service.Source, start time.Time, acc service.Accepted, err error) {
	result := "accepted"
	switch {
	case err != nil:
		result = string(protocol.CodeOf(err))
		if result == "" {
			result = "error"
		}
	case !acc.New:
		result = "duplicate"
	}
	p.metrics.ingest.WithLabelValues(string(src), result).Inc()
	switch {
	case err != nil:
		p.tally.refuse(result)
	case !acc.New:
		p.tally.duplicate()
	}
	if err == nil && acc.New {
		p.metrics.seconds.Observe(time.Since(start).Seconds())
	}
}

// metrics are the pipeline's Prometheus metrics.
type metrics struct {
	ingest  *prometheus.CounterVec
	seconds prometheus.Histogram
}

func newMetrics() metrics {
	return metrics{
		ingest: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "entente_ingest_total",
			Help: "Records offered to the node, by source and result (accepted, duplicate, or the refusal code).",
		}, []string{"source", "result"}),
		seconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "entente_ingest_seconds",
			Help:    "Time to check and durably store a new record.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}),
	}
}
