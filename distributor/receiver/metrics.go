package receiver

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Metrics are what every receiver counts. Receivers register them in one
// registry under the same names, help and labels, told apart by the const
// label receiver, so they are defined here once.
type Metrics struct {
	Requests     *prometheus.CounterVec // by protocol and outcome (ok, limited, error)
	Refused      *prometheus.CounterVec // requests refused as bad input, by protocol and reason
	RefusedSpans *prometheus.CounterVec // spans in refused requests, by reason
}

// NewMetrics registers the metrics of the receiver named name.
func NewMetrics(reg prometheus.Registerer, name string) Metrics {
	f := promauto.With(reg)
	receiver := prometheus.Labels{"receiver": name}
	return Metrics{
		Requests: f.NewCounterVec(prometheus.CounterOpts{
			Name: "vivace_receiver_requests_total", Help: "Requests received, by receiver and outcome.",
			ConstLabels: receiver,
		}, []string{"protocol", "outcome"}),
		Refused: f.NewCounterVec(prometheus.CounterOpts{
			Name: "vivace_receiver_refused_requests_total", Help: "Requests refused as bad input, by receiver and reason.",
			ConstLabels: receiver,
		}, []string{"protocol", "reason"}),
		RefusedSpans: f.NewCounterVec(prometheus.CounterOpts{
			Name: "vivace_receiver_refused_spans_total", Help: "Spans in requests refused as bad input, by receiver and reason.",
			ConstLabels: receiver,
		}, []string{"reason"}),
	}
}
