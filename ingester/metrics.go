package ingester

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

type metrics struct {
	pushedTraces   prometheus.Counter
	pushedBytes    prometheus.Counter
	walBytes       prometheus.Gauge
	replayedTraces prometheus.Counter
	replaySeconds  prometheus.Histogram
	blocksFlushed  prometheus.Counter
	blocksSkipped  prometheus.Counter
	flushFailures  prometheus.Counter
	flushSeconds   prometheus.Histogram
	flushedSpans   prometheus.Counter
	generations    prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	return &metrics{
		pushedTraces:   f.NewCounter(prometheus.CounterOpts{Name: "vivace_ingester_pushed_traces_total", Help: "Trace parts appended to the WAL."}),
		pushedBytes:    f.NewCounter(prometheus.CounterOpts{Name: "vivace_ingester_pushed_bytes_total", Help: "Trace bytes appended to the WAL."}),
		walBytes:       f.NewGauge(prometheus.GaugeOpts{Name: "vivace_ingester_wal_bytes", Help: "Bytes in WAL segments not yet deleted."}),
		replayedTraces: f.NewCounter(prometheus.CounterOpts{Name: "vivace_ingester_wal_replayed_traces_total", Help: "Trace parts found in the WAL at start."}),
		replaySeconds:  f.NewHistogram(prometheus.HistogramOpts{Name: "vivace_ingester_wal_replay_duration_seconds", Help: "Time to replay one WAL segment."}),
		blocksFlushed:  f.NewCounter(prometheus.CounterOpts{Name: "vivace_ingester_blocks_flushed_total", Help: "Blocks written to the backend."}),
		blocksSkipped:  f.NewCounter(prometheus.CounterOpts{Name: "vivace_ingester_blocks_already_flushed_total", Help: "Blocks found already in the backend when flushing a replayed segment."}),
		flushFailures:  f.NewCounter(prometheus.CounterOpts{Name: "vivace_ingester_flush_failures_total", Help: "Failed block flushes (retried)."}),
		flushSeconds:   f.NewHistogram(prometheus.HistogramOpts{Name: "vivace_ingester_flush_duration_seconds", Help: "Time to build and upload one block.", Buckets: prometheus.ExponentialBuckets(0.05, 2, 12)}),
		flushedSpans:   f.NewCounter(prometheus.CounterOpts{Name: "vivace_ingester_flushed_spans_total", Help: "Spans written to backend blocks."}),
		generations:    f.NewGauge(prometheus.GaugeOpts{Name: "vivace_ingester_wal_segments", Help: "WAL segments held: the head and those flushing or recently flushed."}),
	}
}
