package opencensus

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"math"
	"os"
	"path/filepath"
	"testing"

	commonpb "github.com/census-instrumentation/opencensus-proto/gen-go/agent/common/v1"
	agenttracepb "github.com/census-instrumentation/opencensus-proto/gen-go/agent/trace/v1"
	resourcepb "github.com/census-instrumentation/opencensus-proto/gen-go/resource/v1"
	tracepb "github.com/census-instrumentation/opencensus-proto/gen-go/trace/v1"
	"github.com/stretchr/testify/require"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/vivace-dev/vivace/internal/model"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/translate/")

// msgs is the Export messages of one stream.
type msgs = []*agenttracepb.ExportTraceServiceRequest

func str(v string) *tracepb.AttributeValue {
	return &tracepb.AttributeValue{Value: &tracepb.AttributeValue_StringValue{StringValue: &tracepb.TruncatableString{Value: v}}}
}
func i64(v int64) *tracepb.AttributeValue {
	return &tracepb.AttributeValue{Value: &tracepb.AttributeValue_IntValue{IntValue: v}}
}
func boolean(v bool) *tracepb.AttributeValue {
	return &tracepb.AttributeValue{Value: &tracepb.AttributeValue_BoolValue{BoolValue: v}}
}
func double(v float64) *tracepb.AttributeValue {
	return &tracepb.AttributeValue{Value: &tracepb.AttributeValue_DoubleValue{DoubleValue: v}}
}

func attrs(m map[string]*tracepb.AttributeValue) *tracepb.Span_Attributes {
	return &tracepb.Span_Attributes{AttributeMap: m}
}

func withAttrs(m map[string]*tracepb.AttributeValue) func(*tracepb.Span) {
	return func(s *tracepb.Span) { s.Attributes = attrs(m) }
}

func withKind(k tracepb.Span_SpanKind) func(*tracepb.Span) {
	return func(s *tracepb.Span) { s.Kind = k }
}

func withStatus(code int32, msg string) func(*tracepb.Span) {
	return func(s *tracepb.Span) { s.Status = &tracepb.Status{Code: code, Message: msg} }
}

func id16(last byte) []byte {
	b := make([]byte, 16)
	b[0], b[15] = 0xab, last
	return b
}

// goNode is the Node the OpenCensus Go exporter sends (NodeWithStartTime).
func goNode() *commonpb.Node {
	n := testNode("emoji-svc")
	n.Identifier.StartTimestamp = ts(1_699_999_000, 123_456_789)
	n.Attributes = map[string]string{"team": "emoji", "service.name": "overridden"}
	return n
}

// translateCases is the golden table of the OpenCensus → OTLP mapping: each
// case is one stream's messages, and testdata/translate/<name>.json holds
// them (IDs in hex) with what each becomes. translate.go lists the rules.
var translateCases = []struct {
	name string
	in   msgs
}{
	{"go-exporter-stream", msgs{
		{Node: goNode(), Resource: &resourcepb.Resource{Type: "k8s", Labels: map[string]string{
			"k8s.pod.name": "emoji-1", "cloud.zone": "eu-west-1a", "opencensus.resourcetype": "overridden",
		}}},
		{Spans: []*tracepb.Span{
			testSpan("/emojivoto.v1.EmojiService/ListAll", withKind(tracepb.Span_SERVER), withSpanID(1),
				func(s *tracepb.Span) { s.ParentSpanId = make([]byte, 8) }),
			testSpan("/emojivoto.v1.VotingService/Vote", withKind(tracepb.Span_CLIENT), withSpanID(2)),
		}},
	}},
	{"languages", msgs{
		{Node: &commonpb.Node{LibraryInfo: &commonpb.LibraryInfo{Language: commonpb.LibraryInfo_C_SHARP}}, Spans: []*tracepb.Span{testSpan("dotnet")}},
		{Node: &commonpb.Node{LibraryInfo: &commonpb.LibraryInfo{Language: commonpb.LibraryInfo_WEB_JS}}, Spans: []*tracepb.Span{testSpan("webjs")}},
		{Node: &commonpb.Node{LibraryInfo: &commonpb.LibraryInfo{Language: 99}}, Spans: []*tracepb.Span{testSpan("unknown")}},
	}},
	{"inheritance", msgs{
		{Node: testNode("a"), Resource: &resourcepb.Resource{Type: "r1"}, Spans: []*tracepb.Span{testSpan("1")}},
		{Spans: []*tracepb.Span{testSpan("2")}},
		{Node: testNode("b"), Spans: []*tracepb.Span{testSpan("3")}},
		{Resource: &resourcepb.Resource{Type: "r2"}, Spans: []*tracepb.Span{testSpan("4")}},
		{},
	}},
	{"no-node-first", msgs{
		{Resource: &resourcepb.Resource{Type: "r1"}, Spans: []*tracepb.Span{testSpan("1")}},
	}},
	{"span-fields", msgs{{Node: testNode("web"), Spans: []*tracepb.Span{
		testSpan("all", withKind(tracepb.Span_SERVER), func(s *tracepb.Span) {
			s.Tracestate = &tracepb.Span_Tracestate{Entries: []*tracepb.Span_Tracestate_Entry{{Key: "congo", Value: "t61rcWkgMzE"}, {Key: "rojo", Value: "00f067aa0ba902b7"}}}
			s.Attributes = &tracepb.Span_Attributes{DroppedAttributesCount: 3, AttributeMap: map[string]*tracepb.AttributeValue{
				"http.method": str("GET"), "http.status_code": i64(200), "cache.hit": boolean(true), "load": double(0.25),
				"no.value": {},
			}}
			s.SameProcessAsParentSpan = wrapperspb.Bool(false)
			s.ChildSpanCount = wrapperspb.UInt32(3)
			s.StackTrace = &tracepb.StackTrace{StackTraceHashId: 7}
		}, withStatus(14, "upstream unavailable")),
		testSpan("same-process-attribute-replaced", withSpanID(2), withAttrs(map[string]*tracepb.AttributeValue{
			"opencensus.same_process_as_parent_span": str("x"),
		}), func(s *tracepb.Span) { s.SameProcessAsParentSpan = wrapperspb.Bool(true) }),
		testSpan("", withSpanID(3), func(s *tracepb.Span) { s.Name = nil; s.ParentSpanId = nil }),
	}}}},
	{"span-kind-attribute", msgs{{Node: testNode("web"), Spans: []*tracepb.Span{
		testSpan("producer", withAttrs(map[string]*tracepb.AttributeValue{"span.kind": str("producer")})),
		testSpan("consumer", withAttrs(map[string]*tracepb.AttributeValue{"span.kind": str("consumer")})),
		testSpan("internal", withAttrs(map[string]*tracepb.AttributeValue{"span.kind": str("internal")})),
		testSpan("server", withAttrs(map[string]*tracepb.AttributeValue{"span.kind": str("server")})),
		testSpan("unknown value stays", withAttrs(map[string]*tracepb.AttributeValue{"span.kind": str("queue")})),
		testSpan("not a string stays", withAttrs(map[string]*tracepb.AttributeValue{"span.kind": i64(1)})),
		testSpan("kind field wins", withKind(tracepb.Span_CLIENT), withAttrs(map[string]*tracepb.AttributeValue{"span.kind": str("producer")})),
	}}}},
	{"status", msgs{{Node: testNode("web"), Spans: []*tracepb.Span{
		testSpan("none"),
		testSpan("ok", withStatus(0, "")),
		testSpan("ok with message", withStatus(0, "fine")),
		testSpan("not found", withStatus(5, "no such emoji")),
		testSpan("otel ok", withStatus(0, ""), withAttrs(map[string]*tracepb.AttributeValue{"otel.status_code": i64(1)})),
		testSpan("otel error", withStatus(2, "boom"), withAttrs(map[string]*tracepb.AttributeValue{"otel.status_code": i64(2)})),
		testSpan("otel unset wins", withStatus(2, ""), withAttrs(map[string]*tracepb.AttributeValue{"otel.status_code": i64(0)})),
		testSpan("otel code without status", withAttrs(map[string]*tracepb.AttributeValue{"otel.status_code": i64(1)})),
		testSpan("bad otel codes stay", withAttrs(map[string]*tracepb.AttributeValue{"otel.status_code": i64(7)})),
		testSpan("string otel code stays", withAttrs(map[string]*tracepb.AttributeValue{"otel.status_code": str("OK")})),
	}}}},
	{"time-events", msgs{{Node: testNode("web"), Spans: []*tracepb.Span{
		testSpan("events", func(s *tracepb.Span) {
			s.TimeEvents = &tracepb.Span_TimeEvents{DroppedAnnotationsCount: 2, DroppedMessageEventsCount: 1, TimeEvent: []*tracepb.Span_TimeEvent{
				{Time: ts(1_700_000_000, 1000), Value: &tracepb.Span_TimeEvent_Annotation_{Annotation: &tracepb.Span_TimeEvent_Annotation{
					Description: &tracepb.TruncatableString{Value: "cache miss"},
					Attributes:  &tracepb.Span_Attributes{DroppedAttributesCount: 1, AttributeMap: map[string]*tracepb.AttributeValue{"key": str("emoji:1"), "tries": i64(2)}},
				}}},
				{Time: ts(1_700_000_000, 2000), Value: &tracepb.Span_TimeEvent_MessageEvent_{MessageEvent: &tracepb.Span_TimeEvent_MessageEvent{
					Type: tracepb.Span_TimeEvent_MessageEvent_SENT, Id: 1, UncompressedSize: 120, CompressedSize: 80,
				}}},
				{Time: ts(1_700_000_000, 3000), Value: &tracepb.Span_TimeEvent_MessageEvent_{MessageEvent: &tracepb.Span_TimeEvent_MessageEvent{
					Type: tracepb.Span_TimeEvent_MessageEvent_RECEIVED, Id: 1, UncompressedSize: 42,
				}}},
				{Time: ts(1_700_000_000, 4000)}, // neither: dropped
			}}
		}),
	}}}},
	{"links", msgs{{Node: testNode("web"), Spans: []*tracepb.Span{
		testSpan("linked", func(s *tracepb.Span) {
			s.Links = &tracepb.Span_Links{DroppedLinksCount: 1, Link: []*tracepb.Span_Link{
				{TraceId: id16(1), SpanId: testParent, Type: tracepb.Span_Link_PARENT_LINKED_SPAN,
					Tracestate: &tracepb.Span_Tracestate{Entries: []*tracepb.Span_Tracestate_Entry{{Key: "k", Value: "v"}}},
					Attributes: attrs(map[string]*tracepb.AttributeValue{"batch.index": i64(3)})},
				{TraceId: id16(2), SpanId: testSpanID},
				{TraceId: make([]byte, 16), SpanId: testSpanID}, // points nowhere: dropped
				{TraceId: id16(3)},                              // no span: dropped
			}}
		}),
	}}}},
	{"link-with-short-id", msgs{{Node: testNode("web"), Spans: []*tracepb.Span{
		testSpan("linked", func(s *tracepb.Span) {
			s.Links = &tracepb.Span_Links{Link: []*tracepb.Span_Link{{TraceId: id16(1)[:8], SpanId: testParent}}}
		}),
	}}}},
	{"bad-parent", msgs{{Node: testNode("web"), Spans: []*tracepb.Span{
		testSpan("ok"), testSpan("bad", withSpanID(2), func(s *tracepb.Span) { s.ParentSpanId = []byte{1, 2} }),
	}}}},
	{"timestamps", msgs{{Node: testNode("web"), Spans: []*tracepb.Span{
		testSpan("no start", func(s *tracepb.Span) { s.StartTime = nil }),
		testSpan("no end", func(s *tracepb.Span) { s.EndTime = nil }),
		testSpan("neither", func(s *tracepb.Span) { s.StartTime, s.EndTime = nil, nil }),
		testSpan("end before start", func(s *tracepb.Span) { s.EndTime = ts(1_600_000_000, 0) }),
		testSpan("before 1970", func(s *tracepb.Span) { s.StartTime = ts(-5, 0) }),
		testSpan("after 2262", func(s *tracepb.Span) { s.EndTime = ts(253_402_300_799, 0) }),
	}}}},
	{"span-resources", msgs{{Node: testNode("web"), Resource: &resourcepb.Resource{Type: "message"}, Spans: []*tracepb.Span{
		testSpan("own 1", withSpanID(1), func(s *tracepb.Span) {
			s.Resource = &resourcepb.Resource{Type: "own", Labels: map[string]string{"a": "1"}}
		}),
		testSpan("shared 1", withSpanID(2)),
		testSpan("own 2", withSpanID(3), func(s *tracepb.Span) { s.Resource = &resourcepb.Resource{Type: "other"} }),
		testSpan("own 1 again", withSpanID(4), func(s *tracepb.Span) {
			s.Resource = &resourcepb.Resource{Type: "own", Labels: map[string]string{"a": "1"}}
		}),
		testSpan("shared 2", withSpanID(5)),
	}}}},
}

func TestTranslateGolden(t *testing.T) {
	for _, tc := range translateCases {
		t.Run(tc.name, func(t *testing.T) {
			got := renderStream(t, tc.in)
			path := filepath.Join("testdata", "translate", tc.name+".json")
			if *update {
				require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
				require.NoError(t, os.WriteFile(path, got, 0o644))
				return
			}
			want, err := os.ReadFile(path)
			require.NoError(t, err, "run go test -run TestTranslateGolden -update")
			require.Equal(t, string(want), string(got), "%s is stale or the translation changed: review, then go test -run TestTranslateGolden -update", path)
		})
	}
}

// renderStream runs msgs through one stream and renders each message and
// its outcome as JSON, IDs in hex.
func renderStream(tb testing.TB, in msgs) []byte {
	tb.Helper()
	var st stream
	type step struct {
		In      any    `json:"in"`
		Spans   *int   `json:"spans,omitempty"`
		OTLP    any    `json:"otlp,omitempty"`
		Refused string `json:"refused,omitempty"`
		Error   string `json:"error,omitempty"`
	}
	var steps []step
	for _, m := range in {
		s := step{In: jsonOf(tb, m)}
		req, n, err := st.next(m)
		if err != nil {
			var br *badRequest
			require.True(tb, errors.As(err, &br), "%T: %v", err, err)
			s.Refused, s.Error = br.reason, br.Error()
		} else {
			requireRoutable(tb, req, n)
			s.Spans, s.OTLP = &n, jsonOf(tb, req)
		}
		steps = append(steps, s)
	}
	b, err := json.MarshalIndent(steps, "", "  ")
	require.NoError(tb, err)
	return append(b, '\n')
}

// jsonOf is m's protojson form as plain values (so encoding/json prints
// it with sorted keys and stable spacing), with IDs in hex.
func jsonOf(tb testing.TB, m proto.Message) any {
	tb.Helper()
	b, err := protojson.Marshal(m)
	require.NoError(tb, err)
	var v any
	require.NoError(tb, json.Unmarshal(b, &v))
	hexIDs(v)
	return v
}

func hexIDs(v any) {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			switch k {
			case "traceId", "spanId", "parentSpanId":
				if s, ok := e.(string); ok {
					if b, err := base64.StdEncoding.DecodeString(s); err == nil {
						v[k] = hex.EncodeToString(b)
						continue
					}
				}
			}
			hexIDs(e)
		}
	case []any:
		for _, e := range v {
			hexIDs(e)
		}
	}
}

// requireRoutable checks an accepted translation encodes to OTLP the
// distributor can route, every span counted and with valid IDs and times.
func requireRoutable(tb testing.TB, req *coltracepb.ExportTraceServiceRequest, spans int) {
	tb.Helper()
	require.Equal(tb, spans, countSpans(req))
	if spans == 0 {
		return
	}
	b, err := proto.Marshal(req)
	require.NoError(tb, err)
	split, err := model.SplitByTrace(b)
	require.NoError(tb, err)
	require.Equal(tb, spans, split.Spans)
	for _, rs := range req.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				require.Len(tb, s.TraceId, 16)
				require.Len(tb, s.SpanId, 8)
				require.NotEqual(tb, make([]byte, 8), s.SpanId)
				if len(s.ParentSpanId) != 0 {
					require.Len(tb, s.ParentSpanId, 8)
				}
				require.GreaterOrEqual(tb, s.EndTimeUnixNano, s.StartTimeUnixNano)
				for _, l := range s.Links {
					require.Len(tb, l.TraceId, 16)
					require.Len(tb, l.SpanId, 8)
				}
			}
		}
	}
}

func TestNanos(t *testing.T) {
	for _, tc := range []struct {
		in   *timestamppb.Timestamp
		want uint64
	}{
		{nil, 0},
		{ts(0, 0), 0},
		{ts(1, 5), 1_000_000_005},
		{ts(-1, 0), 0},
		{ts(0, -5), 0},
		{ts(1, 1_500_000_000), 2_500_000_000}, // out-of-range nanos carry
		{ts(maxSeconds, 0), math.MaxInt64},
		{ts(math.MaxInt64, 999_999_999), math.MaxInt64},
	} {
		require.Equal(t, tc.want, nanos(tc.in), "%v", tc.in)
	}
}
