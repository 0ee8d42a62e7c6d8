package overrides

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

type metrics struct {
	reloadFailures prometheus.Counter
	tenants        prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	return &metrics{
		reloadFailures: f.NewCounter(prometheus.CounterOpts{Name: "vivace_overrides_reload_failures_total", Help: "Runtime overrides files refused (too large, unparsable or invalid); the last good one stays in force."}),
		tenants:        f.NewGauge(prometheus.GaugeOpts{Name: "vivace_overrides_tenants", Help: "Entries of the runtime overrides file in force."}),
	}
}
