package node

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/entente-net/entente/protocol"
)

// registerNodeMetrics registers the metrics of the node as a whole: the
// Go runtime, the process, the build, connected peers, records held and
// the store's disk (docs/operating.md, "Metrics").
func registerNodeMetrics(n *Node) {
	records := prometheus.NewDesc("entente_records", "Records held, by kind.", []string{"kind"}, nil)
	n.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		buildInfoGauge(n.build),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "entente_peers",
			Help: "Connected federation peers.",
		}, func() float64 {
			if n.host == nil {
				return 0
			}
			return float64(len(n.host.Network().Peers()))
		}),
		collectorFunc{descs: []*prometheus.Desc{records}, collect: func(ch chan<- prometheus.Metric) {
			counts := n.store.Counts()
			for _, k := range protocol.Kinds {
				ch <- prometheus.MustNewConstMetric(records, prometheus.GaugeValue, float64(counts[k]), string(k))
			}
		}},
		diskCollector(n),
	)
}

// buildInfoGauge is entente_build_info: 1, labelled with what the binary
// was built from, so that a dashboard can tell which build each node runs
// (and join it to the other series by instance).
func buildInfoGauge(b Build) prometheus.Collector {
	commit := b.Commit
	if commit == "" {
		commit = "unknown" // an empty label is no label: keep it queryable
	}
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "entente_build_info",
		Help:        "Always 1; its labels say which build of entente this node runs.",
		ConstLabels: prometheus.Labels{"version": b.Version, "commit": commit, "go_version": b.GoVersion},
	})
	g.Set(1)
	return g
}

// diskCollector reports the bytes the store takes on disk and the room
// left on its filesystem, read at each scrape (a walk of the data
// directory and one statfs). A store in memory reports neither.
func diskCollector(n *Node) prometheus.Collector {
	used := prometheus.NewDesc("entente_store_disk_bytes",
		"Bytes the data directory takes on disk, by part: lsm (Badger's tables) and vlog (its logs).", []string{"part"}, nil)
	avail := prometheus.NewDesc("entente_store_filesystem_avail_bytes",
		"Bytes free to the node on the filesystem of its data directory.", nil, nil)
	size := prometheus.NewDesc("entente_store_filesystem_size_bytes",
		"Size in bytes of the filesystem of the data directory.", nil, nil)
	return collectorFunc{descs: []*prometheus.Desc{used, avail, size}, collect: func(ch chan<- prometheus.Metric) {
		if n.cfg.InMemory {
			return
		}
		lsm, vlog := n.store.Size()
		ch <- prometheus.MustNewConstMetric(used, prometheus.GaugeValue, float64(lsm), "lsm")
		ch <- prometheus.MustNewConstMetric(used, prometheus.GaugeValue, float64(vlog), "vlog")
		if fs, err := n.store.Filesystem(); err == nil {
			ch <- prometheus.MustNewConstMetric(avail, prometheus.GaugeValue, float64(fs.Avail))
			ch <- prometheus.MustNewConstMetric(size, prometheus.GaugeValue, float64(fs.Size))
		}
	}}
}

// collectorFunc is a prometheus.Collector made of a function.
type collectorFunc struct {
	descs   []*prometheus.Desc
	collect func(chan<- prometheus.Metric)
}

func (c collectorFunc) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}
func (c collectorFunc) Collect(ch chan<- prometheus.Metric) { c.collect(ch) }
