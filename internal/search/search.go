// Package search runs search jobs over whole traces, wherever they come from
// (an ingester's WAL, a block), and combines the answers of many jobs into
// Tempo's search responses. Ingesters, queriers and the frontend share it.
package search

import (
	"cmp"
	"encoding/hex"
	"slices"

	commonv1 "go.opentelemetry.io/proto/otlp/common/v1"
	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/vivace-dev/vivace/internal/traceql"
	"github.com/vivace-dev/vivace/internal/vivacepb"
)

// DefaultSpansPerSpanSet is Tempo's default of spss.
const DefaultSpansPerSpanSet = 3

// NoRoot is the root service name Tempo shows for a trace whose root span
// has not arrived (yet).
const NoRoot = "<root span not yet received>"

// Matcher tests traces against one search job.
type Matcher struct {
	Query      *traceql.Query
	start, end uint64 // unix nanoseconds; 0 is open
	spss       int
}

// NewMatcher parses the job's query; a syntax error is a *traceql.ParseError.
func NewMatcher(job *vivacepb.SearchJob) (*Matcher, error) {
	q, err := traceql.Parse(job.Query)
	if err != nil {
		return nil, err
	}
	m := &Matcher{Query: q, spss: int(job.SpansPerSpanSet)}
	if m.spss == 0 {
		m.spss = DefaultSpansPerSpanSet
	}
	if job.Start > 0 {
		m.start = uint64(job.Start) * 1e9
	}
	if job.End > 0 {
		m.end = uint64(job.End+1) * 1e9 // the whole end second
	}
	return m, nil
}

// TimeRange is the job's time range in unix nanoseconds, [start, end), 0
// open: Match leaves out the traces that end before start or start at or
// after end.
func (m *Matcher) TimeRange() (start, end uint64) { return m.start, m.end }

// Match returns the trace's search result, or nil when it does not match or
// lies outside the job's time range.
func (m *Matcher) Match(td *tracev1.TracesData) *vivacepb.TraceSearchMetadata {
	sum, sets := m.Query.EvalIf(td, func(sum traceql.TraceSummary) bool {
		return !(m.start > 0 && sum.StartUnixNano+sum.DurationNanos < m.start) && !(m.end > 0 && sum.StartUnixNano >= m.end)
	})
	if len(sets) == 0 {
		return nil // no spans, outside the time range, or no match
	}
	md := &vivacepb.TraceSearchMetadata{
		TraceID:           sum.TraceID.String(),
		RootServiceName:   sum.RootServiceName,
		RootTraceName:     sum.RootSpanName,
		StartTimeUnixNano: sum.StartUnixNano,
		DurationMs:        uint32(sum.DurationNanos / 1e6),
	}
	if !sum.HasRoot {
		md.RootServiceName, md.RootTraceName = NoRoot, ""
	}
	for _, s := range sets {
		md.SpanSets = append(md.SpanSets, m.spanSet(s))
	}
	md.SpanSet = md.SpanSets[0]
	return md
}

func (m *Matcher) spanSet(s traceql.SpanSet) *vivacepb.SpanSet {
	out := &vivacepb.SpanSet{Matched: uint32(s.Matched)}
	for _, kv := range s.By {
		out.Attributes = append(out.Attributes, keyValue(kv))
	}
	for _, sp := range s.Spans[:min(len(s.Spans), m.spss)] {
		o := &vivacepb.Span{
			SpanID:            hex.EncodeToString(sp.SpanID),
			Name:              sp.Name,
			StartTimeUnixNano: sp.StartUnixNano,
			DurationNanos:     sp.DurationNanos,
		}
		for _, kv := range sp.Attributes {
			o.Attributes = append(o.Attributes, keyValue(kv))
		}
		out.Spans = append(out.Spans, o)
	}
	return out
}

func keyValue(kv traceql.KeyValue) *commonv1.KeyValue {
	return &commonv1.KeyValue{Key: kv.Key, Value: kv.Value.AnyValue()}
}

// Results combines the answers of search jobs: one result per trace ID
// (replicas and a trace split between WAL and blocks answer twice), with
// summed metrics.
type Results struct {
	limit, spss int
	traces      map[string]*vivacepb.TraceSearchMetadata
	metrics     *vivacepb.SearchMetrics
}

// NewResults combines up to limit traces (0: no limit) with at most spss
// spans per span set (0: the default).
func NewResults(limit, spss int) *Results {
	if spss == 0 {
		spss = DefaultSpansPerSpanSet
	}
	return &Results{limit: limit, spss: spss, traces: map[string]*vivacepb.TraceSearchMetadata{}, metrics: &vivacepb.SearchMetrics{}}
}

// Add merges one job's answer.
func (r *Results) Add(resp *vivacepb.SearchResponse) {
	for _, t := range resp.GetTraces() {
		r.AddTrace(t)
	}
	m := resp.GetMetrics()
	r.metrics.InspectedTraces += m.GetInspectedTraces()
	r.metrics.InspectedBytes += m.GetInspectedBytes()
	r.metrics.InspectedSpans += m.GetInspectedSpans()
	r.metrics.TotalBlocks += m.GetTotalBlocks()
	r.metrics.TotalBlockBytes += m.GetTotalBlockBytes()
}

// AddTrace merges one trace's result.
func (r *Results) AddTrace(t *vivacepb.TraceSearchMetadata) {
	old := r.traces[t.TraceID]
	if old == nil {
		r.traces[t.TraceID] = t
		return
	}
	end := max(old.StartTimeUnixNano+uint64(old.DurationMs)*1e6, t.StartTimeUnixNano+uint64(t.DurationMs)*1e6)
	if t.StartTimeUnixNano < old.StartTimeUnixNano {
		old.StartTimeUnixNano = t.StartTimeUnixNano
	}
	old.DurationMs = uint32((end - old.StartTimeUnixNano) / 1e6)
	if old.RootServiceName == NoRoot && t.RootServiceName != NoRoot {
		old.RootServiceName, old.RootTraceName = t.RootServiceName, t.RootTraceName
	}
	for _, s := range t.SpanSets {
		r.mergeSpanSet(old, s)
	}
	if len(old.SpanSets) > 0 {
		old.SpanSet = old.SpanSets[0]
	}
}

// mergeSpanSet adds s to the span set of t with the same attributes (the
// same by() group), uniting their spans by ID.
func (r *Results) mergeSpanSet(t *vivacepb.TraceSearchMetadata, s *vivacepb.SpanSet) {
	i := slices.IndexFunc(t.SpanSets, func(o *vivacepb.SpanSet) bool { return sameAttributes(o.Attributes, s.Attributes) })
	if i < 0 {
		t.SpanSets = append(t.SpanSets, s)
		return
	}
	o := t.SpanSets[i]
	for _, sp := range s.Spans {
		if !slices.ContainsFunc(o.Spans, func(x *vivacepb.Span) bool { return x.SpanID == sp.SpanID }) {
			o.Spans = append(o.Spans, sp)
		}
	}
	slices.SortFunc(o.Spans, func(a, b *vivacepb.Span) int {
		return cmp.Or(cmp.Compare(a.StartTimeUnixNano, b.StartTimeUnixNano), cmp.Compare(a.SpanID, b.SpanID))
	})
	o.Spans = o.Spans[:min(len(o.Spans), r.spss)]
	o.Matched = max(o.Matched, s.Matched, uint32(len(o.Spans)))
}

func sameAttributes(a, b []*commonv1.KeyValue) bool {
	return slices.EqualFunc(a, b, func(x, y *commonv1.KeyValue) bool {
		return x.Key == y.Key && x.Value.String() == y.Value.String()
	})
}

// Len is how many distinct traces were found.
func (r *Results) Len() int { return len(r.traces) }

// Full tells whether limit traces were found.
func (r *Results) Full() bool { return r.limit > 0 && len(r.traces) >= r.limit }

// Response returns the most recent traces first, at most limit of them.
func (r *Results) Response() *vivacepb.SearchResponse {
	traces := make([]*vivacepb.TraceSearchMetadata, 0, len(r.traces))
	for _, t := range r.traces {
		traces = append(traces, t)
	}
	slices.SortFunc(traces, func(a, b *vivacepb.TraceSearchMetadata) int {
		return cmp.Or(cmp.Compare(b.StartTimeUnixNano, a.StartTimeUnixNano), cmp.Compare(a.TraceID, b.TraceID))
	})
	if r.limit > 0 && len(traces) > r.limit {
		traces = traces[:r.limit]
	}
	return &vivacepb.SearchResponse{Traces: traces, Metrics: proto.CloneOf(r.metrics)}
}
