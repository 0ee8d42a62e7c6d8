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

// benchInput is what a compaction benchmark merges, built once per process:
// VIVACE_BENCH_COMPACT_MIB (default 64) MiB of data.parquet in six level-0
// blocks in a local-directory bucket.
type benchInput struct {
	once   sync.Once
	sets   int // disjoint sets of traces
	copies int // blocks holding each set
	dir    string
	bkt    storage.Bucket
	blocks []*block.Meta
	err    error
}

var benchInputs = struct {
	// rf3: two sets of traces as three RF 3 replicas each, what ingesters
	// flush (every trace in three sources).
	rf3 benchInput
	// disjoint: six sets of traces, one block each, what merges of blocks
	// of one window that already hold one copy of each trace see (every
	// trace in one source).
	disjoint benchInput
}{
	rf3:      benchInput{sets: 2, copies: 3},
	disjoint: benchInput{sets: 6, copies: 1},
}

// removeBenchInputs is called by TestMain.
func removeBenchInputs() {
	for _, in := range []*benchInput{&benchInputs.rf3, &benchInputs.disjoint} {
		if in.dir != "" {
			_ = os.RemoveAll(in.dir)
		}
	}
}

func (in *benchInput) load(b *testing.B) (storage.Bucket, []*block.Meta) {
	in.once.Do(func() {
		mib := 64
		if s := os.Getenv("VIVACE_BENCH_COMPACT_MIB"); s != "" {
			if mib, in.err = strconv.Atoi(s); in.err != nil {
				return
			}
		}
		if in.dir, in.err = os.MkdirTemp("", "vivace-bench-compact-"); in.err != nil {
			return
		}
		in.bkt, in.blocks, in.err = buildBenchInput(in.dir, int64(mib)<<20, in.sets, in.copies)
	})
	require.NoError(b, in.err)
	return in.bkt, in.blocks
}

func buildBenchInput(dir string, size int64, sets, copies int) (storage.Bucket, []*block.Meta, error) {
	bkt, err := fs.New(dir)
	if err != nil {
		return nil, nil, err
	}
	const (
		meanSpans     = 20
		bytesPerTrace = meanSpans * 141 // FORMAT.md, "Sizing"
	)
	rng := rand.New(rand.NewPCG(1, 1))
	n := max(1, int(size/(int64(sets*copies)*bytesPerTrace)))
	var metas []*block.Meta
	for range sets {
		ws := make([]*block.Writer, copies)
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
// reports the input's spans and data.parquet bytes per second, and the CPU
// time of the process (all goroutines, GC included) per million input
// spans. The source and output blocks are on local disk.
// VIVACE_BENCH_COMPACT_MIB=1024 runs it on 1 GiB.
func BenchmarkCompact(b *testing.B) {
	benchmarkCompact(b, &benchInputs.rf3)
}

// BenchmarkCompactDisjoint merges blocks holding disjoint sets of traces,
// where every trace comes from one source, and reports what
// BenchmarkCompact does.
func BenchmarkCompactDisjoint(b *testing.B) {
	benchmarkCompact(b, &benchInputs.disjoint)
}

func benchmarkCompact(b *testing.B, in *benchInput) {
	bkt, blocks := in.load(b)
	var spansIn, bytesIn int64
	for _, m := range blocks {
		spansIn += m.TotalSpans
		bytesIn += m.Size
	}
	c, _ := newCompactor(b, bkt, ownsAll, newClock(time.Now()))
	c.blockCfg = block.WriterConfig{}
	var (
		out *block.Meta
		cpu time.Duration
	)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		cpu0 := cpuTime()
		meta, _, err := c.merge(context.Background(), tenant, blocks)
		cpu += cpuTime() - cpu0
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
	if cpu > 0 {
		b.ReportMetric(cpu.Seconds()/float64(b.N)/(float64(spansIn)/1e6), "cpu-s/Mspans")
	}
	b.ReportMetric(float64(bytesIn)/(1<<20), "input-MiB")
	b.ReportMetric(float64(out.TotalSpans)/float64(spansIn), "spans-out/in")
}
