package zipkin

import (
	"testing"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonv1 "go.opentelemetry.io/proto/otlp/common/v1"
	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"
)

const (
	v1Frontend = `{"serviceName":"frontend","ipv4":"10.0.0.1","port":8080}`
	v1Backend  = `{"serviceName":"backend","ipv4":"10.0.0.2","port":9000}`
	v1IDs      = `"traceId":"` + traceHex + `","id":"` + spanHex + `","parentId":"` + parentHex + `","name":"get"`
)

func v1Anno(ts, value, ep string) string {
	if ep == "" {
		return `{"timestamp":` + ts + `,"value":"` + value + `"}`
	}
	return `{"timestamp":` + ts + `,"value":"` + value + `","endpoint":` + ep + `}`
}

// v2 is a translated span of the v1 tests: times in µs.
func v2(tb testing.TB, kind tracev1.Span_SpanKind, startUs, durUs uint64, attrs ...*commonv1.KeyValue) *tracev1.Span {
	return &tracev1.Span{
		TraceId: hexBytes(tb, traceHex), SpanId: hexBytes(tb, spanHex), ParentSpanId: hexBytes(tb, parentHex),
		Name: "get", Kind: kind, StartTimeUnixNano: startUs * 1000, EndTimeUnixNano: (startUs + durUs) * 1000,
		Attributes: attrs,
	}
}

func frontendLocal() []*commonv1.KeyValue {
	return []*commonv1.KeyValue{strAttr("network.local.address", "10.0.0.1"), intAttr("network.local.port", 8080)}
}

func backendLocal() []*commonv1.KeyValue {
	return []*commonv1.KeyValue{strAttr("network.local.address", "10.0.0.2"), intAttr("network.local.port", 9000)}
}

// TestDecodeJSONV1 checks the v1 → v2 conversion, rule by rule of Zipkin's
// V1SpanConverter, through to OTLP.
func TestDecodeJSONV1(t *testing.T) {
	client, server := tracev1.Span_SPAN_KIND_CLIENT, tracev1.Span_SPAN_KIND_SERVER
	none := tracev1.Span_SPAN_KIND_UNSPECIFIED
	cat := func(kvs ...[]*commonv1.KeyValue) []*commonv1.KeyValue {
		var out []*commonv1.KeyValue
		for _, k := range kvs {
			out = append(out, k...)
		}
		return out
	}
	cases := []struct {
		name string
		in   string
		want func(t *testing.T) *coltracepb.ExportTraceServiceRequest
	}{{
		name: "client and server in one v1 span: two v2 spans, the server shared; ca and sa become remote endpoints",
		in: `[{` + v1IDs + `,"timestamp":1000000,"duration":500,"annotations":[` +
			v1Anno("1000000", "cs", v1Frontend) + `,` + v1Anno("1000100", "sr", v1Backend) + `,` +
			v1Anno("1000400", "ss", v1Backend) + `,` + v1Anno("1000500", "cr", v1Frontend) + `],` +
			`"binaryAnnotations":[{"key":"http.path","value":"/api","endpoint":` + v1Backend + `},` +
			`{"key":"ca","value":true,"endpoint":{"serviceName":"frontend","ipv4":"10.0.0.1","port":53211}},` +
			`{"key":"sa","value":true,"endpoint":` + v1Backend + `}]}]`,
		want: func(t *testing.T) *coltracepb.ExportTraceServiceRequest {
			return request(
				rs("frontend", nil, v2(t, client, 1000000, 500, cat(frontendLocal(), []*commonv1.KeyValue{
					strAttr("peer.service", "backend"), strAttr("network.peer.address", "10.0.0.2"), intAttr("network.peer.port", 9000),
				})...)),
				rs("backend", nil, v2(t, server, 1000100, 300, cat([]*commonv1.KeyValue{strAttr("http.path", "/api")}, backendLocal(), []*commonv1.KeyValue{
					strAttr("peer.service", "frontend"), strAttr("network.peer.address", "10.0.0.1"), intAttr("network.peer.port", 53211),
					boolAttr("zipkin.shared", true),
				})...)))
		},
	}, {
		name: "server side only without a span timestamp: shared by v1 convention, timed by sr/ss",
		in: `[{` + v1IDs + `,"annotations":[` + v1Anno("1000100", "sr", v1Backend) + `,` +
			v1Anno("1000400", "ss", v1Backend) + `]}]`,
		want: func(t *testing.T) *coltracepb.ExportTraceServiceRequest {
			return request(rs("backend", nil, v2(t, server, 1000100, 300, cat(backendLocal(), []*commonv1.KeyValue{boolAttr("zipkin.shared", true)})...)))
		},
	}, {
		name: "server side only with the span's timestamp and duration: not shared, timed by the span",
		in: `[{` + v1IDs + `,"timestamp":1000000,"duration":500,"annotations":[` + v1Anno("1000100", "sr", v1Backend) + `,` +
			v1Anno("1000400", "ss", v1Backend) + `]}]`,
		want: func(t *testing.T) *coltracepb.ExportTraceServiceRequest {
			return request(rs("backend", nil, v2(t, server, 1000000, 500, backendLocal()...)))
		},
	}, {
		name: "loopback: client and server of the same service are forked",
		in: `[{` + v1IDs + `,"annotations":[` +
			v1Anno("1000000", "cs", v1Frontend) + `,` + v1Anno("1000100", "sr", v1Frontend) + `,` +
			v1Anno("1000400", "ss", v1Frontend) + `,` + v1Anno("1000500", "cr", v1Frontend) + `]}]`,
		want: func(t *testing.T) *coltracepb.ExportTraceServiceRequest {
			return request(rs("frontend", nil,
				v2(t, client, 1000000, 500, frontendLocal()...),
				v2(t, server, 1000100, 300, cat(frontendLocal(), []*commonv1.KeyValue{boolAttr("zipkin.shared", true)})...)))
		},
	}, {
		name: `local span: "lc" with an empty value is a marker that only names the endpoint; others are tags`,
		in: `[{` + v1IDs + `,"timestamp":1000000,"duration":50,"binaryAnnotations":[` +
			`{"key":"lc","value":"","endpoint":` + v1Frontend + `},{"key":"lc","value":"","endpoint":` + v1Frontend + `}]},` +
			`{` + v1IDs + `,"timestamp":1000000,"duration":50,"binaryAnnotations":[{"key":"lc","value":"jdbc","endpoint":` + v1Frontend + `}]}]`,
		want: func(t *testing.T) *coltracepb.ExportTraceServiceRequest {
			return request(rs("frontend", nil,
				v2(t, none, 1000000, 50, frontendLocal()...),
				v2(t, none, 1000000, 50, cat([]*commonv1.KeyValue{strAttr("lc", "jdbc")}, frontendLocal())...)))
		},
	}, {
		name: "other annotations, and core ones without an endpoint, are events",
		in: `[{` + v1IDs + `,"timestamp":1000000,"duration":50,"annotations":[` +
			v1Anno("1000010", "cache.miss", v1Frontend) + `,` + v1Anno("1000020", "cs", "") + `]}]`,
		want: func(t *testing.T) *coltracepb.ExportTraceServiceRequest {
			s := v2(t, none, 1000000, 50, frontendLocal()...)
			s.Events = []*tracev1.Span_Event{{TimeUnixNano: 1000010000, Name: "cache.miss"}, {TimeUnixNano: 1000020000, Name: "cs"}}
			return request(rs("frontend", nil, s))
		},
	}, {
		name: `incomplete RPC: "cs" alone times the client span`,
		in:   `[{` + v1IDs + `,"annotations":[` + v1Anno("1000000", "cs", v1Frontend) + `]}]`,
		want: func(t *testing.T) *coltracepb.ExportTraceServiceRequest {
			return request(rs("frontend", nil, v2(t, client, 1000000, 0, frontendLocal()...)))
		},
	}, {
		name: `messaging: "ms" makes a producer, "ma" its broker`,
		in: `[{` + v1IDs + `,"annotations":[` + v1Anno("1000000", "ms", v1Frontend) + `],` +
			`"binaryAnnotations":[{"key":"ma","value":true,"endpoint":{"serviceName":"kafka"}}]}]`,
		want: func(t *testing.T) *coltracepb.ExportTraceServiceRequest {
			return request(rs("frontend", nil, v2(t, tracev1.Span_SPAN_KIND_PRODUCER, 1000000, 0,
				cat(frontendLocal(), []*commonv1.KeyValue{strAttr("peer.service", "kafka")})...)))
		},
	}, {
		name: `"ca" without core annotations: a server span`,
		in: `[{` + v1IDs + `,"timestamp":1000000,"duration":50,"binaryAnnotations":[` +
			`{"key":"http.path","value":"/","endpoint":` + v1Backend + `},{"key":"ca","value":true,"endpoint":` + v1Frontend + `}]}]`,
		want: func(t *testing.T) *coltracepb.ExportTraceServiceRequest {
			return request(rs("backend", nil, v2(t, server, 1000000, 50, cat([]*commonv1.KeyValue{strAttr("http.path", "/")}, backendLocal(), []*commonv1.KeyValue{
				strAttr("peer.service", "frontend"), strAttr("network.peer.address", "10.0.0.1"), intAttr("network.peer.port", 8080),
			})...)))
		},
	}, {
		name: `"sa" without core annotations: a remote endpoint, no kind`,
		in: `[{` + v1IDs + `,"timestamp":1000000,"duration":50,"binaryAnnotations":[` +
			`{"key":"sa","value":true,"endpoint":{"serviceName":"mysql"}}]}]`,
		want: func(t *testing.T) *coltracepb.ExportTraceServiceRequest {
			return request(rs("", nil, v2(t, none, 1000000, 50, strAttr("peer.service", "mysql"))))
		},
	}, {
		name: "binary annotation values that are not strings become text tags; error becomes the status",
		in: `[{` + v1IDs + `,"timestamp":1000000,"duration":50,"binaryAnnotations":[` +
			`{"key":"http.status_code","value":500,"type":"I32"},{"key":"retried","value":false,"type":"BOOL"},` +
			`{"key":"error","value":true,"type":"BOOL"},{"key":"blob","value":{"x":1}}]}]`,
		want: func(t *testing.T) *coltracepb.ExportTraceServiceRequest {
			s := v2(t, none, 1000000, 50, strAttr("http.status_code", "500"), strAttr("retried", "false"))
			s.Status = &tracev1.Status{Code: tracev1.Status_STATUS_CODE_ERROR}
			return request(rs("", nil, s))
		},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			requireProtoEqual(t, tc.want(t), decodeAndTranslate(t, formatJSONV1, []byte(tc.in)))
		})
	}
}
