package model_test

import (
	"bytes"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonv1 "go.opentelemetry.io/proto/otlp/common/v1"
	resourcev1 "go.opentelemetry.io/proto/otlp/resource/v1"
	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/vivace-dev/vivace/internal/model"
	"github.com/vivace-dev/vivace/internal/model/modeltest"
)

var updateSeeds = flag.Bool("update-seeds", false, "rewrite the generated seed files under testdata/fuzz/")

func TestSplitByTraceInterleaved(t *testing.T) {
	for _, tc := range []struct {
		name          string
		seed          uint64
		traces, spans int // traces of about spans spans each
		chunks        int // ResourceSpans entries per distinct resource
	}{
		{name: "3 traces, resources repeated", seed: 2, traces: 3, spans: 8, chunks: 2},
		{name: "10 traces, resources repeated 3 times", seed: 2, traces: 10, spans: 15, chunks: 3},
		{name: "50 traces, one entry per resource", seed: 3, traces: 50, spans: 20, chunks: 1},
		{name: "single span", seed: 4, traces: 1, spans: 1, chunks: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(tc.seed, 0))
			_, traces := modeltest.Traces(rng, tc.traces, tc.spans)
			req := batchRequest(rng, traces, tc.chunks)
			if tc.traces > 1 {
				requireInterleaved(t, req)
			}
			b, err := proto.Marshal(req)
			require.NoError(t, err)

			split, err := model.SplitByTrace(b)
			require.NoError(t, err)

			// The outputs are copies: scribbling over the request changes nothing.
			for i := range b {
				b[i] = 0xff
			}
			requireSplitMatches(t, req.ResourceSpans, split)
			require.Len(t, split.IDs, tc.traces)
		})
	}
}

// requireInterleaved checks that req mixes traces the way collectors send
// them: a trace spread over several ResourceSpans and ScopeSpans, and a
// ScopeSpans holding spans of several traces.
func requireInterleaved(tb testing.TB, req *coltracepb.ExportTraceServiceRequest) {
	tb.Helper()
	require.GreaterOrEqual(tb, len(req.ResourceSpans), 2)
	rsOf := map[string]map[int]bool{}
	ssOf := map[string]map[[2]int]bool{}
	mixedScope := false
	for i, rs := range req.ResourceSpans {
		for j, ss := range rs.ScopeSpans {
			ids := map[string]bool{}
			for _, s := range ss.Spans {
				id := string(s.TraceId)
				ids[id] = true
				if rsOf[id] == nil {
					rsOf[id], ssOf[id] = map[int]bool{}, map[[2]int]bool{}
				}
				rsOf[id][i] = true
				ssOf[id][[2]int{i, j}] = true
			}
			mixedScope = mixedScope || len(ids) > 1
		}
	}
	spread := false
	for id := range rsOf {
		spread = spread || (len(rsOf[id]) > 1 && len(ssOf[id]) > 2)
	}
	require.True(tb, mixedScope, "some ScopeSpans holds spans of several traces")
	require.True(tb, spread, "some trace spans several ResourceSpans and ScopeSpans")
}

// placed is a span with the resource and scope it was sent under.
type placed struct {
	resource *resourcev1.Resource
	rsSchema string
	scope    *commonv1.InstrumentationScope
	ssSchema string
	span     *tracev1.Span
}

func flatten(rss []*tracev1.ResourceSpans) []placed {
	var out []placed
	for _, rs := range rss {
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				out = append(out, placed{rs.Resource, rs.SchemaUrl, ss.Scope, ss.SchemaUrl, s})
			}
		}
	}
	return out
}

// requireSplitMatches checks a split of the request made of rss: one output
// per trace ID in order of first appearance, each holding exactly that trace's
// spans in request order, each under its original resource and scope.
func requireSplitMatches(tb testing.TB, rss []*tracev1.ResourceSpans, split *model.Split) {
	tb.Helper()
	all := flatten(rss)
	require.Equal(tb, len(all), split.Spans)
	require.Len(tb, split.Traces, len(split.IDs))

	var wantIDs []model.TraceID
	byID := map[model.TraceID][]placed{}
	for _, p := range all {
		id := model.TraceID(p.span.TraceId)
		if _, ok := byID[id]; !ok {
			wantIDs = append(wantIDs, id)
		}
		byID[id] = append(byID[id], p)
	}
	require.Equal(tb, wantIDs, split.IDs)

	total := 0
	for i, id := range split.IDs {
		var td tracev1.TracesData
		require.NoError(tb, proto.Unmarshal(split.Traces[i], &td), "trace %s", id)
		for _, rs := range td.ResourceSpans {
			require.NotEmpty(tb, rs.ScopeSpans, "trace %s: empty ResourceSpans", id)
			for _, ss := range rs.ScopeSpans {
				require.NotEmpty(tb, ss.Spans, "trace %s: empty ScopeSpans", id)
			}
		}
		got, want := flatten(td.ResourceSpans), byID[id]
		require.Len(tb, got, len(want), "trace %s", id)
		for j := range got {
			w, g := want[j], got[j]
			require.Truef(tb, proto.Equal(w.span, g.span), "trace %s span %d differs", id, j)
			require.Truef(tb, proto.Equal(w.resource, g.resource), "trace %s span %d: wrong resource", id, j)
			require.Truef(tb, proto.Equal(w.scope, g.scope), "trace %s span %d: wrong scope", id, j)
			require.Equal(tb, w.rsSchema, g.rsSchema, "trace %s span %d", id, j)
			require.Equal(tb, w.ssSchema, g.ssSchema, "trace %s span %d", id, j)
		}
		total += len(got)
	}
	require.Equal(tb, len(all), total, "nothing lost or added")
}

func TestSplitByTraceErrors(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	_, traces := modeltest.Traces(rng, 2, 4)
	valid, err := proto.Marshal(batchRequest(rng, traces, 1))
	require.NoError(t, err)

	goodSpan := &tracev1.Span{TraceId: bytes.Repeat([]byte{0xab}, 16), SpanId: []byte{1, 2, 3, 4, 5, 6, 7, 8}, Name: "ok"}
	spanWith := func(traceID []byte) []byte {
		s := proto.Clone(goodSpan).(*tracev1.Span)
		s.TraceId = traceID
		return mustMarshal(t, s)
	}
	for _, tc := range []struct {
		name    string
		req     []byte
		wantErr string
	}{
		{name: "truncated by one byte", req: valid[:len(valid)-1], wantErr: "unexpected EOF"},
		{name: "truncated in the middle", req: valid[:len(valid)/2], wantErr: "unexpected EOF"},
		{name: "tag without length", req: []byte{0x0a}, wantErr: "field 1"},
		{name: "length past the end", req: []byte{0x0a, 0x05, 0x12}, wantErr: "field 1"},
		{name: "field number zero", req: []byte{0x00, 0x00}, wantErr: "invalid field number"},
		{name: "bad varint", req: bytes.Repeat([]byte{0xff}, 11), wantErr: malformedPrefix},
		{name: "truncated ScopeSpans", req: wrapRS(protowire.AppendTag(nil, 2, protowire.BytesType)), wantErr: "field 2"},
		{name: "span not protobuf", req: requestOf([]byte{0xff, 0xff}), wantErr: "span 1"},
		{name: "trace_id of 8 bytes", req: requestOf(spanWith(make8(1))), wantErr: "trace_id has 8 bytes, want 16"},
		{name: "trace_id of 17 bytes", req: requestOf(spanWith(bytes.Repeat([]byte{1}, 17))), wantErr: "trace_id has 17 bytes, want 16"},
		{name: "missing trace_id", req: requestOf(spanWith(nil)), wantErr: "span without a trace_id"},
		{name: "all-zero trace_id", req: requestOf(spanWith(make([]byte, 16))), wantErr: "span without a trace_id"},
		{name: "trace_id as varint", req: requestOf(protowire.AppendVarint(protowire.AppendTag(nil, 1, protowire.VarintType), 7)), wantErr: "span without a trace_id"},
		{name: "third span bad", req: requestOf(spanWith(goodSpan.TraceId), spanWith(goodSpan.TraceId), spanWith(make8(2))), wantErr: "span 3:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			split, err := model.SplitByTrace(tc.req)
			require.ErrorIs(t, err, model.ErrMalformed)
			require.ErrorContains(t, err, tc.wantErr)
			require.Nil(t, split)
		})
	}
}

const malformedPrefix = "malformed OTLP trace data"

func TestSplitByTraceNoSpans(t *testing.T) {
	unknown := protowire.AppendVarint(protowire.AppendTag(nil, 99, protowire.VarintType), 1)
	for _, tc := range []struct {
		name string
		req  []byte
	}{
		{name: "empty", req: nil},
		{name: "empty ResourceSpans", req: mustMarshal(t, &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracev1.ResourceSpans{{}}})},
		{name: "resource without scopes", req: mustMarshal(t, &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracev1.ResourceSpans{{
			Resource: &resourcev1.Resource{Attributes: []*commonv1.KeyValue{{Key: "service.name", Value: &commonv1.AnyValue{Value: &commonv1.AnyValue_StringValue{StringValue: "x"}}}}},
		}}})},
		{name: "scope without spans", req: mustMarshal(t, &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracev1.ResourceSpans{{
			ScopeSpans: []*tracev1.ScopeSpans{{Scope: &commonv1.InstrumentationScope{Name: "lib"}}},
		}}})},
		{name: "unknown fields only", req: unknown},
	} {
		t.Run(tc.name, func(t *testing.T) {
			split, err := model.SplitByTrace(tc.req)
			require.NoError(t, err)
			require.Zero(t, split.Spans)
			require.Empty(t, split.IDs)
			require.Empty(t, split.Traces)
		})
	}
}

func TestSplitByTraceSkipsUnknownFields(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 0))
	_, traces := modeltest.Traces(rng, 3, 5)
	req := batchRequest(rng, traces, 2)
	b := mustMarshal(t, req)
	// An unknown field before, between and after the ResourceSpans, of every wire type.
	var withUnknown []byte
	withUnknown = protowire.AppendVarint(protowire.AppendTag(withUnknown, 50, protowire.VarintType), 300)
	withUnknown = append(withUnknown, b...)
	withUnknown = protowire.AppendFixed32(protowire.AppendTag(withUnknown, 51, protowire.Fixed32Type), 1)
	withUnknown = protowire.AppendFixed64(protowire.AppendTag(withUnknown, 52, protowire.Fixed64Type), 1)
	withUnknown = protowire.AppendBytes(protowire.AppendTag(withUnknown, 53, protowire.BytesType), []byte("x"))
	withUnknown = protowire.AppendTag(withUnknown, 54, protowire.StartGroupType)
	withUnknown = protowire.AppendTag(withUnknown, 54, protowire.EndGroupType)

	split, err := model.SplitByTrace(withUnknown)
	require.NoError(t, err)
	requireSplitMatches(t, req.ResourceSpans, split)
}

func TestSplitByTraceIdempotent(t *testing.T) {
	rng := rand.New(rand.NewPCG(12, 0))
	_, traces := modeltest.Traces(rng, 5, 10)
	split, err := model.SplitByTrace(mustMarshal(t, batchRequest(rng, traces, 2)))
	require.NoError(t, err)
	for i, tr := range split.Traces {
		again, err := model.SplitByTrace(tr)
		require.NoError(t, err)
		require.Equal(t, []model.TraceID{split.IDs[i]}, again.IDs)
		require.Equal(t, tr, again.Traces[0], "an already split trace comes out byte for byte")
	}
}

func FuzzSplitByTrace(f *testing.F) {
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, req []byte) {
		split, err := model.SplitByTrace(req)
		if err != nil {
			require.ErrorIs(t, err, model.ErrMalformed)
			require.Nil(t, split)
			return
		}
		require.Len(t, split.Traces, len(split.IDs))
		require.GreaterOrEqual(t, split.Spans, len(split.IDs))
		seen := map[model.TraceID]bool{}
		total := 0
		for i, id := range split.IDs {
			require.False(t, id.IsZero())
			require.False(t, seen[id], "trace %s twice", id)
			seen[id] = true

			// Round trip: re-splitting an output gives its ID back, and the
			// same bytes.
			again, err := model.SplitByTrace(split.Traces[i])
			require.NoError(t, err)
			require.Equal(t, []model.TraceID{id}, again.IDs)
			require.Equal(t, split.Traces[i], again.Traces[0])
			total += again.Spans
		}
		require.Equal(t, split.Spans, total)

		// Re-splitting all outputs at once (concatenated TracesData merge) gives
		// the same IDs in the same order.
		all, err := model.SplitByTrace(bytes.Join(split.Traces, nil))
		require.NoError(t, err)
		require.Equal(t, split.IDs, all.IDs)
		require.Equal(t, split.Spans, all.Spans)

		// When the request is valid protobuf, the outputs are too, and hold
		// the very spans of the request.
		var decoded coltracepb.ExportTraceServiceRequest
		if proto.Unmarshal(req, &decoded) != nil {
			return
		}
		want := map[model.TraceID][]*tracev1.Span{}
		for _, p := range flatten(decoded.ResourceSpans) {
			id := model.TraceID(p.span.TraceId)
			want[id] = append(want[id], p.span)
		}
		for i, id := range split.IDs {
			var td tracev1.TracesData
			require.NoError(t, proto.Unmarshal(split.Traces[i], &td))
			got := flatten(td.ResourceSpans)
			require.Len(t, got, len(want[id]))
			for j := range got {
				require.True(t, proto.Equal(want[id][j], got[j].span), "trace %s span %d", id, j)
			}
		}
	})
}

// TestWriteFuzzSeeds regenerates the generated seeds of FuzzSplitByTrace
// (go test -run TestWriteFuzzSeeds -update-seeds ./internal/model).
func TestWriteFuzzSeeds(t *testing.T) {
	if !*updateSeeds {
		t.Skip("run with -update-seeds to rewrite testdata/fuzz/FuzzSplitByTrace")
	}
	rng := rand.New(rand.NewPCG(2026, 3))
	_, one := modeltest.Traces(rng, 1, 3)
	_, three := modeltest.Traces(rng, 3, 1)
	oneB := mustMarshal(t, batchRequest(rng, one, 1))
	threeB := mustMarshal(t, batchRequest(rng, three, 2))
	goodSpan := &tracev1.Span{TraceId: bytes.Repeat([]byte{0xab}, 16), SpanId: make8(1), Name: "ok"}
	shortID := &tracev1.Span{TraceId: make8(9), SpanId: make8(1), Name: "zipkin"}
	seeds := map[string][]byte{
		"modeltest-one-trace":         oneB,
		"modeltest-three-interleaved": threeB,
		"truncated":                   threeB[:len(threeB)-3],
		"minimal":                     requestOf(mustMarshal(t, goodSpan)),
		"trace-id-8-bytes":            requestOf(mustMarshal(t, shortID)),
		"no-trace-id":                 requestOf(mustMarshal(t, &tracev1.Span{Name: "orphan"})),
		"two-spans-two-traces":        requestOf(mustMarshal(t, goodSpan), mustMarshal(t, &tracev1.Span{TraceId: bytes.Repeat([]byte{0xcd}, 16), Name: "b"})),
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzSplitByTrace")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	for name, b := range seeds {
		writeSeed(t, filepath.Join(dir, name), b)
	}
}

func writeSeed(tb testing.TB, path string, b []byte) {
	tb.Helper()
	content := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)
	require.Less(tb, len(content), 20<<10, "seed %s too big", path)
	require.NoError(tb, os.WriteFile(path, []byte(content), 0o644))
}

// BenchmarkSplitByTrace is the distributor's receive-and-route hot path: a
// 1000-span batch of ~20-span traces, as a collector sends it, cut by trace.
func BenchmarkSplitByTrace(b *testing.B) {
	benchmarkRequest(b, func(req []byte) error {
		split, err := model.SplitByTrace(req)
		if err == nil && split.Spans != benchSpans {
			err = fmt.Errorf("%d spans", split.Spans)
		}
		return err
	})
}

// BenchmarkCheckTracesData checks the request BenchmarkSplitByTrace splits,
// as the distributor does before splitting it.
func BenchmarkCheckTracesData(b *testing.B) {
	benchmarkRequest(b, model.CheckTracesData)
}

const benchSpans = 1000

// benchmarkRequest runs fn on a request of benchSpans spans in traces of 20
// on average and reports spans/s and bytes/span.
func benchmarkRequest(b *testing.B, fn func(req []byte) error) {
	rng := rand.New(rand.NewPCG(42, 42))
	req := mustMarshal(b, batchRequest(rng, tracesOfSpans(rng, benchSpans, 20), 1))
	b.SetBytes(int64(len(req)))
	b.ReportAllocs()
	for b.Loop() {
		if err := fn(req); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(benchSpans)*float64(b.N)/b.Elapsed().Seconds(), "spans/s")
	b.ReportMetric(float64(len(req))/benchSpans, "bytes/span")
}

// tracesOfSpans makes traces of about mean spans each, total spans in all.
func tracesOfSpans(rng *rand.Rand, total, mean int) []*tracev1.TracesData {
	var traces []*tracev1.TracesData
	for ids := modeltest.IDs(rng, total); total > 0; ids = ids[1:] {
		n := min(modeltest.SpanCount(rng, mean), total)
		traces = append(traces, modeltest.Trace(rng, ids[0], n))
		total -= n
	}
	return traces
}

// batchRequest merges traces into one request the way a collector batches
// them: spans of one service and instrumentation scope share one ScopeSpans
// (under the first resource and scope seen for them), in shuffled order, so
// traces interleave. Each distinct resource is sent as
// chunks separate ResourceSpans entries, in shuffled order, so a resource
// can come back after another.
func batchRequest(rng *rand.Rand, traces []*tracev1.TracesData, chunks int) *coltracepb.ExportTraceServiceRequest {
	type scope struct {
		ss    *tracev1.ScopeSpans
		spans []*tracev1.Span
	}
	type resource struct {
		rs     *tracev1.ResourceSpans
		scopes []*scope
		byKey  map[string]*scope
	}
	var resources []*resource
	byKey := map[string]*resource{}
	for _, td := range traces {
		for _, rs := range td.ResourceSpans {
			rk := serviceName(rs.Resource)
			r := byKey[rk]
			if r == nil {
				r = &resource{rs: rs, byKey: map[string]*scope{}}
				byKey[rk] = r
				resources = append(resources, r)
			}
			for _, ss := range rs.ScopeSpans {
				s := r.byKey[ss.Scope.GetName()]
				if s == nil {
					s = &scope{ss: ss}
					r.byKey[ss.Scope.GetName()] = s
					r.scopes = append(r.scopes, s)
				}
				s.spans = append(s.spans, ss.Spans...)
			}
		}
	}
	req := &coltracepb.ExportTraceServiceRequest{}
	for _, r := range resources {
		entries := make([]*tracev1.ResourceSpans, chunks)
		for i := range entries {
			entries[i] = &tracev1.ResourceSpans{Resource: r.rs.Resource, SchemaUrl: r.rs.SchemaUrl}
		}
		for _, s := range r.scopes {
			rng.Shuffle(len(s.spans), func(i, j int) { s.spans[i], s.spans[j] = s.spans[j], s.spans[i] })
			per := (len(s.spans) + chunks - 1) / chunks
			for i, e := range entries {
				part := s.spans[min(i*per, len(s.spans)):min((i+1)*per, len(s.spans))]
				if len(part) > 0 {
					e.ScopeSpans = append(e.ScopeSpans, &tracev1.ScopeSpans{Scope: s.ss.Scope, SchemaUrl: s.ss.SchemaUrl, Spans: part})
				}
			}
		}
		for _, e := range entries {
			if len(e.ScopeSpans) > 0 {
				req.ResourceSpans = append(req.ResourceSpans, e)
			}
		}
	}
	rng.Shuffle(len(req.ResourceSpans), func(i, j int) {
		req.ResourceSpans[i], req.ResourceSpans[j] = req.ResourceSpans[j], req.ResourceSpans[i]
	})
	return req
}

func serviceName(r *resourcev1.Resource) string {
	for _, kv := range r.GetAttributes() {
		if kv.Key == "service.name" {
			return kv.Value.GetStringValue()
		}
	}
	return ""
}

// requestOf wraps encoded spans in one ScopeSpans of one ResourceSpans.
func requestOf(spans ...[]byte) []byte {
	var ss []byte
	for _, s := range spans {
		ss = protowire.AppendBytes(protowire.AppendTag(ss, 2, protowire.BytesType), s)
	}
	return wrapRS(protowire.AppendBytes(protowire.AppendTag(nil, 2, protowire.BytesType), ss))
}

// wrapRS wraps the encoded fields of a ResourceSpans in a request.
func wrapRS(rs []byte) []byte {
	return protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), rs)
}

func make8(last byte) []byte { return []byte{0, 0, 0, 0, 0, 0, 0, last} }

func mustMarshal(tb testing.TB, m proto.Message) []byte {
	tb.Helper()
	b, err := proto.Marshal(m)
	require.NoError(tb, err)
	return b
}
