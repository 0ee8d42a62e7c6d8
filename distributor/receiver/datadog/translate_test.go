package datadog

import (
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/tinylib/msgp/msgp"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonv1 "go.opentelemetry.io/proto/otlp/common/v1"
	resourcev1 "go.opentelemetry.io/proto/otlp/resource/v1"
	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

const (
	traceLow = 0xa3ce929d0e0e4736 // 11803532876627986230, as Kong logs it
	spanID   = 0x0102030405060708
	parentID = 0x1112131415161718
	startNs  = 1_700_000_000_000_000_000
	durNs    = 1_500_000
)

func baseSpan(mod func(*ddSpan)) ddSpan {
	s := ddSpan{Service: "web", Name: "http.request", Resource: "GET /users/{id}", TraceID: traceLow, SpanID: spanID, ParentID: parentID, Start: startNs, Duration: durNs}
	if mod != nil {
		mod(&s)
	}
	return s
}

func hex16(hi uint64) []byte {
	return []byte{byte(hi >> 56), byte(hi >> 48), byte(hi >> 40), byte(hi >> 32), byte(hi >> 24), byte(hi >> 16), byte(hi >> 8), byte(hi),
		0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36}
}

func str8(v uint64) []byte {
	return []byte{byte(v >> 56), byte(v >> 48), byte(v >> 40), byte(v >> 32), byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}
}

func sAttr(k, v string) *commonv1.KeyValue { return strAttr(k, v) }
func dAttr(k string, v float64) *commonv1.KeyValue {
	return &commonv1.KeyValue{Key: k, Value: &commonv1.AnyValue{Value: &commonv1.AnyValue_DoubleValue{DoubleValue: v}}}
}

// otlpSpan is the translation of baseSpan's fields, changed by mod.
func otlpSpan(mod func(*tracev1.Span)) *tracev1.Span {
	s := &tracev1.Span{
		TraceId: hex16(0), SpanId: str8(spanID), ParentSpanId: str8(parentID), Name: "GET /users/{id}",
		StartTimeUnixNano: startNs, EndTimeUnixNano: startNs + durNs,
		Attributes: []*commonv1.KeyValue{sAttr("operation.name", "http.request"), sAttr("resource.name", "GET /users/{id}")},
	}
	if mod != nil {
		mod(s)
	}
	return s
}

func res(attrs ...*commonv1.KeyValue) *resourcev1.Resource {
	return &resourcev1.Resource{Attributes: attrs}
}

var webResource = res(sAttr("service.name", "web"), sAttr("telemetry.sdk.name", "datadog"))

func one(r *resourcev1.Resource, spans ...*tracev1.Span) *tracev1.ResourceSpans {
	return &tracev1.ResourceSpans{Resource: r, ScopeSpans: []*tracev1.ScopeSpans{{Spans: spans}}}
}

// TestTranslate is the golden table of the Datadog → OTLP mapping: one rule
// per case, the expected OTLP written out by hand (translate.go lists the
// rules). Every case goes through the v0.4, v0.5 and v0.7 decoders (v0.7
// with the spans in one chunk and nothing else set).
func TestTranslate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		in     []ddSpan
		tracer tracer
		want   []*tracev1.ResourceSpans
	}{
		{name: "plain span", in: []ddSpan{baseSpan(nil)}, want: []*tracev1.ResourceSpans{one(webResource, otlpSpan(nil))}},
		{
			name: "root span has no parent",
			in:   []ddSpan{baseSpan(func(s *ddSpan) { s.ParentID = 0 })},
			want: []*tracev1.ResourceSpans{one(webResource, otlpSpan(func(s *tracev1.Span) { s.ParentSpanId = nil }))},
		},
		{
			name: "_dd.p.tid is the high 64 bits",
			in:   []ddSpan{baseSpan(func(s *ddSpan) { s.Meta = [][2]string{{"_dd.p.tid", "6578a1b200000000"}, {"_dd.p.dm", "-0"}} })},
			want: []*tracev1.ResourceSpans{one(webResource, otlpSpan(func(s *tracev1.Span) {
				s.TraceId = hex16(0x6578a1b200000000)
				s.Attributes = append(s.Attributes, sAttr("_dd.p.dm", "-0"))
			}))},
		},
		{
			name: "bad _dd.p.tid stays an attribute",
			in:   []ddSpan{baseSpan(func(s *ddSpan) { s.Meta = [][2]string{{"_dd.p.tid", "xyz"}} })},
			want: []*tracev1.ResourceSpans{one(webResource, otlpSpan(func(s *tracev1.Span) {
				s.Attributes = append(s.Attributes, sAttr("_dd.p.tid", "xyz"))
			}))},
		},
		{
			name: "span.kind sets the kind",
			in:   []ddSpan{baseSpan(func(s *ddSpan) { s.Meta = [][2]string{{"span.kind", "client"}}; s.Type = "web" })},
			want: []*tracev1.ResourceSpans{one(webResource, otlpSpan(func(s *tracev1.Span) {
				s.Kind = tracev1.Span_SPAN_KIND_CLIENT
				s.Attributes = append(s.Attributes, sAttr("span.type", "web"))
			}))},
		},
		{
			name: "type web is a server span",
			in:   []ddSpan{baseSpan(func(s *ddSpan) { s.Type = "web" })},
			want: []*tracev1.ResourceSpans{one(webResource, otlpSpan(func(s *tracev1.Span) {
				s.Kind = tracev1.Span_SPAN_KIND_SERVER
				s.Attributes = append(s.Attributes, sAttr("span.type", "web"))
			}))},
		},
		{
			name: "type sql is a client span",
			in:   []ddSpan{baseSpan(func(s *ddSpan) { s.Type = "sql" })},
			want: []*tracev1.ResourceSpans{one(webResource, otlpSpan(func(s *tracev1.Span) {
				s.Kind = tracev1.Span_SPAN_KIND_CLIENT
				s.Attributes = append(s.Attributes, sAttr("span.type", "sql"))
			}))},
		},
		{
			name: "error with error.message",
			in: []ddSpan{baseSpan(func(s *ddSpan) {
				s.Error = 1
				s.Meta = [][2]string{{"error.msg", "old"}, {"error.message", "boom"}}
			})},
			want: []*tracev1.ResourceSpans{one(webResource, otlpSpan(func(s *tracev1.Span) {
				s.Status = &tracev1.Status{Code: tracev1.Status_STATUS_CODE_ERROR, Message: "boom"}
				s.Attributes = append(s.Attributes, sAttr("error.msg", "old"), sAttr("error.message", "boom"))
			}))},
		},
		{
			name: "error with error.msg only",
			in:   []ddSpan{baseSpan(func(s *ddSpan) { s.Error = 1; s.Meta = [][2]string{{"error.msg", "old"}} })},
			want: []*tracev1.ResourceSpans{one(webResource, otlpSpan(func(s *tracev1.Span) {
				s.Status = &tracev1.Status{Code: tracev1.Status_STATUS_CODE_ERROR, Message: "old"}
				s.Attributes = append(s.Attributes, sAttr("error.msg", "old"))
			}))},
		},
		{
			name: "meta strings and metrics doubles, duplicate keeps the last",
			in: []ddSpan{baseSpan(func(s *ddSpan) {
				s.Meta = [][2]string{{"http.method", "GET"}, {"http.status_code", "200"}}
				s.Metrics = []metric{{"_sampling_priority_v1", 1}, {"http.status_code", 200}}
			})},
			want: []*tracev1.ResourceSpans{one(webResource, otlpSpan(func(s *tracev1.Span) {
				s.Attributes = append(s.Attributes, sAttr("http.method", "GET"), dAttr("http.status_code", 200), dAttr("_sampling_priority_v1", 1))
			}))},
		},
		{
			name: "env and version go to the resource; headers to telemetry.sdk",
			in: []ddSpan{
				baseSpan(func(s *ddSpan) { s.Meta = [][2]string{{"env", "prod"}, {"version", "1.2.3"}} }),
				baseSpan(func(s *ddSpan) { s.SpanID = 9; s.Meta = [][2]string{{"env", "staging"}} }),
				baseSpan(func(s *ddSpan) { s.SpanID = 10; s.Meta = [][2]string{{"env", "prod"}, {"version", "1.2.3"}} }),
			},
			tracer: tracer{lang: "go", version: "v2.12.0"},
			want: []*tracev1.ResourceSpans{
				one(res(sAttr("service.name", "web"), sAttr("deployment.environment.name", "prod"), sAttr("service.version", "1.2.3"),
					sAttr("telemetry.sdk.name", "datadog"), sAttr("telemetry.sdk.language", "go"), sAttr("telemetry.sdk.version", "v2.12.0")),
					otlpSpan(nil), otlpSpan(func(s *tracev1.Span) { s.SpanId = str8(10) })),
				one(res(sAttr("service.name", "web"), sAttr("deployment.environment.name", "staging"),
					sAttr("telemetry.sdk.name", "datadog"), sAttr("telemetry.sdk.language", "go"), sAttr("telemetry.sdk.version", "v2.12.0")),
					otlpSpan(func(s *tracev1.Span) { s.SpanId = str8(9) })),
			},
		},
		{
			name: "no resource: name is the span name; no service: unknown_service",
			in:   []ddSpan{baseSpan(func(s *ddSpan) { s.Resource, s.Service = "", "" })},
			want: []*tracev1.ResourceSpans{one(res(sAttr("service.name", "unknown_service"), sAttr("telemetry.sdk.name", "datadog")),
				otlpSpan(func(s *tracev1.Span) {
					s.Name = "http.request"
					s.Attributes = s.Attributes[:1]
				}))},
		},
		{
			name: "no name nor resource",
			in:   []ddSpan{baseSpan(func(s *ddSpan) { s.Resource, s.Name = "", "" })},
			want: []*tracev1.ResourceSpans{one(webResource, otlpSpan(func(s *tracev1.Span) {
				s.Name = "unnamed_operation"
				s.Attributes = nil
			}))},
		},
		{
			name: "negative duration ends at the start",
			in:   []ddSpan{baseSpan(func(s *ddSpan) { s.Duration = -5 })},
			want: []*tracev1.ResourceSpans{one(webResource, otlpSpan(func(s *tracev1.Span) { s.EndTimeUnixNano = startNs }))},
		},
		{
			name: "zero trace or span ID is dropped",
			in: []ddSpan{
				baseSpan(func(s *ddSpan) { s.TraceID = 0 }),
				baseSpan(func(s *ddSpan) { s.SpanID = 0 }),
				baseSpan(nil),
			},
			want: []*tracev1.ResourceSpans{one(webResource, otlpSpan(nil))},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := &coltracepb.ExportTraceServiceRequest{ResourceSpans: tc.want}
			for _, enc := range []struct {
				name   string
				decode func([]byte, *tracer) ([]span, error)
				body   []byte
			}{
				{"v0.4", withoutTracer(decodeV04), appendV04(nil, tc.in)},
				{"v0.5", withoutTracer(decodeV05), appendV05(nil, tc.in)},
				{"v0.7", decodeV07, appendV07(nil, chunksOf(tc.in))},
			} {
				tr := tc.tracer
				spans, err := enc.decode(enc.body, &tr)
				require.NoError(t, err, enc.name)
				got, kept, dropped := translate(spans, tr)
				require.Equal(t, len(tc.in), kept+dropped)
				requireRoutable(t, got, kept)
				requireProtoEqual(t, want, got, enc.name)
			}
		})
	}
}

func requireProtoEqual(tb testing.TB, want, got proto.Message, msg string) {
	tb.Helper()
	if !proto.Equal(want, got) {
		o := protojson.MarshalOptions{Multiline: true}
		require.Equal(tb, o.Format(want), o.Format(got), msg)
		tb.Fatalf("%s: not equal (and the JSON does not show why)", msg)
	}
}

func TestHighBitsApplyToTheWholeTrace(t *testing.T) {
	spans, err := decodeV04(appendV04(nil,
		[]ddSpan{baseSpan(func(s *ddSpan) { s.Meta = [][2]string{{"_dd.p.tid", "6578a1b200000000"}} }), baseSpan(func(s *ddSpan) { s.SpanID = 2 })},
		[]ddSpan{baseSpan(func(s *ddSpan) { s.TraceID, s.SpanID = 7, 3 })},
	))
	require.NoError(t, err)
	got, kept, _ := translate(spans, tracer{})
	require.Equal(t, 3, kept)
	ss := got.ResourceSpans[0].ScopeSpans[0].Spans
	require.Equal(t, hex16(0x6578a1b200000000), ss[0].TraceId)
	require.Equal(t, hex16(0x6578a1b200000000), ss[1].TraceId)
	require.Equal(t, []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7}, ss[2].TraceId)
}

func withoutTracer(decode func([]byte) ([]span, error)) func([]byte, *tracer) ([]span, error) {
	return func(b []byte, _ *tracer) ([]span, error) { return decode(b) }
}

// TestTranslateV07 is the golden table of what v0.7 adds: the tracer
// payload's fields and the chunks' origin and tags.
func TestTranslateV07(t *testing.T) {
	sdk := func(lang, version string) []*commonv1.KeyValue {
		return []*commonv1.KeyValue{sAttr("telemetry.sdk.name", "datadog"), sAttr("telemetry.sdk.language", lang), sAttr("telemetry.sdk.version", version)}
	}
	for _, tc := range []struct {
		name   string
		in     v07Payload
		header tracer
		want   []*tracev1.ResourceSpans
	}{
		{
			name: "payload fields go to the resource and win over the headers",
			in: v07Payload{ContainerID: "c0ffee", Lang: "python", LangVersion: "3.12.1", TracerVersion: "2.9.0", RuntimeID: "r-1",
				Env: "prod", Hostname: "web-1", AppVersion: "1.2.3",
				Tags:   [][2]string{{"_dd.tags.process", "entrypoint.name:gunicorn"}, {"host.name", "not-this"}},
				Chunks: []v07Chunk{{Priority: 1, Spans: []ddSpan{baseSpan(nil)}}}},
			header: tracer{lang: "go", version: "v2.12.0"},
			want: []*tracev1.ResourceSpans{one(res(append(append([]*commonv1.KeyValue{sAttr("service.name", "web"),
				sAttr("deployment.environment.name", "prod"), sAttr("service.version", "1.2.3")}, sdk("python", "2.9.0")...),
				sAttr("process.runtime.version", "3.12.1"), sAttr("container.id", "c0ffee"), sAttr("host.name", "web-1"),
				sAttr("_dd.tags.process", "entrypoint.name:gunicorn"))...), otlpSpan(nil))},
		},
		{
			name:   "empty payload fields keep the headers",
			in:     chunksOf([]ddSpan{baseSpan(nil)}),
			header: tracer{lang: "go", version: "v2.12.0"},
			want:   []*tracev1.ResourceSpans{one(res(append([]*commonv1.KeyValue{sAttr("service.name", "web")}, sdk("go", "v2.12.0")...)...), otlpSpan(nil))},
		},
		{
			name: "a span's env and version win over the payload's",
			in: v07Payload{Env: "prod", AppVersion: "1.2.3", Chunks: []v07Chunk{{Spans: []ddSpan{
				baseSpan(func(s *ddSpan) { s.Meta = [][2]string{{"env", "staging"}} }),
				baseSpan(func(s *ddSpan) { s.SpanID = 9 }),
			}}}},
			want: []*tracev1.ResourceSpans{
				one(res(sAttr("service.name", "web"), sAttr("deployment.environment.name", "staging"), sAttr("service.version", "1.2.3"), sAttr("telemetry.sdk.name", "datadog")), otlpSpan(nil)),
				one(res(sAttr("service.name", "web"), sAttr("deployment.environment.name", "prod"), sAttr("service.version", "1.2.3"), sAttr("telemetry.sdk.name", "datadog")),
					otlpSpan(func(s *tracev1.Span) { s.SpanId = str8(9) })),
			},
		},
		{
			name: "chunk origin and tags are meta of its spans, the span's own winning",
			in: v07Payload{Chunks: []v07Chunk{
				{Origin: "lambda", Tags: [][2]string{{"_dd.p.dm", "-1"}, {"team", "chunk"}}, Spans: []ddSpan{
					baseSpan(func(s *ddSpan) { s.Meta = [][2]string{{"team", "span"}} }),
				}},
				{Tags: [][2]string{{"_dd.p.dm", "-4"}}, Spans: []ddSpan{baseSpan(func(s *ddSpan) { s.SpanID = 9 })}},
			}},
			want: []*tracev1.ResourceSpans{one(webResource,
				otlpSpan(func(s *tracev1.Span) {
					s.Attributes = append(s.Attributes, sAttr("_dd.origin", "lambda"), sAttr("_dd.p.dm", "-1"), sAttr("team", "span"))
				}),
				otlpSpan(func(s *tracev1.Span) {
					s.SpanId = str8(9)
					s.Attributes = append(s.Attributes, sAttr("_dd.p.dm", "-4"))
				}),
			)},
		},
		{
			name: "_dd.p.tid among a chunk's tags is its spans' high 64 bits",
			in: v07Payload{Chunks: []v07Chunk{{Tags: [][2]string{{"_dd.p.tid", "6578a1b200000000"}}, Spans: []ddSpan{
				baseSpan(nil), baseSpan(func(s *ddSpan) { s.SpanID = 9 }),
			}}}},
			want: []*tracev1.ResourceSpans{one(webResource,
				otlpSpan(func(s *tracev1.Span) { s.TraceId = hex16(0x6578a1b200000000) }),
				otlpSpan(func(s *tracev1.Span) { s.TraceId, s.SpanId = hex16(0x6578a1b200000000), str8(9) }),
			)},
		},
		{
			name: "a dropped trace is kept",
			in:   v07Payload{Chunks: []v07Chunk{{Priority: -1, Dropped: true, Spans: []ddSpan{baseSpan(nil)}}}},
			want: []*tracev1.ResourceSpans{one(webResource, otlpSpan(nil))},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := tc.header
			spans, err := decodeV07(appendV07(nil, tc.in), &tr)
			require.NoError(t, err)
			got, kept, _ := translate(spans, tr)
			requireRoutable(t, got, kept)
			requireProtoEqual(t, &coltracepb.ExportTraceServiceRequest{ResourceSpans: tc.want}, got, tc.name)
		})
	}
}

func TestDecodeV07Lenient(t *testing.T) {
	// nil chunks, spans and maps; unknown keys skipped.
	var b []byte
	b = msgp.AppendMapHeader(b, 4)
	b = msgp.AppendNil(msgp.AppendString(b, "tags"))
	b = msgp.AppendString(msgp.AppendString(b, "container_debug"), "x")
	b = msgp.AppendNil(msgp.AppendString(b, "hostname"))
	b = msgp.AppendArrayHeader(msgp.AppendString(b, "chunks"), 2)
	b = msgp.AppendNil(b)
	b = msgp.AppendMapHeader(b, 2)
	b = msgp.AppendNil(msgp.AppendString(b, "tags"))
	b = msgp.AppendArrayHeader(msgp.AppendString(b, "spans"), 2)
	b = msgp.AppendNil(b)
	b = appendSpanMap(b, baseSpan(nil))
	var tr tracer
	spans, err := decodeV07(b, &tr)
	require.NoError(t, err)
	require.Len(t, spans, 1)
	require.Equal(t, tracer{}, tr)

	for name, body := range map[string][]byte{
		"not a map":      msgp.AppendArrayHeader(nil, 0),
		"trailing bytes": append(appendV07(nil, chunksOf([]ddSpan{baseSpan(nil)})), 0),
		"bad chunk":      msgp.AppendInt(msgp.AppendArrayHeader(msgp.AppendString(msgp.AppendMapHeader(nil, 1), "chunks"), 1), 3),
		"truncated":      appendV07(nil, chunksOf([]ddSpan{baseSpan(nil)}))[:40],
	} {
		_, err := decodeV07(body, &tracer{})
		require.ErrorIs(t, err, errMalformed, name)
	}
}
