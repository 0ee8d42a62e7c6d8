package jaeger

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/jaegertracing/jaeger-idl/proto-gen/api_v2"
	"github.com/jaegertracing/jaeger-idl/thrift-gen/jaeger"
	"github.com/stretchr/testify/require"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
)

// benchBatch is n spans as a Jaeger client sends them: traces of ~10 spans,
// each span with ~8 tags, every fifth with a log.
func benchBatch(n int) *jaeger.Batch {
	rng := rand.New(rand.NewPCG(1, 2))
	b := &jaeger.Batch{Process: &jaeger.Process{ServiceName: "checkout", Tags: []*jaeger.Tag{
		tStr("hostname", "checkout-7d9f-abcde"), tStr("ip", "10.1.2.3"), tStr("jaeger.version", "Go-2.30.0"), tStr("client-uuid", "3f1a2b4c5d6e7f80"),
	}}}
	var traceHigh, traceLow, root int64
	for i := range n {
		if i%10 == 0 {
			traceHigh, traceLow, root = rng.Int64(), rng.Int64(), rng.Int64()
		}
		s := &jaeger.Span{
			TraceIdHigh: traceHigh, TraceIdLow: traceLow, SpanId: rng.Int64(), OperationName: fmt.Sprintf("GET /api/v1/items/%d", i%17),
			Flags: 1, StartTime: 1_700_000_000_000_000 + int64(i)*100, Duration: int64(rng.IntN(100_000)),
			Tags: []*jaeger.Tag{
				tStr("span.kind", "server"), tStr("http.method", "GET"), tStr("http.url", "http://checkout:8080/api/v1/items"),
				tLong("http.status_code", 200), tStr("component", "net/http"), tStr("peer.address", "10.1.2.4:51234"),
				tBool("sampler.param", true), tStr("sampler.type", "const"),
			},
		}
		if i%10 != 0 {
			s.ParentSpanId = root
			s.References = []*jaeger.SpanRef{tRef(true, traceHigh, traceLow, root)}
		}
		if i%5 == 0 {
			s.Logs = []*jaeger.Log{{Timestamp: s.StartTime + 10, Fields: []*jaeger.Tag{tStr("event", "cache miss"), tStr("key", "item:42")}}}
		}
		b.Spans = append(b.Spans, s)
	}
	return b
}

const benchSpans = 1000

func reportPerSpan(b *testing.B, in int, out []byte) {
	b.ReportMetric(float64(benchSpans*b.N)/b.Elapsed().Seconds(), "spans/s")
	b.ReportMetric(float64(in)/benchSpans, "bytes/span")
	b.ReportMetric(float64(len(out))/benchSpans, "otlp-bytes/span")
}

// BenchmarkThriftBinary guards the thrift HTTP hot path: decode, translate
// and encode a 1000-span batch.
func BenchmarkThriftBinary(b *testing.B) {
	body := serializeBinary(b, benchBatch(benchSpans))
	var out []byte
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		batch, err := decodeThriftBatch(body)
		if err != nil {
			b.Fatal(err)
		}
		out = mustTranslate(b, thriftToOTLP, batch)
	}
	reportPerSpan(b, len(body), out)
}

// BenchmarkThriftCompactUDP is the agent path: one emitBatch datagram of
// 100 spans (what fits in 65000 bytes), reported per 1000 spans.
func BenchmarkThriftCompactUDP(b *testing.B) {
	var dgs [][]byte
	all := benchBatch(benchSpans)
	for i := 0; i < benchSpans; i += 100 {
		dg := emitDatagram(b, true, "emitBatch", &jaeger.Batch{Process: all.Process, Spans: all.Spans[i : i+100]})
		require.LessOrEqual(b, len(dg), 65000)
		dgs = append(dgs, dg)
	}
	size := 0
	for _, dg := range dgs {
		size += len(dg)
	}
	var out []byte
	b.ReportAllocs()
	b.SetBytes(int64(size))
	for b.Loop() {
		for _, dg := range dgs {
			batch, err := decodeEmitBatch(dg, true)
			if err != nil {
				b.Fatal(err)
			}
			out = mustTranslate(b, thriftToOTLP, batch)
		}
	}
	reportPerSpan(b, size, make([]byte, len(out)*len(dgs)))
}

// BenchmarkProto guards the gRPC hot path: decode, translate and encode a
// 1000-span PostSpansRequest.
func BenchmarkProto(b *testing.B) {
	body, err := (&api_v2.PostSpansRequest{Batch: *thriftToProto(benchBatch(benchSpans))}).Marshal()
	require.NoError(b, err)
	var out []byte
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		batch, err := decodePostSpans(body)
		if err != nil {
			b.Fatal(err)
		}
		out = mustTranslate(b, protoToOTLP, batch)
	}
	reportPerSpan(b, len(body), out)
}

func mustTranslate[B any](b *testing.B, translate func(B) (*coltracepb.ExportTraceServiceRequest, int, error), batch B) []byte {
	req, _, err := translate(batch)
	if err != nil {
		b.Fatal(err)
	}
	out, err := proto.Marshal(req)
	if err != nil {
		b.Fatal(err)
	}
	return out
}
