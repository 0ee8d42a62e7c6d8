package compactor

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/vivace-dev/vivace/storage/block"
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
	corruptBlocks     *prometheus.CounterVec
	cycleSeconds      prometheus.Histogram
	// What the block list holds, by tenant and compaction level.
	blocks     *prometheus.GaugeVec
	blockBytes *prometheus.GaugeVec
	blockSpans *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	tenant := []string{"tenant"}
	level := []string{"tenant", "level"}
	return &metrics{
		compactions:       f.NewCounterVec(prometheus.CounterOpts{Name: "vivace_compactor_compactions_total", Help: "Compaction jobs run, failed or not."}, tenant),
		compactionErrors:  f.NewCounterVec(prometheus.CounterOpts{Name: "vivace_compactor_compaction_errors_total", Help: "Compaction jobs that failed."}, tenant),
		blocksCompacted:   f.NewCounterVec(prometheus.CounterOpts{Name: "vivace_compactor_blocks_compacted_total", Help: "Blocks merged into a new block and marked compacted."}, tenant),
		bytesWritten:      f.NewCounterVec(prometheus.CounterOpts{Name: "vivace_compactor_bytes_written_total", Help: "Bytes of data.parquet written by compaction."}, tenant),
		spansWritten:      f.NewCounterVec(prometheus.CounterOpts{Name: "vivace_compactor_spans_written_total", Help: "Spans written by compaction."}, tenant),
		spansDeduplicated: f.NewCounterVec(prometheus.CounterOpts{Name: "vivace_compactor_spans_deduplicated_total", Help: "Duplicate spans dropped by compaction (spans read minus spans written)."}, tenant),
		retentionDeleted:  f.NewCounterVec(prometheus.CounterOpts{Name: "vivace_compactor_retention_deleted_blocks_total", Help: "Blocks deleted because their newest span is past retention."}, tenant),
		compactedDeleted:  f.NewCounterVec(prometheus.CounterOpts{Name: "vivace_compactor_compacted_blocks_deleted_total", Help: "Compacted blocks deleted after their grace period."}, tenant),
		corruptBlocks:     f.NewCounterVec(prometheus.CounterOpts{Name: "vivace_compactor_corrupt_blocks_total", Help: "Blocks found corrupt while compacting them, and left out of compaction since (until a restart)."}, tenant),
		cycleSeconds:      f.NewHistogram(prometheus.HistogramOpts{Name: "vivace_compactor_cycle_duration_seconds", Help: "Time of one compaction cycle.", Buckets: prometheus.ExponentialBuckets(0.1, 4, 10)}),
		blocks:            f.NewGaugeVec(prometheus.GaugeOpts{Name: "vivace_compactor_blocks", Help: "Blocks in the block list, by tenant and compaction level; exported by the compactor that owns the tenant's retention."}, level),
		blockBytes:        f.NewGaugeVec(prometheus.GaugeOpts{Name: "vivace_compactor_block_bytes", Help: "Bytes of data.parquet of the blocks in the block list, by tenant and compaction level."}, level),
		blockSpans:        f.NewGaugeVec(prometheus.GaugeOpts{Name: "vivace_compactor_block_spans", Help: "Spans in the blocks of the block list, by tenant and compaction level."}, level),
	}
}

// setBlocks replaces the tenant's block gauges with what metas hold.
func (m *metrics) setBlocks(tenant string, metas []*block.Meta) {
	m.forgetBlocks(tenant) // levels merged away since last time
	for _, b := range metas {
		level := strconv.Itoa(b.CompactionLevel)
		m.blocks.WithLabelValues(tenant, level).Inc()
		m.blockBytes.WithLabelValues(tenant, level).Add(float64(b.Size))
		m.blockSpans.WithLabelValues(tenant, level).Add(float64(b.TotalSpans))
	}
}

func (m *metrics) forgetBlocks(tenant string) {
	for _, g := range []*prometheus.GaugeVec{m.blocks, m.blockBytes, m.blockSpans} {
		g.DeletePartialMatch(prometheus.Labels{"tenant": tenant})
	}
}
