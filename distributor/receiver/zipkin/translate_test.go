package zipkin

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonv1 "go.opentelemetry.io/proto/otlp/common/v1"
	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"
)

const (
	traceHex  = "5b8efff798038103d269b633813fc60c"
	spanHex   = "eee19b7ec3c1b174"
	parentHex = "eee19b7ec3c1b173"
	startNs   = 1544712660000000000
	endNs     = 1544712660001000000
)

// oneSpan is a v2 JSON list of one span with the common fields and extra.
func oneSpan(extra string) string {
	return `[{"traceId":"` + traceHex + `","id":"` + spanHex + `","name":"get","timestamp":1544712660000000,"duration":1000` + extra + `}]`
}

// otlpSpan is the translation of oneSpan's common fields, changed by mod.
func otlpSpan(tb testing.TB, mod func(*tracev1.Span)) *tracev1.Span {
	s := &tracev1.Span{
		TraceId: hexBytes(tb, traceHex), SpanId: hexBytes(tb, spanHex), Name: "get",
		StartTimeUnixNano: startNs, EndTimeUnixNano: endNs,
	}
	if mod != nil {
		mod(s)
	}
	return s
}

func translateJSON(tb testing.TB, body string) *coltracepb.ExportTraceServiceRequest {
	tb.Helper()
	var b batch
	_, err := decodeJSONV2(body, &b)
	require.NoError(tb, err)
	return encodeRequest(tb, &b)
}

// TestTranslate is the golden table of the Zipkin → OTLP mapping: one rule
// per case, the expected OTLP written out by hand (see translate.go for the
// rules and where they come from).
func TestTranslate(t *testing.T) {
	errStatus := func(msg string) *tracev1.Status {
		return &tracev1.Status{Code: tracev1.Status_STATUS_CODE_ERROR, Message: msg}
	}
	withAttrs := func(kvs ...*commonv1.KeyValue) func(*tracev1.Span) {
		return func(s *tracev1.Span) { s.Attributes = kvs }
	}
	cases := []struct {
		name string
		in   string
		want func(t *testing.T) *coltracepb.ExportTraceServiceRequest
	}{{
		name: "common fields: IDs, name, µs → ns, no kind is UNSPECIFIED, no service no resource attributes",
		in:   oneSpan(``),
		want: func(t *testing.T) *coltracepb.ExportTraceServiceRequest {
			return request(rs("", nil, otlpSpan(t, nil)))
		},
	}, {
		name: "64-bit trace ID is left-padded to 128 bits",
		in:   `[{"traceId":"d269b633813fc60c","id":"` + spanHex + `","name":"get","timestamp":1544712660000000,"duration":1000}]`,
		want: func(t *testing.T) *coltracepb.ExportTraceServiceRequest {
			return request(rs("", nil, otlpSpan(t, func(s *tracev1.Span) {
				s.TraceId = hexBytes(t, "0000000000000000d269b633813fc60c")
			})))
		},
	}, {
		name: "short IDs are left-padded as Zipkin does, upper case hex accepted",
		in:   `[{"traceId":"ABC","id":"1","parentId":"02","name":"get","timestamp":1544712660000000,"duration":1000}]`,
		want: func(t *testing.T) *coltracepb.ExportTraceServiceRequest {
			return request(rs("", nil, otlpSpan(t, func(s *tracev1.Span) {
				s.TraceId = hexBytes(t, "00000000000000000000000000000abc")
				s.SpanId = hexBytes(t, "0000000000000001")
				s.ParentSpanId = hexBytes(t, "0000000000000002")
			})))
		},
	}, {
		name: "parentId",
		in:   oneSpan(`,"parentId":"` + parentHex + `"`),
		want: func(t *testing.T) *coltracepb.ExportTraceServiceRequest {
			return request(rs("", nil, otlpSpan(t, func(s *tracev1.Span) { s.ParentSpanId = hexBytes(t, parentHex) })))
		},
	}, {
		name: "parentId equal to id is dropped",
		in:   oneSpan(`,"parentId":"` + spanHex + `"`),
		want: func(t *testing.T) *coltracepb.ExportTraceServiceRequest {
			return request(rs("", nil, otlpSpan(t, nil)))
		},
	}, {
		name: "all-zero parentId is none",
		in:   oneSpan(`,"parentId":"0000000000000000"`),
		want: func(t *testing.T) *coltracepb.ExportTraceServiceRequest {
			return request(rs("", nil, otlpSpan(t, nil)))
		},
	}, {
		name: "kind CLIENT",
		in:   oneSpan(`,"kind":"CLIENT"`),
		want: func(t *testing.T) *coltracepb.ExportTraceServiceRequest {
			return request(rs("", nil, otlpSpan(t, func(s *tracev1.Span) { s.Kind = tracev1.Span_SPAN_KIND_CLIENT })))
		},
	}, {
		name: "kind SERVER",
		in:   oneSpan(`,"kind":"SERVER"`),
		want: func(t *testing.T) *coltracepb.ExportTraceServiceRequest {
			return request(rs("", nil, otlpSpan(t, func(s *tracev1.Span) { s.Kind = tracev1.Span_SPAN_KIND_SERVER })))
		},
	}, {
		name: "kind PRODUCER",
		in:   oneSpan(`,"kind":"PRODUCER"`),
		want: func(t *testing.T) *coltracepb.ExportTraceServiceRequest {
			return request(rs("", nil, otlpSpan(t, func(s *tracev1.Span) { s.Kind = tracev1.Span_SPAN_KIND_PRODUCER })))
		},
	}, {
		name: "kind CONSUMER",
		in:   oneSpan(`,"kind":"CONSUMER"`),
		want: func(t *testing.T) *coltracepb.ExportTraceServiceRequest {
			return request(rs("", nil, otlpSpan(t, func(s *tracev1.Span) { s.Kind = tracev1.Span_SPAN_KIND_CONSUMER })))
		},
	}, {
		name: "an unknown kind is no kind",
		in:   oneSpan(`,"kind":"LOCAL"`),
		want: func(t *testing.T) *coltracepb.ExportTraceServiceRequest {
			return request(rs("", nil, otlpSpan(t, nil)))
		},
	}, {
		name: "no kind and an OpenTracing span.kind tag: the tag's kind, consumed",
		in:   oneSpan(`,"tags":{"span.kind":"internal"}`),
		want: func(t *testing.T) *coltracepb.ExportTraceServiceRequest {
			return request(rs("", nil, otlpSpan(t, func(s *tracev1.Span) { s.Kind = tracev1.Span_SPAN_KIND_INTERNAL })))
		},
	}, {
		name: "a kind and a span.kind tag: the kind, the tag stays",
		in:   oneSpan(`,"kind":"SERVER","tags":{"span.kind":"client"}`),
		want: func(t *testing.T) *coltracepb.ExportTraceServiceRequest {
			return request(rs("", nil, otlpSpan(t, func(s *tracev1.Span) {
				s.Kind = tracev1.Span_SPAN_KIND_SERVER
				s.Attributes = []*commonv1.KeyValue{strAttr("span.kind", "client")}
			})))
		},
	}, {
		name: "localEndpoint.serviceName → resource service.name",
		in:   oneSpan(`,"localEndpoint":{"serviceName":"frontend"}`),
		want: func(t *testing.T) *coltracepb.ExportTraceServiceRequest {
			return request(rs("frontend", nil, otlpSpan(t, nil)))
		},
	}, {
		name: "localEndpoint ipv4 and port → network.local.address and .port",
		in:   oneSpan(`,"localEndpoint":{"serviceName":"frontend","ipv4":"10.0.0.1","port":8080}`),
		want: func(t *testing.T) *coltracepb.ExportTraceServiceRequest {
			return request(rs("frontend", nil, otlpSpan(t, withAttrs(
				strAttr("network.local.address", "10.0.0.1"), intAttr("network.local.port", 8080)))))
		},
	}, {
		name: "localEndpoint ipv6 wins over ipv4 and is canonical",
		in:   oneSpan(`,"localEndpoint":{"ipv4":"10.0.0.1","ipv6":"2001:DB8:0:0:0:0:0:1"}`),
		want: func(t *testing.T) *coltracepb.ExportTraceServiceRequest {
			return request(rs("", nil, otlpSpan(t, withAttrs(strAttr("network.local.address", "2001:db8::1")))))
		},
	}, {
		name: "unparsable addresses and ports out of range are dropped, as Zipkin does",
		in:   oneSpan(`,"localEndpoint":{"ipv4":"10.0.0.300","port":70000},"remoteEndpoint":{"ipv4":"x","port":-1}`),
		want: func(t *testing.T) *coltracepb.ExportTraceServiceRequest {
			return request(rs("", nil, otlpSpan(t, nil)))
		},
	}, {
		name: "remoteEndpoint → peer.service, network.peer.address, network.peer.port",
		in:   oneSpan(`,"kind":"CLIENT","remoteEndpoint":{"serviceName":"backend","ipv4":"192.168.99.101","port":9000}`),
		want: func(t *testing.T) *coltracepb.ExportTraceServiceRequest {
			return request(rs("", nil, otlpSpan(t, func(s *tracev1.Span) {
				s.Kind = tracev1.Span_SPAN_KIND_CLIENT
				s.Attributes = []*commonv1.KeyValue{
					strAttr("peer.service", "backend"), strAttr("network.peer.address", "192.168.99.101"), intAttr("network.peer.port", 9000),
				}
			})))
		},
	}, {
		name: "an explicit peer.service tag wins over remoteEndpoint.serviceName",
		in:   oneSpan(`,"remoteEndpoint":{"serviceName":"backend"},"tags":{"peer.service":"db"}`),
		want: func(t *testing.T) *coltracepb.ExportTraceServiceRequest {
			return request(rs("", nil, otlpSpan(t, withAttrs(strAttr("peer.service", "db")))))
		},
	}, {
		name: "tags → string attributes in order, typed-looking values stay strings",
		in:   oneSpan(`,"tags":{"http.method":"GET","http.status_code":"200","cache.hit":"true"}`),
		want: func(t *testing.T) *coltracepb.ExportTraceServiceRequest {
			return request(rs("", nil, otlpSpan(t, withAttrs(
				strAttr("http.method", "GET"), strAttr("http.status_code", "200"), strAttr("cache.hit", "true")))))
		},
	}, {
		name: "tag values sent as numbers or booleans are kept as their text",
		in:   oneSpan(`,"tags":{"http.status_code":200,"sampled":true,"ratio":0.5}`),
		want: func(t *testing.T) *coltracepb.ExportTraceServiceRequest {
			return request(rs("", nil, otlpSpan(t, withAttrs(
				strAttr("http.status_code", "200"), strAttr("sampled", "true"), strAttr("ratio", "0.5")))))
		},
	}, {
		name: "a repeated tag key keeps the last value",
		in:   oneSpan(`,"tags":{"a":"1","b":"2","a":"3"}`),
		want: func(t *testing.T) *coltracepb.ExportTraceServiceRequest {
			return request(rs("", nil, otlpSpan(t, withAttrs(strAttr("a", "3"), strAttr("b", "2")))))
		},
	}, {
		name: "otel.status_code OK with a description: OTLP has no message for OK, the tag stays",
		in:   oneSpan(`,"tags":{"otel.status_code":"OK","otel.status_description":"fine"}`),
		want: func(t *testing.T) *coltracepb.ExportTraceServiceRequest {
			return request(rs("", nil, otlpSpan(t, func(s *tracev1.Span) {
				s.Status = &tracev1.Status{Code: tracev1.Status_STATUS_CODE_OK}
				s.Attributes = []*commonv1.KeyValue{strAttr("otel.status_description", "fine")}
			})))
		},
	}, {
		name: "error tag → ERROR with the value as message, tag consumed",
		in:   oneSpan(`,"tags":{"error":"connection refused","http.status_code":"503"}`),
		want: func(t *testing.T) *coltracepb.ExportTraceServiceRequest {
			return request(rs("", nil, otlpSpan(t, func(s *tracev1.Span) {
				s.Status = errStatus("connection refused")
				s.Attributes = []*commonv1.KeyValue{strAttr("http.status_code", "503")}
			})))
		},
	}, {
		name: `error "true" (Envoy) → ERROR without message`,
		in:   oneSpan(`,"tags":{"error":"true"}`),
		want: func(t *testing.T) *coltracepb.ExportTraceServiceRequest {
			return request(rs("", nil, otlpSpan(t, func(s *tracev1.Span) { s.Status = errStatus("") })))
		},
	}, {
		name: `empty error → ERROR without message`,
		in:   oneSpan(`,"tags":{"error":""}`),
		want: func(t *testing.T) *coltracepb.ExportTraceServiceRequest {
			return request(rs("", nil, otlpSpan(t, func(s *tracev1.Span) { s.Status = errStatus("") })))
		},
	}, {
		name: `error "false" is removed and no error (spec: boolean false SHOULD be removed)`,
		in:   oneSpan(`,"tags":{"error":"false"}`),
		want: func(t *testing.T) *coltracepb.ExportTraceServiceRequest {
			return request(rs("", nil, otlpSpan(t, nil)))
		},
	}, {
		name: "otel.status_code OK → OK, consumed",
		in:   oneSpan(`,"tags":{"otel.status_code":"OK"}`),
		want: func(t *testing.T) *coltracepb.ExportTraceServiceRequest {
			return request(rs("", nil, otlpSpan(t, func(s *tracev1.Span) {
				s.Status = &tracev1.Status{Code: tracev1.Status_STATUS_CODE_OK}
			})))
		},
	}, {
		name: "otel.status_code ERROR with the description in error (the spec's OTLP→Zipkin form)",
		in:   oneSpan(`,"tags":{"otel.status_code":"ERROR","error":"timeout"}`),
		want: func(t *testing.T) *coltracepb.ExportTraceServiceRequest {
			return request(rs("", nil, otlpSpan(t, func(s *tracev1.Span) { s.Status = errStatus("timeout") })))
		},
	}, {
		name: "otel.status_code STATUS_CODE_ERROR with otel.status_description (the collector's form)",
		in:   oneSpan(`,"tags":{"otel.status_code":"STATUS_CODE_ERROR","otel.status_description":"boom"}`),
		want: func(t *testing.T) *coltracepb.ExportTraceServiceRequest {
			return request(rs("", nil, otlpSpan(t, func(s *tracev1.Span) { s.Status = errStatus("boom") })))
		},
	}, {
		name: "an unknown otel.status_code stays an attribute",
		in:   oneSpan(`,"tags":{"otel.status_code":"MAYBE"}`),
		want: func(t *testing.T) *coltracepb.ExportTraceServiceRequest {
			return request(rs("", nil, otlpSpan(t, withAttrs(strAttr("otel.status_code", "MAYBE")))))
		},
	}, {
		name: "otel.status_code OK and an error tag: OK, and the contradicting tag is kept",
		in:   oneSpan(`,"tags":{"otel.status_code":"OK","error":"x"}`),
		want: func(t *testing.T) *coltracepb.ExportTraceServiceRequest {
			return request(rs("", nil, otlpSpan(t, func(s *tracev1.Span) {
				s.Status = &tracev1.Status{Code: tracev1.Status_STATUS_CODE_OK}
				s.Attributes = []*commonv1.KeyValue{strAttr("error", "x")}
			})))
		},
	}, {
		name: "annotations → events: time in ns, name = value",
		in:   oneSpan(`,"annotations":[{"timestamp":1544712660000100,"value":"wr"},{"timestamp":1544712660000200,"value":"retry {\"n\":1}"}]`),
		want: func(t *testing.T) *coltracepb.ExportTraceServiceRequest {
			return request(rs("", nil, otlpSpan(t, func(s *tracev1.Span) {
				s.Events = []*tracev1.Span_Event{
					{TimeUnixNano: 1544712660000100000, Name: "wr"},
					{TimeUnixNano: 1544712660000200000, Name: `retry {"n":1}`},
				}
			})))
		},
	}, {
		name: "debug → zipkin.debug",
		in:   oneSpan(`,"debug":true`),
		want: func(t *testing.T) *coltracepb.ExportTraceServiceRequest {
			return request(rs("", nil, otlpSpan(t, withAttrs(boolAttr("zipkin.debug", true)))))
		},
	}, {
		name: "shared server span → zipkin.shared",
		in:   oneSpan(`,"kind":"SERVER","shared":true`),
		want: func(t *testing.T) *coltracepb.ExportTraceServiceRequest {
			return request(rs("", nil, otlpSpan(t, func(s *tracev1.Span) {
				s.Kind = tracev1.Span_SPAN_KIND_SERVER
				s.Attributes = []*commonv1.KeyValue{boolAttr("zipkin.shared", true)}
			})))
		},
	}, {
		name: "shared on a client span is dropped, as Zipkin does",
		in:   oneSpan(`,"kind":"CLIENT","shared":true`),
		want: func(t *testing.T) *coltracepb.ExportTraceServiceRequest {
			return request(rs("", nil, otlpSpan(t, func(s *tracev1.Span) { s.Kind = tracev1.Span_SPAN_KIND_CLIENT })))
		},
	}, {
		name: "no timestamp: the earliest annotation's",
		in: `[{"traceId":"` + traceHex + `","id":"` + spanHex + `","name":"get","duration":1000,` +
			`"annotations":[{"timestamp":1544712660000200,"value":"b"},{"timestamp":1544712660000000,"value":"a"}]}]`,
		want: func(t *testing.T) *coltracepb.ExportTraceServiceRequest {
			return request(rs("", nil, otlpSpan(t, func(s *tracev1.Span) {
				s.Events = []*tracev1.Span_Event{{TimeUnixNano: 1544712660000200000, Name: "b"}, {TimeUnixNano: startNs, Name: "a"}}
			})))
		},
	}, {
		name: "no timestamp at all: 0 and the collector's absent-start marker",
		in:   `[{"traceId":"` + traceHex + `","id":"` + spanHex + `","name":"get","duration":1000}]`,
		want: func(t *testing.T) *coltracepb.ExportTraceServiceRequest {
			return request(rs("", nil, otlpSpan(t, func(s *tracev1.Span) {
				s.StartTimeUnixNano, s.EndTimeUnixNano = 0, 1000000
				s.Attributes = []*commonv1.KeyValue{boolAttr("otel.zipkin.absentField.startTime", true)}
			})))
		},
	}, {
		name: "otel.scope.name/version → instrumentation scope, consumed",
		in:   oneSpan(`,"tags":{"otel.scope.name":"io.opentelemetry.okhttp","otel.scope.version":"1.2","a":"b"}`),
		want: func(t *testing.T) *coltracepb.ExportTraceServiceRequest {
			return request(rs("", &commonv1.InstrumentationScope{Name: "io.opentelemetry.okhttp", Version: "1.2"},
				otlpSpan(t, withAttrs(strAttr("a", "b")))))
		},
	}, {
		name: "otel.library.name/version (older exporters) → instrumentation scope",
		in:   oneSpan(`,"tags":{"otel.library.name":"lib","otel.library.version":"0.1"}`),
		want: func(t *testing.T) *coltracepb.ExportTraceServiceRequest {
			return request(rs("", &commonv1.InstrumentationScope{Name: "lib", Version: "0.1"}, otlpSpan(t, nil)))
		},
	}, {
		name: "w3c.tracestate tag → trace_state",
		in:   oneSpan(`,"tags":{"w3c.tracestate":"vendor=value"}`),
		want: func(t *testing.T) *coltracepb.ExportTraceServiceRequest {
			return request(rs("", nil, otlpSpan(t, func(s *tracev1.Span) { s.TraceState = "vendor=value" })))
		},
	}, {
		name: "strings are unescaped, invalid UTF-8 replaced",
		in:   oneSpan(`,"tags":{"q":"a\"b\\c\u00e9\ud83d\ude00\n","bad":"\ud800x` + "\xff" + `"}`),
		want: func(t *testing.T) *coltracepb.ExportTraceServiceRequest {
			return request(rs("", nil, otlpSpan(t, withAttrs(strAttr("q", "a\"b\\cé😀\n"), strAttr("bad", "\uFFFDx\uFFFD")))))
		},
	}, {
		name: "unknown fields are skipped, null is absent",
		in:   oneSpan(`,"remoteEndpoint":null,"future":{"a":[1,{"b":null}]},"kind":null`),
		want: func(t *testing.T) *coltracepb.ExportTraceServiceRequest {
			return request(rs("", nil, otlpSpan(t, nil)))
		},
	}, {
		name: "spans are grouped by local service in first-seen order",
		in: `[{"traceId":"01","id":"01","localEndpoint":{"serviceName":"b"}},` +
			`{"traceId":"01","id":"02","localEndpoint":{"serviceName":"a"}},` +
			`{"traceId":"01","id":"03","localEndpoint":{"serviceName":"b"}}]`,
		want: func(t *testing.T) *coltracepb.ExportTraceServiceRequest {
			sp := func(id string) *tracev1.Span {
				return &tracev1.Span{
					TraceId: hexBytes(t, "00000000000000000000000000000001"), SpanId: hexBytes(t, "00000000000000"+id),
					Attributes: []*commonv1.KeyValue{boolAttr("otel.zipkin.absentField.startTime", true)},
				}
			}
			return request(rs("b", nil, sp("01"), sp("03")), rs("a", nil, sp("02")))
		},
	}, {
		name: "shared client and server halves stay two spans: same span ID, different kinds",
		in: `[{"traceId":"` + traceHex + `","id":"` + spanHex + `","parentId":"` + parentHex + `","kind":"CLIENT","name":"get",` +
			`"timestamp":1544712660000000,"duration":1000,"localEndpoint":{"serviceName":"frontend"}},` +
			`{"traceId":"` + traceHex + `","id":"` + spanHex + `","parentId":"` + parentHex + `","kind":"SERVER","name":"get",` +
			`"timestamp":1544712660000000,"duration":1000,"localEndpoint":{"serviceName":"backend"},"shared":true}]`,
		want: func(t *testing.T) *coltracepb.ExportTraceServiceRequest {
			return request(
				rs("frontend", nil, otlpSpan(t, func(s *tracev1.Span) {
					s.ParentSpanId = hexBytes(t, parentHex)
					s.Kind = tracev1.Span_SPAN_KIND_CLIENT
				})),
				rs("backend", nil, otlpSpan(t, func(s *tracev1.Span) {
					s.ParentSpanId = hexBytes(t, parentHex)
					s.Kind = tracev1.Span_SPAN_KIND_SERVER
					s.Attributes = []*commonv1.KeyValue{boolAttr("zipkin.shared", true)}
				})))
		},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			requireProtoEqual(t, tc.want(t), translateJSON(t, tc.in))
		})
	}
}

// TestManyTags checks tag de-duplication past the size where it switches
// from a scan to an index, in v2 and v1.
func TestManyTags(t *testing.T) {
	var v2tags, v1bins, want []string
	for i := range 100 {
		v2tags = append(v2tags, fmt.Sprintf(`"k%d":"v%d"`, i, i))
		v1bins = append(v1bins, fmt.Sprintf(`{"key":"k%d","value":"v%d"}`, i, i))
	}
	v2tags = append(v2tags, `"k0":"last"`, `"k99":"last"`)
	v1bins = append(v1bins, `{"key":"k0","value":"last"}`, `{"key":"k99","value":"last"}`)
	for i := range 100 {
		v := fmt.Sprintf("v%d", i)
		if i == 0 || i == 99 {
			v = "last"
		}
		want = append(want, fmt.Sprintf("k%d=%s", i, v))
	}
	attrs := func(req *coltracepb.ExportTraceServiceRequest) []string {
		var out []string
		for _, kv := range spans(req)[0].Attributes {
			out = append(out, kv.Key+"="+kv.Value.GetStringValue())
		}
		return out
	}
	require.Equal(t, want, attrs(translateJSON(t, oneSpan(`,"tags":{`+strings.Join(v2tags, ",")+`}`))))
	v1 := `[{` + v1IDs + `,"timestamp":1,"binaryAnnotations":[` + strings.Join(v1bins, ",") + `]}]`
	require.Equal(t, want, attrs(decodeAndTranslate(t, formatJSONV1, []byte(v1))))
}
