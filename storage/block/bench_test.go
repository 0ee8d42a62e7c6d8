package block

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
	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/vivace-dev/vivace/internal/model"
	"github.com/vivace-dev/vivace/internal/model/modeltest"
)

// benchMeanSpans is the mean trace size of the benchmarks' traces.
const benchMeanSpans = 20

// BenchmarkWriteBlock writes blocks of 2000 traces (~40k spans) and reports
// the write rate and the size of data.parquet per span.
func BenchmarkWriteBlock(b *testing.B) {
	ids, traces := benchWriteTraces()
	benchmarkWriteBlock(b, traces, func(w *Writer, i int) error { return w.Add(ids[i], traces[i]) })
}

// BenchmarkWriteBlockEncoded is BenchmarkWriteBlock from encoded traces, the
// way the ingester writes blocks from its WAL (whose traces the distributor
// checked on receipt).
func BenchmarkWriteBlockEncoded(b *testing.B) {
	ids, traces := benchWriteTraces()
	encs := marshalAll(b, traces)
	benchmarkWriteBlock(b, traces, func(w *Writer, i int) error { return w.AddChecked(ids[i], encs[i]) })
}

func benchWriteTraces() ([]model.TraceID, []*tracev1.TracesData) {
	return modeltest.Traces(rand.New(rand.NewPCG(1, 1)), 2000, benchMeanSpans)
}

// benchmarkWriteBlock writes blocks of traces, each with add(w, i) for
// trace i, and reports spans/s and bytes/span.
func benchmarkWriteBlock(b *testing.B, traces []*tracev1.TracesData, add func(w *Writer, i int) error) {
	spans := 0
	for _, td := range traces {
		spans += countSpans(td)
	}
	dir := b.TempDir()
	var size int64
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		bkt := newMemBucket()
		w, err := NewWriter(WriterConfig{}, dir, testTenant, uuid.New())
		require.NoError(b, err)
		for i := range traces {
			require.NoError(b, add(w, i))
		}
		meta, err := w.Finish(context.Background(), bkt)
		require.NoError(b, err)
		size = meta.Size
	}
	b.ReportMetric(float64(spans)*float64(b.N)/b.Elapsed().Seconds(), "spans/s")
	b.ReportMetric(float64(size)/float64(spans), "bytes/span")
}

// benchBlock is a large block shared by the lookup benchmarks, built once
// per process: VIVACE_BENCH_BLOCK_MIB (default 64) MiB of data.parquet.
var benchBlock struct {
	once sync.Once
	bkt  *memBucket
	meta *Meta
	ids  []model.TraceID // a sample of the IDs in the block
	err  error
}

func loadBenchBlock(b *testing.B) (*memBucket, *Meta, []model.TraceID) {
	benchBlock.once.Do(func() {
		mib := 64
		if s := os.Getenv("VIVACE_BENCH_BLOCK_MIB"); s != "" {
			var err error
			if mib, err = strconv.Atoi(s); err != nil {
				benchBlock.err = err
				return
			}
		}
		var cfg WriterConfig
		if s := os.Getenv("VIVACE_BENCH_ROW_GROUP_SPANS"); s != "" {
			var err error
			if cfg.RowGroupSpans, err = strconv.Atoi(s); err != nil {
				benchBlock.err = err
				return
			}
		}
		start := time.Now()
		benchBlock.bkt, benchBlock.meta, benchBlock.ids, benchBlock.err = buildBenchBlock(b.TempDir(), int64(mib)<<20, cfg)
		if benchBlock.err == nil {
			m := benchBlock.meta
			b.Logf("bench block: %d MiB, %d traces, %d spans, %d row groups, %d bloom shards, built in %s",
				m.Size>>20, m.TotalTraces, m.TotalSpans, m.RowGroups, m.BloomShards, time.Since(start).Round(time.Second))
		}
	})
	require.NoError(b, benchBlock.err)
	return benchBlock.bkt, benchBlock.meta, benchBlock.ids
}

// buildBenchBlock writes a block of about size bytes of data.parquet. Traces
// are made one at a time from sorted IDs, so memory holds only the block.
func buildBenchBlock(dir string, size int64, cfg WriterConfig) (*memBucket, *Meta, []model.TraceID, error) {
	const bytesPerSpanGuess = 145 // measured; see FORMAT.md "Sizing"
	rng := rand.New(rand.NewPCG(2, 2))
	n := int(size / bytesPerSpanGuess / benchMeanSpans)
	ids := modeltest.IDs(rng, max(n, 1))
	w, err := NewWriter(cfg, dir, testTenant, uuid.New())
	if err != nil {
		return nil, nil, nil, err
	}
	var sample []model.TraceID
	for i, id := range ids {
		td := modeltest.Trace(rng, id, modeltest.SpanCount(rng, benchMeanSpans))
		if err := w.Add(id, td); err != nil {
			w.Abort()
			return nil, nil, nil, err
		}
		if i%97 == 0 {
			sample = append(sample, id)
		}
	}
	bkt := newMemBucket()
	meta, err := w.Finish(context.Background(), bkt)
	if err != nil {
		return nil, nil, nil, err
	}
	rng.Shuffle(len(sample), func(i, j int) { sample[i], sample[j] = sample[j], sample[i] })
	return bkt, meta, sample, nil
}

// BenchmarkFindTraceByID looks up present traces in a large block through
// one Reader (index and footer cached, as in a querier).
func BenchmarkFindTraceByID(b *testing.B) {
	bkt, meta, ids := loadBenchBlock(b)
	ctx := context.Background()
	r := NewReader(bkt, meta)
	_, err := r.FindTraceByID(ctx, ids[0]) // load index and footer
	require.NoError(b, err)
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		td, err := r.FindTraceByID(ctx, ids[i%len(ids)])
		if err != nil || td == nil {
			b.Fatal(td, err)
		}
		i++
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lookups/s")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/lookup")
}

// BenchmarkFindEncoded is BenchmarkFindTraceByID without decoding the
// answer, as a querier looks traces up.
func BenchmarkFindEncoded(b *testing.B) {
	bkt, meta, ids := loadBenchBlock(b)
	ctx := context.Background()
	r := NewReader(bkt, meta)
	_, err := r.FindEncoded(ctx, ids[0], nil) // load index and footer
	require.NoError(b, err)
	b.ReportAllocs()
	b.ResetTimer()
	var buf []byte
	i := 0
	for b.Loop() {
		buf, err = r.FindEncoded(ctx, ids[i%len(ids)], buf[:0])
		if err != nil || buf == nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lookups/s")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/lookup")
}

// BenchmarkFindTraceByIDAbsent looks up IDs the block does not hold: mostly
// one bloom shard read each.
func BenchmarkFindTraceByIDAbsent(b *testing.B) {
	bkt, meta, _ := loadBenchBlock(b)
	ctx := context.Background()
	r := NewReader(bkt, meta)
	absent := modeltest.IDs(rand.New(rand.NewPCG(3, 3)), 1000)
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		if _, err := r.FindTraceByID(ctx, absent[i%len(absent)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lookups/s")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/lookup")
}

// BenchmarkFirstLookup is a lookup through a new Reader: it also loads the
// index and the parquet tail (page indexes and footer) and parses them, the
// cost a querier pays once per block it keeps a Reader for.
func BenchmarkFirstLookup(b *testing.B) {
	bkt, meta, ids := loadBenchBlock(b)
	ctx := context.Background()
	var tail int64
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		r := NewReader(bkt, meta)
		td, err := r.FindTraceByID(ctx, ids[i%len(ids)])
		if err != nil || td == nil {
			b.Fatal(td, err)
		}
		tail = int64(len(r.loaded.tail))
		i++
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/lookup")
	b.ReportMetric(float64(tail), "tail-bytes")
}

// BenchmarkAppendCombined combines a trace's encoded parts as a querier
// combines the answers of ingesters and blocks; "decoded" is what that cost
// through model.Combine.
func BenchmarkAppendCombined(b *testing.B) {
	rng := rand.New(rand.NewPCG(4, 4))
	ids, traces := modeltest.Traces(rng, 1, benchMeanSpans)
	td := traces[0]
	enc, err := proto.Marshal(td)
	require.NoError(b, err)
	parts := [][]byte{enc, enc} // two replicas' answers
	spans := 2 * model.SpanCount(td)
	b.Run("encoded", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for b.Loop() {
			if buf, err = AppendCombined(buf[:0], ids[0], parts...); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N*spans)/b.Elapsed().Seconds(), "spans/s")
	})
	b.Run("decoded", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			tds := make([]*tracev1.TracesData, len(parts))
			for i, p := range parts {
				tds[i] = &tracev1.TracesData{}
				if err := proto.Unmarshal(p, tds[i]); err != nil {
					b.Fatal(err)
				}
			}
			if _, err := proto.Marshal(model.Combine(tds...)); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N*spans)/b.Elapsed().Seconds(), "spans/s")
	})
}
