package compactor

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/vivace-dev/vivace/internal/model/modeltest"
	"github.com/vivace-dev/vivace/storage"
	"github.com/vivace-dev/vivace/storage/block"
	"github.com/vivace-dev/vivace/storage/blocklist"
)

// TestTenantRetention: a tenant whose block_retention override is shorter
// loses its old blocks, while another tenant (no override: the configured
// block_retention) keeps blocks of the same age; and the shorter retention
// keeps the old blocks out of compaction plans too.
func TestTenantRetention(t *testing.T) {
	ctx := t.Context()
	bkt := fsBucket(t)
	const short = "tenant-short"
	rng := rand.New(rand.NewPCG(31, 32))
	write := func(tenant string, age time.Duration) *block.Meta {
		ids, traces := modeltest.Traces(rng, 10, 4)
		shift(traces, -age)
		w, err := block.NewWriter(block.WriterConfig{}, t.TempDir(), tenant, uuid.New())
		require.NoError(t, err)
		for i, id := range ids {
			require.NoError(t, w.Add(id, traces[i]))
		}
		m, err := w.Finish(ctx, bkt)
		require.NoError(t, err)
		return m
	}
	const age = 3 * 24 * time.Hour
	shortOld1, shortOld2, shortYoung := write(short, age), write(short, age), write(short, 0)
	longOld1, longOld2 := write(tenant, age), write(tenant, age)

	reg := prometheus.NewPedanticRegistry()
	list := blocklist.New(bkt, time.Hour, discard, reg)
	retention := func(tenant string) time.Duration {
		if tenant == short {
			return 24 * time.Hour
		}
		return 0 // the configured block_retention, 14 days
	}
	c, err := New(defaultConfig(t), bkt, list, ownsAll, retention, block.WriterConfig{}, t.TempDir(), discard, reg)
	require.NoError(t, err)
	c.now = newClock(shortYoung.EndTime.Add(time.Hour)).now
	require.NoError(t, list.Poll(ctx))

	require.NoError(t, c.Cycle(ctx))
	require.NoError(t, list.Poll(ctx))
	for _, m := range []*block.Meta{shortOld1, shortOld2} {
		keys, err := bkt.List(ctx, storage.BlockDir(short, m.BlockID))
		require.NoError(t, err)
		require.Empty(t, keys, "block %s past the tenant's retention", m.BlockID)
	}
	require.Equal(t, 2.0, testutil.ToFloat64(c.metrics.retentionDeleted.WithLabelValues(short)))
	require.Equal(t, []string{shortYoung.BlockID}, metaIDs(list.Metas(short)))
	require.Equal(t, 0.0, testutil.ToFloat64(c.metrics.compactions.WithLabelValues(short)), "old blocks are not planned")

	require.Equal(t, 0.0, testutil.ToFloat64(c.metrics.retentionDeleted.WithLabelValues(tenant)))
	require.Equal(t, 2.0, testutil.ToFloat64(c.metrics.blocksCompacted.WithLabelValues(tenant)), "kept, and compacted")
	require.Len(t, list.Metas(tenant), 1)
	require.Equal(t, metaIDs([]*block.Meta{longOld1, longOld2}), compactedIDs(list.CompactedMetas(tenant)))
}

// TestRetentionLookup: a nil lookup, or one that answers 0 or less, means
// the configured block_retention.
func TestRetentionLookup(t *testing.T) {
	cfg := defaultConfig(t)
	tests := map[string]struct {
		lookup func(string) time.Duration
		want   time.Duration
	}{
		"nil":      {nil, cfg.Compaction.BlockRetention},
		"zero":     {func(string) time.Duration { return 0 }, cfg.Compaction.BlockRetention},
		"negative": {func(string) time.Duration { return -time.Hour }, cfg.Compaction.BlockRetention},
		"override": {func(string) time.Duration { return time.Hour }, time.Hour},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c, err := New(cfg, fsBucket(t), nil, ownsAll, tc.lookup, block.WriterConfig{}, "", discard, prometheus.NewRegistry())
			require.NoError(t, err)
			require.Equal(t, tc.want, c.blockRetention(tenant))
		})
	}
}
