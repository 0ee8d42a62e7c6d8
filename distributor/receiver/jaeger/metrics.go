package jaeger

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Protocol label values.
const (
	protoThriftHTTP    = "thrift_http"
	protoGRPC          = "grpc"
	protoThriftBinary  = "thrift_binary"
	protoThriftCompact = "thrift_compact"
)

type metrics struct {
	requests     *prometheus.CounterVec // by protocol and outcome (ok, error)
	refused      *prometheus.CounterVec // by protocol and reason
	refusedSpans *prometheus.CounterVec // by reason
	dropped      *prometheus.CounterVec // UDP datagrams, by protocol and reason
}

// newMetrics registers the receiver's metrics. The first two share names,
// help and labels with the other receivers' (the receiver label tells them
// apart), so one registry holds them all.
func newMetrics(reg prometheus.Registerer) metrics {
	f := promauto.With(reg)
	constLabels := prometheus.Labels{"receiver": "jaeger"}
	return metrics{
		requests: f.NewCounterVec(prometheus.CounterOpts{
			Name: "vivace_receiver_requests_total", Help: "Requests received, by receiver and outcome.",
			ConstLabels: constLabels,
		}, []string{"protocol", "outcome"}),
		refused: f.NewCounterVec(prometheus.CounterOpts{
			Name: "vivace_receiver_refused_requests_total", Help: "Requests refused as bad input, by receiver and reason.",
			ConstLabels: constLabels,
		}, []string{"protocol", "reason"}),
		refusedSpans: f.NewCounterVec(prometheus.CounterOpts{
			Name: "vivace_receiver_refused_spans_total", Help: "Spans in requests refused as bad input, by receiver and reason.",
			ConstLabels: constLabels,
		}, []string{"reason"}),
		dropped: f.NewCounterVec(prometheus.CounterOpts{
			Name: "vivace_receiver_dropped_datagrams_total", Help: "UDP datagrams dropped unread: queue full, or shutting down.",
			ConstLabels: constLabels,
		}, []string{"protocol", "reason"}),
	}
}
