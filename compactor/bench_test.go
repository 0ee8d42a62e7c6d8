package compactor

import (
	"context"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/vivace-dev/vivace/internal/model/modeltest"
	"github.com/vivace-dev/vivace/storage"
	"github.com/vivace-dev/vivace/storage/block"
	"github.com/vivace-dev/vivace/storage/fs"
)

// benchInput is what BenchmarkCompact merges, built once per process:
// VIVACE_BENCH_COMPACT_MIB (default 64) MiB of data.parquet in six level-0
// blocks, two sets of traces as three RF 3 replicas each, in a local-directory
// bucket.
var benchInput struct {
	once   sync.Once
	dir    string // removed by TestMain
	bkt    storage.Bucket
	blocks []*block.Meta
	err    error
}

func loadBenchInput(b *testing.B) (storage.Bucket, []*block.Meta) {
	benchInput.once.Do(func() {
		mib := 64
		if s := os.Getenv("VIVACE_BENCH_COMPACT_MIB"); s != "" {
			if mib, benchInput.err = strconv.Atoi(s); benchInput.err != nil {
				return
			}
		}
		if benchInput.dir, benchInput.err = os.MkdirTemp("", "vivace-bench-compact-"); benchInput.err != nil {
			return
		}
		benchInput.bkt, benchInput.blocks, benchInput.err = buildBenchInput(benchInput.dir, int64(mib)<<20)
	})
	require.NoError(b, benchInput.err)
	return benchInput.bkt, benchInput.blocks
}

func buildBenchInput(dir string, size int64) (storage.Bucket, []*block.Meta, error) {
	bkt, err := fs.New(dir)
	if err != nil {
		return nil, nil, err
	}
	const (
		sets, replicas = 2, 3
		meanSpans      = 20
		bytesPerTrace  = meanSpans * 141 // FORMAT.md, "Sizing"
	)
	rng := rand.New(rand.NewPCG(1, 1))
	n := max(1, int(size/(sets*replicas*bytesPerTrace)))
	var metas []*block.Meta
	for range sets {
		ws := make([]*block.Writer, replicas)
		for r := range ws {
			if ws[r], err = block.NewWriter(block.WriterConfig{}, "", tenant, uuid.New()); err != nil {
				return nil, nil, err
			}
			defer ws[r].Abort()
		}
		// One trace at a time, so that a 1 GiB input never sits in memory.
		for _, id := range modeltest.IDs(rng, n) {
			enc, err := proto.Marshal(modeltest.Trace(rng, id, modeltest.SpanCount(rng, meanSpans)))
			if err != nil {
				return nil, nil, err
			}
			for _, w := range ws {
				if err := w.AddEncoded(id, enc); err != nil {
					return nil, nil, err
				}
			}
		}
		for _, w := range ws {
			m, err := w.Finish(context.Background(), bkt)
			if err != nil {
				return nil, nil, err
			}
			metas = append(metas, m)
		}
	}
	return bkt, metas, nil
}

// BenchmarkCompact merges RF 3 replicas into one block, as a job does, and
// reports the input's spans and data.parquet bytes per second. The source
// and output blocks are on local disk. VIVACE_BENCH_COMPACT_MIB=1024 runs it
// on 1 GiB.
func BenchmarkCompact(b *testing.B) {
	bkt, blocks := loadBenchInput(b)
	var spansIn, bytesIn int64
	for _, m := range blocks {
		spansIn += m.TotalSpans
		bytesIn += m.Size
	}
	c, _ := newCompactor(b, bkt, ownsAll, newClock(time.Now()))
	c.blockCfg = block.WriterConfig{}
	var out *block.Meta
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		meta, _, err := c.merge(context.Background(), tenant, blocks)
		require.NoError(b, err)
		out = meta
		b.StopTimer()
		keys, err := bkt.List(context.Background(), storage.BlockDir(tenant, meta.BlockID))
		require.NoError(b, err)
		for _, k := range keys {
			require.NoError(b, bkt.Delete(context.Background(), k))
		}
		b.StartTimer()
	}
	sec := b.Elapsed().Seconds() / float64(b.N)
	b.ReportMetric(float64(spansIn)/sec, "spans/s")
	b.ReportMetric(float64(bytesIn)/sec/1e6, "MB/s")
	b.ReportMetric(float64(bytesIn)/(1<<20), "input-MiB")
	b.ReportMetric(float64(out.TotalSpans)/float64(spansIn), "spans-out/in")
}
