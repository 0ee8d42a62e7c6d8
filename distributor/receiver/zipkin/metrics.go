package zipkin

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// metrics shares vivace_receiver_requests_total and
// vivace_receiver_refused_requests_total with the other receivers: the same
// help and labels, told apart by the receiver const label.
type metrics struct {
	requests     *prometheus.CounterVec // by protocol and outcome
	refused      *prometheus.CounterVec // by protocol and reason
	refusedSpans *prometheus.CounterVec // by reason
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	receiver := prometheus.Labels{"receiver": "zipkin"}
	return &metrics{
		requests: f.NewCounterVec(prometheus.CounterOpts{
			Name: "vivace_receiver_requests_total", Help: "Requests received, by receiver and outcome.",
			ConstLabels: receiver,
		}, []string{"protocol", "outcome"}),
		refused: f.NewCounterVec(prometheus.CounterOpts{
			Name: "vivace_receiver_refused_requests_total", Help: "Requests refused as bad input, by receiver and reason.",
			ConstLabels: receiver,
		}, []string{"protocol", "reason"}),
		refusedSpans: f.NewCounterVec(prometheus.CounterOpts{
			Name: "vivace_receiver_refused_spans_total", Help: "Spans in requests refused as bad input, by receiver and reason.",
			ConstLabels: receiver,
		}, []string{"reason"}),
	}
}
