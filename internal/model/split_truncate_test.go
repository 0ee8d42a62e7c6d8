package model_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonv1 "go.opentelemetry.io/proto/otlp/common/v1"
	resourcev1 "go.opentelemetry.io/proto/otlp/resource/v1"
	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/vivace-dev/vivace/internal/model"
	"github.com/vivace-dev/vivace/internal/model/modeltest"
)

func strKV(k, v string) *commonv1.KeyValue {
	return &commonv1.KeyValue{Key: k, Value: &commonv1.AnyValue{Value: &commonv1.AnyValue_StringValue{StringValue: v}}}
}

func bytesKV(k string, v []byte) *commonv1.KeyValue {
	return &commonv1.KeyValue{Key: k, Value: &commonv1.AnyValue{Value: &commonv1.AnyValue_BytesValue{BytesValue: v}}}
}

// longValuesRequest has one span with long values everywhere attributes
// live, and one span with none.
func longValuesRequest(limit int) (*coltracepb.ExportTraceServiceRequest, *tracev1.Span) {
	long := strings.Repeat("x", limit+10)
	// "é" is 2 bytes: the cut at limit falls inside the last one.
	accented := strings.Repeat("a", limit-1) + strings.Repeat("é", 10)
	idA, idB := bytes.Repeat([]byte{0xa}, 16), bytes.Repeat([]byte{0xb}, 16)
	short := &tracev1.Span{TraceId: idB, SpanId: make8(2), Name: "short", Attributes: []*commonv1.KeyValue{strKV("k", "v")}}
	return &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracev1.ResourceSpans{{
		Resource: &resourcev1.Resource{Attributes: []*commonv1.KeyValue{strKV("service.name", "svc"), strKV("host.description", long)}},
		ScopeSpans: []*tracev1.ScopeSpans{{
			Scope: &commonv1.InstrumentationScope{Name: "lib", Attributes: []*commonv1.KeyValue{strKV("scope.long", long)}},
			Spans: []*tracev1.Span{
				{
					TraceId: idA, SpanId: make8(1), Name: "long",
					Attributes: []*commonv1.KeyValue{
						strKV("db.statement", long),
						strKV("accented", accented),
						bytesKV("payload", []byte(long)),
						strKV("short", "kept"),
						{Key: "list", Value: &commonv1.AnyValue{Value: &commonv1.AnyValue_ArrayValue{ArrayValue: &commonv1.ArrayValue{
							Values: []*commonv1.AnyValue{{Value: &commonv1.AnyValue_StringValue{StringValue: long}}, {Value: &commonv1.AnyValue_IntValue{IntValue: 7}}},
						}}}},
						{Key: "map", Value: &commonv1.AnyValue{Value: &commonv1.AnyValue_KvlistValue{KvlistValue: &commonv1.KeyValueList{
							Values: []*commonv1.KeyValue{strKV("inner", long), strKV("ok", "y")},
						}}}},
					},
					Events: []*tracev1.Span_Event{{Name: "exception", Attributes: []*commonv1.KeyValue{strKV("exception.stacktrace", long)}}},
					Links:  []*tracev1.Span_Link{{TraceId: idB, SpanId: make8(2), Attributes: []*commonv1.KeyValue{strKV("link.note", long)}}},
				},
				short,
			},
		}},
	}}}, short
}

func TestSplitByTraceTruncating(t *testing.T) {
	const limit = 64
	req, short := longValuesRequest(limit)
	b := mustMarshal(t, req)

	split, err := model.SplitByTraceTruncating(b, limit)
	require.NoError(t, err)
	require.Equal(t, 2, split.Spans)
	// resource, scope, 3 span attributes, array and kvlist members, event, link
	require.Equal(t, 9, split.Truncated)

	cut := strings.Repeat("x", limit)
	want := proto.Clone(req).(*coltracepb.ExportTraceServiceRequest)
	rs := want.ResourceSpans[0]
	rs.Resource.Attributes[1].Value.Value = &commonv1.AnyValue_StringValue{StringValue: cut}
	rs.ScopeSpans[0].Scope.Attributes[0].Value.Value = &commonv1.AnyValue_StringValue{StringValue: cut}
	s := rs.ScopeSpans[0].Spans[0]
	s.Attributes[0].Value.Value = &commonv1.AnyValue_StringValue{StringValue: cut}
	s.Attributes[1].Value.Value = &commonv1.AnyValue_StringValue{StringValue: strings.Repeat("a", limit-1)}
	s.Attributes[2].Value.Value = &commonv1.AnyValue_BytesValue{BytesValue: []byte(cut)}
	s.Attributes[4].Value.GetArrayValue().Values[0].Value = &commonv1.AnyValue_StringValue{StringValue: cut}
	s.Attributes[5].Value.GetKvlistValue().Values[0].Value.Value = &commonv1.AnyValue_StringValue{StringValue: cut}
	s.Events[0].Attributes[0].Value.Value = &commonv1.AnyValue_StringValue{StringValue: cut}
	s.Links[0].Attributes[0].Value.Value = &commonv1.AnyValue_StringValue{StringValue: cut}

	wantByID := map[model.TraceID]*tracev1.Span{model.TraceID(s.TraceId): s, model.TraceID(short.TraceId): short}
	for i, id := range split.IDs {
		var td tracev1.TracesData
		require.NoError(t, proto.Unmarshal(split.Traces[i], &td), "the rewritten span still decodes")
		got := td.ResourceSpans[0]
		require.True(t, proto.Equal(rs.Resource, got.Resource), "resource of %s", id)
		require.True(t, proto.Equal(rs.ScopeSpans[0].Scope, got.ScopeSpans[0].Scope), "scope of %s", id)
		require.True(t, proto.Equal(wantByID[id], got.ScopeSpans[0].Spans[0]), "span of %s", id)
	}
	require.True(t, utf8.ValidString(strings.Repeat("a", limit-1)))

	// The span without a long value is copied byte for byte.
	whole, err := model.SplitByTrace(b)
	require.NoError(t, err)
	shortID := model.TraceID(short.TraceId)
	require.Contains(t, string(whole.Traces[indexOf(whole.IDs, shortID)]), string(mustMarshal(t, short)))
	require.Contains(t, string(split.Traces[indexOf(split.IDs, shortID)]), string(mustMarshal(t, short)))
}

func indexOf(ids []model.TraceID, id model.TraceID) int {
	for i, x := range ids {
		if x == id {
			return i
		}
	}
	return -1
}

// With no limit, or nothing over it, the output is SplitByTrace's.
func TestSplitByTraceTruncatingNothingLong(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	_, traces := modeltest.Traces(rng, 10, 10)
	b := mustMarshal(t, batchRequest(rng, traces, 2))
	want, err := model.SplitByTrace(b)
	require.NoError(t, err)
	for _, limit := range []int{0, 1 << 20} {
		got, err := model.SplitByTraceTruncating(b, limit)
		require.NoError(t, err)
		require.Equal(t, want, got)
		require.Zero(t, got.Truncated)
	}
	req, _ := longValuesRequest(64)
	got, err := model.SplitByTraceTruncating(mustMarshal(t, req), 0)
	require.NoError(t, err)
	require.Zero(t, got.Truncated)
}

func TestCountSpans(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 8))
	_, traces := modeltest.Traces(rng, 5, 7)
	req := batchRequest(rng, traces, 2)
	want := 0
	for _, td := range traces {
		want += model.SpanCount(td)
	}
	b := mustMarshal(t, req)
	require.Equal(t, want, model.CountSpans(b))
	require.Zero(t, model.CountSpans(nil))
	require.Zero(t, model.CountSpans([]byte{0xff}))
	split, err := model.SplitByTrace(b)
	require.NoError(t, err)
	total := 0
	for _, tr := range split.Traces {
		total += model.CountSpans(tr)
	}
	require.Equal(t, want, total)
}

// FuzzSplitByTraceTruncating: truncation never changes which spans go
// where, and leaves no attribute value longer than the limit in a request
// that decodes. Seeds are in testdata/fuzz/FuzzSplitByTraceTruncating.
func FuzzSplitByTraceTruncating(f *testing.F) {
	f.Fuzz(func(t *testing.T, req []byte, limit uint16) {
		got, err := model.SplitByTraceTruncating(req, int(limit))
		want, wantErr := model.SplitByTrace(req)
		if wantErr != nil {
			require.Error(t, err)
			return
		}
		require.NoError(t, err)
		require.Equal(t, want.IDs, got.IDs)
		require.Equal(t, want.Spans, got.Spans)
		if got.Truncated == 0 {
			require.Equal(t, want.Traces, got.Traces)
		}
		var decoded coltracepb.ExportTraceServiceRequest
		if limit == 0 || proto.Unmarshal(req, &decoded) != nil {
			return
		}
		for _, tr := range got.Traces {
			var td tracev1.TracesData
			require.NoError(t, proto.Unmarshal(tr, &td))
			for _, rs := range td.ResourceSpans {
				requireShort(t, rs.GetResource().GetAttributes(), int(limit))
				for _, ss := range rs.ScopeSpans {
					requireShort(t, ss.GetScope().GetAttributes(), int(limit))
					for _, s := range ss.Spans {
						requireShort(t, s.Attributes, int(limit))
						for _, e := range s.Events {
							requireShort(t, e.Attributes, int(limit))
						}
						for _, l := range s.Links {
							requireShort(t, l.Attributes, int(limit))
						}
					}
				}
			}
		}
	})
}

func requireShort(tb testing.TB, kvs []*commonv1.KeyValue, limit int) {
	tb.Helper()
	var check func(v *commonv1.AnyValue, depth int)
	check = func(v *commonv1.AnyValue, depth int) {
		if depth > 30 {
			return // beyond the nesting truncation looks into
		}
		require.LessOrEqual(tb, len(v.GetStringValue()), limit)
		require.LessOrEqual(tb, len(v.GetBytesValue()), limit)
		for _, x := range v.GetArrayValue().GetValues() {
			check(x, depth+1)
		}
		for _, kv := range v.GetKvlistValue().GetValues() {
			check(kv.GetValue(), depth+1)
		}
	}
	for _, kv := range kvs {
		check(kv.GetValue(), 0)
	}
}

// BenchmarkSplitByTraceTruncating is BenchmarkSplitByTrace's batch with
// the default max_attribute_bytes (2048): nothing in it is that long, and
// looking costs no allocation.
func BenchmarkSplitByTraceTruncating(b *testing.B) {
	rng := rand.New(rand.NewPCG(42, 42))
	req := mustMarshal(b, batchRequest(rng, tracesOfSpans(rng, 1000, 20), 1))
	const spans = 1000
	b.SetBytes(int64(len(req)))
	b.ReportAllocs()
	for b.Loop() {
		split, err := model.SplitByTraceTruncating(req, 2048)
		if err != nil || split.Spans != spans || split.Truncated != 0 {
			b.Fatal(err, split.Spans, split.Truncated)
		}
	}
	b.ReportMetric(float64(spans)*float64(b.N)/b.Elapsed().Seconds(), "spans/s")
	b.ReportMetric(float64(len(req))/spans, "bytes/span")
}

// TestWriteTruncatingFuzzSeeds regenerates the seeds of
// FuzzSplitByTraceTruncating (go test -run TestWriteTruncatingFuzzSeeds
// -update-seeds ./internal/model).
func TestWriteTruncatingFuzzSeeds(t *testing.T) {
	if !*updateSeeds {
		t.Skip("run with -update-seeds to rewrite testdata/fuzz/FuzzSplitByTraceTruncating")
	}
	long, _ := longValuesRequest(16)
	longB := mustMarshal(t, long)
	rng := rand.New(rand.NewPCG(2026, 4))
	_, one := modeltest.Traces(rng, 1, 2)
	oneB := mustMarshal(t, batchRequest(rng, one, 1))
	seeds := map[string]struct {
		req   []byte
		limit uint16
	}{
		"long-values":           {longB, 16},
		"long-values-no-limit":  {longB, 0},
		"long-values-one-byte":  {longB, 1},
		"long-values-truncated": {longB[:len(longB)-5], 16},
		"modeltest-limit-8":     {oneB, 8},
		"modeltest-limit-2048":  {oneB, 2048},
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzSplitByTraceTruncating")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	for name, s := range seeds {
		content := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\nuint16(%d)\n", s.req, s.limit)
		require.Less(t, len(content), 20<<10, "seed %s too big", name)
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644))
	}
}
