package block

import (
	"context"
	"math/rand/v2"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/vivace-dev/vivace/internal/model"
	"github.com/vivace-dev/vivace/internal/model/modeltest"
)

// TestFindEncodedIsCombinedRebuild: a lookup's encoded answer decodes to
// model.Combine of the decoded rows (what a lookup answered before it wrote
// the encoding itself), for traces with repeated spans, resources split
// and interleaved, short span IDs and spans that differ by kind only.
func TestFindEncodedIsCombinedRebuild(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	ids, traces := modeltest.Traces(rng, 60, 12)
	for _, td := range traces {
		messUp(rng, td)
	}
	dir := t.TempDir()
	w, err := NewWriter(WriterConfig{RowGroupSpans: 100}, dir, testTenant, uuid.New())
	require.NoError(t, err)
	for i, td := range traces {
		b, err := proto.Marshal(td)
		require.NoError(t, err)
		require.NoError(t, w.AddEncoded(ids[i], b))
	}
	bkt := newMemBucket()
	meta, err := w.Finish(context.Background(), bkt)
	require.NoError(t, err)

	r := NewReader(bkt, meta)
	ctx := context.Background()
	n := 0
	require.NoError(t, r.Iterate(ctx, func(id model.TraceID, rebuilt *tracev1.TracesData) error {
		b, err := r.FindEncoded(ctx, id, []byte("kept"))
		require.NoError(t, err)
		require.Equal(t, "kept", string(b[:4]), "appends to dst")
		got := &tracev1.TracesData{}
		require.NoError(t, proto.Unmarshal(b[4:], got))
		want := model.Combine(rebuilt)
		require.True(t, proto.Equal(want, got), "trace %s:\ngot  %v\nwant %v", id, got, want)
		n++
		return nil
	}))
	require.Equal(t, len(ids), n)
}

// messUp repeats some spans (same ID and kind, possibly under another
// resource or scope), adds spans that share an ID but not the kind, gives
// some spans IDs that are not 8 bytes, and splits resources so that they
// interleave.
func messUp(rng *rand.Rand, td *tracev1.TracesData) {
	var all []*tracev1.Span
	for _, rs := range td.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			all = append(all, ss.Spans...)
		}
	}
	for _, rs := range td.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			for range rng.IntN(3) {
				dup := proto.Clone(all[rng.IntN(len(all))]).(*tracev1.Span)
				switch rng.IntN(4) {
				case 0:
					dup.Kind = (dup.Kind + 1) % 6
				case 1:
					dup.SpanId = dup.SpanId[:rng.IntN(len(dup.SpanId))]
				case 2:
					dup.Name += " (again)" // a duplicate by key, whatever else differs
				}
				ss.Spans = append(ss.Spans, dup)
			}
		}
	}
	if len(td.ResourceSpans) > 0 && rng.IntN(2) == 0 {
		first := td.ResourceSpans[0]
		tail := &tracev1.ResourceSpans{Resource: first.Resource, SchemaUrl: first.SchemaUrl, ScopeSpans: first.ScopeSpans[len(first.ScopeSpans)/2:]}
		first.ScopeSpans = first.ScopeSpans[:len(first.ScopeSpans)/2]
		td.ResourceSpans = append(td.ResourceSpans, tail)
	}
}

// TestFindEncodedKeepsEachSpanOnce: a trace written twice into a block (a
// client's retry lands in one WAL segment) comes back once.
func TestFindEncodedKeepsEachSpanOnce(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 8))
	ids, traces := modeltest.Traces(rng, 1, 10)
	b, err := proto.Marshal(traces[0])
	require.NoError(t, err)
	dir := t.TempDir()
	w, err := NewWriter(WriterConfig{}, dir, testTenant, uuid.New())
	require.NoError(t, err)
	require.NoError(t, w.AddEncoded(ids[0], append(b, b...)))
	bkt := newMemBucket()
	meta, err := w.Finish(context.Background(), bkt)
	require.NoError(t, err)
	require.EqualValues(t, 2*model.SpanCount(traces[0]), meta.TotalSpans)

	got, err := NewReader(bkt, meta).FindTraceByID(context.Background(), ids[0])
	require.NoError(t, err)
	require.Equal(t, model.SpanCount(traces[0]), model.SpanCount(got))
	require.True(t, proto.Equal(model.Combine(traces[0]), got))
}

// TestAppendCombinedIsCombine: combining encoded parts decodes to
// model.Combine of the decoded parts, for parts that overlap, repeat spans
// under other resources, split and interleave resources, and hold empty
// resources and scopes.
func TestAppendCombinedIsCombine(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	ids, traces := modeltest.Traces(rng, 100, 12)
	for k, td := range traces {
		messUp(rng, td)
		parts := splitParts(rng, td)
		encoded := make([][]byte, len(parts))
		for i, p := range parts {
			var err error
			encoded[i], err = proto.Marshal(p)
			require.NoError(t, err)
		}
		b, err := AppendCombined([]byte("kept"), ids[k], encoded...)
		require.NoError(t, err)
		require.Equal(t, "kept", string(b[:4]), "appends to dst")
		got := &tracev1.TracesData{}
		require.NoError(t, proto.Unmarshal(b[4:], got))
		want := model.Combine(parts...)
		require.True(t, proto.Equal(want, got), "trace %d:\ngot  %v\nwant %v", k, got, want)
	}
}

// splitParts deals a trace's ResourceSpans into one to three parts, as
// replicas and blocks hold them: some go to two parts, and some parts get
// an empty ResourceSpans or ScopeSpans.
func splitParts(rng *rand.Rand, td *tracev1.TracesData) []*tracev1.TracesData {
	parts := make([]*tracev1.TracesData, 1+rng.IntN(3))
	for i := range parts {
		parts[i] = &tracev1.TracesData{}
	}
	for _, rs := range td.ResourceSpans {
		for range 1 + rng.IntN(2) {
			p := parts[rng.IntN(len(parts))]
			if rng.IntN(4) == 0 {
				p.ResourceSpans = append(p.ResourceSpans, &tracev1.ResourceSpans{Resource: rs.Resource, SchemaUrl: rs.SchemaUrl,
					ScopeSpans: []*tracev1.ScopeSpans{{SchemaUrl: "empty"}}})
			}
			p.ResourceSpans = append(p.ResourceSpans, rs)
		}
	}
	return parts
}

func TestAppendCombinedRejects(t *testing.T) {
	rng := rand.New(rand.NewPCG(10, 10))
	ids, traces := modeltest.Traces(rng, 2, 5)
	other, err := proto.Marshal(traces[1])
	require.NoError(t, err)
	tests := map[string][]byte{
		"malformed":       {0x0a, 0x05, 0x01},
		"another's spans": other,
	}
	for name, part := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := AppendCombined(nil, ids[0], part)
			require.ErrorIs(t, err, ErrInvalidTrace)
		})
	}
}
