package querier

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

type metrics struct {
	blocksInspected prometheus.Counter
	corruptBlocks   *prometheus.CounterVec
	lowHalfLookups  prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	f := promauto.With(reg)
	return &metrics{
		blocksInspected: f.NewCounter(prometheus.CounterOpts{
			Name: "vivace_querier_blocks_inspected_total", Help: "Blocks whose bloom filter or data a trace lookup read.",
		}),
		corruptBlocks: f.NewCounterVec(prometheus.CounterOpts{
			Name: "vivace_querier_corrupt_blocks_total",
			Help: "Reads of a block that failed because the block is corrupt, by tenant; each skipped the block and answered from the rest.",
		}, []string{"tenant"}),
		lowHalfLookups: f.NewCounter(prometheus.CounterOpts{
			Name: "vivace_querier_low_half_lookups_total",
			Help: "Trace lookups by the low 64 bits of an ID, run when no trace had the exact 64-bit ID: every ingester and the trace_id column of every block in range are scanned.",
		}),
	}
}
