package otlpjson

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	commonv1 "go.opentelemetry.io/proto/otlp/common/v1"
	resourcev1 "go.opentelemetry.io/proto/otlp/resource/v1"
	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/vivace-dev/vivace/internal/model/modeltest"
)

var update = flag.Bool("update", false, "rewrite the fuzz seeds under testdata/fuzz/")

func TestAppendTracesData(t *testing.T) {
	type test struct {
		name string
		td   *tracev1.TracesData
	}
	var tests []test
	rng := rand.New(rand.NewPCG(7, 11))
	for i, spans := range []int{1, 2, 5, 20, 100, 300, 1000} {
		id := modeltest.IDs(rng, 1)[0]
		tests = append(tests, test{fmt.Sprintf("modeltest %d: %d spans", i, spans), modeltest.Trace(rng, id, spans)})
	}
	_, many := modeltest.Traces(rng, 20, 30)
	for i, td := range many {
		tests = append(tests, test{fmt.Sprintf("modeltest random %d", i), td})
	}
	for _, e := range edgeCases() {
		tests = append(tests, test{e.name, e.td})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			requireSameAsProtojson(t, tt.td)
		})
	}
}

func TestAppendResourceSpans(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 5))
	var rss []*tracev1.ResourceSpans
	rss = append(rss, modeltest.Trace(rng, modeltest.IDs(rng, 1)[0], 50).ResourceSpans...)
	for _, e := range edgeCases() {
		rss = append(rss, e.td.GetResourceSpans()...)
	}
	for i, rs := range rss {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			want, err := protojson.Marshal(rs)
			require.NoError(t, err)
			got := AppendResourceSpans([]byte("prefix"), rs)
			require.Equal(t, "prefix", string(got[:6]), "dst kept")
			requireSameJSON(t, want, got[6:], &tracev1.ResourceSpans{}, &tracev1.ResourceSpans{})
		})
	}
}

func TestNilTracesData(t *testing.T) {
	require.Equal(t, "{}", string(AppendTracesData(nil, nil)))
	require.Equal(t, "{}", string(AppendResourceSpans(nil, nil)))
}

// TestInvalidUTF8 checks the one place the output departs from protojson,
// which fails on invalid UTF-8: each invalid byte is written as U+FFFD, as
// encoding/json writes it.
func TestInvalidUTF8(t *testing.T) {
	tests := []string{"\xff", "a\xffb", "\xc3", "\xc3(", "\xed\xa0\x80", "ok\xe2\x82", "\xf4\x90\x80\x80z"}
	for _, s := range tests {
		t.Run(fmt.Sprintf("%q", s), func(t *testing.T) {
			td := &tracev1.TracesData{ResourceSpans: []*tracev1.ResourceSpans{{SchemaUrl: s}}}
			_, err := protojson.Marshal(td)
			require.Error(t, err, "protojson now accepts invalid UTF-8: revisit the package doc")
			got := AppendTracesData(nil, td)
			require.True(t, json.Valid(got), "invalid JSON: %s", got)
			want, err := json.Marshal(s)
			require.NoError(t, err)
			require.Equal(t, `{"resourceSpans":[{"schemaUrl":`+string(want)+`}]}`, string(bytes.ReplaceAll(got, []byte("\uFFFD"), []byte(`\ufffd`))))
		})
	}
}

// TestFieldsCovered fails when the OTLP trace messages gain, lose, rename or
// reorder a field: each must be written by this package, in protojson's order
// (declaration order).
func TestFieldsCovered(t *testing.T) {
	known := []string{
		"opentelemetry.proto.trace.v1.TracesData: resourceSpans []message",
		"opentelemetry.proto.trace.v1.ResourceSpans: resource message, scopeSpans []message, schemaUrl string",
		"opentelemetry.proto.resource.v1.Resource: attributes []message, droppedAttributesCount uint32, entityRefs []message",
		"opentelemetry.proto.common.v1.KeyValue: key string, value message, keyStrindex int32",
		"opentelemetry.proto.common.v1.AnyValue: stringValue string (value), boolValue bool (value), intValue int64 (value), " +
			"doubleValue double (value), arrayValue message (value), kvlistValue message (value), bytesValue bytes (value), " +
			"stringValueStrindex int32 (value)",
		"opentelemetry.proto.common.v1.ArrayValue: values []message",
		"opentelemetry.proto.common.v1.KeyValueList: values []message",
		"opentelemetry.proto.common.v1.EntityRef: schemaUrl string, type string, idKeys []string, descriptionKeys []string",
		"opentelemetry.proto.trace.v1.ScopeSpans: scope message, spans []message, schemaUrl string",
		"opentelemetry.proto.common.v1.InstrumentationScope: name string, version string, attributes []message, droppedAttributesCount uint32",
		"opentelemetry.proto.trace.v1.Span: traceId bytes, spanId bytes, traceState string, parentSpanId bytes, flags fixed32, " +
			"name string, kind enum, startTimeUnixNano fixed64, endTimeUnixNano fixed64, attributes []message, " +
			"droppedAttributesCount uint32, events []message, droppedEventsCount uint32, links []message, " +
			"droppedLinksCount uint32, status message",
		"opentelemetry.proto.trace.v1.Span.Event: timeUnixNano fixed64, name string, attributes []message, droppedAttributesCount uint32",
		"opentelemetry.proto.trace.v1.Span.Link: traceId bytes, spanId bytes, traceState string, attributes []message, " +
			"droppedAttributesCount uint32, flags fixed32",
		"opentelemetry.proto.trace.v1.Status: message string, code enum",
	}
	var got []string
	seen := map[protoreflect.FullName]bool{}
	var walk func(md protoreflect.MessageDescriptor)
	walk = func(md protoreflect.MessageDescriptor) {
		if seen[md.FullName()] {
			return
		}
		seen[md.FullName()] = true
		var fields []string
		var next []protoreflect.MessageDescriptor
		for i := range md.Fields().Len() {
			fd := md.Fields().Get(i)
			s := fd.JSONName() + " "
			if fd.IsList() {
				s += "[]"
			}
			s += fd.Kind().String()
			if fd.IsMap() || fd.HasOptionalKeyword() {
				s += " (map or optional: not written)"
			}
			if od := fd.ContainingOneof(); od != nil && !od.IsSynthetic() {
				s += " (" + string(od.Name()) + ")"
			}
			fields = append(fields, s)
			if fd.Message() != nil {
				next = append(next, fd.Message())
			}
		}
		got = append(got, string(md.FullName())+": "+strings.Join(fields, ", "))
		for _, m := range next {
			walk(m)
		}
	}
	walk((&tracev1.TracesData{}).ProtoReflect().Descriptor())
	require.Equal(t, known, got, "the OTLP protos changed: teach otlpjson.go the new fields, then this list")

	// And the edge cases set every field, so that TestAppendTracesData
	// compares each with protojson.
	var unset []string
	set := map[protoreflect.FullName]bool{}
	var mark func(m protoreflect.Message)
	mark = func(m protoreflect.Message) {
		m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
			set[fd.FullName()] = true
			switch {
			case fd.IsList() && fd.Message() != nil:
				for i := range v.List().Len() {
					mark(v.List().Get(i).Message())
				}
			case fd.Message() != nil:
				mark(v.Message())
			}
			return true
		})
	}
	for _, e := range edgeCases() {
		mark(e.td.ProtoReflect())
	}
	for name := range seen {
		md, err := protoregistry.GlobalFiles.FindDescriptorByName(name)
		require.NoError(t, err)
		fds := md.(protoreflect.MessageDescriptor).Fields()
		for i := range fds.Len() {
			if !set[fds.Get(i).FullName()] {
				unset = append(unset, string(fds.Get(i).FullName()))
			}
		}
	}
	require.Empty(t, unset, "no edge case sets these fields")
}

// FuzzAppendTracesData checks any TracesData protobuf reads into against
// protojson. Its seeds under testdata/fuzz/ are modeltest traces and the edge
// cases that have a protobuf form; -update rewrites them.
func FuzzAppendTracesData(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		td := &tracev1.TracesData{}
		if proto.Unmarshal(b, td) != nil {
			return
		}
		requireSameAsProtojson(t, td)
	})
}

func TestWriteFuzzSeeds(t *testing.T) {
	if !*update {
		t.Skip("run with -update to rewrite the fuzz seeds")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzAppendTracesData")
	require.NoError(t, os.RemoveAll(dir))
	require.NoError(t, os.MkdirAll(dir, 0o755))
	seed := func(name string, td *tracev1.TracesData) {
		b, err := proto.Marshal(td)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", b), 0o644))
	}
	rng := rand.New(rand.NewPCG(1, 1))
	for _, spans := range []int{1, 3, 12} {
		seed(fmt.Sprintf("modeltest_%d_spans", spans), modeltest.Trace(rng, modeltest.IDs(rng, 1)[0], spans))
	}
	for _, e := range edgeCases() {
		if e.wire {
			seed(strings.ReplaceAll(e.name, " ", "_"), e.td)
		}
	}
}

// requireSameAsProtojson checks that AppendTracesData(td) means what
// protojson.Marshal(td) does.
func requireSameAsProtojson(t testing.TB, td *tracev1.TracesData) {
	t.Helper()
	want, err := protojson.Marshal(td)
	require.NoError(t, err)
	got := AppendTracesData(nil, td)
	requireSameJSON(t, want, got, &tracev1.TracesData{}, &tracev1.TracesData{})
}

// requireSameJSON checks that got, our output, means what want, protojson's,
// does: as protobuf, as plain JSON, and byte for byte once protojson's random
// spaces are removed. wantMsg and gotMsg are fresh messages to read them into.
func requireSameJSON(t testing.TB, want, got []byte, wantMsg, gotMsg proto.Message) {
	t.Helper()
	require.True(t, json.Valid(got), "invalid JSON: %s", got)

	require.NoError(t, protojson.Unmarshal(want, wantMsg))
	require.NoError(t, protojson.Unmarshal(got, gotMsg), "%s", got)
	require.True(t, proto.Equal(wantMsg, gotMsg), "protojson reads back a different message:\nwant %s\ngot  %s", want, got)

	wantAny, wantErr := decodeAny(want)
	gotAny, gotErr := decodeAny(got)
	require.Equal(t, wantErr != nil, gotErr != nil, "%v, %v", wantErr, gotErr) // nested past encoding/json's depth limit
	require.Equal(t, wantAny, gotAny)

	var compact bytes.Buffer
	require.NoError(t, json.Compact(&compact, want))
	require.Equal(t, compact.String(), string(got))
}

// decodeAny reads JSON into any, numbers as written (json.Number), so that
// "1e+21" and "1e21" differ.
func decodeAny(b []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	err := d.Decode(&v)
	return v, err
}

type edgeCase struct {
	name string
	td   *tracev1.TracesData
	wire bool // has a protobuf form: no nil entries or typed nil oneofs
}

func edgeCases() []edgeCase {
	str := func(s string) *commonv1.AnyValue {
		return &commonv1.AnyValue{Value: &commonv1.AnyValue_StringValue{StringValue: s}}
	}
	dbl := func(f float64) *commonv1.AnyValue {
		return &commonv1.AnyValue{Value: &commonv1.AnyValue_DoubleValue{DoubleValue: f}}
	}
	i64 := func(n int64) *commonv1.AnyValue {
		return &commonv1.AnyValue{Value: &commonv1.AnyValue_IntValue{IntValue: n}}
	}
	arr := func(vs ...*commonv1.AnyValue) *commonv1.AnyValue {
		return &commonv1.AnyValue{Value: &commonv1.AnyValue_ArrayValue{ArrayValue: &commonv1.ArrayValue{Values: vs}}}
	}
	kvl := func(kvs ...*commonv1.KeyValue) *commonv1.AnyValue {
		return &commonv1.AnyValue{Value: &commonv1.AnyValue_KvlistValue{KvlistValue: &commonv1.KeyValueList{Values: kvs}}}
	}
	kv := func(k string, v *commonv1.AnyValue) *commonv1.KeyValue { return &commonv1.KeyValue{Key: k, Value: v} }
	// attrs wraps attributes in a whole trace.
	attrs := func(kvs ...*commonv1.KeyValue) *tracev1.TracesData {
		return &tracev1.TracesData{ResourceSpans: []*tracev1.ResourceSpans{{
			ScopeSpans: []*tracev1.ScopeSpans{{Spans: []*tracev1.Span{{Attributes: kvs}}}},
		}}}
	}
	span := func(s *tracev1.Span) *tracev1.TracesData {
		return &tracev1.TracesData{ResourceSpans: []*tracev1.ResourceSpans{{
			ScopeSpans: []*tracev1.ScopeSpans{{Spans: []*tracev1.Span{s}}},
		}}}
	}

	var control strings.Builder
	for c := range 0x20 {
		control.WriteByte(byte(c))
	}
	control.WriteString("\x7f")

	doubles := []float64{
		0, math.Copysign(0, -1), 1, -1.5, 0.1, 1.0 / 3, 123456789.123, 1e20, 1e21, -1e21, 999999999999999999999.0,
		1e-6, -1e-6, 9.999999e-7, 1e-7, 1.5e-10, 5e-324, math.SmallestNonzeroFloat64 * 3, 1e100, 1e-100,
		math.MaxFloat64, -math.MaxFloat64, math.MaxInt64, 1 << 53, (1 << 53) + 1, 2.2250738585072014e-308,
		math.NaN(), math.Inf(1), math.Inf(-1), float64(math.Float32frombits(1)),
	}
	var doubleKVs []*commonv1.KeyValue
	for i, f := range doubles {
		doubleKVs = append(doubleKVs, kv(fmt.Sprint(i), dbl(f)))
	}

	full := &tracev1.Span{
		TraceId: bytes.Repeat([]byte{0xff}, 16), SpanId: []byte{0, 1, 2, 3, 4, 5, 6, 0xfb}, TraceState: "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE",
		ParentSpanId: []byte{0xfe}, Flags: math.MaxUint32, Name: "GET /", Kind: tracev1.Span_SPAN_KIND_CONSUMER,
		StartTimeUnixNano: math.MaxUint64, EndTimeUnixNano: 1, Attributes: []*commonv1.KeyValue{kv("a", str("b"))},
		DroppedAttributesCount: math.MaxUint32, DroppedEventsCount: 1, DroppedLinksCount: 2,
		Events: []*tracev1.Span_Event{
			{TimeUnixNano: math.MaxUint64, Name: "exception", Attributes: []*commonv1.KeyValue{kv("x", i64(-1))}, DroppedAttributesCount: 3},
			{},
		},
		Links: []*tracev1.Span_Link{
			{TraceId: []byte{1}, SpanId: []byte{2, 3}, TraceState: "k=v", Attributes: []*commonv1.KeyValue{kv("", nil)}, DroppedAttributesCount: 4, Flags: 0x301},
			{},
		},
		Status: &tracev1.Status{Message: "boom", Code: tracev1.Status_STATUS_CODE_ERROR},
	}

	return []edgeCase{
		{"empty", &tracev1.TracesData{}, true},
		{"empty resource spans", &tracev1.TracesData{ResourceSpans: []*tracev1.ResourceSpans{{}, {}}}, true},
		{"empty messages", &tracev1.TracesData{ResourceSpans: []*tracev1.ResourceSpans{{
			Resource: &resourcev1.Resource{},
			ScopeSpans: []*tracev1.ScopeSpans{{Scope: &commonv1.InstrumentationScope{}, Spans: []*tracev1.Span{{
				Status: &tracev1.Status{}, Events: []*tracev1.Span_Event{{}}, Links: []*tracev1.Span_Link{{}},
				Attributes: []*commonv1.KeyValue{{}, {Value: &commonv1.AnyValue{}}},
			}}}},
		}}}, true},
		{"empty lists and bytes", &tracev1.TracesData{ResourceSpans: []*tracev1.ResourceSpans{{
			Resource:   &resourcev1.Resource{Attributes: []*commonv1.KeyValue{}, EntityRefs: []*commonv1.EntityRef{}},
			ScopeSpans: []*tracev1.ScopeSpans{{Spans: []*tracev1.Span{{TraceId: []byte{}, SpanId: []byte{}, Events: []*tracev1.Span_Event{}}}}},
		}}}, true},
		{"nil entries", &tracev1.TracesData{ResourceSpans: []*tracev1.ResourceSpans{nil, {
			ScopeSpans: []*tracev1.ScopeSpans{nil, {Spans: []*tracev1.Span{nil, {
				Events: []*tracev1.Span_Event{nil}, Links: []*tracev1.Span_Link{nil},
				Attributes: []*commonv1.KeyValue{nil, kv("arr", arr(nil, str("x"))), kv("kvl", kvl(nil))},
			}}}},
			Resource: &resourcev1.Resource{EntityRefs: []*commonv1.EntityRef{nil}},
		}}}, false},
		{"typed nil oneof", attrs(
			kv("s", &commonv1.AnyValue{Value: (*commonv1.AnyValue_StringValue)(nil)}),
			kv("b", &commonv1.AnyValue{Value: (*commonv1.AnyValue_BoolValue)(nil)}),
			kv("i", &commonv1.AnyValue{Value: (*commonv1.AnyValue_IntValue)(nil)}),
			kv("d", &commonv1.AnyValue{Value: (*commonv1.AnyValue_DoubleValue)(nil)}),
			kv("a", &commonv1.AnyValue{Value: (*commonv1.AnyValue_ArrayValue)(nil)}),
			kv("k", &commonv1.AnyValue{Value: (*commonv1.AnyValue_KvlistValue)(nil)}),
			kv("y", &commonv1.AnyValue{Value: (*commonv1.AnyValue_BytesValue)(nil)}),
			kv("x", &commonv1.AnyValue{Value: (*commonv1.AnyValue_StringValueStrindex)(nil)}),
		), false},
		{"nil oneof messages", attrs(
			kv("a", &commonv1.AnyValue{Value: &commonv1.AnyValue_ArrayValue{}}),
			kv("k", &commonv1.AnyValue{Value: &commonv1.AnyValue_KvlistValue{}}),
		), false},
		{"every value kind", attrs(
			kv("string", str("text")), kv("bool", &commonv1.AnyValue{Value: &commonv1.AnyValue_BoolValue{BoolValue: true}}),
			kv("int", i64(-42)), kv("double", dbl(2.5)),
			kv("array", arr(str("a"), i64(1), dbl(0.5))), kv("kvlist", kvl(kv("k", str("v")))),
			kv("bytes", &commonv1.AnyValue{Value: &commonv1.AnyValue_BytesValue{BytesValue: []byte{0, 0xff, 0xfe, 0x7f, 1}}}),
			kv("strindex", &commonv1.AnyValue{Value: &commonv1.AnyValue_StringValueStrindex{StringValueStrindex: 7}}),
			&commonv1.KeyValue{Key: "key strindex", KeyStrindex: -3, Value: str("v")}, &commonv1.KeyValue{KeyStrindex: math.MaxInt32},
		), true},
		{"zero values in oneof", attrs(
			kv("string", str("")), kv("bool", &commonv1.AnyValue{Value: &commonv1.AnyValue_BoolValue{}}),
			kv("int", i64(0)), kv("double", dbl(0)), kv("array", arr()), kv("kvlist", kvl()),
			kv("bytes", &commonv1.AnyValue{Value: &commonv1.AnyValue_BytesValue{}}),
			kv("bytes empty", &commonv1.AnyValue{Value: &commonv1.AnyValue_BytesValue{BytesValue: []byte{}}}),
			kv("strindex", &commonv1.AnyValue{Value: &commonv1.AnyValue_StringValueStrindex{}}),
			kv("none", &commonv1.AnyValue{}), kv("nil", nil),
		), true},
		{"nested", attrs(
			kv("deep", kvl(
				kv("a", arr(
					kvl(kv("b", arr(arr(arr(str("c"))), kvl(), &commonv1.AnyValue{}))),
					arr(),
				)),
			)),
			kv("mixed", arr(i64(math.MinInt64), i64(math.MaxInt64), dbl(math.NaN()), str("\u2028"))),
		), true},
		{"doubles", attrs(doubleKVs...), true},
		{"int64 limits", attrs(kv("min", i64(math.MinInt64)), kv("max", i64(math.MaxInt64)), kv("-1", i64(-1))), true},
		{"strings", attrs(
			kv("control", str(control.String())),
			kv(control.String(), str("key with control characters")),
			kv("quotes", str(`"\/'`+"`")),
			kv("html", str("<script>alert('&amp;')</script> & <>")),
			kv("line separators", str("a\u2028b\u2029c")),
			kv("unicode", str("héllo wörld 日本語 🚀 \U0010ffff \ufeff \ufffd")),
			kv("long", str(strings.Repeat("abc\"\n", 1000))),
			kv("", str("")),
		), true},
		{"unknown enums", span(&tracev1.Span{Kind: 99, Status: &tracev1.Status{Code: -7}}), true},
		{"every kind and code", &tracev1.TracesData{ResourceSpans: []*tracev1.ResourceSpans{{
			ScopeSpans: []*tracev1.ScopeSpans{{Spans: []*tracev1.Span{
				{Kind: 0, Status: &tracev1.Status{Code: 0}},
				{Kind: 1, Status: &tracev1.Status{Code: 1}},
				{Kind: 2, Status: &tracev1.Status{Code: 2}},
				{Kind: 3, Status: &tracev1.Status{Code: 3}},
				{Kind: 4}, {Kind: 5}, {Kind: 6}, {Kind: -1},
			}}},
		}}}, true},
		{"every field", &tracev1.TracesData{ResourceSpans: []*tracev1.ResourceSpans{{
			Resource: &resourcev1.Resource{
				Attributes: []*commonv1.KeyValue{kv("service.name", str("svc"))}, DroppedAttributesCount: 5,
				EntityRefs: []*commonv1.EntityRef{
					{SchemaUrl: "https://opentelemetry.io/schemas/1.26.0", Type: "service", IdKeys: []string{"service.name", "service.namespace"}, DescriptionKeys: []string{"service.version", "\n"}},
					{Type: "host", IdKeys: []string{""}},
					{},
				},
			},
			ScopeSpans: []*tracev1.ScopeSpans{{
				Scope:     &commonv1.InstrumentationScope{Name: "lib", Version: "1.0", Attributes: []*commonv1.KeyValue{kv("k", i64(1))}, DroppedAttributesCount: 6},
				Spans:     []*tracev1.Span{full, full},
				SchemaUrl: "scope schema",
			}, {SchemaUrl: "only schema"}},
			SchemaUrl: "resource schema",
		}}}, true},
	}
}

func BenchmarkAppendTracesData(b *testing.B) {
	rng := rand.New(rand.NewPCG(42, 42))
	for _, spans := range []int{100, 1000} {
		td := modeltest.Trace(rng, modeltest.IDs(rng, 1)[0], spans)
		var buf []byte
		encoders := []struct {
			name   string
			encode func(b *testing.B) []byte
		}{
			{"otlpjson", func(*testing.B) []byte { return AppendTracesData(nil, td) }},
			// The encoding alone, into a buffer of the right size.
			{"otlpjson_reuse", func(*testing.B) []byte {
				buf = AppendTracesData(buf[:0], td)
				return buf
			}},
			// protojson's bytes/span counts the spaces it adds after
			// commas in some builds.
			{"protojson", func(b *testing.B) []byte {
				out, err := protojson.Marshal(td)
				if err != nil {
					b.Fatal(err)
				}
				return out
			}},
		}
		for _, enc := range encoders {
			b.Run(fmt.Sprintf("spans=%d/%s", spans, enc.name), func(b *testing.B) {
				b.ReportAllocs()
				var n int
				for b.Loop() {
					n = len(enc.encode(b))
				}
				b.ReportMetric(float64(spans)*float64(b.N)/b.Elapsed().Seconds(), "spans/s")
				b.ReportMetric(float64(n)/float64(spans), "bytes/span")
			})
		}
	}
}
