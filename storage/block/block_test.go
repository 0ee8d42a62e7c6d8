package block

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	commonv1 "go.opentelemetry.io/proto/otlp/common/v1"
	resourcev1 "go.opentelemetry.io/proto/otlp/resource/v1"
	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/vivace-dev/vivace/internal/model"
	"github.com/vivace-dev/vivace/internal/model/modeltest"
)

const testTenant = "tenant-a"

// writeBlock writes ids/traces as one block into bkt.
func writeBlock(t testing.TB, bkt *memBucket, cfg WriterConfig, ids []model.TraceID, traces []*tracev1.TracesData) *Meta {
	t.Helper()
	w, err := NewWriter(cfg, t.TempDir(), testTenant, uuid.New())
	require.NoError(t, err)
	for i, id := range ids {
		require.NoError(t, w.Add(id, traces[i]))
	}
	meta, err := w.Finish(context.Background(), bkt)
	require.NoError(t, err)
	return meta
}

func countSpans(td *tracev1.TracesData) int {
	n := 0
	for _, rs := range td.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			n += len(ss.GetSpans())
		}
	}
	return n
}

// tracesWithSpans makes one trace per entry of spans, with sorted IDs.
func tracesWithSpans(rng *rand.Rand, spans ...int) ([]model.TraceID, []*tracev1.TracesData) {
	ids := modeltest.IDs(rng, len(spans))
	traces := make([]*tracev1.TracesData, len(spans))
	for i, n := range spans {
		traces[i] = modeltest.Trace(rng, ids[i], n)
	}
	return ids, traces
}

func TestRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		cfg  WriterConfig
		make func(rng *rand.Rand) ([]model.TraceID, []*tracev1.TracesData)
	}{
		{
			name: "one trace of one span",
			make: func(rng *rand.Rand) ([]model.TraceID, []*tracev1.TracesData) {
				return tracesWithSpans(rng, 1)
			},
		},
		{
			name: "many traces in one row group",
			make: func(rng *rand.Rand) ([]model.TraceID, []*tracev1.TracesData) {
				return modeltest.Traces(rng, 200, 20)
			},
		},
		{
			name: "many row groups",
			cfg:  WriterConfig{RowGroupSpans: 300},
			make: func(rng *rand.Rand) ([]model.TraceID, []*tracev1.TracesData) {
				return modeltest.Traces(rng, 500, 20)
			},
		},
		{
			name: "a trace larger than a row group",
			cfg:  WriterConfig{RowGroupSpans: 1000},
			make: func(rng *rand.Rand) ([]model.TraceID, []*tracev1.TracesData) {
				return tracesWithSpans(rng, 3, 400, 1500, 2, 900)
			},
		},
		{
			name: "a trace that would straddle a row group boundary",
			cfg:  WriterConfig{RowGroupSpans: 100},
			make: func(rng *rand.Rand) ([]model.TraceID, []*tracev1.TracesData) {
				return tracesWithSpans(rng, 60, 60, 40, 1, 100, 99, 2)
			},
		},
		{
			name: "one trace per row group",
			cfg:  WriterConfig{RowGroupSpans: 1},
			make: func(rng *rand.Rand) ([]model.TraceID, []*tracev1.TracesData) {
				return tracesWithSpans(rng, 1, 5, 1, 3)
			},
		},
		{
			name: "a trace of 2000 spans",
			make: func(rng *rand.Rand) ([]model.TraceID, []*tracev1.TracesData) {
				return tracesWithSpans(rng, 2000)
			},
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			rng := rand.New(rand.NewPCG(uint64(i), 42))
			ids, traces := tt.make(rng)
			bkt := newMemBucket()
			meta := writeBlock(t, bkt, tt.cfg, ids, traces)

			wantSpans := 0
			start, end := uint64(1<<63), uint64(0)
			for _, td := range traces {
				wantSpans += countSpans(td)
				for _, rs := range td.ResourceSpans {
					for _, ss := range rs.ScopeSpans {
						for _, s := range ss.Spans {
							start, end = min(start, s.StartTimeUnixNano), max(end, s.EndTimeUnixNano)
						}
					}
				}
			}
			require.Equal(t, VersionV1, meta.Version)
			require.Equal(t, testTenant, meta.TenantID)
			require.Equal(t, int64(len(ids)), meta.TotalTraces)
			require.Equal(t, int64(wantSpans), meta.TotalSpans)
			require.Equal(t, ids[0].String(), meta.MinID)
			require.Equal(t, ids[len(ids)-1].String(), meta.MaxID)
			require.Equal(t, time.Unix(0, int64(start)).UTC(), meta.StartTime)
			require.Equal(t, time.Unix(0, int64(end)).UTC(), meta.EndTime)
			require.Equal(t, int64(len(bkt.objects["tenant-a/"+meta.BlockID+"/data.parquet"])), meta.Size)

			got, err := ReadMeta(ctx, bkt, testTenant, meta.BlockID)
			require.NoError(t, err)
			require.Equal(t, meta, got)

			r := NewReader(bkt, got)
			for i, id := range ids {
				td, err := r.FindTraceByID(ctx, id)
				require.NoError(t, err)
				require.NotNil(t, td, "trace %d %s", i, id)
				require.True(t, proto.Equal(traces[i], td), "trace %d %s differs", i, id)
			}

			// Absent IDs: below, above, between, and random.
			absent := []model.TraceID{{}, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}
			prev := ids[0]
			prev[15]++
			if prev != ids[min(1, len(ids)-1)] {
				absent = append(absent, prev)
			}
			absent = append(absent, modeltest.IDs(rng, 200)...)
			present := map[model.TraceID]bool{}
			for _, id := range ids {
				present[id] = true
			}
			for _, id := range absent {
				if present[id] {
					continue
				}
				td, err := r.FindTraceByID(ctx, id)
				require.NoError(t, err)
				require.Nil(t, td, id.String())
			}

			// Iterate sees every trace, in order.
			n := 0
			err = r.Iterate(ctx, func(id model.TraceID, td *tracev1.TracesData) error {
				require.Less(t, n, len(ids))
				require.Equal(t, ids[n], id)
				require.True(t, proto.Equal(traces[n], td), "trace %d %s differs", n, id)
				n++
				return nil
			})
			require.NoError(t, err)
			require.Equal(t, len(ids), n)

			// No trace is split across row groups, row groups respect the
			// target unless a single trace is larger.
			l, err := r.load(ctx)
			require.NoError(t, err)
			idx := l.idx
			require.Equal(t, meta.RowGroups, len(idx.RowGroups))
			target := tt.cfg.RowGroupSpans
			if target == 0 {
				target = DefaultRowGroupSpans
			}
			j := 0
			for g, e := range idx.RowGroups {
				spans, traces0 := 0, 0
				for j < len(ids) && ids[j].Compare(e.MaxID) <= 0 {
					require.True(t, ids[j].Compare(e.MinID) >= 0)
					spans += countSpans(traces[j])
					traces0++
					j++
				}
				require.Positive(t, traces0, "row group %d", g)
				if traces0 > 1 {
					require.LessOrEqual(t, spans, target, "row group %d", g)
				}
				if g+1 < len(idx.RowGroups) {
					// the next trace would not have fit
					require.Greater(t, spans+countSpans(traces[j]), target, "row group %d cut early", g)
				}
			}
			require.Equal(t, len(ids), j)
		})
	}
}

func TestRowGroupCuts(t *testing.T) {
	tests := []struct {
		name   string
		target int
		spans  []int
		want   [][]int // spans per trace, per row group
	}{
		{"fits", 10, []int{3, 3, 4}, [][]int{{3, 3, 4}}},
		{"straddle", 100, []int{60, 60, 40, 1, 100, 99, 2}, [][]int{{60}, {60, 40}, {1}, {100}, {99}, {2}}},
		{"larger than target", 1000, []int{3, 400, 1500, 2, 900}, [][]int{{3, 400}, {1500}, {2, 900}}},
		{"one each", 1, []int{1, 5, 1}, [][]int{{1}, {5}, {1}}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(i), 7))
			ids, traces := tracesWithSpans(rng, tt.spans...)
			bkt := newMemBucket()
			meta := writeBlock(t, bkt, WriterConfig{RowGroupSpans: tt.target}, ids, traces)
			l, err := NewReader(bkt, meta).load(context.Background())
			require.NoError(t, err)
			idx := l.idx
			var got [][]int
			j := 0
			for _, e := range idx.RowGroups {
				var g []int
				for j < len(ids) && ids[j].Compare(e.MaxID) <= 0 {
					g = append(g, countSpans(traces[j]))
					j++
				}
				got = append(got, g)
			}
			require.Equal(t, tt.want, got)
		})
	}
}

// TestSpanEdgeCases covers span contents the generator does not make.
func TestSpanEdgeCases(t *testing.T) {
	id := model.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	span := func(mod func(s *tracev1.Span)) *tracev1.Span {
		s := &tracev1.Span{TraceId: id[:], SpanId: []byte{1, 2, 3, 4, 5, 6, 7, 8}, Name: "op", StartTimeUnixNano: 1_700_000_000_000_000_000, EndTimeUnixNano: 1_700_000_000_500_000_000}
		if mod != nil {
			mod(s)
		}
		return s
	}
	one := func(s *tracev1.Span) *tracev1.TracesData {
		return &tracev1.TracesData{ResourceSpans: []*tracev1.ResourceSpans{{ScopeSpans: []*tracev1.ScopeSpans{{Spans: []*tracev1.Span{s}}}}}}
	}
	withUnknown := span(nil)
	withUnknown.ProtoReflect().SetUnknown(protowire.AppendVarint(protowire.AppendTag(nil, 99, protowire.VarintType), 7))
	tests := []struct {
		name string
		td   *tracev1.TracesData
	}{
		{"minimal", one(span(nil))},
		{"end before start", one(span(func(s *tracev1.Span) { s.EndTimeUnixNano = s.StartTimeUnixNano - 12345 }))},
		{"zero times", one(span(func(s *tracev1.Span) { s.StartTimeUnixNano, s.EndTimeUnixNano = 0, 0 }))},
		{"max times", one(span(func(s *tracev1.Span) { s.StartTimeUnixNano, s.EndTimeUnixNano = 1, ^uint64(0) }))},
		{"empty span ID and name", one(span(func(s *tracev1.Span) { s.SpanId, s.Name = nil, "" }))},
		{"unknown kind", one(span(func(s *tracev1.Span) { s.Kind = 42 }))},
		{"empty status", one(span(func(s *tracev1.Span) { s.Status = &tracev1.Status{} }))},
		{"unknown fields", one(withUnknown)},
		{"empty attribute value", one(span(func(s *tracev1.Span) {
			s.Attributes = []*commonv1.KeyValue{{Key: "nil"}, {Key: "empty", Value: &commonv1.AnyValue{}}}
		}))},
		{"empty resource and scope", &tracev1.TracesData{ResourceSpans: []*tracev1.ResourceSpans{{
			Resource:   &resourcev1.Resource{},
			ScopeSpans: []*tracev1.ScopeSpans{{Scope: &commonv1.InstrumentationScope{}, Spans: []*tracev1.Span{span(nil)}}},
		}}}},
		{"same resource, two scopes, then another resource", &tracev1.TracesData{ResourceSpans: []*tracev1.ResourceSpans{
			{
				Resource: &resourcev1.Resource{Attributes: []*commonv1.KeyValue{{Key: "service.name", Value: &commonv1.AnyValue{Value: &commonv1.AnyValue_StringValue{StringValue: "a"}}}}},
				ScopeSpans: []*tracev1.ScopeSpans{
					{Scope: &commonv1.InstrumentationScope{Name: "x"}, Spans: []*tracev1.Span{span(nil), span(func(s *tracev1.Span) { s.SpanId = []byte{9} })}},
					{Scope: &commonv1.InstrumentationScope{Name: "y"}, Spans: []*tracev1.Span{span(func(s *tracev1.Span) { s.SpanId = []byte{10} })}},
				},
			},
			{SchemaUrl: "b", ScopeSpans: []*tracev1.ScopeSpans{{SchemaUrl: "s", Spans: []*tracev1.Span{span(func(s *tracev1.Span) { s.SpanId = []byte{11} })}}}},
		}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			bkt := newMemBucket()
			meta := writeBlock(t, bkt, WriterConfig{}, []model.TraceID{id}, []*tracev1.TracesData{tt.td})
			got, err := NewReader(bkt, meta).FindTraceByID(ctx, id)
			require.NoError(t, err)
			require.True(t, proto.Equal(tt.td, got), "got %v\nwant %v", got, tt.td)
		})
	}
}

// TestNormalisation: a (resource, scope) pair that appears more than once in
// the input comes back merged where it first appeared; empty containers go.
func TestNormalisation(t *testing.T) {
	id := model.TraceID{15: 1}
	res := func(name string) *resourcev1.Resource {
		return &resourcev1.Resource{Attributes: []*commonv1.KeyValue{{Key: "service.name", Value: &commonv1.AnyValue{Value: &commonv1.AnyValue_StringValue{StringValue: name}}}}}
	}
	span := func(b byte) *tracev1.Span { return &tracev1.Span{TraceId: id[:], SpanId: []byte{b}} }
	in := &tracev1.TracesData{ResourceSpans: []*tracev1.ResourceSpans{
		{Resource: res("a"), ScopeSpans: []*tracev1.ScopeSpans{{Spans: []*tracev1.Span{span(1)}}, {}}},
		{Resource: res("b"), ScopeSpans: []*tracev1.ScopeSpans{{Spans: []*tracev1.Span{span(2)}}}},
		{Resource: res("a"), ScopeSpans: []*tracev1.ScopeSpans{{Spans: []*tracev1.Span{span(3)}}}},
		{Resource: res("c")},
	}}
	want := &tracev1.TracesData{ResourceSpans: []*tracev1.ResourceSpans{
		{Resource: res("a"), ScopeSpans: []*tracev1.ScopeSpans{{Spans: []*tracev1.Span{span(1), span(3)}}}},
		{Resource: res("b"), ScopeSpans: []*tracev1.ScopeSpans{{Spans: []*tracev1.Span{span(2)}}}},
	}}
	bkt := newMemBucket()
	meta := writeBlock(t, bkt, WriterConfig{}, []model.TraceID{id}, []*tracev1.TracesData{in})
	got, err := NewReader(bkt, meta).FindTraceByID(context.Background(), id)
	require.NoError(t, err)
	require.True(t, proto.Equal(want, got), "got %v", got)
}

func TestWriterErrors(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	ids, traces := modeltest.Traces(rng, 3, 5)
	ctx := context.Background()

	t.Run("out of order", func(t *testing.T) {
		w, err := NewWriter(WriterConfig{}, t.TempDir(), testTenant, uuid.New())
		require.NoError(t, err)
		defer w.Abort()
		require.NoError(t, w.Add(ids[1], traces[1]))
		require.ErrorIs(t, w.Add(ids[0], traces[0]), ErrOutOfOrder)
		require.ErrorIs(t, w.Add(ids[1], traces[1]), ErrOutOfOrder, "equal IDs")
		require.NoError(t, w.Add(ids[2], traces[2]), "the writer goes on after a rejected trace")
	})
	t.Run("invalid traces", func(t *testing.T) {
		w, err := NewWriter(WriterConfig{}, t.TempDir(), testTenant, uuid.New())
		require.NoError(t, err)
		defer w.Abort()
		require.ErrorIs(t, w.Add(model.TraceID{}, traces[0]), ErrInvalidTrace, "zero ID")
		require.ErrorIs(t, w.Add(ids[0], &tracev1.TracesData{}), ErrInvalidTrace, "no spans")
		require.ErrorIs(t, w.Add(ids[0], traces[1]), ErrInvalidTrace, "spans of another trace")
		bad := proto.Clone(traces[0]).(*tracev1.TracesData)
		bad.ResourceSpans[0].ScopeSpans[0].Spans[0].Name = "\xff" // not UTF-8: does not marshal
		require.Error(t, w.Add(ids[0], bad))
		// Nothing of the rejected traces stayed behind.
		require.NoError(t, w.Add(ids[0], traces[0]))
		bkt := newMemBucket()
		meta, err := w.Finish(ctx, bkt)
		require.NoError(t, err)
		require.Equal(t, int64(1), meta.TotalTraces)
		require.Equal(t, int64(countSpans(traces[0])), meta.TotalSpans)
		td, err := NewReader(bkt, meta).FindTraceByID(ctx, ids[0])
		require.NoError(t, err)
		require.True(t, proto.Equal(traces[0], td))
	})
	t.Run("empty block", func(t *testing.T) {
		dir := t.TempDir()
		w, err := NewWriter(WriterConfig{}, dir, testTenant, uuid.New())
		require.NoError(t, err)
		_, err = w.Finish(ctx, newMemBucket())
		require.ErrorIs(t, err, ErrEmptyBlock)
		requireEmptyDir(t, dir)
	})
	t.Run("closed", func(t *testing.T) {
		dir := t.TempDir()
		w, err := NewWriter(WriterConfig{}, dir, testTenant, uuid.New())
		require.NoError(t, err)
		require.NoError(t, w.Add(ids[0], traces[0]))
		bkt := newMemBucket()
		_, err = w.Finish(ctx, bkt)
		require.NoError(t, err)
		requireEmptyDir(t, dir)
		require.ErrorIs(t, w.Add(ids[1], traces[1]), ErrWriterClosed)
		_, err = w.Finish(ctx, bkt)
		require.ErrorIs(t, err, ErrWriterClosed)
		w.Abort()
	})
	t.Run("abort", func(t *testing.T) {
		dir := t.TempDir()
		w, err := NewWriter(WriterConfig{RowGroupSpans: 2}, dir, testTenant, uuid.New())
		require.NoError(t, err)
		require.NoError(t, w.Add(ids[0], traces[0]))
		require.NoError(t, w.Add(ids[1], traces[1]))
		w.Abort()
		w.Abort()
		requireEmptyDir(t, dir)
		require.ErrorIs(t, w.Add(ids[2], traces[2]), ErrWriterClosed)
	})
	t.Run("compaction level", func(t *testing.T) {
		w, err := NewWriter(WriterConfig{}, t.TempDir(), testTenant, uuid.New())
		require.NoError(t, err)
		w.SetCompactionLevel(3)
		require.NoError(t, w.Add(ids[0], traces[0]))
		bkt := newMemBucket()
		meta, err := w.Finish(ctx, bkt)
		require.NoError(t, err)
		require.Equal(t, 3, meta.CompactionLevel)
		got, err := ReadMeta(ctx, bkt, testTenant, meta.BlockID)
		require.NoError(t, err)
		require.Equal(t, 3, got.CompactionLevel)
	})
	t.Run("bad config", func(t *testing.T) {
		_, err := NewWriter(WriterConfig{RowGroupSpans: -1}, t.TempDir(), testTenant, uuid.New())
		require.Error(t, err)
		_, err = NewWriter(WriterConfig{BloomFalsePositive: 1}, t.TempDir(), testTenant, uuid.New())
		require.Error(t, err)
		_, err = NewWriter(WriterConfig{}, t.TempDir(), "", uuid.New())
		require.Error(t, err)
	})
	t.Run("failed upload leaves no objects", func(t *testing.T) {
		dir := t.TempDir()
		w, err := NewWriter(WriterConfig{}, dir, testTenant, uuid.New())
		require.NoError(t, err)
		require.NoError(t, w.Add(ids[0], traces[0]))
		bkt := &failingBucket{memBucket: newMemBucket(), failKey: "index"}
		_, err = w.Finish(ctx, bkt)
		require.Error(t, err)
		require.Empty(t, bkt.keys())
		requireEmptyDir(t, dir)
	})
}

// failingBucket fails Put for keys ending in failKey.
type failingBucket struct {
	*memBucket
	failKey string
}

func (b *failingBucket) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	if strings.HasSuffix(key, b.failKey) {
		return errors.New("disk full")
	}
	return b.memBucket.Put(ctx, key, r, size)
}

func requireEmptyDir(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Empty(t, entries)
}
