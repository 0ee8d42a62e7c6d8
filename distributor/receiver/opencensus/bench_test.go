package opencensus

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	agenttracepb "github.com/census-instrumentation/opencensus-proto/gen-go/agent/trace/v1"
	tracepb "github.com/census-instrumentation/opencensus-proto/gen-go/trace/v1"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"
)

// benchMessage is n spans as the OpenCensus Go exporter sends a batch after
// its handshake (no Node): traces of 10 spans of a gRPC service, each with
// 5 attributes, a message event each way, and an annotation on the root.
func benchMessage(n int) *agenttracepb.ExportTraceServiceRequest {
	rng := rand.New(rand.NewPCG(1, 2))
	id := func(size int) []byte {
		b := make([]byte, size)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	msg := &agenttracepb.ExportTraceServiceRequest{}
	var trace, root []byte
	for i := range n {
		s := &tracepb.Span{
			TraceId: trace, SpanId: id(8), ParentSpanId: root,
			Name:      &tracepb.TruncatableString{Value: fmt.Sprintf("/emojivoto.v1.EmojiService/FindByShortcode%d", i%10)},
			Kind:      tracepb.Span_CLIENT,
			StartTime: ts(1_700_000_000, int32(i)), EndTime: ts(1_700_000_000, int32(i)+int32(rng.IntN(1e8))),
			Attributes: attrs(map[string]*tracepb.AttributeValue{
				"rpc.service": str("emojivoto.v1.EmojiService"), "rpc.method": str("FindByShortcode"),
				"net.peer.name": str("emoji-svc.emojivoto"), "grpc.status_code": i64(0), "retry": boolean(false),
			}),
			TimeEvents: &tracepb.Span_TimeEvents{TimeEvent: []*tracepb.Span_TimeEvent{
				{Time: ts(1_700_000_000, int32(i)+10), Value: &tracepb.Span_TimeEvent_MessageEvent_{MessageEvent: &tracepb.Span_TimeEvent_MessageEvent{Type: tracepb.Span_TimeEvent_MessageEvent_SENT, Id: 1, UncompressedSize: 24}}},
				{Time: ts(1_700_000_000, int32(i)+20), Value: &tracepb.Span_TimeEvent_MessageEvent_{MessageEvent: &tracepb.Span_TimeEvent_MessageEvent{Type: tracepb.Span_TimeEvent_MessageEvent_RECEIVED, Id: 1, UncompressedSize: 96}}},
			}},
		}
		if i%10 == 0 {
			trace, root = id(16), nil
			s.TraceId, s.ParentSpanId, s.Kind = trace, make([]byte, 8), tracepb.Span_SERVER
			root = s.SpanId
			s.TimeEvents.TimeEvent = append(s.TimeEvents.TimeEvent, &tracepb.Span_TimeEvent{Time: ts(1_700_000_000, int32(i)+5),
				Value: &tracepb.Span_TimeEvent_Annotation_{Annotation: &tracepb.Span_TimeEvent_Annotation{Description: &tracepb.TruncatableString{Value: "cache miss"}}}})
		}
		msg.Spans = append(msg.Spans, s)
	}
	return msg
}

const benchSpans = 1000

// noopPusher takes every request: the benchmark measures the receiver only.
type noopPusher struct{}

func (noopPusher) PushOTLP(context.Context, string, []byte) (int, error) { return 0, nil }

// BenchmarkExport guards the OpenCensus intake's hot path: decode one
// Export message of a stream, translate it, and encode the OTLP pushed to
// the distributor.
func BenchmarkExport(b *testing.B) {
	body, err := proto.Marshal(benchMessage(benchSpans))
	if err != nil {
		b.Fatal(err)
	}
	r, err := New(testConfig(), false, noopPusher{}, discardLogger(), prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	st := stream{node: testNode("emoji-svc")} // the stream's handshake is done
	ctx := context.Background()
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if err := r.exportMessage(ctx, &st, "t", body); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*benchSpans)/b.Elapsed().Seconds(), "spans/s")
	b.ReportMetric(float64(len(body))/benchSpans, "bytes/span")
}
