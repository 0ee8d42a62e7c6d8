package search

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	commonv1 "go.opentelemetry.io/proto/otlp/common/v1"
	resourcev1 "go.opentelemetry.io/proto/otlp/resource/v1"
	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/vivace-dev/vivace/internal/model"
	"github.com/vivace-dev/vivace/internal/traceql"
	"github.com/vivace-dev/vivace/internal/vivacepb"
)

// base is a whole second: the edges of a job's time range are seconds.
var base = time.Date(2026, time.March, 14, 15, 9, 0, 0, time.UTC)

var testID = model.TraceID{0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10}

// testSpan is a span of a test trace: its service, name, parent (0: a
// root), and start and end as offsets from base.
type testSpan struct {
	service, name string
	id, parent    byte
	start, end    time.Duration
	attrs         map[string]string
}

// testTrace builds a trace with one ResourceSpans per span, as several
// services send them.
func testTrace(id model.TraceID, spans ...testSpan) *tracev1.TracesData {
	td := &tracev1.TracesData{}
	for _, s := range spans {
		span := &tracev1.Span{
			TraceId:           id[:],
			SpanId:            []byte{0, 0, 0, 0, 0, 0, 0, s.id},
			Name:              s.name,
			StartTimeUnixNano: uint64(base.Add(s.start).UnixNano()),
			EndTimeUnixNano:   uint64(base.Add(s.end).UnixNano()),
		}
		if s.parent != 0 {
			span.ParentSpanId = []byte{0, 0, 0, 0, 0, 0, 0, s.parent}
		}
		for k, v := range s.attrs {
			span.Attributes = append(span.Attributes, str(k, v))
		}
		td.ResourceSpans = append(td.ResourceSpans, &tracev1.ResourceSpans{
			Resource:   &resourcev1.Resource{Attributes: []*commonv1.KeyValue{str("service.name", s.service)}},
			ScopeSpans: []*tracev1.ScopeSpans{{Spans: []*tracev1.Span{span}}},
		})
	}
	return td
}

func str(k, v string) *commonv1.KeyValue {
	return &commonv1.KeyValue{Key: k, Value: &commonv1.AnyValue{Value: &commonv1.AnyValue_StringValue{StringValue: v}}}
}

func newMatcher(t *testing.T, job *vivacepb.SearchJob) *Matcher {
	t.Helper()
	m, err := NewMatcher(job)
	require.NoError(t, err)
	return m
}

func TestNewMatcherParseError(t *testing.T) {
	_, err := NewMatcher(&vivacepb.SearchJob{Query: `{ name = }`})
	var pe *traceql.ParseError
	require.ErrorAs(t, err, &pe)
}

// TestMatchResult: a matching trace's result holds its root, its time range
// and its span sets; a trace that does not match, or has no spans, gives nil.
func TestMatchResult(t *testing.T) {
	td := testTrace(testID,
		testSpan{service: "frontend", name: "GET /", id: 1, start: 0, end: 1500 * time.Millisecond},
		testSpan{service: "cart", name: "HGET", id: 2, parent: 1, start: 100 * time.Millisecond, end: 200 * time.Millisecond, attrs: map[string]string{"db.system": "redis"}},
	)
	m := newMatcher(t, &vivacepb.SearchJob{Query: `{ span.db.system = "redis" }`})
	got := m.Match(td)
	want := &vivacepb.TraceSearchMetadata{
		TraceID:           testID.String(),
		RootServiceName:   "frontend",
		RootTraceName:     "GET /",
		StartTimeUnixNano: uint64(base.UnixNano()),
		DurationMs:        1500,
		SpanSets: []*vivacepb.SpanSet{{
			Matched: 1,
			Spans: []*vivacepb.Span{{
				SpanID:            "0000000000000002",
				Name:              "HGET",
				StartTimeUnixNano: uint64(base.Add(100 * time.Millisecond).UnixNano()),
				DurationNanos:     uint64(100 * time.Millisecond),
				Attributes:        []*commonv1.KeyValue{str("db.system", "redis")},
			}},
		}},
	}
	want.SpanSet = want.SpanSets[0]
	require.True(t, proto.Equal(want, got), "want %v\ngot  %v", want, got)

	require.Nil(t, newMatcher(t, &vivacepb.SearchJob{Query: `{ name = "nope" }`}).Match(td))
	require.Nil(t, newMatcher(t, &vivacepb.SearchJob{Query: `{}`}).Match(&tracev1.TracesData{}))
}

// TestMatchNoRoot: a trace whose root span has not arrived shows NoRoot as
// its root service and no root name.
func TestMatchNoRoot(t *testing.T) {
	td := testTrace(testID,
		testSpan{service: "cart", name: "HGET", id: 2, parent: 1, start: time.Second, end: 2 * time.Second},
		testSpan{service: "cart", name: "HMSET", id: 3, parent: 1, start: 0, end: time.Second},
	)
	md := newMatcher(t, &vivacepb.SearchJob{Query: `{}`}).Match(td)
	require.NotNil(t, md)
	require.Equal(t, NoRoot, md.RootServiceName)
	require.Empty(t, md.RootTraceName)
	require.Equal(t, uint64(base.UnixNano()), md.StartTimeUnixNano)
	require.Equal(t, uint32(2000), md.DurationMs)
}

// TestMatchSpansPerSpanSet: a span set keeps spss spans (3 by default) and
// counts them all.
func TestMatchSpansPerSpanSet(t *testing.T) {
	var spans []testSpan
	for i := range 6 {
		spans = append(spans, testSpan{service: "svc", name: "op", id: byte(i + 1), start: time.Duration(i) * time.Millisecond, end: time.Second})
	}
	td := testTrace(testID, spans...)
	for _, tc := range []struct{ spss, want uint32 }{{0, DefaultSpansPerSpanSet}, {1, 1}, {5, 5}, {10, 6}} {
		md := newMatcher(t, &vivacepb.SearchJob{Query: `{ name = "op" }`, SpansPerSpanSet: tc.spss}).Match(td)
		require.NotNil(t, md)
		require.Len(t, md.SpanSet.Spans, int(tc.want), "spss %d", tc.spss)
		require.Equal(t, uint32(6), md.SpanSet.Matched)
		require.Equal(t, "0000000000000001", md.SpanSet.Spans[0].SpanID, "earliest first")
	}
}

// TestMatchTimeRange: a trace matches a job's [start, end] (unix seconds,
// end second included) when its span times overlap it, to the nanosecond.
func TestMatchTimeRange(t *testing.T) {
	sec := base.Unix()
	// The trace runs from base+10s to base+20s.
	td := testTrace(testID,
		testSpan{service: "svc", name: "root", id: 1, start: 10 * time.Second, end: 15 * time.Second},
		testSpan{service: "svc", name: "child", id: 2, parent: 1, start: 11 * time.Second, end: 20 * time.Second},
	)
	for _, tc := range []struct {
		name       string
		start, end int64
		match      bool
	}{
		{"open", 0, 0, true},
		{"covering", sec, sec + 30, true},
		{"inside", sec + 12, sec + 13, true},
		{"ends at the trace start second", sec, sec + 10, true},
		{"ends the second before", sec, sec + 9, false},
		{"starts at the trace end", sec + 20, 0, true},
		{"starts the second after", sec + 21, 0, false},
		{"only end, before", 0, sec + 9, false},
		{"only end, at start", 0, sec + 10, true},
		{"only start, after", sec + 21, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newMatcher(t, &vivacepb.SearchJob{Query: `{}`, Start: tc.start, End: tc.end})
			require.Equal(t, tc.match, m.Match(td) != nil)
		})
	}

	// The edges to the nanosecond: the end second is included whole.
	m := newMatcher(t, &vivacepb.SearchJob{Query: `{}`, Start: sec + 5, End: sec + 6})
	start, end := m.TimeRange()
	require.Equal(t, uint64(base.Add(5*time.Second).UnixNano()), start)
	require.Equal(t, uint64(base.Add(7*time.Second).UnixNano()), end)
	at := func(from, to time.Duration) *tracev1.TracesData {
		return testTrace(testID, testSpan{service: "svc", name: "x", id: 1, start: from, end: to})
	}
	require.NotNil(t, m.Match(at(0, 5*time.Second)), "ends exactly at start")
	require.Nil(t, m.Match(at(0, 5*time.Second-1)), "ends a nanosecond before start")
	require.NotNil(t, m.Match(at(7*time.Second-1, 8*time.Second)), "starts in the last nanosecond of the end second")
	require.Nil(t, m.Match(at(7*time.Second, 8*time.Second)), "starts after the end second")

	start, end = newMatcher(t, &vivacepb.SearchJob{Query: `{}`}).TimeRange()
	require.Zero(t, start)
	require.Zero(t, end)
}

func result(id string, start time.Duration, durMs uint32, root string, spans ...*vivacepb.Span) *vivacepb.TraceSearchMetadata {
	md := &vivacepb.TraceSearchMetadata{
		TraceID:           id,
		RootServiceName:   root,
		StartTimeUnixNano: uint64(base.Add(start).UnixNano()),
		DurationMs:        durMs,
	}
	if root != NoRoot {
		md.RootTraceName = root + "-op"
	}
	if spans != nil {
		md.SpanSets = []*vivacepb.SpanSet{{Spans: spans, Matched: uint32(len(spans))}}
		md.SpanSet = md.SpanSets[0]
	}
	return md
}

func span(id string, start time.Duration) *vivacepb.Span {
	return &vivacepb.Span{SpanID: id, StartTimeUnixNano: uint64(base.Add(start).UnixNano())}
}

// TestResultsCombine: answers for the same trace (from replicas, or from an
// ingester and a block) merge into one result covering both.
func TestResultsCombine(t *testing.T) {
	r := NewResults(0, 2)
	// From an ingester: the root has not arrived; two spans matched.
	r.Add(&vivacepb.SearchResponse{
		Traces:  []*vivacepb.TraceSearchMetadata{result("t1", time.Second, 1000, NoRoot, span("b", 1500*time.Millisecond), span("c", 1200*time.Millisecond))},
		Metrics: &vivacepb.SearchMetrics{InspectedTraces: 3, InspectedBytes: 100, InspectedSpans: 30},
	})
	// From a block: the root, earlier, and a span seen already.
	r.Add(&vivacepb.SearchResponse{
		Traces:  []*vivacepb.TraceSearchMetadata{result("t1", 0, 1200, "frontend", span("a", 0), span("b", 1500*time.Millisecond))},
		Metrics: &vivacepb.SearchMetrics{InspectedTraces: 4, InspectedBytes: 200, InspectedSpans: 40, TotalBlocks: 1, TotalBlockBytes: 5000},
	})
	require.Equal(t, 1, r.Len())
	resp := r.Response()
	require.Len(t, resp.Traces, 1)
	got := resp.Traces[0]
	require.Equal(t, uint64(base.UnixNano()), got.StartTimeUnixNano)
	require.Equal(t, uint32(2000), got.DurationMs, "from the earliest start to the latest end")
	require.Equal(t, "frontend", got.RootServiceName)
	require.Equal(t, "frontend-op", got.RootTraceName)
	require.Len(t, got.SpanSets, 1)
	require.Same(t, got.SpanSets[0], got.SpanSet)
	var ids []string
	for _, s := range got.SpanSet.Spans {
		ids = append(ids, s.SpanID)
	}
	require.Equal(t, []string{"a", "c"}, ids, "united by ID, earliest first, cut to spss")
	require.Equal(t, uint32(2), got.SpanSet.Matched)
	require.True(t, proto.Equal(&vivacepb.SearchMetrics{
		InspectedTraces: 7, InspectedBytes: 300, InspectedSpans: 70, TotalBlocks: 1, TotalBlockBytes: 5000,
	}, resp.Metrics), "%v", resp.Metrics)

	// A root already known stays; span sets with other by() values stay apart.
	other := result("t1", 0, 1200, NoRoot, span("d", 0))
	other.SpanSets[0].Attributes = []*commonv1.KeyValue{str("by(span.x)", "1")}
	r.AddTrace(other)
	got = r.Response().Traces[0]
	require.Equal(t, "frontend", got.RootServiceName)
	require.Len(t, got.SpanSets, 2)
}

// TestResultsLimit: a response holds the most recent traces first, at most
// limit of them; Full says when limit traces were found.
func TestResultsLimit(t *testing.T) {
	r := NewResults(2, 0)
	require.False(t, r.Full())
	r.AddTrace(result("old", 0, 1, "svc"))
	r.AddTrace(result("new", 2*time.Second, 1, "svc"))
	require.True(t, r.Full())
	r.AddTrace(result("mid", time.Second, 1, "svc"))
	r.AddTrace(result("new", 2*time.Second, 1, "svc")) // again: one trace
	require.Equal(t, 3, r.Len())
	resp := r.Response()
	require.Len(t, resp.Traces, 2)
	require.Equal(t, "new", resp.Traces[0].TraceID)
	require.Equal(t, "mid", resp.Traces[1].TraceID)

	unlimited := NewResults(0, 0)
	for _, id := range []string{"b", "a", "c"} {
		unlimited.AddTrace(result(id, 0, 1, "svc"))
	}
	require.False(t, unlimited.Full())
	resp = unlimited.Response()
	require.Len(t, resp.Traces, 3)
	require.Equal(t, []string{"a", "b", "c"}, []string{resp.Traces[0].TraceID, resp.Traces[1].TraceID, resp.Traces[2].TraceID}, "same start: by ID")
	require.NotNil(t, resp.Metrics)
}
