package opencensus

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	commonpb "github.com/census-instrumentation/opencensus-proto/gen-go/agent/common/v1"
	agentmetricspb "github.com/census-instrumentation/opencensus-proto/gen-go/agent/metrics/v1"
	agenttracepb "github.com/census-instrumentation/opencensus-proto/gen-go/agent/trace/v1"
	resourcepb "github.com/census-instrumentation/opencensus-proto/gen-go/resource/v1"
	tracepb "github.com/census-instrumentation/opencensus-proto/gen-go/trace/v1"
	"github.com/grafana/dskit/services"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonv1 "go.opentelemetry.io/proto/otlp/common/v1"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vivace-dev/vivace/distributor/receiver"
	"github.com/vivace-dev/vivace/internal/model"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// go.opencensus.io/stats/view starts its worker in an init func
		// (imported by the OpenCensus exporter of TestOCAgentExporter).
		goleak.IgnoreTopFunction("go.opencensus.io/stats/view.(*worker).start"),
	)
}

// fakePusher checks what it gets as the distributor would, decodes it and
// records it.
type fakePusher struct {
	err  error // returned after recording
	keep bool  // record requests (false when benchmarking or fuzzing)

	mu     sync.Mutex
	pushes []pushed
}

type pushed struct {
	tenant string
	req    *coltracepb.ExportTraceServiceRequest
}

func (p *fakePusher) PushOTLP(_ context.Context, tenant string, b []byte) (int, error) {
	split, err := model.SplitByTrace(b)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", receiver.ErrBadInput, err)
	}
	if p.keep {
		req := &coltracepb.ExportTraceServiceRequest{}
		if err := proto.Unmarshal(b, req); err != nil {
			return 0, fmt.Errorf("%w: %v", receiver.ErrBadInput, err)
		}
		p.mu.Lock()
		p.pushes = append(p.pushes, pushed{tenant: tenant, req: req})
		p.mu.Unlock()
	}
	if p.err != nil {
		return 0, p.err
	}
	return split.Spans, nil
}

func (p *fakePusher) all() []pushed {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]pushed(nil), p.pushes...)
}

func (p *fakePusher) spans() int {
	n := 0
	for _, ps := range p.all() {
		n += countSpans(ps.req)
	}
	return n
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

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func testConfig() Config {
	var cfg Config
	cfg.RegisterFlagsAndApplyDefaults("opencensus", flag.NewFlagSet("test", flag.PanicOnError))
	cfg.Endpoint = "127.0.0.1:0"
	cfg.MaxRecvMsgSizeMiB = 1
	return cfg
}

// startReceiver runs a receiver on a free port of 127.0.0.1 until the test ends.
func startReceiver(tb testing.TB, cfg Config, multitenancy bool, p *fakePusher) *Receiver {
	tb.Helper()
	r, err := New(cfg, multitenancy, p, discardLogger(), prometheus.NewRegistry())
	require.NoError(tb, err)
	require.NoError(tb, services.StartAndAwaitRunning(context.Background(), r))
	tb.Cleanup(func() {
		if r.State() == services.Running {
			require.NoError(tb, services.StopAndAwaitTerminated(context.Background(), r))
		}
	})
	return r
}

func dial(tb testing.TB, r *Receiver) *grpc.ClientConn {
	tb.Helper()
	conn, err := grpc.NewClient(r.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(8<<20)))
	require.NoError(tb, err)
	tb.Cleanup(func() { conn.Close() })
	return conn
}

func (r *Receiver) refusedCount(reason string) float64 {
	return testutil.ToFloat64(r.m.Refused.WithLabelValues(protoGRPC, reason))
}

func (r *Receiver) refusedSpans(reason string) float64 {
	return testutil.ToFloat64(r.m.RefusedSpans.WithLabelValues(reason))
}

func (r *Receiver) requestCount(outcome string) float64 {
	return testutil.ToFloat64(r.m.Requests.WithLabelValues(protoGRPC, outcome))
}

// Bounds of require.Eventually, which waits for what another goroutine does.
const (
	time10s = 10 * time.Second
	tick    = 10 * time.Millisecond
)

// Test messages.

func ts(sec int64, nanos int32) *timestamppb.Timestamp {
	return &timestamppb.Timestamp{Seconds: sec, Nanos: nanos}
}

var (
	testTraceID = []byte{0x5b, 0x8e, 0xff, 0xf7, 0x98, 0x03, 0x81, 0x03, 0xd2, 0x69, 0xb6, 0x33, 0x81, 0x3f, 0xc6, 0x0c}
	testSpanID  = []byte{0xee, 0xe1, 0x9b, 0x7e, 0xc3, 0xc1, 0xb1, 0x74}
	testParent  = []byte{0xee, 0xe1, 0x9b, 0x7e, 0xc3, 0xc1, 0xb1, 0x73}
)

func testNode(service string) *commonpb.Node {
	return &commonpb.Node{
		Identifier:  &commonpb.ProcessIdentifier{HostName: "web-1", Pid: 4242},
		LibraryInfo: &commonpb.LibraryInfo{Language: commonpb.LibraryInfo_GO_LANG, ExporterVersion: "0.7.0", CoreLibraryVersion: "0.24.0"},
		ServiceInfo: &commonpb.ServiceInfo{Name: service},
	}
}

// testSpan is a span with its IDs and name, changed by mods.
func testSpan(name string, mods ...func(*tracepb.Span)) *tracepb.Span {
	s := &tracepb.Span{
		TraceId: testTraceID, SpanId: testSpanID, ParentSpanId: testParent,
		Name:      &tracepb.TruncatableString{Value: name},
		StartTime: ts(1_700_000_000, 0), EndTime: ts(1_700_000_000, 1_500_000),
	}
	for _, m := range mods {
		m(s)
	}
	return s
}

func withSpanID(id byte) func(*tracepb.Span) {
	return func(s *tracepb.Span) { s.SpanId = []byte{0, 0, 0, 0, 0, 0, 0, id} }
}

func attrValue(kvs []*commonv1.KeyValue, key string) *commonv1.AnyValue {
	for _, kv := range kvs {
		if kv.Key == key {
			return kv.Value
		}
	}
	return nil
}

func TestDefaultConfig(t *testing.T) {
	var cfg Config
	cfg.RegisterFlagsAndApplyDefaults("distributor.receivers.opencensus", flag.NewFlagSet("", flag.PanicOnError))
	require.NoError(t, cfg.Validate())
	require.Equal(t, "0.0.0.0:55678", cfg.Endpoint)
	require.Equal(t, 16, cfg.MaxRecvMsgSizeMiB)
	cfg.MaxRecvMsgSizeMiB = 0
	require.Error(t, cfg.Validate())
	_, err := New(cfg, false, &fakePusher{}, discardLogger(), prometheus.NewRegistry())
	require.Error(t, err)
}

func TestOffWhenEndpointEmpty(t *testing.T) {
	cfg := testConfig()
	cfg.Endpoint = ""
	r := startReceiver(t, cfg, false, &fakePusher{})
	require.Nil(t, r.Addr())
}

// TestStreamInheritsNodeAndResource: a message without a Node or Resource
// takes the stream's last one, each on its own.
func TestStreamInheritsNodeAndResource(t *testing.T) {
	p := &fakePusher{keep: true}
	r := startReceiver(t, testConfig(), false, p)
	client := agenttracepb.NewTraceServiceClient(dial(t, r))
	ex, err := client.Export(context.Background())
	require.NoError(t, err)

	res := &resourcepb.Resource{Type: "k8s", Labels: map[string]string{"k8s.pod.name": "web-1-abc"}}
	msgs := []*agenttracepb.ExportTraceServiceRequest{
		{Node: testNode("web"), Resource: res}, // the exporters' handshake: no spans
		{Spans: []*tracepb.Span{testSpan("a", withSpanID(1))}},
		{Node: testNode("api"), Spans: []*tracepb.Span{testSpan("b", withSpanID(2))}},
		{Resource: &resourcepb.Resource{Type: "host"}, Spans: []*tracepb.Span{testSpan("c", withSpanID(3))}},
	}
	for _, m := range msgs {
		require.NoError(t, ex.Send(m))
	}
	require.NoError(t, ex.CloseSend())
	_, err = ex.Recv()
	require.ErrorIs(t, err, io.EOF, "the stream ends OK")

	got := p.all()
	require.Len(t, got, 3)
	type resource struct{ service, typ, pod string }
	var seen []resource
	for _, ps := range got {
		require.Equal(t, "single-tenant", ps.tenant)
		a := ps.req.ResourceSpans[0].Resource.Attributes
		seen = append(seen, resource{attrValue(a, "service.name").GetStringValue(), attrValue(a, "opencensus.resourcetype").GetStringValue(), attrValue(a, "k8s.pod.name").GetStringValue()})
	}
	require.Equal(t, []resource{{"web", "k8s", "web-1-abc"}, {"api", "k8s", "web-1-abc"}, {"api", "host", ""}}, seen)
	require.Equal(t, 4.0, r.requestCount("ok"))
}

func TestRefusedMessageEndsOnlyItsStream(t *testing.T) {
	for _, tc := range []struct {
		name   string
		first  *agenttracepb.ExportTraceServiceRequest
		raw    []byte // sent instead of first when set
		reason string
		spans  float64
	}{
		{name: "no node", first: &agenttracepb.ExportTraceServiceRequest{Spans: []*tracepb.Span{testSpan("a")}}, reason: "no_node", spans: 1},
		{name: "short trace id", first: &agenttracepb.ExportTraceServiceRequest{Node: testNode("web"), Spans: []*tracepb.Span{
			testSpan("ok"), testSpan("bad", func(s *tracepb.Span) { s.TraceId = s.TraceId[:8] }),
		}}, reason: "invalid_span", spans: 2},
		{name: "long span id", first: &agenttracepb.ExportTraceServiceRequest{Node: testNode("web"), Spans: []*tracepb.Span{
			testSpan("bad", func(s *tracepb.Span) { s.SpanId = append(s.SpanId, 1) }),
		}}, reason: "invalid_span", spans: 1},
		{name: "zero trace id", first: &agenttracepb.ExportTraceServiceRequest{Node: testNode("web"), Spans: []*tracepb.Span{
			testSpan("bad", func(s *tracepb.Span) { s.TraceId = make([]byte, 16) }),
		}}, reason: "zero_trace_id", spans: 1},
		{name: "no span id", first: &agenttracepb.ExportTraceServiceRequest{Node: testNode("web"), Spans: []*tracepb.Span{
			testSpan("bad", func(s *tracepb.Span) { s.SpanId = nil }),
		}}, reason: "zero_span_id", spans: 1},
		{name: "not protobuf", raw: []byte{0x0a, 0x05, 0x01}, reason: "malformed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &fakePusher{keep: true}
			r := startReceiver(t, testConfig(), false, p)
			conn := dial(t, r)

			// A healthy stream, open before and after the refusal.
			client := agenttracepb.NewTraceServiceClient(conn)
			healthy, err := client.Export(context.Background())
			require.NoError(t, err)
			require.NoError(t, healthy.Send(&agenttracepb.ExportTraceServiceRequest{Node: testNode("web"), Spans: []*tracepb.Span{testSpan("before")}}))

			var bad grpc.ClientStream
			if tc.raw != nil {
				bad, err = conn.NewStream(context.Background(), &traceServiceDesc.Streams[1], "/opencensus.proto.agent.trace.v1.TraceService/Export",
					grpc.ForceCodecV2(receiver.RawCodec{}))
				require.NoError(t, err)
				require.NoError(t, bad.SendMsg(rawMessage(tc.raw)))
			} else {
				ex, err := client.Export(context.Background())
				require.NoError(t, err)
				require.NoError(t, ex.Send(tc.first))
				bad = ex
			}
			err = bad.RecvMsg(&agenttracepb.ExportTraceServiceResponse{})
			require.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)
			require.Equal(t, 1.0, r.refusedCount(tc.reason))
			require.Equal(t, tc.spans, r.refusedSpans(tc.reason))

			require.NoError(t, healthy.Send(&agenttracepb.ExportTraceServiceRequest{Spans: []*tracepb.Span{testSpan("after")}}))
			require.NoError(t, healthy.CloseSend())
			_, err = healthy.Recv()
			require.ErrorIs(t, err, io.EOF)
			require.Equal(t, 2, p.spans(), "the other stream kept serving")

			// And a new stream is served.
			again, err := client.Export(context.Background())
			require.NoError(t, err)
			require.NoError(t, again.Send(&agenttracepb.ExportTraceServiceRequest{Node: testNode("web"), Spans: []*tracepb.Span{testSpan("new")}}))
			require.NoError(t, again.CloseSend())
			_, err = again.Recv()
			require.ErrorIs(t, err, io.EOF)
			require.Equal(t, 3, p.spans())
		})
	}
}

// rawMessage is sent as is by receiver.RawCodec (it has a Marshal method).
type rawMessage []byte

func (m rawMessage) Marshal() ([]byte, error) { return m, nil }

func TestTooLargeMessage(t *testing.T) {
	p := &fakePusher{keep: true}
	r := startReceiver(t, testConfig(), false, p) // 1 MiB
	client := agenttracepb.NewTraceServiceClient(dial(t, r))
	ex, err := client.Export(context.Background())
	require.NoError(t, err)
	big := testSpan(strings.Repeat("x", 2<<20))
	require.NoError(t, ex.Send(&agenttracepb.ExportTraceServiceRequest{Node: testNode("web"), Spans: []*tracepb.Span{big}}))
	_, err = ex.Recv()
	require.Equal(t, codes.ResourceExhausted, status.Code(err), "%v", err)
	require.Equal(t, 1.0, r.refusedCount("too_large"))

	ex, err = client.Export(context.Background())
	require.NoError(t, err)
	require.NoError(t, ex.Send(&agenttracepb.ExportTraceServiceRequest{Node: testNode("web"), Spans: []*tracepb.Span{testSpan("small")}}))
	require.NoError(t, ex.CloseSend())
	_, err = ex.Recv()
	require.ErrorIs(t, err, io.EOF)
	require.Equal(t, 1, p.spans())
}

func TestTenant(t *testing.T) {
	p := &fakePusher{keep: true}
	r := startReceiver(t, testConfig(), true, p)
	client := agenttracepb.NewTraceServiceClient(dial(t, r))

	ex, err := client.Export(context.Background())
	require.NoError(t, err)
	_, err = ex.Recv()
	require.Equal(t, codes.Unauthenticated, status.Code(err), "%v", err)
	require.Equal(t, 1.0, r.refusedCount("tenant"))

	ctx := metadata.AppendToOutgoingContext(context.Background(), "x-scope-orgid", "team-a")
	ex, err = client.Export(ctx)
	require.NoError(t, err)
	require.NoError(t, ex.Send(&agenttracepb.ExportTraceServiceRequest{Node: testNode("web"), Spans: []*tracepb.Span{testSpan("a")}}))
	require.NoError(t, ex.CloseSend())
	_, err = ex.Recv()
	require.ErrorIs(t, err, io.EOF)
	got := p.all()
	require.Len(t, got, 1)
	require.Equal(t, "team-a", got[0].tenant)
}

func TestPushErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		code codes.Code
	}{
		{"ingesters down", errors.New("ingesters down"), codes.Unavailable},
		{"refused by the distributor", fmt.Errorf("%w: too many spans", receiver.ErrBadInput), codes.InvalidArgument},
		{"tenant over a limit", &receiver.LimitError{Reason: "rate_limited", Msg: "rate limited", RetryAfter: time.Second}, codes.ResourceExhausted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &fakePusher{err: tc.err}
			r := startReceiver(t, testConfig(), false, p)
			ex, err := agenttracepb.NewTraceServiceClient(dial(t, r)).Export(context.Background())
			require.NoError(t, err)
			require.NoError(t, ex.Send(&agenttracepb.ExportTraceServiceRequest{Node: testNode("web"), Spans: []*tracepb.Span{testSpan("a")}}))
			_, err = ex.Recv()
			require.Equal(t, tc.code, status.Code(err), "%v", err)
			switch tc.code {
			case codes.Unavailable:
				require.Equal(t, 1.0, r.requestCount("error"))
			case codes.ResourceExhausted:
				require.Equal(t, 1.0, r.requestCount("limited"))
			default:
				require.Equal(t, 1.0, r.refusedCount("rejected"))
				require.Equal(t, 1.0, r.refusedSpans("rejected"))
			}
		})
	}
}

// TestConfigAndMetricsStreamsAreServed: both are read and discarded, and end
// OK when the sender ends them (not Unimplemented, which the OpenCensus Go
// exporter can mistake for a failed connection).
func TestConfigAndMetricsStreamsAreServed(t *testing.T) {
	r := startReceiver(t, testConfig(), false, &fakePusher{})
	conn := dial(t, r)

	cfg, err := agenttracepb.NewTraceServiceClient(conn).Config(context.Background())
	require.NoError(t, err)
	require.NoError(t, cfg.Send(&agenttracepb.CurrentLibraryConfig{Node: testNode("web")}))
	require.NoError(t, cfg.CloseSend())
	_, err = cfg.Recv()
	require.ErrorIs(t, err, io.EOF)
	require.Equal(t, 1.0, testutil.ToFloat64(r.m.discarded.WithLabelValues("trace_config")))

	met, err := agentmetricspb.NewMetricsServiceClient(conn).Export(context.Background())
	require.NoError(t, err)
	require.NoError(t, met.Send(&agentmetricspb.ExportMetricsServiceRequest{Node: testNode("web")}))
	require.NoError(t, met.Send(&agentmetricspb.ExportMetricsServiceRequest{}))
	require.NoError(t, met.CloseSend())
	_, err = met.Recv()
	require.ErrorIs(t, err, io.EOF)
	require.Equal(t, 2.0, testutil.ToFloat64(r.m.discarded.WithLabelValues("metrics")))
}

// TestStopEndsOpenStreams: stopping does not wait for senders to hang up;
// their open streams end Unavailable, after what they sent is pushed.
func TestStopEndsOpenStreams(t *testing.T) {
	p := &fakePusher{keep: true}
	r := startReceiver(t, testConfig(), false, p)
	conn := dial(t, r)
	client := agenttracepb.NewTraceServiceClient(conn)
	ex, err := client.Export(context.Background())
	require.NoError(t, err)
	require.NoError(t, ex.Send(&agenttracepb.ExportTraceServiceRequest{Node: testNode("web"), Spans: []*tracepb.Span{testSpan("a")}}))
	cfg, err := client.Config(context.Background())
	require.NoError(t, err)
	require.NoError(t, cfg.Send(&agenttracepb.CurrentLibraryConfig{Node: testNode("web")}))

	require.Eventually(t, func() bool { return p.spans() == 1 }, time10s, tick)
	require.NoError(t, services.StopAndAwaitTerminated(context.Background(), r))
	_, err = ex.Recv()
	require.Equal(t, codes.Unavailable, status.Code(err), "%v", err)
	_, err = cfg.Recv()
	require.Equal(t, codes.Unavailable, status.Code(err), "%v", err)
}
