package compactor

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

type metrics struct {
	compactions       *prometheus.CounterVec
	compactionErrors  *prometheus.CounterVec
	blocksCompacted   *prometheus.CounterVec
	bytesWritten      *prometheus.CounterVec
	spansWritten      *prometheus.CounterVec
	spansDeduplicated *prometheus.CounterVec
	retentionDeleted  *prometheus.CounterVec
	compactedDeleted  *prometheus.CounterVec
	cycleSeconds      prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	tenant := []string{"tenant"}
	return &metrics{
		compactions:       f.NewCounterVec(prometheus.CounterOpts{Name: "vivace_compactor_compactions_total", Help: "Compaction jobs run, failed or not."}, tenant),
		compactionErrors:  f.NewCounterVec(prometheus.CounterOpts{Name: "vivace_compactor_compaction_errors_total", Help: "Compaction jobs that failed."}, tenant),
		blocksCompacted:   f.NewCounterVec(prometheus.CounterOpts{Name: "vivace_compactor_blocks_compacted_total", Help: "Blocks merged into a new block and marked compacted."}, tenant),
		bytesWritten:      f.NewCounterVec(prometheus.CounterOpts{Name: "vivace_compactor_bytes_written_total", Help: "Bytes of data.parquet written by compaction."}, tenant),
		spansWritten:      f.NewCounterVec(prometheus.CounterOpts{Name: "vivace_compactor_spans_written_total", Help: "Spans written by compaction."}, tenant),
		spansDeduplicated: f.NewCounterVec(prometheus.CounterOpts{Name: "vivace_compactor_spans_deduplicated_total", Help: "Duplicate spans dropped by compaction (spans read minus spans written)."}, tenant),
		retentionDeleted:  f.NewCounterVec(prometheus.CounterOpts{Name: "vivace_compactor_retention_deleted_blocks_total", Help: "Blocks deleted because their newest span is past retention."}, tenant),
		compactedDeleted:  f.NewCounterVec(prometheus.CounterOpts{Name: "vivace_compactor_compacted_blocks_deleted_total", Help: "Compacted blocks deleted after their grace period."}, tenant),
		cycleSeconds:      f.NewHistogram(prometheus.HistogramOpts{Name: "vivace_compactor_cycle_duration_seconds", Help: "Time of one compaction cycle.", Buckets: prometheus.ExponentialBuckets(0.1, 4, 10)}),
	}
}
