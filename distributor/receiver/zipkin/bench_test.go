package zipkin

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	zipkinmodel "github.com/openzipkin/zipkin-go/model"
	zipkinpb "github.com/openzipkin/zipkin-go/proto/zipkin_proto3"
	"github.com/openzipkin/zipkin-go/reporter"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
)

const benchSpans = 1000

// benchModels are spans as an Envoy sidecar reports them: 128-bit IDs, a
// client or server kind, both endpoints and a dozen HTTP and proxy tags.
func benchModels(n int) []*zipkinmodel.SpanModel {
	out := make([]*zipkinmodel.SpanModel, n)
	ts := time.Unix(1700000000, 0)
	for i := range out {
		parent := zipkinmodel.ID(0x1000 + i/2)
		kind := zipkinmodel.Client
		if i%2 == 1 {
			kind = zipkinmodel.Server
		}
		out[i] = &zipkinmodel.SpanModel{
			SpanContext: zipkinmodel.SpanContext{
				TraceID: zipkinmodel.TraceID{High: 0x5b8efff798038103, Low: 0xd269b633813f0000 + uint64(i/10)},
				ID:      zipkinmodel.ID(0xeee19b7ec3c10000 + uint64(i)), ParentID: &parent,
			},
			Name: "router backend egress", Kind: kind, Shared: kind == zipkinmodel.Server,
			Timestamp: ts.Add(time.Duration(i) * time.Millisecond), Duration: 23415 * time.Microsecond,
			LocalEndpoint:  &zipkinmodel.Endpoint{ServiceName: fmt.Sprintf("service-%d", i%5), IPv4: net.IPv4(10, 0, 0, byte(i%5)).To4()},
			RemoteEndpoint: &zipkinmodel.Endpoint{IPv4: net.IPv4(10, 0, 1, byte(i%7)).To4(), Port: 8080},
			Tags: map[string]string{
				"component": "proxy", "downstream_cluster": "-", "guid:x-request-id": fmt.Sprintf("4d5b8f67-c2d3-9f8e-a1b2-%012d", i),
				"http.method": "GET", "http.protocol": "HTTP/1.1", "http.status_code": "200",
				"http.url":     fmt.Sprintf("http://backend.default.svc.cluster.local:8080/api/v1/items/%d", i),
				"node_id":      "sidecar~10.0.0.1~frontend-5f7d8c9b4-x2k4z.default~default.svc.cluster.local",
				"peer.address": "10.0.1.9", "response_flags": "-", "response_size": "523",
				"upstream_cluster": "outbound|8080||backend.default.svc.cluster.local", "user_agent": "curl/8.5.0",
			},
		}
	}
	return out
}

func benchBody(tb testing.TB, ser reporter.SpanSerializer, n int) []byte {
	tb.Helper()
	b, err := ser.Serialize(benchModels(n))
	require.NoError(tb, err)
	return b
}

// benchSpanJSON is one bench span as JSON, for fuzz seeds.
func benchSpanJSON(i int) string {
	b, _ := reporter.JSONSerializer{}.Serialize(benchModels(i + 1)[i:])
	return string(b)
}

// benchDecode is what the handler does with a body: decode it and encode
// the OTLP request, into a reused buffer as the handler's pool gives it.
func benchDecode(b *testing.B, f format, body []byte) {
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	cpu0 := cpuTime()
	var out []byte
	for b.Loop() {
		bt, n, err := decode(f, body)
		if err != nil || n != benchSpans {
			b.Fatal(n, err)
		}
		out = appendRequest(out[:0], bt)
	}
	reportSpans(b, cpu0, len(body), len(out))
}

func reportSpans(b *testing.B, cpu0 int64, in, out int) {
	if cpu := cpuTime() - cpu0; cpu0 > 0 && cpu > 0 {
		b.ReportMetric(float64(cpu)/float64(benchSpans*b.N), "cpu-ns/span")
	}
	s := b.Elapsed().Seconds()
	b.ReportMetric(float64(benchSpans*b.N)/s, "spans/s")
	b.ReportMetric(s*1e9/float64(benchSpans*b.N), "ns/span")
	if in > 0 {
		b.ReportMetric(float64(in)/benchSpans, "bytes/span")
	}
	if out > 0 {
		b.ReportMetric(float64(out)/benchSpans, "otlp-bytes/span")
	}
}

// BenchmarkDecodeJSONV2 is the Zipkin JSON hot path: decode a 1000-span
// request and encode it as OTLP.
func BenchmarkDecodeJSONV2(b *testing.B) {
	benchDecode(b, formatJSONV2, benchBody(b, reporter.JSONSerializer{}, benchSpans))
}

// BenchmarkDecodeProto is the same for zipkin.proto3.
func BenchmarkDecodeProto(b *testing.B) {
	benchDecode(b, formatProto, benchBody(b, zipkinpb.SpanSerializer{}, benchSpans))
}

// BenchmarkEncode is the OTLP encoding alone, of a decoded 1000-span
// request: appendRequest, and the reference it replaces, building the
// request's messages (translateRef) for proto.Marshal.
func BenchmarkEncode(b *testing.B) {
	bt, _, err := decode(formatJSONV2, benchBody(b, reporter.JSONSerializer{}, benchSpans))
	require.NoError(b, err)
	b.Run("appendRequest", func(b *testing.B) {
		b.ReportAllocs()
		cpu0 := cpuTime()
		var out []byte
		for b.Loop() {
			out = appendRequest(out[:0], bt)
		}
		reportSpans(b, cpu0, 0, len(out))
	})
	b.Run("translateRef+proto.Marshal", func(b *testing.B) {
		b.ReportAllocs()
		cpu0 := cpuTime()
		var out []byte
		for b.Loop() {
			if out, err = proto.Marshal(translateRef(bt)); err != nil {
				b.Fatal(err)
			}
		}
		reportSpans(b, cpu0, 0, len(out))
	})
}

// BenchmarkDecodeJSONV2ZipkinGoModel is the reference the hand-written JSON
// decoder replaces: encoding/json into zipkin-go's model.SpanModel, decode
// only (no translation, no encoding).
func BenchmarkDecodeJSONV2ZipkinGoModel(b *testing.B) {
	body := benchBody(b, reporter.JSONSerializer{}, benchSpans)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	cpu0 := cpuTime()
	for b.Loop() {
		var spans []*zipkinmodel.SpanModel
		if err := json.Unmarshal(body, &spans); err != nil {
			b.Fatal(err)
		}
	}
	reportSpans(b, cpu0, len(body), 0)
}

// BenchmarkHTTPJSONV2 is the whole handler for a 1000-span JSON request,
// gzipped as Envoy sends it when compression is on, without the network:
// headers, gunzip, decode, translate, encode and a push that checks the
// request as the distributor does.
func BenchmarkHTTPJSONV2(b *testing.B) {
	for _, gz := range []bool{false, true} {
		b.Run(fmt.Sprintf("gzip=%v", gz), func(b *testing.B) {
			body := benchBody(b, reporter.JSONSerializer{}, benchSpans)
			enc := ""
			if gz {
				body, enc = gzipped(b, body), "gzip"
			}
			r := handlerOnly(b, &fakePusher{discard: true})
			r.cfg.MaxRequestBodySize = 64 << 20
			h := r.Handler()
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			cpu0 := cpuTime()
			for b.Loop() {
				req := httptest.NewRequest(http.MethodPost, "/api/v2/spans", bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				if enc != "" {
					req.Header.Set("Content-Encoding", enc)
				}
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != http.StatusAccepted {
					b.Fatal(rec.Code, rec.Body.String())
				}
			}
			reportSpans(b, cpu0, len(body), 0)
		})
	}
}
