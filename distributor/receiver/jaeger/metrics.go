package jaeger

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/vivace-dev/vivace/distributor/receiver"
)

// Protocol label values.
const (
	protoThriftHTTP    = "thrift_http"
	protoGRPC          = "grpc"
	protoThriftBinary  = "thrift_binary"
	protoThriftCompact = "thrift_compact"
)

type metrics struct {
	receiver.Metrics
	dropped *prometheus.CounterVec // UDP datagrams, by protocol and reason
}

func newMetrics(reg prometheus.Registerer) metrics {
	return metrics{
		Metrics: receiver.NewMetrics(reg, "jaeger"),
		dropped: promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
			Name: "vivace_receiver_dropped_datagrams_total", Help: "UDP datagrams dropped unread: queue full, or shutting down.",
			ConstLabels: prometheus.Labels{"receiver": "jaeger"},
		}, []string{"protocol", "reason"}),
	}
}
