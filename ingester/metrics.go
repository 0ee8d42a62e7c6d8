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
	damagedRecords prometheus.Counter
	replaySeconds  prometheus.Histogram
	blocksFlushed  prometheus.Counter
	blocksSkipped  prometheus.Counter
	flushFailures  prometheus.Counter
	flushSeconds   prometheus.Histogram
	flushedSpans   prometheus.Counter
	generations    prometheus.Gauge
	refusedTraces  *prometheus.CounterVec
	liveTraces     *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	return &metrics{
		pushedTraces:   f.NewCounter(prometheus.CounterOpts{Name: "vivace_ingester_pushed_traces_total", Help: "Trace parts appended to the WAL."}),
		pushedBytes:    f.NewCounter(prometheus.CounterOpts{Name: "vivace_ingester_pushed_bytes_total", Help: "Trace bytes appended to the WAL."}),
		walBytes:       f.NewGauge(prometheus.GaugeOpts{Name: "vivace_ingester_wal_bytes", Help: "Bytes in WAL segments not yet deleted."}),
		replayedTraces: f.NewCounter(prometheus.CounterOpts{Name: "vivace_ingester_wal_replayed_traces_total", Help: "Trace parts found in the WAL at start."}),
		damagedRecords: f.NewCounter(prometheus.CounterOpts{Name: "vivace_ingester_wal_damaged_records_total", Help: "Damaged stretches of WAL records skipped at replay (torn or failing their checksum)."}),
		replaySeconds:  f.NewHistogram(prometheus.HistogramOpts{Name: "vivace_ingester_wal_replay_duration_seconds", Help: "Time to replay one WAL segment."}),
		blocksFlushed:  f.NewCounter(prometheus.CounterOpts{Name: "vivace_ingester_blocks_flushed_total", Help: "Blocks written to the backend."}),
		blocksSkipped:  f.NewCounter(prometheus.CounterOpts{Name: "vivace_ingester_blocks_already_flushed_total", Help: "Blocks found already in the backend when flushing a replayed segment."}),
		flushFailures:  f.NewCounter(prometheus.CounterOpts{Name: "vivace_ingester_flush_failures_total", Help: "Failed block flushes (retried)."}),
		flushSeconds:   f.NewHistogram(prometheus.HistogramOpts{Name: "vivace_ingester_flush_duration_seconds", Help: "Time to build and upload one block.", Buckets: prometheus.ExponentialBuckets(0.05, 2, 12)}),
		flushedSpans:   f.NewCounter(prometheus.CounterOpts{Name: "vivace_ingester_flushed_spans_total", Help: "Spans written to backend blocks."}),
		generations:    f.NewGauge(prometheus.GaugeOpts{Name: "vivace_ingester_wal_segments", Help: "WAL segments held: the head and those flushing or recently flushed."}),
		refusedTraces:  f.NewCounterVec(prometheus.CounterOpts{Name: "vivace_ingester_refused_traces_total", Help: "Trace parts of pushes refused because the tenant is over a limit, by tenant and reason (live_traces_exceeded, trace_too_large)."}, []string{"tenant", "reason"}),
		liveTraces:     f.NewGaugeVec(prometheus.GaugeOpts{Name: "vivace_ingester_live_traces", Help: "Traces that received a part within trace_idle_period, by tenant."}, []string{"tenant"}),
	}
}
