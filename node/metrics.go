package node

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/entente-net/entente/protocol"
)

// metrics are a node's Prometheus metrics, in a registry of its own so
// that several nodes can run in one process (testnet).
type metrics struct {
	reg           *prometheus.Registry
	ingest        *prometheus.CounterVec
	ingestSeconds prometheus.Histogram
	gossip        *prometheus.CounterVec
	gateRefused   prometheus.Counter
	verdicts      prometheus.Counter
	syncSessions  prometheus.Counter
}

func newMetrics(n *Node) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		ingest: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "entente_ingest_total",
			Help: "Records offered to the node, by source and result (accepted, duplicate, or the refusal code).",
		}, []string{"source", "result"}),
		ingestSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "entente_ingest_seconds",
			Help:    "Time to check and durably store a new record.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}),
		gossip: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "entente_gossip_messages_total",
			Help: "Gossip messages validated, by result.",
		}, []string{"result"}),
		gateRefused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "entente_gate_refused_total",
			Help: "Connections refused because the peer is not a federation member.",
		}),
		syncSessions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "entente_sync_sessions_total",
			Help: "Reconciliation sessions this node initiated.",
		}),
		verdicts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "entente_verdicts_total",
			Help: "Transfer requests decided (receipts signed).",
		}),
	}
	records := prometheus.NewDesc("entente_records", "Records held, by kind.", []string{"kind"}, nil)
	m.reg.MustRegister(
		m.ingest, m.ingestSeconds, m.gossip, m.gateRefused, m.verdicts, m.syncSessions,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "entente_peers",
			Help: "Connected federation peers.",
		}, func() float64 { return float64(len(n.host.Network().Peers())) }),
		collectorFunc{desc: records, collect: func(ch chan<- prometheus.Metric) {
			counts := n.store.Counts()
			for _, k := range protocol.Kinds {
				ch <- prometheus.MustNewConstMetric(records, prometheus.GaugeValue, float64(counts[k]), string(k))
			}
		}},
	)
	return m
}

// collectorFunc is a prometheus.Collector made of a function.
type collectorFunc struct {
	desc    *prometheus.Desc
	collect func(chan<- prometheus.Metric)
}

func (c collectorFunc) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }
func (c collectorFunc) Collect(ch chan<- prometheus.Metric) { c.collect(ch) }
