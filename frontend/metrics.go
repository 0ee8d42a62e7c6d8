package frontend

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec

	queueLength      *prometheus.GaugeVec
	queueDuration    prometheus.Histogram
	discarded        *prometheus.CounterVec
	connectedWorkers prometheus.Gauge
	retries          prometheus.Counter
}

// Reasons a job leaves the queue without running.
const (
	reasonQueueFull = "queue_full"
	reasonCancelled = "cancelled"
)

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	return &metrics{
		requests: f.NewCounterVec(prometheus.CounterOpts{
			Name: "vivace_query_frontend_requests_total",
			Help: "Read API requests, by endpoint (stream_* for gRPC streams) and HTTP status code (499: the client went away first).",
		}, []string{"endpoint", "code"}),
		duration: f.NewHistogramVec(prometheus.HistogramOpts{
			Name: "vivace_query_frontend_request_duration_seconds", Help: "Read API latency, by endpoint.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}, []string{"endpoint"}),
		queueLength: f.NewGaugeVec(prometheus.GaugeOpts{
			Name: "vivace_query_frontend_queue_length", Help: "Jobs waiting for a querier, by tenant.",
		}, []string{"tenant"}),
		queueDuration: f.NewHistogram(prometheus.HistogramOpts{
			Name: "vivace_query_frontend_queue_duration_seconds", Help: "Time a job waited in the queue before a querier took it.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}),
		discarded: f.NewCounterVec(prometheus.CounterOpts{
			Name: "vivace_query_frontend_discarded_jobs_total",
			Help: "Jobs never run: queue_full (the request was answered 429) or cancelled (the request ended first).",
		}, []string{"tenant", "reason"}),
		connectedWorkers: f.NewGauge(prometheus.GaugeOpts{
			Name: "vivace_query_frontend_connected_workers", Help: "Workers pulling jobs: querier streams and local workers.",
		}),
		retries: f.NewCounter(prometheus.CounterOpts{
			Name: "vivace_query_frontend_retries_total", Help: "Jobs requeued because the querier stream running them ended.",
		}),
	}
}
