package distributor

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

type metrics struct {
	receivedSpans  *prometheus.CounterVec
	receivedBytes  *prometheus.CounterVec
	discardedSpans *prometheus.CounterVec
	pushFailures   prometheus.Counter

	truncatedAttributes *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	return &metrics{
		receivedSpans:  f.NewCounterVec(prometheus.CounterOpts{Name: "vivace_distributor_spans_received_total", Help: "Spans accepted, by tenant."}, []string{"tenant"}),
		receivedBytes:  f.NewCounterVec(prometheus.CounterOpts{Name: "vivace_distributor_bytes_received_total", Help: "OTLP bytes accepted, by tenant."}, []string{"tenant"}),
		discardedSpans: f.NewCounterVec(prometheus.CounterOpts{Name: "vivace_discarded_spans_total", Help: "Spans refused, by tenant and reason."}, []string{"tenant", "reason"}),
		pushFailures:   f.NewCounter(prometheus.CounterOpts{Name: "vivace_distributor_ingester_push_failures_total", Help: "Pushes to ingesters that failed."}),

		truncatedAttributes: f.NewCounterVec(prometheus.CounterOpts{Name: "vivace_distributor_attributes_truncated_total", Help: "Attribute values cut to ingestion.max_attribute_bytes, by tenant."}, []string{"tenant"}),
	}
}
