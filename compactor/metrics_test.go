package compactor

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/vivace-dev/vivace/internal/model/modeltest"
	"github.com/vivace-dev/vivace/storage/block"
)

// TestBlockGauges: the compactor that owns a tenant's retention exports its
// blocks, bytes and spans by level as the block list shows them at each
// cycle; it drops them when the ownership moves.
func TestBlockGauges(t *testing.T) {
	ctx := t.Context()
	bkt := fsBucket(t)
	ids, traces := modeltest.Traces(rand.New(rand.NewPCG(3, 4)), 20, 4)
	writeReplicas(t, bkt, ids, traces)
	var ownsRetention atomic.Bool
	ownsRetention.Store(true)
	owns := func(key string) bool { return !strings.HasPrefix(key, "retention/") || ownsRetention.Load() }
	c, list := newCompactor(t, bkt, owns, newClock(modeltest.BaseTime.Add(30*time.Minute)))
	names := []string{"vivace_compactor_blocks", "vivace_compactor_block_bytes", "vivace_compactor_block_spans"}

	// expect is the gauges' exposition for blocks of one level.
	expect := func(level int, metas []*block.Meta) string {
		var bytes, spans int64
		for _, m := range metas {
			require.Equal(t, level, m.CompactionLevel)
			bytes += m.Size
			spans += m.TotalSpans
		}
		return fmt.Sprintf(`
# HELP vivace_compactor_block_bytes Bytes of data.parquet of the blocks in the block list, by tenant and compaction level.
# TYPE vivace_compactor_block_bytes gauge
vivace_compactor_block_bytes{level="%[1]d",tenant="%[2]s"} %[3]d
# HELP vivace_compactor_block_spans Spans in the blocks of the block list, by tenant and compaction level.
# TYPE vivace_compactor_block_spans gauge
vivace_compactor_block_spans{level="%[1]d",tenant="%[2]s"} %[4]d
# HELP vivace_compactor_blocks Blocks in the block list, by tenant and compaction level; exported by the compactor that owns the tenant's retention.
# TYPE vivace_compactor_blocks gauge
vivace_compactor_blocks{level="%[1]d",tenant="%[2]s"} %[5]d
`, level, tenant, bytes, spans, len(metas))
	}
	reg := prometheus.NewPedanticRegistry() // the gauges alone
	reg.MustRegister(c.metrics.blocks, c.metrics.blockBytes, c.metrics.blockSpans)
	gather := func(want string) {
		t.Helper()
		require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(want), names...))
	}

	require.NoError(t, list.Poll(ctx))
	sources := list.Metas(tenant)
	require.Len(t, sources, 3)
	require.NoError(t, c.Cycle(ctx)) // counts the sources, then merges them
	gather(expect(0, sources))

	require.NoError(t, list.Poll(ctx))
	merged := list.Metas(tenant)
	require.Len(t, merged, 1)
	require.NoError(t, c.Cycle(ctx))
	gather(expect(1, merged)) // no level 0 left behind

	ownsRetention.Store(false)
	require.NoError(t, c.Cycle(ctx))
	gather("")
}
