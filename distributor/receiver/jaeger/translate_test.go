package jaeger

import (
	"errors"
	"testing"
	"time"

	model "github.com/jaegertracing/jaeger-idl/model/v1"
	"github.com/jaegertracing/jaeger-idl/thrift-gen/jaeger"
	"github.com/stretchr/testify/require"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonv1 "go.opentelemetry.io/proto/otlp/common/v1"
	resourcev1 "go.opentelemetry.io/proto/otlp/resource/v1"
	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// The span every case starts from, in both wire formats and in OTLP.
const (
	baseTraceHigh = 0x0102030405060708
	baseTraceLow  = 0x090a0b0c0d0e0f10
	baseSpanID    = 0x1112131415161718
	baseStartUS   = 1_700_000_000_123_456 // µs since the epoch
	baseDurUS     = 1_500
	baseService   = "checkout"
)

var (
	baseTraceBytes = []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	baseSpanBytes  = []byte{0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18}
)

// Thrift builders.

func tStr(k, v string) *jaeger.Tag {
	return &jaeger.Tag{Key: k, VType: jaeger.TagType_STRING, VStr: &v}
}
func tBool(k string, v bool) *jaeger.Tag {
	return &jaeger.Tag{Key: k, VType: jaeger.TagType_BOOL, VBool: &v}
}
func tLong(k string, v int64) *jaeger.Tag {
	return &jaeger.Tag{Key: k, VType: jaeger.TagType_LONG, VLong: &v}
}
func tDouble(k string, v float64) *jaeger.Tag {
	return &jaeger.Tag{Key: k, VType: jaeger.TagType_DOUBLE, VDouble: &v}
}
func tBinary(k string, v []byte) *jaeger.Tag {
	return &jaeger.Tag{Key: k, VType: jaeger.TagType_BINARY, VBinary: v}
}

func tSpan(mods ...func(*jaeger.Span)) *jaeger.Span {
	s := &jaeger.Span{
		TraceIdHigh: baseTraceHigh, TraceIdLow: baseTraceLow, SpanId: baseSpanID,
		OperationName: "GET /cart", Flags: 1, StartTime: baseStartUS, Duration: baseDurUS,
	}
	for _, m := range mods {
		m(s)
	}
	return s
}

func tBatch(spans ...*jaeger.Span) *jaeger.Batch {
	return &jaeger.Batch{Process: &jaeger.Process{ServiceName: baseService}, Spans: spans}
}

func tRef(childOf bool, high, low, span int64) *jaeger.SpanRef {
	t := jaeger.SpanRefType_FOLLOWS_FROM
	if childOf {
		t = jaeger.SpanRefType_CHILD_OF
	}
	return &jaeger.SpanRef{RefType: t, TraceIdHigh: high, TraceIdLow: low, SpanId: span}
}

// thriftToProto re-encodes a thrift batch the way a Jaeger client or agent
// does for gRPC; the parent becomes the first reference, a CHILD_OF (spec:
// "Parent ID").
func thriftToProto(b *jaeger.Batch) *model.Batch {
	out := &model.Batch{}
	if b.Process != nil {
		out.Process = &model.Process{ServiceName: b.Process.ServiceName, Tags: protoKVs(b.Process.Tags)}
	}
	for _, s := range b.Spans {
		ps := &model.Span{
			TraceID:       model.TraceID{High: uint64(s.TraceIdHigh), Low: uint64(s.TraceIdLow)},
			SpanID:        model.SpanID(s.SpanId),
			OperationName: s.OperationName,
			Flags:         model.Flags(s.Flags),
			StartTime:     time.Unix(0, s.StartTime*1000).UTC(),
			Duration:      time.Duration(s.Duration) * time.Microsecond,
			Tags:          protoKVs(s.Tags),
		}
		if s.ParentSpanId != 0 {
			ps.References = append(ps.References, model.SpanRef{TraceID: ps.TraceID, SpanID: model.SpanID(s.ParentSpanId), RefType: model.ChildOf})
		}
		for _, r := range s.References {
			rt := model.FollowsFrom
			if r.RefType == jaeger.SpanRefType_CHILD_OF {
				rt = model.ChildOf
			}
			ps.References = append(ps.References, model.SpanRef{
				TraceID: model.TraceID{High: uint64(r.TraceIdHigh), Low: uint64(r.TraceIdLow)}, SpanID: model.SpanID(r.SpanId), RefType: rt,
			})
		}
		for _, l := range s.Logs {
			ps.Logs = append(ps.Logs, model.Log{Timestamp: time.Unix(0, l.Timestamp*1000).UTC(), Fields: protoKVs(l.Fields)})
		}
		out.Spans = append(out.Spans, ps)
	}
	return out
}

func protoKVs(tags []*jaeger.Tag) []model.KeyValue {
	var kvs []model.KeyValue
	for _, t := range tags {
		kv := model.KeyValue{Key: t.Key}
		switch t.VType {
		case jaeger.TagType_STRING:
			kv.VType, kv.VStr = model.ValueType_STRING, t.GetVStr()
		case jaeger.TagType_BOOL:
			kv.VType, kv.VBool = model.ValueType_BOOL, t.GetVBool()
		case jaeger.TagType_LONG:
			kv.VType, kv.VInt64 = model.ValueType_INT64, t.GetVLong()
		case jaeger.TagType_DOUBLE:
			kv.VType, kv.VFloat64 = model.ValueType_FLOAT64, t.GetVDouble()
		case jaeger.TagType_BINARY:
			kv.VType, kv.VBinary = model.ValueType_BINARY, t.VBinary
		default:
			kv.VType = model.ValueType(t.VType)
		}
		kvs = append(kvs, kv)
	}
	return kvs
}

// OTLP builders.

func aStr(k, v string) *commonv1.KeyValue { return stringKV(k, v) }
func aBool(k string, v bool) *commonv1.KeyValue {
	return &commonv1.KeyValue{Key: k, Value: &commonv1.AnyValue{Value: &commonv1.AnyValue_BoolValue{BoolValue: v}}}
}
func aInt(k string, v int64) *commonv1.KeyValue {
	return &commonv1.KeyValue{Key: k, Value: &commonv1.AnyValue{Value: &commonv1.AnyValue_IntValue{IntValue: v}}}
}
func aDouble(k string, v float64) *commonv1.KeyValue {
	return &commonv1.KeyValue{Key: k, Value: &commonv1.AnyValue{Value: &commonv1.AnyValue_DoubleValue{DoubleValue: v}}}
}
func aBytes(k string, v []byte) *commonv1.KeyValue {
	return &commonv1.KeyValue{Key: k, Value: &commonv1.AnyValue{Value: &commonv1.AnyValue_BytesValue{BytesValue: v}}}
}
func attrs(kvs ...*commonv1.KeyValue) []*commonv1.KeyValue { return kvs }

func oSpan(mods ...func(*tracev1.Span)) *tracev1.Span {
	s := &tracev1.Span{
		TraceId: baseTraceBytes, SpanId: baseSpanBytes, Name: "GET /cart", Flags: 1,
		StartTimeUnixNano: baseStartUS * 1000, EndTimeUnixNano: (baseStartUS + baseDurUS) * 1000,
	}
	for _, m := range mods {
		m(s)
	}
	return s
}

func oRS(res []*commonv1.KeyValue, scopes ...*tracev1.ScopeSpans) *tracev1.ResourceSpans {
	return &tracev1.ResourceSpans{Resource: &resourcev1.Resource{Attributes: res}, ScopeSpans: scopes}
}

func oSS(scope *commonv1.InstrumentationScope, spans ...*tracev1.Span) *tracev1.ScopeSpans {
	return &tracev1.ScopeSpans{Scope: scope, Spans: spans}
}

func oReq(rss ...*tracev1.ResourceSpans) *coltracepb.ExportTraceServiceRequest {
	return &coltracepb.ExportTraceServiceRequest{ResourceSpans: rss}
}

// oOne is the request holding spans under the base process and no scope.
func oOne(spans ...*tracev1.Span) *coltracepb.ExportTraceServiceRequest {
	return oReq(oRS(attrs(aStr("service.name", baseService)), oSS(nil, spans...)))
}

func withAttrs(kvs ...*commonv1.KeyValue) func(*tracev1.Span) {
	return func(s *tracev1.Span) { s.Attributes = kvs }
}
func withKind(k tracev1.Span_SpanKind) func(*tracev1.Span) {
	return func(s *tracev1.Span) { s.Kind = k }
}
func withStatus(c tracev1.Status_StatusCode, msg string) func(*tracev1.Span) {
	return func(s *tracev1.Span) { s.Status = &tracev1.Status{Code: c, Message: msg} }
}
func withTags(tags ...*jaeger.Tag) func(*jaeger.Span) {
	return func(s *jaeger.Span) { s.Tags = tags }
}

func link(trace []byte, span []byte, refType string) *tracev1.Span_Link {
	return &tracev1.Span_Link{TraceId: trace, SpanId: span, Attributes: attrs(aStr("opentracing.ref_type", refType))}
}

func requireProtoEqual(tb testing.TB, want, got proto.Message) {
	tb.Helper()
	if !proto.Equal(want, got) {
		require.JSONEq(tb, protojson.Format(want), protojson.Format(got))
		tb.Fatalf("not equal, though their JSON is:\nwant %v\ngot  %v", want, got)
	}
}

func TestTranslate(t *testing.T) {
	const (
		otherHigh, otherLow = 0x2122232425262728, 0x292a2b2c2d2e2f30
		parent              = 0x3132333435363738
	)
	otherTrace := []byte{0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x2b, 0x2c, 0x2d, 0x2e, 0x2f, 0x30}
	parentBytes := []byte{0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38}

	tests := []struct {
		name       string
		in         *jaeger.Batch
		proto      *model.Batch // when nil, thriftToProto(in); when in is nil, proto only
		thriftOnly bool         // the rule has no proto form
		want       *coltracepb.ExportTraceServiceRequest
	}{
		{
			name: "ids, name, times in ns, sampled flag, service.name",
			in:   tBatch(tSpan()),
			want: oOne(oSpan()),
		},
		{
			name: "64-bit trace ID (high 0) is left-padded",
			in:   tBatch(tSpan(func(s *jaeger.Span) { s.TraceIdHigh = 0 })),
			want: oOne(oSpan(func(s *tracev1.Span) { s.TraceId = append(make([]byte, 8), baseTraceBytes[8:]...) })),
		},
		{
			name: "negative i64 IDs are reinterpreted as unsigned, big endian",
			in: tBatch(tSpan(func(s *jaeger.Span) {
				s.TraceIdHigh, s.TraceIdLow, s.SpanId = -1, -72057594037927936, -2
			})),
			want: oOne(oSpan(func(s *tracev1.Span) {
				s.TraceId = []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0}
				s.SpanId = []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe}
			})),
		},
		{
			name: "process tags are typed resource attributes; hostname becomes host.name; serviceName wins",
			in: &jaeger.Batch{
				Process: &jaeger.Process{ServiceName: baseService, Tags: []*jaeger.Tag{
					tStr("jaeger.version", "Go-2.30.0"), tStr("hostname", "web-1"), tStr("ip", "10.0.0.1"),
					tLong("pid", 42), tStr("service.name", "not-this"), tBool("canary", true),
				}},
				Spans: []*jaeger.Span{tSpan()},
			},
			want: oReq(oRS(attrs(
				aStr("jaeger.version", "Go-2.30.0"), aStr("host.name", "web-1"), aStr("ip", "10.0.0.1"),
				aInt("pid", 42), aStr("service.name", baseService), aBool("canary", true),
			), oSS(nil, oSpan()))),
		},
		{
			name: "hostname stays when host.name is set",
			in: &jaeger.Batch{
				Process: &jaeger.Process{ServiceName: baseService, Tags: []*jaeger.Tag{tStr("hostname", "a"), tStr("host.name", "b")}},
				Spans:   []*jaeger.Span{tSpan()},
			},
			want: oReq(oRS(attrs(aStr("service.name", baseService), aStr("hostname", "a"), aStr("host.name", "b")), oSS(nil, oSpan()))),
		},
		{
			name: "empty serviceName sets no service.name",
			in:   &jaeger.Batch{Process: &jaeger.Process{}, Spans: []*jaeger.Span{tSpan()}},
			want: oReq(oRS(nil, oSS(nil, oSpan()))),
		},
		{
			name: "tags keep their types",
			in: tBatch(tSpan(withTags(
				tStr("http.method", "GET"), tBool("cache.hit", false), tLong("http.status_code", 200),
				tDouble("ratio", 0.25), tBinary("blob", []byte{0, 1, 2}),
			))),
			want: oOne(oSpan(withAttrs(
				aStr("http.method", "GET"), aBool("cache.hit", false), aInt("http.status_code", 200),
				aDouble("ratio", 0.25), aBytes("blob", []byte{0, 1, 2}),
			))),
		},
		{
			name: "unknown tag type becomes a string naming it",
			in:   tBatch(tSpan(withTags(&jaeger.Tag{Key: "odd", VType: 9}))),
			want: oOne(oSpan(withAttrs(aStr("odd", "<unknown Jaeger tag type 9>")))),
		},
		{
			name: "duplicate keys keep the first position and the last value",
			in:   tBatch(tSpan(withTags(tStr("a", "1"), tStr("b", "2"), tLong("a", 3)))),
			want: oOne(oSpan(withAttrs(aInt("a", 3), aStr("b", "2")))),
		},
		{
			name: "invalid UTF-8 in names, keys and values becomes U+FFFD",
			in: tBatch(tSpan(func(s *jaeger.Span) { s.OperationName = "GET \xff/" },
				withTags(tStr("k\xfe", "v\xff\xfe"), tStr("span.kind", "client")))),
			want: oOne(oSpan(func(s *tracev1.Span) { s.Name = "GET \uFFFD/" },
				withKind(tracev1.Span_SPAN_KIND_CLIENT), withAttrs(aStr("k\uFFFD", "v\uFFFD")))),
		},
		{
			name: "Jaeger's own tags stay attributes",
			in:   tBatch(tSpan(withTags(tStr("sampler.type", "probabilistic"), tDouble("sampler.param", 0.001)))),
			want: oOne(oSpan(withAttrs(aStr("sampler.type", "probabilistic"), aDouble("sampler.param", 0.001)))),
		},
		{name: "span.kind client", in: tBatch(tSpan(withTags(tStr("span.kind", "client")))), want: oOne(oSpan(withKind(tracev1.Span_SPAN_KIND_CLIENT)))},
		{name: "span.kind server", in: tBatch(tSpan(withTags(tStr("span.kind", "server")))), want: oOne(oSpan(withKind(tracev1.Span_SPAN_KIND_SERVER)))},
		{name: "span.kind producer", in: tBatch(tSpan(withTags(tStr("span.kind", "producer")))), want: oOne(oSpan(withKind(tracev1.Span_SPAN_KIND_PRODUCER)))},
		{name: "span.kind consumer", in: tBatch(tSpan(withTags(tStr("span.kind", "consumer")))), want: oOne(oSpan(withKind(tracev1.Span_SPAN_KIND_CONSUMER)))},
		{name: "span.kind internal", in: tBatch(tSpan(withTags(tStr("span.kind", "internal")))), want: oOne(oSpan(withKind(tracev1.Span_SPAN_KIND_INTERNAL)))},
		{name: "span.kind is case-insensitive", in: tBatch(tSpan(withTags(tStr("span.kind", "SERVER")))), want: oOne(oSpan(withKind(tracev1.Span_SPAN_KIND_SERVER)))},
		{
			name: "unknown span.kind stays an attribute",
			in:   tBatch(tSpan(withTags(tStr("span.kind", "rpc-ish")))),
			want: oOne(oSpan(withAttrs(aStr("span.kind", "rpc-ish")))),
		},
		{
			name: "error=true is ERROR with otel.status_description as message",
			in:   tBatch(tSpan(withTags(tBool("error", true), tStr("otel.status_description", "boom"), tStr("x", "y")))),
			want: oOne(oSpan(withStatus(tracev1.Status_STATUS_CODE_ERROR, "boom"), withAttrs(aStr("x", "y")))),
		},
		{
			name: "error=\"true\" (string) is ERROR",
			in:   tBatch(tSpan(withTags(tStr("error", "true")))),
			want: oOne(oSpan(withStatus(tracev1.Status_STATUS_CODE_ERROR, ""))),
		},
		{
			name: "error=true takes http.status_message as message when there is no description",
			in:   tBatch(tSpan(withTags(tBool("error", true), tStr("http.status_message", "Bad Gateway")))),
			want: oOne(oSpan(withStatus(tracev1.Status_STATUS_CODE_ERROR, "Bad Gateway"), withAttrs(aStr("http.status_message", "Bad Gateway")))),
		},
		{
			name: "error=false stays an attribute, status unset",
			in:   tBatch(tSpan(withTags(tBool("error", false)))),
			want: oOne(oSpan(withAttrs(aBool("error", false)))),
		},
		{
			name: "otel.status_code OK with description",
			in:   tBatch(tSpan(withTags(tStr("otel.status_code", "OK"), tStr("otel.status_description", "fine")))),
			want: oOne(oSpan(withStatus(tracev1.Status_STATUS_CODE_OK, "fine"))),
		},
		{
			name: "otel.status_code ERROR",
			in:   tBatch(tSpan(withTags(tStr("otel.status_code", "ERROR")))),
			want: oOne(oSpan(withStatus(tracev1.Status_STATUS_CODE_ERROR, ""))),
		},
		{
			name: "error=true wins over otel.status_code OK, which is removed",
			in:   tBatch(tSpan(withTags(tStr("otel.status_code", "OK"), tBool("error", true)))),
			want: oOne(oSpan(withStatus(tracev1.Status_STATUS_CODE_ERROR, ""))),
		},
		{
			name: "unknown otel.status_code stays an attribute",
			in:   tBatch(tSpan(withTags(tStr("otel.status_code", "MAYBE")))),
			want: oOne(oSpan(withAttrs(aStr("otel.status_code", "MAYBE")))),
		},
		{
			name: "http.status_code 500 is ERROR with http.status_message",
			in:   tBatch(tSpan(withTags(tLong("http.status_code", 500), tStr("http.status_message", "oops")))),
			want: oOne(oSpan(withStatus(tracev1.Status_STATUS_CODE_ERROR, "oops"), withAttrs(aInt("http.status_code", 500), aStr("http.status_message", "oops")))),
		},
		{
			name: "http.status_code 404 on a server span leaves status unset",
			in:   tBatch(tSpan(withTags(tStr("span.kind", "server"), tStr("http.status_code", "404")))),
			want: oOne(oSpan(withKind(tracev1.Span_SPAN_KIND_SERVER), withAttrs(aStr("http.status_code", "404")))),
		},
		{
			name: "http.status_code 404 on a client span is ERROR",
			in:   tBatch(tSpan(withTags(tStr("span.kind", "client"), tLong("http.status_code", 404)))),
			want: oOne(oSpan(withKind(tracev1.Span_SPAN_KIND_CLIENT), withStatus(tracev1.Status_STATUS_CODE_ERROR, ""), withAttrs(aInt("http.status_code", 404)))),
		},
		{
			name: "w3c.tracestate becomes trace_state",
			in:   tBatch(tSpan(withTags(tStr("w3c.tracestate", "vendor=abc,other=1")))),
			want: oOne(oSpan(func(s *tracev1.Span) { s.TraceState = "vendor=abc,other=1" })),
		},
		{
			name: "otel.scope.name/version group spans by scope",
			in: tBatch(
				tSpan(withTags(tStr("otel.scope.name", "net/http"), tStr("otel.scope.version", "1.2"))),
				tSpan(func(s *jaeger.Span) { s.SpanId = 2 }),
				tSpan(func(s *jaeger.Span) { s.SpanId = 3 }, withTags(tStr("otel.scope.name", "net/http"), tStr("otel.scope.version", "1.2"))),
			),
			want: oReq(oRS(attrs(aStr("service.name", baseService)),
				oSS(&commonv1.InstrumentationScope{Name: "net/http", Version: "1.2"}, oSpan(), oSpan(func(s *tracev1.Span) { s.SpanId = spanID(3) })),
				oSS(nil, oSpan(func(s *tracev1.Span) { s.SpanId = spanID(2) })),
			)),
		},
		{
			name: "deprecated otel.library.name/version are a scope too",
			in:   tBatch(tSpan(withTags(tStr("otel.library.name", "grpc"), tStr("otel.library.version", "0.9")))),
			want: oReq(oRS(attrs(aStr("service.name", baseService)), oSS(&commonv1.InstrumentationScope{Name: "grpc", Version: "0.9"}, oSpan()))),
		},
		{
			name: "logs become events named by their string event field",
			in: tBatch(tSpan(func(s *jaeger.Span) {
				s.Logs = []*jaeger.Log{
					{Timestamp: baseStartUS + 10, Fields: []*jaeger.Tag{tStr("event", "retry"), tLong("attempt", 2)}},
					{Timestamp: baseStartUS + 20, Fields: []*jaeger.Tag{tStr("message", "no name")}},
					{Timestamp: baseStartUS + 30, Fields: []*jaeger.Tag{tLong("event", 7)}},
					{Timestamp: baseStartUS + 40, Fields: []*jaeger.Tag{tStr("event", "only")}},
				}
			})),
			want: oOne(oSpan(func(s *tracev1.Span) {
				s.Events = []*tracev1.Span_Event{
					{TimeUnixNano: (baseStartUS + 10) * 1000, Name: "retry", Attributes: attrs(aInt("attempt", 2))},
					{TimeUnixNano: (baseStartUS + 20) * 1000, Attributes: attrs(aStr("message", "no name"))},
					{TimeUnixNano: (baseStartUS + 30) * 1000, Attributes: attrs(aInt("event", 7))},
					{TimeUnixNano: (baseStartUS + 40) * 1000, Name: "only"},
				}
			})),
		},
		{
			name: "parentSpanId is the parent; the CHILD_OF reference to it is not a link",
			in: tBatch(tSpan(func(s *jaeger.Span) {
				s.ParentSpanId = parent
				s.References = []*jaeger.SpanRef{tRef(true, baseTraceHigh, baseTraceLow, parent)}
			})),
			want: oOne(oSpan(func(s *tracev1.Span) { s.ParentSpanId = parentBytes })),
		},
		{
			name: "CHILD_OF of the same trace is the parent, other references are links",
			in: tBatch(tSpan(func(s *jaeger.Span) {
				s.References = []*jaeger.SpanRef{
					tRef(false, otherHigh, otherLow, 5),
					tRef(true, baseTraceHigh, baseTraceLow, parent),
					tRef(true, baseTraceHigh, baseTraceLow, 6),
				}
			})),
			want: oOne(oSpan(func(s *tracev1.Span) {
				s.ParentSpanId = parentBytes
				s.Links = []*tracev1.Span_Link{
					link(otherTrace, spanID(5), "follows_from"),
					link(baseTraceBytes, spanID(6), "child_of"),
				}
			})),
		},
		{
			name: "CHILD_OF of another trace is a link, not the parent",
			in: tBatch(tSpan(func(s *jaeger.Span) {
				s.References = []*jaeger.SpanRef{tRef(true, otherHigh, otherLow, parent)}
			})),
			want: oOne(oSpan(func(s *tracev1.Span) {
				s.Links = []*tracev1.Span_Link{link(otherTrace, parentBytes, "child_of")}
			})),
		},
		{
			name: "FOLLOWS_FROM of the same trace, without CHILD_OF, is the parent and stays a link",
			in: tBatch(tSpan(func(s *jaeger.Span) {
				s.References = []*jaeger.SpanRef{tRef(false, baseTraceHigh, baseTraceLow, parent)}
			})),
			want: oOne(oSpan(func(s *tracev1.Span) {
				s.ParentSpanId = parentBytes
				s.Links = []*tracev1.Span_Link{link(baseTraceBytes, parentBytes, "follows_from")}
			})),
		},
		{
			name: "references with a zero ID are dropped",
			in: tBatch(tSpan(func(s *jaeger.Span) {
				s.References = []*jaeger.SpanRef{tRef(false, otherHigh, otherLow, 0), tRef(false, 0, 0, 9)}
			})),
			want: oOne(oSpan()),
		},
		{
			name: "debug flag alone is not sampled",
			in:   tBatch(tSpan(func(s *jaeger.Span) { s.Flags = 2 })),
			want: oOne(oSpan(func(s *tracev1.Span) { s.Flags = 0 })),
		},
		{
			name: "sampled+debug keeps the sampled bit",
			in:   tBatch(tSpan(func(s *jaeger.Span) { s.Flags = 3 })),
			want: oOne(oSpan()),
		},
		{
			name: "negative start time and duration become 0",
			in:   tBatch(tSpan(func(s *jaeger.Span) { s.StartTime, s.Duration = -5, -5 })),
			want: oOne(oSpan(func(s *tracev1.Span) { s.StartTimeUnixNano, s.EndTimeUnixNano = 0, 0 })),
		},
		{
			name: "negative duration ends the span at its start",
			in:   tBatch(tSpan(func(s *jaeger.Span) { s.Duration = -5 })),
			want: oOne(oSpan(func(s *tracev1.Span) { s.EndTimeUnixNano = s.StartTimeUnixNano })),
		},
		{
			name: "a batch without spans pushes nothing",
			in:   tBatch(),
			want: oReq(),
		},
		{
			name:  "proto: nanosecond times are kept",
			proto: &model.Batch{Process: &model.Process{ServiceName: baseService}, Spans: []*model.Span{protoBase(func(s *model.Span) { s.StartTime = time.Unix(1, 7); s.Duration = 3 })}},
			want:  oOne(oSpan(func(s *tracev1.Span) { s.StartTimeUnixNano, s.EndTimeUnixNano = 1_000_000_007, 1_000_000_010 })),
		},
		{
			name: "proto: a span's own process wins and gets its own resource, in order first seen",
			proto: &model.Batch{Process: &model.Process{ServiceName: baseService}, Spans: []*model.Span{
				protoBase(func(s *model.Span) { s.Process = &model.Process{ServiceName: "cart"} }),
				protoBase(func(s *model.Span) { s.SpanID = 2 }),
				protoBase(func(s *model.Span) { s.SpanID = 3; s.Process = &model.Process{ServiceName: baseService} }),
				protoBase(func(s *model.Span) { s.SpanID = 4; s.Process = &model.Process{ServiceName: "cart"} }),
			}},
			want: oReq(
				oRS(attrs(aStr("service.name", "cart")), oSS(nil, oSpan(), oSpan(func(s *tracev1.Span) { s.SpanId = spanID(4) }))),
				oRS(attrs(aStr("service.name", baseService)), oSS(nil,
					oSpan(func(s *tracev1.Span) { s.SpanId = spanID(2) }),
					oSpan(func(s *tracev1.Span) { s.SpanId = spanID(3) }))),
			),
		},
		{
			name:  "proto: no process at all is an empty resource",
			proto: &model.Batch{Spans: []*model.Span{protoBase()}},
			want:  oReq(oRS(nil, oSS(nil, oSpan()))),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.in != nil {
				got, n, err := thriftToOTLP(tc.in)
				require.NoError(t, err)
				requireProtoEqual(t, tc.want, got)
				require.Equal(t, countSpans(tc.want), n)
			}
			pb := tc.proto
			if pb == nil && !tc.thriftOnly {
				pb = thriftToProto(tc.in)
			}
			if pb != nil {
				got, n, err := protoToOTLP(pb)
				require.NoError(t, err)
				requireProtoEqual(t, tc.want, got)
				require.Equal(t, countSpans(tc.want), n)
			}
		})
	}
}

func protoBase(mods ...func(*model.Span)) *model.Span {
	s := &model.Span{
		TraceID: model.TraceID{High: baseTraceHigh, Low: baseTraceLow}, SpanID: baseSpanID, OperationName: "GET /cart", Flags: 1,
		StartTime: time.UnixMicro(baseStartUS), Duration: baseDurUS * time.Microsecond,
	}
	for _, m := range mods {
		m(s)
	}
	return s
}

func countSpans(req *coltracepb.ExportTraceServiceRequest) int {
	n := 0
	for _, rs := range req.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			n += len(ss.Spans)
		}
	}
	return n
}

func TestTranslateRefusesInvalidSpans(t *testing.T) {
	tests := []struct {
		name   string
		span   func(*jaeger.Span)
		reason string
		err    error
	}{
		{"zero trace ID", func(s *jaeger.Span) { s.TraceIdHigh, s.TraceIdLow = 0, 0 }, "zero_trace_id", errZeroTraceID},
		{"zero span ID", func(s *jaeger.Span) { s.SpanId = 0 }, "zero_span_id", errZeroSpanID},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// The bad span is the second of three: the whole batch is refused.
			in := tBatch(tSpan(), tSpan(tc.span, func(s *jaeger.Span) { s.OperationName = "bad" }), tSpan())
			for format, translate := range map[string]func() error{
				"thrift": func() error { _, _, err := thriftToOTLP(in); return err },
				"proto":  func() error { _, _, err := protoToOTLP(thriftToProto(in)); return err },
			} {
				err := translate()
				require.ErrorIs(t, err, tc.err, format)
				var br *badRequest
				require.True(t, errors.As(err, &br), format)
				require.Equal(t, tc.reason, br.reason, format)
				require.Equal(t, 3, br.spans, format)
				require.Equal(t, `span 1 (operation "bad"): `+tc.err.Error(), err.Error(), format)
			}
		})
	}
}
