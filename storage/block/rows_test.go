package block

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	commonv1 "go.opentelemetry.io/proto/otlp/common/v1"
	resourcev1 "go.opentelemetry.io/proto/otlp/resource/v1"
	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/vivace-dev/vivace/internal/model"
	"github.com/vivace-dev/vivace/internal/model/modeltest"
	"github.com/vivace-dev/vivace/storage"
)

// TestIterateRows: IterateRows yields every trace once, in ID order, with
// the rows that decode to what Iterate yields.
func TestIterateRows(t *testing.T) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(7, 8))
	ids, traces := modeltest.Traces(rng, 50, 8)
	bkt := newMemBucket()
	meta := writeBlock(t, bkt, WriterConfig{RowGroupSpans: 60}, ids, traces)
	require.Greater(t, meta.RowGroups, 3)
	r := NewReader(bkt, meta)

	var want []*tracev1.TracesData
	require.NoError(t, r.Iterate(ctx, func(_ model.TraceID, td *tracev1.TracesData) error {
		want = append(want, td)
		return nil
	}))
	var (
		got   []model.TraceID
		spans int64
	)
	require.NoError(t, r.IterateRows(ctx, func(tr *TraceRows) error {
		i := len(got)
		got = append(got, tr.ID())
		spans += int64(tr.Len())
		td, err := tr.Trace()
		require.NoError(t, err)
		require.True(t, proto.Equal(want[i], td), "trace %s", tr.ID())
		return nil
	}))
	require.Equal(t, ids, got)
	require.Equal(t, meta.TotalSpans, spans)

	stop := fmt.Errorf("stop")
	calls := 0
	require.ErrorIs(t, r.IterateRows(ctx, func(*TraceRows) error { calls++; return stop }), stop)
	require.Equal(t, 1, calls)
}

// TestAddRowsMatchesCombine: merging blocks with IterateRows and AddRows
// writes the same data.parquet, byte for byte, and the same meta, as
// decoding every trace, model.Combine and Add did, whatever the parts hold:
// duplicate spans within and across parts, span IDs that are not 8 bytes or
// shared by spans of other kinds, resources and scopes repeated, interleaved
// or in another order in each part.
func TestAddRowsMatchesCombine(t *testing.T) {
	for seed := range uint64(16) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			requireMergeMatchesCombine(t, seed, WriterConfig{RowGroupSpans: 1 + int(seed)*4})
		})
	}
	t.Run("modeltest traces as RF 3 replicas", func(t *testing.T) {
		rng := rand.New(rand.NewPCG(3, 3))
		ids, traces := modeltest.Traces(rng, 30, 8)
		for _, td := range traces[:10] {
			shareSpanIDs(rng, td)
		}
		bkt := newMemBucket()
		var metas []*Meta
		for copy := range 3 {
			parts := make([]*tracev1.TracesData, len(traces))
			for i, td := range traces {
				parts[i] = td
				if copy == 2 && i%2 == 0 {
					parts[i] = firstSpans(td, (countSpans(td)+1)/2)
				}
			}
			metas = append(metas, writeBlock(t, bkt, WriterConfig{RowGroupSpans: 50}, ids, parts))
		}
		requireSameMerge(t, bkt, metas, WriterConfig{RowGroupSpans: 70})
	})
}

// TestAddRowsOrder: resources (and scopes) come in the order Combine first
// meets them, even through spans it drops: a resource whose spans in one
// part are all duplicates keeps its place for the spans of a later part.
func TestAddRowsOrder(t *testing.T) {
	id := model.TraceID{15: 7}
	res := func(name string) *resourcev1.Resource {
		return &resourcev1.Resource{Attributes: []*commonv1.KeyValue{{Key: "service.name", Value: &commonv1.AnyValue{Value: &commonv1.AnyValue_StringValue{StringValue: name}}}}}
	}
	span := func(sid byte, name string) *tracev1.Span {
		return &tracev1.Span{TraceId: id[:], SpanId: []byte{0, 0, 0, 0, 0, 0, 0, sid}, Name: name, Kind: tracev1.Span_SPAN_KIND_SERVER}
	}
	rs := func(r string, spans ...*tracev1.Span) *tracev1.ResourceSpans {
		return &tracev1.ResourceSpans{Resource: res(r), ScopeSpans: []*tracev1.ScopeSpans{{Spans: spans}}}
	}
	parts := []*tracev1.TracesData{
		{ResourceSpans: []*tracev1.ResourceSpans{rs("r1", span(1, "a"))}},
		{ResourceSpans: []*tracev1.ResourceSpans{rs("r2", span(1, "a again")), rs("r3", span(3, "c"))}},
		{ResourceSpans: []*tracev1.ResourceSpans{rs("r2", span(4, "d"))}},
	}
	want := &tracev1.TracesData{ResourceSpans: []*tracev1.ResourceSpans{
		rs("r1", span(1, "a")), rs("r2", span(4, "d")), rs("r3", span(3, "c")),
	}}
	require.True(t, proto.Equal(want, model.Combine(parts...)))
	bkt := newMemBucket()
	var metas []*Meta
	for _, p := range parts {
		metas = append(metas, writeBlock(t, bkt, WriterConfig{}, []model.TraceID{id}, []*tracev1.TracesData{p}))
	}
	requireSameMerge(t, bkt, metas, WriterConfig{})
}

// FuzzAddRows runs TestAddRowsMatchesCombine's check on the parts a seed
// makes.
func FuzzAddRows(f *testing.F) {
	for seed := range uint64(2) {
		f.Add(seed + 1000)
	}
	f.Fuzz(func(t *testing.T, seed uint64) {
		requireMergeMatchesCombine(t, seed, WriterConfig{RowGroupSpans: 5})
	})
}

func requireMergeMatchesCombine(t testing.TB, seed uint64, out WriterConfig) {
	rng := rand.New(rand.NewPCG(seed, 99))
	ids := modeltest.IDs(rng, 2+rng.IntN(6))
	bkt := newMemBucket()
	var metas []*Meta
	for range 1 + rng.IntN(4) {
		var (
			bids   []model.TraceID
			traces []*tracev1.TracesData
		)
		for _, id := range ids {
			if rng.IntN(3) > 0 {
				bids = append(bids, id)
				traces = append(traces, messyTrace(rng, id))
			}
		}
		if len(bids) == 0 {
			continue
		}
		metas = append(metas, writeBlock(t, bkt, WriterConfig{RowGroupSpans: 4 + rng.IntN(20)}, bids, traces))
	}
	if len(metas) == 0 {
		return
	}
	requireSameMerge(t, bkt, metas, out)
}

// messyTrace makes a trace from a few resources, scopes and span keys, each
// picked more than once: ResourceSpans and ScopeSpans repeat, and span keys
// (span ID, kind) too, each span telling by its attributes which pick it is.
func messyTrace(rng *rand.Rand, id model.TraceID) *tracev1.TracesData {
	spanIDs := [][]byte{nil, {1}, make([]byte, 8), {0, 0, 0, 0, 0, 0, 0, 1}, {0, 0, 0, 0, 0, 0, 0, 2}, bytes.Repeat([]byte{3}, 16)}
	td := &tracev1.TracesData{}
	for range 1 + rng.IntN(3) {
		rs := &tracev1.ResourceSpans{Resource: &resourcev1.Resource{Attributes: []*commonv1.KeyValue{
			{Key: "service.name", Value: &commonv1.AnyValue{Value: &commonv1.AnyValue_StringValue{StringValue: fmt.Sprint("svc-", rng.IntN(3))}}},
		}}}
		if rng.IntN(4) == 0 {
			rs.SchemaUrl = "https://example.com/schema"
		}
		for range 1 + rng.IntN(3) {
			ss := &tracev1.ScopeSpans{Scope: &commonv1.InstrumentationScope{Name: fmt.Sprint("scope-", rng.IntN(2))}}
			for range 1 + rng.IntN(4) {
				start := uint64(1e18) + rng.Uint64N(1e9)
				ss.Spans = append(ss.Spans, &tracev1.Span{
					TraceId:           id[:],
					SpanId:            spanIDs[rng.IntN(len(spanIDs))],
					Kind:              tracev1.Span_SpanKind(1 + rng.IntN(2)),
					Name:              fmt.Sprint("op-", rng.IntN(3)),
					StartTimeUnixNano: start,
					EndTimeUnixNano:   start + rng.Uint64N(1e6),
					Status:            &tracev1.Status{Code: tracev1.Status_StatusCode(rng.IntN(3))},
					Attributes: []*commonv1.KeyValue{
						{Key: "pick", Value: &commonv1.AnyValue{Value: &commonv1.AnyValue_IntValue{IntValue: rng.Int64()}}},
					},
				})
			}
			rs.ScopeSpans = append(rs.ScopeSpans, ss)
		}
		td.ResourceSpans = append(td.ResourceSpans, rs)
	}
	return td
}

// requireSameMerge merges the blocks both ways and compares the results.
func requireSameMerge(t testing.TB, bkt *memBucket, metas []*Meta, cfg WriterConfig) {
	t.Helper()
	ctx := context.Background()
	type trace struct {
		rows    *TraceRows
		decoded *tracev1.TracesData
	}
	byID := map[model.TraceID][]trace{}
	for _, m := range metas {
		r := NewReader(bkt, m)
		var decoded []*tracev1.TracesData
		require.NoError(t, r.Iterate(ctx, func(_ model.TraceID, td *tracev1.TracesData) error {
			decoded = append(decoded, td)
			return nil
		}))
		i := 0
		require.NoError(t, r.IterateRows(ctx, func(tr *TraceRows) error {
			byID[tr.ID()] = append(byID[tr.ID()], trace{rows: tr, decoded: decoded[i]})
			i++
			return nil
		}))
		require.Len(t, decoded, i)
	}
	wOld, err := NewWriter(cfg, t.TempDir(), testTenant, uuid.New())
	require.NoError(t, err)
	defer wOld.Abort()
	wNew, err := NewWriter(cfg, t.TempDir(), testTenant, uuid.New())
	require.NoError(t, err)
	defer wNew.Abort()
	for _, id := range sortedIDs(byID) {
		var (
			rows    []*TraceRows
			decoded []*tracev1.TracesData
		)
		for _, p := range byID[id] {
			rows = append(rows, p.rows)
			decoded = append(decoded, p.decoded)
		}
		combined := model.Combine(decoded...)
		require.NoError(t, wOld.Add(id, combined))
		n, err := wNew.AddRows(rows...)
		require.NoError(t, err)
		require.Equal(t, model.SpanCount(combined), n)
		requireSameRows(t, &wOld.rows, &wNew.rows, n)
		for i := wOld.rows.len() - n; i < wOld.rows.len(); i++ {
			require.Equal(t, wOld.rows.span[i], wNew.rows.span[i], "span blob of row %d", i)
		}
	}
	bktOld, bktNew := newMemBucket(), newMemBucket()
	metaOld, err := wOld.Finish(ctx, bktOld)
	require.NoError(t, err)
	metaNew, err := wNew.Finish(ctx, bktNew)
	require.NoError(t, err)
	require.Equal(t, bktOld.objects[storage.DataKey(testTenant, metaOld.BlockID)], bktNew.objects[storage.DataKey(testTenant, metaNew.BlockID)], "data.parquet")
	mOld, mNew := *metaOld, *metaNew
	mOld.BlockID, mNew.BlockID = "", ""
	require.Equal(t, mOld, mNew)
}

func sortedIDs[V any](m map[model.TraceID]V) []model.TraceID {
	return slices.SortedFunc(maps.Keys(m), model.TraceID.Compare)
}

// firstSpans returns a copy of td with only its first n spans.
func firstSpans(td *tracev1.TracesData, n int) *tracev1.TracesData {
	out := &tracev1.TracesData{}
	for _, rs := range td.ResourceSpans {
		outRS := &tracev1.ResourceSpans{Resource: rs.Resource, SchemaUrl: rs.SchemaUrl}
		for _, ss := range rs.ScopeSpans {
			k := min(len(ss.Spans), n)
			if k > 0 {
				outRS.ScopeSpans = append(outRS.ScopeSpans, &tracev1.ScopeSpans{Scope: ss.Scope, SchemaUrl: ss.SchemaUrl, Spans: ss.Spans[:k]})
			}
			n -= k
		}
		if len(outRS.ScopeSpans) > 0 {
			out.ResourceSpans = append(out.ResourceSpans, outRS)
		}
	}
	return out
}

// TestAddRowsFromEncoded: blocks written from encoded traces, whose span
// blobs keep the bytes as received, merge into a block whose traces equal
// those of the decoding merge (the blobs, copied as they are, may differ).
func TestAddRowsFromEncoded(t *testing.T) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(5, 6))
	ids, traces := modeltest.Traces(rng, 20, 8)
	encs := walEncodings(t, rng, ids, traces, 5, true)
	bkt := newMemBucket()
	var metas []*Meta
	for range 2 {
		w, err := NewWriter(WriterConfig{RowGroupSpans: 30}, t.TempDir(), testTenant, uuid.New())
		require.NoError(t, err)
		for i, id := range ids {
			require.NoError(t, w.AddEncoded(id, encs[i]))
		}
		m, err := w.Finish(ctx, bkt)
		require.NoError(t, err)
		metas = append(metas, m)
	}
	readers := []*Reader{NewReader(bkt, metas[0]), NewReader(bkt, metas[1])}
	var parts [2][]*TraceRows
	for i, r := range readers {
		require.NoError(t, r.IterateRows(ctx, func(tr *TraceRows) error {
			parts[i] = append(parts[i], tr)
			return nil
		}))
	}
	w, err := NewWriter(WriterConfig{RowGroupSpans: 30}, t.TempDir(), testTenant, uuid.New())
	require.NoError(t, err)
	for i := range ids {
		_, err := w.AddRows(parts[0][i], parts[1][i])
		require.NoError(t, err)
	}
	out := newMemBucket()
	meta, err := w.Finish(ctx, out)
	require.NoError(t, err)
	require.Equal(t, metas[0].TotalSpans, meta.TotalSpans)
	require.Equal(t, metas[0].StartTime, meta.StartTime)
	require.Equal(t, metas[0].EndTime, meta.EndTime)
	r := NewReader(out, meta)
	for i, id := range ids {
		want, err := readers[0].FindTraceByID(ctx, id)
		require.NoError(t, err)
		got, err := r.FindTraceByID(ctx, id)
		require.NoError(t, err)
		require.True(t, proto.Equal(model.Combine(want, want), got), "trace %d", i)
	}
}

func TestAddRowsErrors(t *testing.T) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	ids, traces := modeltest.Traces(rng, 3, 5)
	bkt := newMemBucket()
	meta := writeBlock(t, bkt, WriterConfig{}, ids, traces)
	var parts []*TraceRows
	require.NoError(t, NewReader(bkt, meta).IterateRows(ctx, func(tr *TraceRows) error {
		parts = append(parts, tr)
		return nil
	}))
	w, err := NewWriter(WriterConfig{}, t.TempDir(), testTenant, uuid.New())
	require.NoError(t, err)
	defer w.Abort()
	_, err = w.AddRows()
	require.ErrorIs(t, err, ErrInvalidTrace, "no parts")
	_, err = w.AddRows(parts[0], parts[1])
	require.ErrorIs(t, err, ErrInvalidTrace, "parts of two traces")
	_, err = w.AddRows(parts[1])
	require.NoError(t, err)
	_, err = w.AddRows(parts[0])
	require.ErrorIs(t, err, ErrOutOfOrder)
	_, err = w.AddRows(parts[1])
	require.ErrorIs(t, err, ErrOutOfOrder, "equal IDs")
	_, err = w.AddRows(parts[2])
	require.NoError(t, err, "the writer goes on after a rejected trace")
	m, err := w.Finish(ctx, newMemBucket())
	require.NoError(t, err)
	require.EqualValues(t, 2, m.TotalTraces)
	_, err = w.AddRows(parts[2])
	require.ErrorIs(t, err, ErrWriterClosed)
}

// TestRowsReadWhenNeeded: a merge reads the columns of a row group other
// than the keys only if it keeps one of its rows: the rows of a replica
// whose every span is in the block before it are never read. Once a row
// group's rows were needed, IterateRows reads the next one's itself.
func TestRowsReadWhenNeeded(t *testing.T) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(13, 14))
	ids, traces := modeltest.Traces(rng, 40, 6)
	bkt := newMemBucket()
	cfg := WriterConfig{RowGroupSpans: 40}
	first, second := writeBlock(t, bkt, cfg, ids, traces), writeBlock(t, bkt, cfg, ids, traces)
	require.Greater(t, first.RowGroups, 2)
	read := func(m *Meta) []*TraceRows {
		var out []*TraceRows
		require.NoError(t, NewReader(bkt, m).IterateRows(ctx, func(tr *TraceRows) error {
			out = append(out, tr)
			return nil
		}))
		return out
	}
	a, b := read(first), read(second)
	w, err := NewWriter(cfg, t.TempDir(), testTenant, uuid.New())
	require.NoError(t, err)
	defer w.Abort()
	for i := range a {
		n, err := w.AddRows(a[i], b[i])
		require.NoError(t, err)
		require.Equal(t, a[i].Len(), n)
	}
	for i := range a {
		require.True(t, a[i].rg.loaded.Load(), "trace %d of the first block", i)
		require.False(t, b[i].rg.loaded.Load(), "trace %d of the replica", i)
	}

	var rowGroups []*rowGroupRows
	require.NoError(t, NewReader(bkt, first).IterateRows(ctx, func(tr *TraceRows) error {
		if len(rowGroups) == 0 || rowGroups[len(rowGroups)-1] != tr.rg {
			rowGroups = append(rowGroups, tr.rg)
			require.Equal(t, len(rowGroups) > 1, tr.rg.loaded.Load(), "row group %d", len(rowGroups)-1)
		}
		_, err := tr.Trace()
		return err
	}))
	require.Len(t, rowGroups, first.RowGroups)
}

// TestAddRowsPartError: a part whose rows fail to read fails AddRows with a
// PartError naming it, and leaves the writer as it was.
func TestAddRowsPartError(t *testing.T) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(15, 16))
	ids, traces := modeltest.Traces(rng, 10, 6)
	bkt := newMemBucket()
	good := writeBlock(t, bkt, WriterConfig{}, ids, traces)
	more := make([]*tracev1.TracesData, len(traces))
	for i, td := range traces {
		more[i] = proto.Clone(td).(*tracev1.TracesData)
		ss := more[i].ResourceSpans[0].ScopeSpans[0]
		extra := proto.Clone(ss.Spans[0]).(*tracev1.Span)
		extra.SpanId = bytes.Repeat([]byte{0xee}, 8) // a span the first block lacks
		ss.Spans = append(ss.Spans, extra)
	}
	bad := writeBlock(t, bkt, WriterConfig{}, ids, more)
	l, err := NewReader(bkt, bad).load(ctx)
	require.NoError(t, err)
	cc, err := l.footer.RowGroup(0).ColumnChunk(colSpan)
	require.NoError(t, err)
	key := storage.DataKey(testTenant, bad.BlockID)
	d := bytes.Clone(bkt.objects[key])
	d[cc.DataPageOffset()+cc.TotalCompressedSize()/2] ^= 0x10 // in a span page
	bkt.objects[key] = d

	var parts [2][]*TraceRows
	for i, m := range []*Meta{good, bad} {
		require.NoError(t, NewReader(bkt, m).IterateRows(ctx, func(tr *TraceRows) error {
			parts[i] = append(parts[i], tr)
			return nil
		}), "the keys read well")
	}
	w, err := NewWriter(WriterConfig{}, t.TempDir(), testTenant, uuid.New())
	require.NoError(t, err)
	defer w.Abort()
	_, err = w.AddRows(parts[0][0], parts[1][0])
	var pe *PartError
	require.ErrorAs(t, err, &pe)
	require.Equal(t, 1, pe.Part)
	require.ErrorIs(t, err, ErrCorrupt)
	require.Zero(t, w.rows.len())
	n, err := w.AddRows(parts[0][0])
	require.NoError(t, err, "the writer goes on")
	require.Equal(t, countSpans(traces[0]), n)
}

// FuzzReadRows overwrites bytes of the frozen block's data.parquet at off
// with patch, reads every trace's rows and merges them with themselves:
// errors are fine, panics and hangs are not (FuzzReadData for IterateRows).
func FuzzReadRows(f *testing.F) {
	clean := loadDir(f, goldenDir)
	b, err := os.ReadFile(filepath.Join(goldenDir, "golden.json"))
	require.NoError(f, err)
	var g goldenFile
	require.NoError(f, json.Unmarshal(b, &g))
	dataKey := storage.DataKey(goldenTenant, goldenBlockID)
	data := clean.objects[dataKey]
	f.Add(uint32(0), []byte{})
	f.Add(uint32(len(data)/2), []byte{0xff, 0x00, 0xff})
	f.Fuzz(func(t *testing.T, off uint32, patch []byte) {
		bkt := newMemBucket()
		for k, v := range clean.objects {
			bkt.objects[k] = v
		}
		d := bytes.Clone(data)
		if len(d) > 0 {
			copy(d[int(off)%len(d):], patch)
		}
		bkt.objects[dataKey] = d
		w := memWriter()
		w.cfg.RowGroupSpans = math.MaxInt32 // never cut: memWriter has no file
		_ = NewReader(bkt, g.Meta).IterateRows(context.Background(), func(tr *TraceRows) error {
			_, _ = tr.Trace()
			_, err := w.AddRows(tr, tr)
			return err
		})
	})
}

// TestIterateRowsCorrupt: what IterateRows cannot read, or reads but does
// not decode, is ErrCorrupt, never a panic.
func TestIterateRowsCorrupt(t *testing.T) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(9, 9))
	ids, traces := modeltest.Traces(rng, 15, 8)
	write := func(t *testing.T, edit func(r *rows)) (*memBucket, *Meta) {
		t.Helper()
		bkt := newMemBucket()
		meta := writeBlock(t, bkt, WriterConfig{RowGroupSpans: 50}, ids, traces)
		if edit == nil {
			return bkt, meta
		}
		// Rewrite the block with its rows edited, past the checks of Add.
		var parts []*TraceRows
		require.NoError(t, NewReader(bkt, meta).IterateRows(ctx, func(tr *TraceRows) error {
			parts = append(parts, tr)
			return nil
		}))
		w, err := NewWriter(WriterConfig{RowGroupSpans: 50}, t.TempDir(), testTenant, uuid.New())
		require.NoError(t, err)
		for _, p := range parts {
			_, err := w.AddRows(p)
			require.NoError(t, err)
			if w.rows.len() > 0 {
				edit(&w.rows)
			}
		}
		out := newMemBucket()
		meta, err = w.Finish(ctx, out)
		require.NoError(t, err)
		return out, meta
	}
	tests := map[string]struct {
		edit  func(r *rows)
		patch func(data []byte, span chunk) []byte
	}{
		"resource does not decode": {edit: func(r *rows) { r.resource[len(r.resource)-1] = []byte{0xff} }},
		"scope does not decode":    {edit: func(r *rows) { r.scope[0] = []byte{0x0a, 0x05} }},
		"name not UTF-8":           {edit: func(r *rows) { r.name[len(r.name)-1] = []byte{0xff, 0xfe} }},
		// A flipped bit inside a compressed page fails its ZSTD checksum:
		// span blobs are not decoded, this is what finds them damaged.
		"flipped byte in a span page": {patch: func(d []byte, span chunk) []byte {
			d[span.off+span.len/2] ^= 0x10
			return d
		}},
		"flipped bytes everywhere": {patch: func(d []byte, _ chunk) []byte {
			for i := 4; i < len(d)-8; i += 997 {
				d[i] ^= 0xa5
			}
			return d
		}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			bkt, meta := write(t, tc.edit)
			if tc.patch != nil {
				l, err := NewReader(bkt, meta).load(ctx)
				require.NoError(t, err)
				cc, err := l.footer.RowGroup(0).ColumnChunk(colSpan)
				require.NoError(t, err)
				key := storage.DataKey(testTenant, meta.BlockID)
				bkt.objects[key] = tc.patch(bytes.Clone(bkt.objects[key]), chunk{cc.DataPageOffset(), cc.TotalCompressedSize()})
			}
			err := NewReader(bkt, meta).IterateRows(ctx, func(tr *TraceRows) error {
				_, err := tr.Trace()
				return err
			})
			require.ErrorIs(t, err, ErrCorrupt)
		})
	}
	t.Run("truncated", func(t *testing.T) {
		bkt, meta := write(t, nil)
		key := storage.DataKey(testTenant, meta.BlockID)
		bkt.objects[key] = bkt.objects[key][:len(bkt.objects[key])/2]
		require.Error(t, NewReader(bkt, meta).IterateRows(ctx, func(*TraceRows) error { return nil }))
	})
}

// chunk is where a column chunk is in data.parquet.
type chunk struct{ off, len int64 }
