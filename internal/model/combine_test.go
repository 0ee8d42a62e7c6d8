package model_test

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
	commonv1 "go.opentelemetry.io/proto/otlp/common/v1"
	resourcev1 "go.opentelemetry.io/proto/otlp/resource/v1"
	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/vivace-dev/vivace/internal/model"
	"github.com/vivace-dev/vivace/internal/model/modeltest"
)

var testTraceID = []byte{0x0a, 0xf7, 0x65, 0x19, 0x16, 0xcd, 0x43, 0xdd, 0x84, 0x48, 0xeb, 0x21, 0x1c, 0x80, 0x31, 0x9c}

func res(service string) *resourcev1.Resource {
	return &resourcev1.Resource{Attributes: []*commonv1.KeyValue{{
		Key: "service.name", Value: &commonv1.AnyValue{Value: &commonv1.AnyValue_StringValue{StringValue: service}},
	}}}
}

func scope(name string) *commonv1.InstrumentationScope {
	return &commonv1.InstrumentationScope{Name: name, Version: "1.0.0"}
}

func sp(id byte, kind tracev1.Span_SpanKind, name string) *tracev1.Span {
	return &tracev1.Span{TraceId: testTraceID, SpanId: []byte{0, 0, 0, 0, 0, 0, 0x10, id}, Kind: kind, Name: name}
}

func rs(r *resourcev1.Resource, schema string, sss ...*tracev1.ScopeSpans) *tracev1.ResourceSpans {
	return &tracev1.ResourceSpans{Resource: r, SchemaUrl: schema, ScopeSpans: sss}
}

func ss(s *commonv1.InstrumentationScope, spans ...*tracev1.Span) *tracev1.ScopeSpans {
	return &tracev1.ScopeSpans{Scope: s, Spans: spans}
}

func td(rss ...*tracev1.ResourceSpans) *tracev1.TracesData {
	return &tracev1.TracesData{ResourceSpans: rss}
}

func TestCombine(t *testing.T) {
	const (
		server   = tracev1.Span_SPAN_KIND_SERVER
		client   = tracev1.Span_SPAN_KIND_CLIENT
		internal = tracev1.Span_SPAN_KIND_INTERNAL
	)
	var (
		front, cart = res("frontend"), res("cart")
		http, redis = scope("http"), scope("redis")
	)
	for _, tc := range []struct {
		name  string
		parts []*tracev1.TracesData
		want  *tracev1.TracesData
	}{
		{name: "no parts"},
		{name: "nil and empty parts", parts: []*tracev1.TracesData{nil, {}, td(rs(front, "", ss(http)))}},
		{
			name:  "one part unchanged",
			parts: []*tracev1.TracesData{td(rs(front, "", ss(http, sp(1, server, "GET /"), sp(2, client, "GET /cart"))))},
			want:  td(rs(front, "", ss(http, sp(1, server, "GET /"), sp(2, client, "GET /cart")))),
		},
		{
			name: "duplicates across parts removed",
			parts: []*tracev1.TracesData{
				td(rs(front, "", ss(http, sp(1, server, "GET /"), sp(2, client, "GET /cart")))),
				td(rs(front, "", ss(http, sp(2, client, "GET /cart"), sp(3, internal, "render")))),
				td(rs(front, "", ss(http, sp(3, internal, "render"), sp(1, server, "GET /")))),
			},
			want: td(rs(front, "", ss(http, sp(1, server, "GET /"), sp(2, client, "GET /cart"), sp(3, internal, "render")))),
		},
		{
			name: "zipkin shared span: same id, client and server, both kept",
			parts: []*tracev1.TracesData{
				td(rs(front, "", ss(http, sp(1, server, "GET /"), sp(2, client, "GET /cart")))),
				td(rs(cart, "", ss(http, sp(2, server, "GET /cart")))),
				td(rs(cart, "", ss(http, sp(2, server, "GET /cart"))), rs(front, "", ss(http, sp(2, client, "GET /cart")))), // replica
			},
			want: td(
				rs(front, "", ss(http, sp(1, server, "GET /"), sp(2, client, "GET /cart"))),
				rs(cart, "", ss(http, sp(2, server, "GET /cart"))),
			),
		},
		{
			name: "same resource and scope merged, scopes kept apart",
			parts: []*tracev1.TracesData{
				td(rs(cart, "", ss(http, sp(1, server, "GetCart")))),
				td(rs(cart, "", ss(redis, sp(2, client, "HGET")), ss(http, sp(3, server, "AddItem")))),
				td(rs(front, "", ss(http, sp(4, server, "GET /"))), rs(cart, "", ss(redis, sp(5, client, "HMSET")))),
			},
			want: td(
				rs(cart, "", ss(http, sp(1, server, "GetCart"), sp(3, server, "AddItem")), ss(redis, sp(2, client, "HGET"), sp(5, client, "HMSET"))),
				rs(front, "", ss(http, sp(4, server, "GET /"))),
			),
		},
		{
			name: "schema URL tells resources apart",
			parts: []*tracev1.TracesData{
				td(rs(cart, "https://opentelemetry.io/schemas/1.26.0", ss(http, sp(1, server, "a")))),
				td(rs(cart, "https://opentelemetry.io/schemas/1.27.0", ss(http, sp(2, server, "b")))),
			},
			want: td(
				rs(cart, "https://opentelemetry.io/schemas/1.26.0", ss(http, sp(1, server, "a"))),
				rs(cart, "https://opentelemetry.io/schemas/1.27.0", ss(http, sp(2, server, "b"))),
			),
		},
		{
			name: "duplicate under another resource leaves no empty resource",
			parts: []*tracev1.TracesData{
				td(rs(cart, "", ss(http, sp(1, server, "a")))),
				td(rs(front, "", ss(http, sp(1, server, "a"))), rs(cart, "", ss(redis, sp(1, server, "a")))),
			},
			want: td(rs(cart, "", ss(http, sp(1, server, "a")))),
		},
		{
			name: "spans without a valid span ID are all kept",
			parts: []*tracev1.TracesData{
				td(rs(cart, "", ss(http, &tracev1.Span{TraceId: testTraceID, Name: "no id"}))),
				td(rs(cart, "", ss(http, &tracev1.Span{TraceId: testTraceID, Name: "no id"}, &tracev1.Span{TraceId: testTraceID, SpanId: []byte{1, 2}, Name: "short id"}))),
			},
			want: td(rs(cart, "", ss(http,
				&tracev1.Span{TraceId: testTraceID, Name: "no id"},
				&tracev1.Span{TraceId: testTraceID, Name: "no id"},
				&tracev1.Span{TraceId: testTraceID, SpanId: []byte{1, 2}, Name: "short id"},
			))),
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := model.Combine(tc.parts...)
			if tc.want == nil {
				require.Nil(t, got)
				require.Zero(t, model.SpanCount(got))
				return
			}
			require.Truef(t, proto.Equal(tc.want, got), "want\n%v\ngot\n%v", tc.want, got)
			require.Equal(t, model.SpanCount(tc.want), model.SpanCount(got))
		})
	}
}

func TestCombineReplicasOfARealTrace(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	_, traces := modeltest.Traces(rng, 1, 60)
	trace := traces[0]
	n := model.SpanCount(trace)
	// Two overlapping halves, the second one in reverse, as partial results of
	// two ingesters and a block would come.
	a := filterSpans(trace, func(i int) bool { return i%3 != 2 })
	b := filterSpans(trace, func(i int) bool { return i%3 != 0 })
	reverseSpans(b)

	for _, tc := range []struct {
		name  string
		parts []*tracev1.TracesData
		exact bool // the result equals the original trace
	}{
		{name: "three identical replicas", parts: []*tracev1.TracesData{trace, proto.CloneOf(trace), proto.CloneOf(trace)}, exact: true},
		{name: "overlapping halves", parts: []*tracev1.TracesData{a, b}},
		{name: "overlapping halves, other order", parts: []*tracev1.TracesData{b, nil, a}},
		{name: "halves and the whole", parts: []*tracev1.TracesData{a, trace, b}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := model.Combine(tc.parts...)
			require.Equal(t, n, model.SpanCount(got))
			if tc.exact {
				require.True(t, proto.Equal(trace, got))
			}
			want := map[string]placed{}
			for _, p := range flatten(trace.ResourceSpans) {
				want[string(p.span.SpanId)] = p
			}
			for _, p := range flatten(got.ResourceSpans) {
				w, ok := want[string(p.span.SpanId)]
				require.True(t, ok, "span %x kept once", p.span.SpanId)
				delete(want, string(p.span.SpanId))
				require.True(t, proto.Equal(w.span, p.span))
				require.True(t, proto.Equal(w.resource, p.resource), "span %x under its resource", p.span.SpanId)
				require.True(t, proto.Equal(w.scope, p.scope), "span %x under its scope", p.span.SpanId)
			}
			require.Empty(t, want, "no span lost")
		})
	}
}

// filterSpans copies td keeping the spans whose index (in td's order) passes keep.
func filterSpans(td *tracev1.TracesData, keep func(int) bool) *tracev1.TracesData {
	out := &tracev1.TracesData{}
	i := 0
	for _, r := range td.ResourceSpans {
		outRS := &tracev1.ResourceSpans{Resource: r.Resource, SchemaUrl: r.SchemaUrl}
		for _, s := range r.ScopeSpans {
			outSS := &tracev1.ScopeSpans{Scope: s.Scope, SchemaUrl: s.SchemaUrl}
			for _, span := range s.Spans {
				if keep(i) {
					outSS.Spans = append(outSS.Spans, span)
				}
				i++
			}
			if len(outSS.Spans) > 0 {
				outRS.ScopeSpans = append(outRS.ScopeSpans, outSS)
			}
		}
		if len(outRS.ScopeSpans) > 0 {
			out.ResourceSpans = append(out.ResourceSpans, outRS)
		}
	}
	return out
}

func reverseSpans(td *tracev1.TracesData) {
	for _, r := range td.ResourceSpans {
		for _, s := range r.ScopeSpans {
			for i, j := 0, len(s.Spans)-1; i < j; i, j = i+1, j-1 {
				s.Spans[i], s.Spans[j] = s.Spans[j], s.Spans[i]
			}
		}
	}
}

func TestTruncate(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 9))
	_, traces := modeltest.Traces(rng, 1, 80)
	trace := traces[0]
	before := proto.CloneOf(trace)
	size, n := proto.Size(trace), model.SpanCount(trace)
	require.Greater(t, n, 20)
	firstSpan := proto.Size(flatten(trace.ResourceSpans)[0].span)
	// The first span with its resource and scope, and the 8-byte framing
	// estimate of each of the three.
	onlyFirst := proto.Size(filterSpans(trace, func(i int) bool { return i == 0 })) + 3*8

	for _, tc := range []struct {
		name     string
		maxBytes int
		cut      bool
		spans    int // when > 0, the spans kept
	}{
		{name: "no limit", maxBytes: 0},
		{name: "negative limit", maxBytes: -1},
		{name: "exactly fits", maxBytes: size},
		{name: "room to spare", maxBytes: size + 1000},
		{name: "one byte short", maxBytes: size - 1, cut: true},
		{name: "half", maxBytes: size / 2, cut: true},
		{name: "a tenth", maxBytes: size / 10, cut: true},
		{name: "room for the first span only", maxBytes: onlyFirst, cut: true, spans: 1},
		{name: "a byte short of the first span", maxBytes: onlyFirst - 1 - 3*8, cut: true},
		{name: "smaller than one span", maxBytes: firstSpan / 2, cut: true},
		{name: "one byte", maxBytes: 1, cut: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, cut := model.Truncate(trace, tc.maxBytes)
			require.Equal(t, tc.cut, cut)
			require.True(t, proto.Equal(before, trace), "the input is not modified")
			if !tc.cut {
				require.Same(t, trace, got)
				return
			}
			require.LessOrEqual(t, proto.Size(got), tc.maxBytes)
			k := model.SpanCount(got)
			require.Less(t, k, n)
			if tc.spans > 0 {
				require.Equal(t, tc.spans, k)
			}
			// A prefix of whole spans: the very span messages, under the same
			// resources and scopes, in the same grouping.
			require.True(t, proto.Equal(filterSpans(trace, func(i int) bool { return i < k }), got))
			all := flatten(trace.ResourceSpans)
			for i, p := range flatten(got.ResourceSpans) {
				require.Same(t, all[i].span, p.span)
			}
			// Nearly the longest such prefix: one more span would not fit but
			// for the estimate of up to 8 bytes of framing per message.
			next := filterSpans(trace, func(i int) bool { return i <= k })
			slack := 8 * (k + 1 + len(next.ResourceSpans) + countScopes(next))
			require.Greater(t, proto.Size(next)+slack, tc.maxBytes)
			t.Logf("max %d: %d of %d spans, %d bytes, one more span would be %d bytes", tc.maxBytes, k, n, proto.Size(got), proto.Size(next))
		})
	}
}

func countScopes(td *tracev1.TracesData) int {
	n := 0
	for _, r := range td.ResourceSpans {
		n += len(r.ScopeSpans)
	}
	return n
}
