package block

import (
	"context"
	"encoding/binary"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/stretchr/testify/require"
	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/vivace-dev/vivace/internal/model"
	"github.com/vivace-dev/vivace/internal/model/modeltest"
	"github.com/vivace-dev/vivace/storage"
)

// withLow is id with its low 64 bits set to low.
func withLow(id model.TraceID, low uint64) model.TraceID {
	binary.BigEndian.PutUint64(id[8:], low)
	return id
}

// lowHalfBlock writes n random traces plus, spread among them, four 128-bit
// traces and one 64-bit trace whose low half is low; it returns the block
// and the IDs with that low half, ascending.
func lowHalfBlock(t testing.TB, bkt *memBucket, cfg WriterConfig, n int, low uint64) (*Meta, []model.TraceID) {
	t.Helper()
	rng := rand.New(rand.NewPCG(4, 4))
	ids := modeltest.IDs(rng, n)
	var want []model.TraceID
	for _, i := range []int{0, n / 3, n / 2, n - 1} {
		ids[i] = withLow(ids[i], low)
		want = append(want, ids[i])
	}
	ids = append(ids, withLow(model.TraceID{}, low))
	want = append(want, withLow(model.TraceID{}, low))
	slices.SortFunc(ids, model.TraceID.Compare)
	slices.SortFunc(want, model.TraceID.Compare)
	traces := make([]*tracev1.TracesData, len(ids))
	for i, id := range ids {
		traces[i] = modeltest.Trace(rng, id, 1+rng.IntN(4))
	}
	return writeBlock(t, bkt, cfg, ids, traces), want
}

// TestFindLow64 finds the traces whose low 64 bits match, reading only the
// index, the parquet tail and each row group's trace_id column chunk.
func TestFindLow64(t *testing.T) {
	ctx := context.Background()
	const low = 0xa3ce929d0e0e4736
	mem := newMemBucket()
	meta, want := lowHalfBlock(t, mem, WriterConfig{RowGroupSpans: 40}, 300, low)
	require.Greater(t, meta.RowGroups, 10)

	bkt := &countingBucket{Bucket: mem}
	r := NewReader(bkt, meta)
	got, err := r.FindLow64(ctx, low)
	require.NoError(t, err)
	require.Equal(t, want, got)

	// What it read: the index, the tail, and per row group one range inside
	// it, much smaller than it.
	idx, err := decodeIndex(mem.objects[storage.IndexKey(testTenant, meta.BlockID)], meta.Size)
	require.NoError(t, err)
	calls := bkt.take()
	require.Len(t, calls, 2+meta.RowGroups)
	require.Equal(t, call{op: "Get", key: storage.IndexKey(testTenant, meta.BlockID)}, calls[0])
	require.Equal(t, idx.TailOffset, calls[1].off)
	var read, rowGroups int64
	for i, c := range calls[2:] {
		e := idx.RowGroups[i]
		require.Equal(t, "GetRange", c.op)
		require.GreaterOrEqual(t, c.off, e.Offset)
		require.LessOrEqual(t, c.off+c.length, e.Offset+e.Length)
		read += c.length
		rowGroups += e.Length
	}
	require.Less(t, read*4, rowGroups, "only the trace_id column is fetched")

	// Each of them is then found by its whole ID.
	for _, id := range want {
		td, err := r.FindTraceByID(ctx, id)
		require.NoError(t, err)
		require.NotNil(t, td, id)
	}

	none, err := r.FindLow64(ctx, low+1)
	require.NoError(t, err)
	require.Empty(t, none)
}

// TestFindLow64PlainPages: a row group with more distinct IDs than its
// dictionary page holds goes on in PLAIN pages, which the scan reads too.
func TestFindLow64PlainPages(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a block of 80k spans")
	}
	const n = 80_000 // 80k × 16 bytes is past the 1 MiB dictionary limit
	rng := rand.New(rand.NewPCG(8, 8))
	ids := modeltest.IDs(rng, n)
	slices.SortFunc(ids, model.TraceID.Compare)
	const low = 0x1122334455667788
	// The upper halves order the IDs: the last ones stay past the dictionary.
	marked := []int{10, n / 2, n - 10}
	for _, i := range marked {
		ids[i] = withLow(ids[i], low)
	}
	require.True(t, slices.IsSortedFunc(ids, model.TraceID.Compare))
	traces := make([]*tracev1.TracesData, n)
	for i, id := range ids {
		traces[i] = &tracev1.TracesData{ResourceSpans: []*tracev1.ResourceSpans{{ScopeSpans: []*tracev1.ScopeSpans{{Spans: []*tracev1.Span{{
			TraceId: id[:], SpanId: []byte{1, 2, 3, 4, 5, 6, 7, 8}, Name: "s", StartTimeUnixNano: 1, EndTimeUnixNano: 2,
		}}}}}}}
	}
	mem := newMemBucket()
	meta := writeBlock(t, mem, WriterConfig{RowGroupSpans: n}, ids, traces)
	require.Equal(t, 1, meta.RowGroups)

	r := NewReader(mem, meta)
	l, err := r.load(context.Background())
	require.NoError(t, err)
	// The chunk is a dictionary page, pages of indexes into it, then PLAIN
	// pages holding the IDs that did not fit, the last marked one among them.
	pages, err := r.openRowGroupPages(t, l)
	require.NoError(t, err)
	dictionary, plain := 0, 0
	var lastPlain model.TraceID
	for pages.Next() {
		switch p := pages.Page().(type) {
		case *file.DictionaryPage:
			dictionary += int(p.NumValues())
		case *file.DataPageV1:
			if parquet.Encoding(p.Encoding()) == parquet.Encodings.Plain {
				plain += int(p.NumValues())
				lastPlain = model.TraceID(p.Data()[16*(p.NumValues()-1):])
			}
		}
	}
	require.NoError(t, pages.Err())
	require.Less(t, dictionary, n)
	require.Equal(t, n, dictionary+plain)
	require.Equal(t, ids[n-1], lastPlain)

	var want []model.TraceID
	for _, id := range ids {
		if id.Low64() == low {
			want = append(want, id)
		}
	}
	require.Len(t, want, len(marked))
	got, err := r.FindLow64(context.Background(), low)
	require.NoError(t, err)
	require.Equal(t, want, got)
}

// openRowGroupPages opens the pages of row group 0's trace_id column.
func (r *Reader) openRowGroupPages(t testing.TB, l *loaded) (file.PageReader, error) {
	t.Helper()
	rgr, closeRG, err := r.openRowGroup(context.Background(), l, 0)
	require.NoError(t, err)
	t.Cleanup(closeRG)
	return rgr.GetColumnPageReader(colTraceID)
}

// TestFindLow64Corrupt: damage to the trace_id column or to what locates
// it is ErrCorrupt, never a panic.
func TestFindLow64Corrupt(t *testing.T) {
	ctx := context.Background()
	clean := newMemBucket()
	meta, _ := lowHalfBlock(t, clean, WriterConfig{RowGroupSpans: 40}, 200, 42)
	r := NewReader(clean, meta)
	l, err := r.load(ctx)
	require.NoError(t, err)
	cc, err := l.footer.RowGroup(1).ColumnChunk(colTraceID)
	require.NoError(t, err)
	chunk := cc.DictionaryPageOffset()

	dataKey := storage.DataKey(testTenant, meta.BlockID)
	for name, damage := range map[string]func(b []byte) []byte{
		"page header": func(b []byte) []byte {
			for i := range 6 {
				b[chunk+int64(i)] = 0xff
			}
			return b
		},
		"compressed page": func(b []byte) []byte {
			for i := 20; i < 40; i++ {
				b[chunk+int64(i)] ^= 0x5a
			}
			return b
		},
	} {
		t.Run(name, func(t *testing.T) {
			bkt := newMemBucket()
			for k, v := range clean.objects {
				bkt.objects[k] = v
			}
			bkt.objects[dataKey] = damage(append([]byte(nil), clean.objects[dataKey]...))
			_, err := NewReader(bkt, meta).FindLow64(ctx, 42)
			require.ErrorIs(t, err, ErrCorrupt)
			require.ErrorContains(t, err, meta.BlockID)
		})
	}

	// Whatever the damage, no panic.
	rng := rand.New(rand.NewPCG(1, 1))
	for range 200 {
		bkt := newMemBucket()
		for k, v := range clean.objects {
			bkt.objects[k] = v
		}
		b := append([]byte(nil), clean.objects[dataKey]...)
		for range 4 {
			b[rng.Int64N(meta.Size)] ^= byte(1 + rng.IntN(255))
		}
		bkt.objects[dataKey] = b
		_, _ = NewReader(bkt, meta).FindLow64(ctx, 42)
	}
}

// BenchmarkFindLow64 scans a large block (see loadBenchBlock) for a low half
// no trace has: the cost of the fallback lookup per block.
func BenchmarkFindLow64(b *testing.B) {
	bkt, meta, _ := loadBenchBlock(b)
	ctx := context.Background()
	r := NewReader(bkt, meta)
	_, err := r.FindLow64(ctx, 1) // load index and footer
	require.NoError(b, err)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := r.FindLow64(ctx, 1); err != nil {
			b.Fatal(err)
		}
	}
	s := b.Elapsed().Seconds()
	b.ReportMetric(float64(meta.TotalTraces)*float64(b.N)/s, "ids/s")
	b.ReportMetric(float64(meta.TotalSpans)*float64(b.N)/s, "spans/s")
	b.ReportMetric(s*1e3/float64(b.N), "ms/block")
}
