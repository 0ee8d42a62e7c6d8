package datadog

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"google.golang.org/protobuf/proto"
)

// benchTraces is n spans as dd-trace-go sends them: traces of 10 spans,
// each with ~6 meta tags and 2 metrics.
func benchTraces(n int) [][]ddSpan {
	rng := rand.New(rand.NewPCG(1, 2))
	var traces [][]ddSpan
	for i := 0; i < n; i += 10 {
		trace, root := rng.Uint64(), rng.Uint64()
		t := make([]ddSpan, 0, 10)
		for j := range min(10, n-i) {
			s := ddSpan{
				Service: "checkout", Name: "http.request", Resource: fmt.Sprintf("GET /api/v1/items/%d", j), Type: "web",
				TraceID: trace, SpanID: rng.Uint64(), Start: 1_700_000_000_000_000_000 + int64(i), Duration: int64(rng.IntN(1e8)),
				Meta: [][2]string{{"http.method", "GET"}, {"http.url", "http://checkout:8080/api/v1/items"}, {"http.status_code", "200"},
					{"component", "net/http"}, {"span.kind", "server"}, {"env", "prod"}},
				Metrics: []metric{{"_sampling_priority_v1", 1}, {"process_id", 4242}},
			}
			if j == 0 {
				s.SpanID = root
				s.Meta = append(s.Meta, [2]string{"_dd.p.tid", "6578a1b200000000"})
			} else {
				s.ParentID = root
			}
			t = append(t, s)
		}
		traces = append(traces, t)
	}
	return traces
}

const benchSpans = 1000

// BenchmarkDecode guards the Datadog intake's hot path: decode a request
// body, translate it, and encode the OTLP pushed to the distributor.
func BenchmarkDecode(b *testing.B) {
	traces := benchTraces(benchSpans)
	for _, tc := range []struct {
		name   string
		body   []byte
		decode func([]byte, *tracer) ([]span, error)
	}{
		{"v0.4", appendV04(nil, traces...), withoutTracer(decodeV04)},
		{"v0.5", appendV05(nil, traces...), withoutTracer(decodeV05)},
		{"v0.7", appendV07(nil, v07Payload{Lang: "go", TracerVersion: "v2.12.0", Env: "prod", Hostname: "checkout-1",
			Chunks: chunksOf(traces...).Chunks}), decodeV07},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(tc.body)))
			for b.Loop() {
				t := tracer{lang: "go"}
				spans, err := tc.decode(tc.body, &t)
				if err != nil {
					b.Fatal(err)
				}
				req, kept, _ := translate(spans, t)
				if _, err := proto.Marshal(req); err != nil || kept != benchSpans {
					b.Fatal(err, kept)
				}
			}
			b.ReportMetric(float64(b.N*benchSpans)/b.Elapsed().Seconds(), "spans/s")
			b.ReportMetric(float64(len(tc.body))/benchSpans, "bytes/span")
		})
	}
}
