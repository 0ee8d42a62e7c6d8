package opencensus

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/vivace-dev/vivace/distributor/receiver"
)

// protoGRPC is the protocol label of every request metric.
const protoGRPC = "grpc"

type metrics struct {
	receiver.Metrics
	// discarded counts messages of the streams that carry no spans: the
	// metrics service's Export and the trace service's Config.
	discarded *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) metrics {
	return metrics{
		Metrics: receiver.NewMetrics(reg, "opencensus"),
		discarded: promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
			Name:        "vivace_receiver_discarded_messages_total",
			Help:        "Messages read and discarded: OpenCensus metrics and trace config, which Vivace does not store.",
			ConstLabels: prometheus.Labels{"receiver": "opencensus"},
		}, []string{"stream"}),
	}
}
