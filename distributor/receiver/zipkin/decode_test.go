package zipkin

import (
	"cmp"
	"encoding/binary"
	"encoding/json"
	"net"
	"slices"
	"testing"
	"time"

	zipkinmodel "github.com/openzipkin/zipkin-go/model"
	zipkinpb "github.com/openzipkin/zipkin-go/proto/zipkin_proto3"
	"github.com/openzipkin/zipkin-go/reporter"
	"github.com/stretchr/testify/require"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonv1 "go.opentelemetry.io/proto/otlp/common/v1"
	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// zipkinGoSpans are spans as zipkin-go's tracer reports them, covering every
// field of the model. Names are lower case: zipkin-go's JSON lower-cases them.
func zipkinGoSpans() []*zipkinmodel.SpanModel {
	parent := zipkinmodel.ID(0x0102030405060708)
	ts := time.Unix(1700000000, 123456000)
	return []*zipkinmodel.SpanModel{{
		SpanContext: zipkinmodel.SpanContext{
			TraceID: zipkinmodel.TraceID{High: 0x5b8efff798038103, Low: 0xd269b633813fc60c},
			ID:      0xeee19b7ec3c1b174, ParentID: &parent,
		},
		Name: "get /api", Kind: zipkinmodel.Client, Timestamp: ts, Duration: 1500 * time.Microsecond,
		LocalEndpoint:  &zipkinmodel.Endpoint{ServiceName: "frontend", IPv4: net.ParseIP("10.0.0.1").To4(), Port: 8080},
		RemoteEndpoint: &zipkinmodel.Endpoint{ServiceName: "backend", IPv6: net.ParseIP("2001:db8::1"), Port: 9000},
		Annotations: []zipkinmodel.Annotation{
			{Timestamp: ts.Add(100 * time.Microsecond), Value: "ws"},
			{Timestamp: ts.Add(900 * time.Microsecond), Value: "wr"},
		},
		Tags: map[string]string{"http.method": "GET", "http.path": "/api", "clnt/finagle.version": "6.45.0"},
	}, {
		SpanContext: zipkinmodel.SpanContext{
			TraceID: zipkinmodel.TraceID{High: 0x5b8efff798038103, Low: 0xd269b633813fc60c},
			ID:      0xeee19b7ec3c1b174, ParentID: &parent, Debug: true,
		},
		Name: "get /api", Kind: zipkinmodel.Server, Timestamp: ts.Add(200 * time.Microsecond), Duration: 800 * time.Microsecond,
		Shared:        true,
		LocalEndpoint: &zipkinmodel.Endpoint{ServiceName: "backend", IPv4: net.ParseIP("10.0.0.2")},
		Tags:          map[string]string{"error": "true"},
	}, {
		SpanContext: zipkinmodel.SpanContext{TraceID: zipkinmodel.TraceID{Low: 0xd269b633813fc60c}, ID: 1},
		Name:        "local work", Timestamp: ts, Duration: time.Microsecond,
		LocalEndpoint: &zipkinmodel.Endpoint{ServiceName: "frontend"},
	}, {
		SpanContext: zipkinmodel.SpanContext{TraceID: zipkinmodel.TraceID{Low: 0xd269b633813fc60c}, ID: 2},
		Name:        "send", Kind: zipkinmodel.Producer, Timestamp: ts, Duration: 3 * time.Microsecond,
		RemoteEndpoint: &zipkinmodel.Endpoint{ServiceName: "kafka"},
	}, {
		SpanContext: zipkinmodel.SpanContext{TraceID: zipkinmodel.TraceID{Low: 0xd269b633813fc60c}, ID: 3},
		Name:        "receive", Kind: zipkinmodel.Consumer, Timestamp: ts, Duration: 3 * time.Microsecond,
	}}
}

// fromZipkinGo is the OTLP the receiver must make of zipkin-go's spans, built
// field by field from the model without the receiver's code.
func fromZipkinGo(spans []*zipkinmodel.SpanModel) *coltracepb.ExportTraceServiceRequest {
	kinds := map[zipkinmodel.Kind]tracev1.Span_SpanKind{
		zipkinmodel.Client: tracev1.Span_SPAN_KIND_CLIENT, zipkinmodel.Server: tracev1.Span_SPAN_KIND_SERVER,
		zipkinmodel.Producer: tracev1.Span_SPAN_KIND_PRODUCER, zipkinmodel.Consumer: tracev1.Span_SPAN_KIND_CONSUMER,
	}
	var out []*tracev1.ResourceSpans
	byService := map[string]*tracev1.ScopeSpans{}
	for _, zs := range spans {
		s := &tracev1.Span{
			TraceId: binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, zs.TraceID.High), zs.TraceID.Low),
			SpanId:  binary.BigEndian.AppendUint64(nil, uint64(zs.ID)),
			Name:    zs.Name, Kind: kinds[zs.Kind],
			StartTimeUnixNano: uint64(zs.Timestamp.UnixNano()),
			EndTimeUnixNano:   uint64(zs.Timestamp.Add(zs.Duration).UnixNano()),
		}
		if zs.ParentID != nil {
			s.ParentSpanId = binary.BigEndian.AppendUint64(nil, uint64(*zs.ParentID))
		}
		keys := make([]string, 0, len(zs.Tags))
		for k := range zs.Tags {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			if k == "error" {
				s.Status = &tracev1.Status{Code: tracev1.Status_STATUS_CODE_ERROR}
				continue
			}
			s.Attributes = append(s.Attributes, strAttr(k, zs.Tags[k]))
		}
		service := ""
		if e := zs.LocalEndpoint; e != nil {
			service = e.ServiceName
			if e.IPv4 != nil {
				s.Attributes = append(s.Attributes, strAttr("network.local.address", e.IPv4.String()))
			}
			if e.Port != 0 {
				s.Attributes = append(s.Attributes, intAttr("network.local.port", int64(e.Port)))
			}
		}
		if e := zs.RemoteEndpoint; e != nil {
			s.Attributes = append(s.Attributes, strAttr("peer.service", e.ServiceName))
			if e.IPv6 != nil {
				s.Attributes = append(s.Attributes, strAttr("network.peer.address", e.IPv6.String()))
			}
			if e.Port != 0 {
				s.Attributes = append(s.Attributes, intAttr("network.peer.port", int64(e.Port)))
			}
		}
		if zs.Shared {
			s.Attributes = append(s.Attributes, boolAttr("zipkin.shared", true))
		}
		if zs.Debug {
			s.Attributes = append(s.Attributes, boolAttr("zipkin.debug", true))
		}
		for _, a := range zs.Annotations {
			s.Events = append(s.Events, &tracev1.Span_Event{TimeUnixNano: uint64(a.Timestamp.UnixNano()), Name: a.Value})
		}
		ss, ok := byService[service]
		if !ok {
			r := rs(service, nil)
			ss = r.ScopeSpans[0]
			byService[service] = ss
			out = append(out, r)
		}
		ss.Spans = append(ss.Spans, s)
	}
	return request(out...)
}

// decodeAndTranslate runs a body through the receiver's decoder for f and
// encoder, and returns the request it pushes, decoded.
func decodeAndTranslate(tb testing.TB, f format, body []byte) *coltracepb.ExportTraceServiceRequest {
	tb.Helper()
	b, _, err := decode(f, body)
	require.NoError(tb, err)
	return encodeRequest(tb, b)
}

// TestDecodeZipkinGo decodes what zipkin-go's own serializers write, JSON
// (model.SpanModel's encoding) and protobuf (zipkin_proto3), and checks both
// give the OTLP built from the model field by field.
func TestDecodeZipkinGo(t *testing.T) {
	spans := zipkinGoSpans()
	want := fromZipkinGo(spans)
	for _, tc := range []struct {
		f   format
		ser reporter.SpanSerializer
	}{
		{formatJSONV2, reporter.JSONSerializer{}},
		{formatProto, zipkinpb.SpanSerializer{}},
	} {
		t.Run(string(tc.f), func(t *testing.T) {
			body, err := tc.ser.Serialize(spans)
			require.NoError(t, err)
			requireProtoEqual(t, want, decodeAndTranslate(t, tc.f, body))
		})
	}
}

// sortAttributes orders attributes by key, for comparing translations
// whose tags came from a map.
func sortAttributes(req *coltracepb.ExportTraceServiceRequest) {
	for _, s := range spans(req) {
		slices.SortFunc(s.Attributes, func(a, b *commonv1.KeyValue) int { return cmp.Compare(a.Key, b.Key) })
	}
}

// TestDecodeJSONV2MatchesZipkinGo checks the hand-written JSON decoder
// against zipkin-go's reflection-based one: each document is read by
// encoding/json into model.SpanModel, re-encoded as protobuf by zipkin-go,
// and must translate to what the receiver makes of the JSON directly.
func TestDecodeJSONV2MatchesZipkinGo(t *testing.T) {
	docs := map[string]string{
		"envoy": `[{"traceId":"5b8efff798038103d269b633813fc60c","parentId":"eee19b7ec3c1b173","id":"eee19b7ec3c1b174",` +
			`"kind":"CLIENT","name":"router backend egress","timestamp":1566058071601051,"duration":23415,` +
			`"localEndpoint":{"serviceName":"frontend-proxy","ipv4":"192.168.1.10","port":0},` +
			`"tags":{"component":"proxy","downstream_cluster":"-","guid:x-request-id":"4d5b8f67-c2d3","http.method":"GET",` +
			`"http.protocol":"HTTP/1.1","http.status_code":"200","http.url":"http://backend/api","node_id":"sidecar~10.0.0.1",` +
			`"peer.address":"10.0.0.9","response_flags":"-","response_size":"523","upstream_cluster":"backend"}}]`,
		"escapes and unicode": `[{"traceId":"0000000000000001","id":"0000000000000002","name":"caf\u00e9 \"q\" \\ \/ \t",` +
			`"timestamp":1,"tags":{"k\u00e9y":"v\n\u0000x"},"annotations":[{"timestamp":2,"value":"\ud83d\ude00"}]}]`,
		"nulls and unknown fields": `[{"traceId":"0000000000000001","id":"0000000000000002","parentId":null,"name":null,` +
			`"remoteEndpoint":null,"x":{"y":[1,2,{"z":true}]},"timestamp":5,"duration":null}]`,
		"ipv6 and ports": `[{"traceId":"0000000000000001","id":"0000000000000002","timestamp":5,` +
			`"localEndpoint":{"serviceName":"a","ipv6":"2001:db8::c001","port":65535},` +
			`"remoteEndpoint":{"serviceName":"b","ipv4":"127.0.0.1","port":1}}]`,
		"white space": " \n\t[ { \"traceId\" : \"0000000000000001\" , \"id\" : \"0000000000000002\" , \"timestamp\" : 5 } ] \r\n",
		"many spans": `[{"traceId":"01","id":"02","timestamp":5,"kind":"SERVER","shared":true,"debug":true},` +
			`{"traceId":"01","id":"03","timestamp":6,"kind":"PRODUCER"},{"traceId":"01","id":"04","timestamp":7,"kind":"CONSUMER"}]`,
		"empty list": `[]`,
	}
	for name, doc := range docs {
		t.Run(name, func(t *testing.T) {
			var models []*zipkinmodel.SpanModel
			require.NoError(t, json.Unmarshal([]byte(doc), &models))
			pb, err := zipkinpb.SpanSerializer{}.Serialize(models)
			require.NoError(t, err)
			want := decodeAndTranslate(t, formatProto, pb)
			got := decodeAndTranslate(t, formatJSONV2, []byte(doc))
			sortAttributes(want)
			sortAttributes(got)
			requireProtoEqual(t, want, got)
		})
	}
}

func TestDecodeProto(t *testing.T) {
	span := func(mod func(*zipkinpb.Span)) []byte {
		s := &zipkinpb.Span{
			TraceId: []byte{0xd2, 0x69, 0xb6, 0x33, 0x81, 0x3f, 0xc6, 0x0c}, Id: []byte{1, 2, 3, 4, 5, 6, 7, 8},
			Name: "x", Timestamp: 1544712660000000, Duration: 1000,
		}
		if mod != nil {
			mod(s)
		}
		b, err := proto.Marshal(&zipkinpb.ListOfSpans{Spans: []*zipkinpb.Span{s}})
		require.NoError(t, err)
		return b
	}
	base := func(mod func(*tracev1.Span)) *coltracepb.ExportTraceServiceRequest {
		s := &tracev1.Span{
			TraceId: hexBytes(t, "0000000000000000d269b633813fc60c"), SpanId: []byte{1, 2, 3, 4, 5, 6, 7, 8},
			Name: "x", StartTimeUnixNano: startNs, EndTimeUnixNano: endNs,
		}
		if mod != nil {
			mod(s)
		}
		return request(rs("", nil, s))
	}
	cases := []struct {
		name string
		in   []byte
		want *coltracepb.ExportTraceServiceRequest
	}{
		{"8-byte trace ID is left-padded", span(nil), base(nil)},
		{"all-zero parent_id (zipkin-go writes it for roots) is none",
			span(func(s *zipkinpb.Span) { s.ParentId = make([]byte, 8) }), base(nil)},
		{"IPv4 in its 16-byte form", span(func(s *zipkinpb.Span) {
			s.LocalEndpoint = &zipkinpb.Endpoint{ServiceName: "svc", Ipv4: net.ParseIP("10.1.2.3")}
		}), func() *coltracepb.ExportTraceServiceRequest {
			r := base(func(s *tracev1.Span) {
				s.Attributes = []*commonv1.KeyValue{strAttr("network.local.address", "10.1.2.3")}
			})
			r.ResourceSpans[0].Resource.Attributes = []*commonv1.KeyValue{strAttr("service.name", "svc")}
			return r
		}()},
		{"addresses of the wrong length are dropped", span(func(s *zipkinpb.Span) {
			s.RemoteEndpoint = &zipkinpb.Endpoint{Ipv4: []byte{1, 2, 3}, Ipv6: []byte{1}, Port: 70000}
		}), base(nil)},
		{"map tags come out sorted", span(func(s *zipkinpb.Span) {
			s.Tags = map[string]string{"c": "3", "a": "1", "b": "2"}
		}), base(func(s *tracev1.Span) {
			s.Attributes = []*commonv1.KeyValue{strAttr("a", "1"), strAttr("b", "2"), strAttr("c", "3")}
		})},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			requireProtoEqual(t, tc.want, decodeAndTranslate(t, formatProto, tc.in))
		})
	}
}
