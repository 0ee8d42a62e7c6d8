package blocklist

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Reasons a tenant index was not written or not used, the reason label of
// vivace_blocklist_tenant_index_errors_total.
const (
	reasonWrite      = "write"      // the builder could not write (or delete) it
	reasonMissing    = "missing"    // no index: no builder yet, or a new tenant
	reasonUnreadable = "unreadable" // the GET failed, or it does not decode
	reasonStale      = "stale"      // older than the stale bound: the builder stopped
)

type metrics struct {
	blocks          *prometheus.GaugeVec
	compactedBlocks *prometheus.GaugeVec
	pollSeconds     prometheus.Histogram
	pollFailures    prometheus.Counter
	indexBuilds     *prometheus.CounterVec
	indexErrors     *prometheus.CounterVec
	indexAge        *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	tenant := []string{"tenant"}
	return &metrics{
		blocks:          f.NewGaugeVec(prometheus.GaugeOpts{Name: "vivace_blocklist_blocks", Help: "Blocks in the polled block list, by tenant."}, tenant),
		compactedBlocks: f.NewGaugeVec(prometheus.GaugeOpts{Name: "vivace_blocklist_compacted_blocks", Help: "Blocks marked compacted and not yet deleted, by tenant."}, tenant),
		pollSeconds:     f.NewHistogram(prometheus.HistogramOpts{Name: "vivace_blocklist_poll_duration_seconds", Help: "Time to poll the block list."}),
		pollFailures:    f.NewCounter(prometheus.CounterOpts{Name: "vivace_blocklist_poll_failures_total", Help: "Failed block list polls."}),
		indexBuilds:     f.NewCounterVec(prometheus.CounterOpts{Name: "vivace_blocklist_tenant_index_builds_total", Help: "Tenant indexes written by this poller, by tenant."}, tenant),
		indexErrors: f.NewCounterVec(prometheus.CounterOpts{
			Name: "vivace_blocklist_tenant_index_errors_total",
			Help: "Tenant indexes not written (reason write) or not used, the tenant's blocks listed instead (reasons missing, unreadable, stale), by tenant.",
		}, []string{"tenant", "reason"}),
		indexAge: f.NewGaugeVec(prometheus.GaugeOpts{Name: "vivace_blocklist_tenant_index_age_seconds", Help: "Age of the tenant index read at the last poll, used or found stale, by tenant."}, tenant),
	}
}

// forget removes a tenant's gauges; its counters stay, as counters do.
func (m *metrics) forget(tenant string) {
	m.blocks.DeleteLabelValues(tenant)
	m.compactedBlocks.DeleteLabelValues(tenant)
	m.indexAge.DeleteLabelValues(tenant)
}
