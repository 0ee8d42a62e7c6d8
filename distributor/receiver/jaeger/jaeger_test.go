package jaeger

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/apache/thrift/lib/go/thrift"
	"github.com/grafana/dskit/services"
	model "github.com/jaegertracing/jaeger-idl/model/v1"
	"github.com/jaegertracing/jaeger-idl/proto-gen/api_v2"
	"github.com/jaegertracing/jaeger-idl/thrift-gen/agent"
	"github.com/jaegertracing/jaeger-idl/thrift-gen/jaeger"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"
	"go.uber.org/goleak"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/vivace-dev/vivace/distributor/receiver"
	vmodel "github.com/vivace-dev/vivace/internal/model"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakePusher decodes and records what it gets, after checking the
// distributor can route it.
type fakePusher struct {
	err   error         // returned after recording
	block chan struct{} // when set, every push waits for it to close
	keep  bool          // record requests (false when benchmarking or fuzzing)

	mu     sync.Mutex
	pushes []pushed
}

type pushed struct {
	tenant string
	req    *coltracepb.ExportTraceServiceRequest
}

func (p *fakePusher) PushOTLP(ctx context.Context, tenant string, b []byte) (int, error) {
	if p.block != nil {
		select {
		case <-p.block:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	split, err := vmodel.SplitByTrace(b)
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

func (p *fakePusher) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.pushes)
}

func (p *fakePusher) last(tb testing.TB) pushed {
	tb.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	require.NotEmpty(tb, p.pushes, "nothing pushed")
	return p.pushes[len(p.pushes)-1]
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func testConfig() Config {
	var cfg Config
	fs := flag.NewFlagSet("test", flag.PanicOnError)
	cfg.RegisterFlagsAndApplyDefaults("jaeger", fs)
	cfg.Protocols.ThriftHTTP.Endpoint = "127.0.0.1:0"
	cfg.Protocols.GRPC.Endpoint = "127.0.0.1:0"
	cfg.Protocols.ThriftBinary.Endpoint = "127.0.0.1:0"
	cfg.Protocols.ThriftCompact.Endpoint = "127.0.0.1:0"
	cfg.Protocols.ThriftHTTP.MaxRecvMsgSizeMiB = 1
	cfg.Protocols.GRPC.MaxRecvMsgSizeMiB = 1
	return cfg
}

// startReceiver runs a receiver on loopback ports until the test ends.
func startReceiver(tb testing.TB, cfg Config, multitenancy bool, p *fakePusher) *Receiver {
	tb.Helper()
	r, err := New(cfg, multitenancy, p, discardLogger(), prometheus.NewRegistry())
	require.NoError(tb, err)
	require.NoError(tb, services.StartAndAwaitRunning(context.Background(), r))
	tb.Cleanup(func() { require.NoError(tb, services.StopAndAwaitTerminated(context.Background(), r)) })
	return r
}

func (r *Receiver) refusedCount(protocol, reason string) float64 {
	return testutil.ToFloat64(r.m.Refused.WithLabelValues(protocol, reason))
}

func (r *Receiver) refusedSpansCount(reason string) float64 {
	return testutil.ToFloat64(r.m.RefusedSpans.WithLabelValues(reason))
}

func (r *Receiver) requestCount(protocol, outcome string) float64 {
	return testutil.ToFloat64(r.m.Requests.WithLabelValues(protocol, outcome))
}

// testBatch is a two-span batch as a Jaeger client sends it.
func testBatch() *jaeger.Batch {
	return &jaeger.Batch{
		Process: &jaeger.Process{ServiceName: "frontend", Tags: []*jaeger.Tag{tStr("hostname", "web-1"), tStr("jaeger.version", "Go-2.30.0")}},
		Spans: []*jaeger.Span{
			tSpan(withTags(tStr("span.kind", "server"), tStr("sampler.type", "const"), tBool("sampler.param", true))),
			tSpan(func(s *jaeger.Span) { s.SpanId, s.ParentSpanId, s.OperationName = 2, baseSpanID, "SELECT" },
				withTags(tStr("span.kind", "client"), tBool("error", true))),
		},
	}
}

func testBatchOTLP() *coltracepb.ExportTraceServiceRequest {
	return oReq(oRS(attrs(aStr("service.name", "frontend"), aStr("host.name", "web-1"), aStr("jaeger.version", "Go-2.30.0")),
		oSS(nil,
			oSpan(withKind(tracev1.Span_SPAN_KIND_SERVER), withAttrs(aStr("sampler.type", "const"), aBool("sampler.param", true))),
			oSpan(func(s *tracev1.Span) { s.SpanId, s.ParentSpanId, s.Name = spanID(2), baseSpanBytes, "SELECT" },
				withKind(tracev1.Span_SPAN_KIND_CLIENT), withStatus(tracev1.Status_STATUS_CODE_ERROR, "")),
		)))
}

// serializeBinary encodes a struct as jaeger-client-go's HTTPTransport
// does: TBinaryProtocol over a memory buffer.
func serializeBinary(tb testing.TB, s thrift.TStruct) []byte {
	tb.Helper()
	buf := thrift.NewTMemoryBuffer()
	require.NoError(tb, s.Write(context.Background(), thrift.NewTBinaryProtocolConf(buf, &thrift.TConfiguration{})))
	return buf.Bytes()
}

func TestDefaultConfig(t *testing.T) {
	var cfg Config
	cfg.RegisterFlagsAndApplyDefaults("distributor.receivers.jaeger", flag.NewFlagSet("", flag.PanicOnError))
	require.NoError(t, cfg.Validate())
	p := cfg.Protocols
	require.Equal(t, "0.0.0.0:14268", p.ThriftHTTP.Endpoint)
	require.Equal(t, "0.0.0.0:14250", p.GRPC.Endpoint)
	require.Equal(t, "0.0.0.0:6832", p.ThriftBinary.Endpoint)
	require.Equal(t, "0.0.0.0:6831", p.ThriftCompact.Endpoint)
	require.Equal(t, 65000, p.ThriftCompact.MaxPacketSize)

	for name, mod := range map[string]func(*Config){
		"zero HTTP size":    func(c *Config) { c.Protocols.ThriftHTTP.MaxRecvMsgSizeMiB = 0 },
		"zero workers":      func(c *Config) { c.Protocols.ThriftCompact.Workers = 0 },
		"zero queue":        func(c *Config) { c.Protocols.ThriftBinary.QueueSize = 0 },
		"huge packets":      func(c *Config) { c.Protocols.ThriftBinary.MaxPacketSize = 70000 },
		"negative sock buf": func(c *Config) { c.Protocols.ThriftCompact.SocketBufferSize = -1 },
	} {
		c := cfg
		mod(&c)
		require.Error(t, c.Validate(), name)
	}
}

func TestOffWhenEndpointEmpty(t *testing.T) {
	cfg := testConfig()
	cfg.Protocols.ThriftHTTP.Endpoint = ""
	cfg.Protocols.GRPC.Endpoint = ""
	cfg.Protocols.ThriftBinary.Endpoint = ""
	cfg.Protocols.ThriftCompact.Endpoint = ""
	r := startReceiver(t, cfg, false, &fakePusher{})
	require.Nil(t, r.ThriftHTTPAddr())
	require.Nil(t, r.GRPCAddr())
	require.Nil(t, r.ThriftBinaryAddr())
	require.Nil(t, r.ThriftCompactAddr())
}

func TestStartFailsOnBusyPort(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	cfg := testConfig()
	cfg.Protocols.GRPC.Endpoint = l.Addr().String()
	r, err := New(cfg, false, &fakePusher{}, discardLogger(), prometheus.NewRegistry())
	require.NoError(t, err)
	require.Error(t, services.StartAndAwaitRunning(context.Background(), r))
}

func TestThriftHTTP(t *testing.T) {
	valid := serializeBinary(t, testBatch())
	zeroTrace := testBatch()
	zeroTrace.Spans[1].TraceIdHigh, zeroTrace.Spans[1].TraceIdLow = 0, 0

	tests := []struct {
		name         string
		method       string
		contentType  string
		encoding     string
		tenant       string
		multitenancy bool
		pushErr      error
		body         []byte
		wantCode     int
		wantBody     string // substring of the answer
		wantReason   string // refused reason, if refused
		refusedSpans int
		wantTenant   string // pushed, for this tenant
	}{
		{name: "x-thrift", contentType: "application/x-thrift", body: valid, wantCode: http.StatusAccepted, wantTenant: vmodel.SingleTenant},
		{name: "vnd.apache.thrift.binary", contentType: "application/vnd.apache.thrift.binary", body: valid, wantCode: http.StatusAccepted, wantTenant: vmodel.SingleTenant},
		{name: "content type parameters", contentType: "application/x-thrift; charset=binary", body: valid, wantCode: http.StatusAccepted, wantTenant: vmodel.SingleTenant},
		{name: "gzip", contentType: "application/x-thrift", encoding: "gzip", body: gzipped(t, valid), wantCode: http.StatusAccepted, wantTenant: vmodel.SingleTenant},
		{name: "tenant", multitenancy: true, tenant: "team-a", contentType: "application/x-thrift", body: valid, wantCode: http.StatusAccepted, wantTenant: "team-a"},
		{name: "no tenant", multitenancy: true, contentType: "application/x-thrift", body: valid, wantCode: http.StatusUnauthorized, wantBody: "X-Scope-OrgID", wantReason: "tenant"},
		{name: "GET", method: http.MethodGet, wantCode: http.StatusMethodNotAllowed, wantReason: "method"},
		{name: "JSON", contentType: "application/json", body: []byte("{}"), wantCode: http.StatusUnsupportedMediaType, wantBody: "application/x-thrift", wantReason: "content_type"},
		{name: "garbage", contentType: "application/x-thrift", body: []byte("not thrift at all"), wantCode: http.StatusBadRequest, wantBody: "invalid thrift-binary jaeger.Batch", wantReason: "malformed"},
		{name: "truncated", contentType: "application/x-thrift", body: valid[:len(valid)/2], wantCode: http.StatusBadRequest, wantBody: "invalid thrift-binary jaeger.Batch", wantReason: "malformed"},
		{name: "empty body", contentType: "application/x-thrift", wantCode: http.StatusBadRequest, wantReason: "malformed"},
		{
			name: "zero trace ID refuses the whole batch", contentType: "application/x-thrift", body: serializeBinary(t, zeroTrace),
			wantCode: http.StatusBadRequest, wantBody: `span 1 (operation "SELECT"): trace ID is zero`, wantReason: "zero_trace_id", refusedSpans: 2,
		},
		{name: "too large", contentType: "application/x-thrift", body: bytes.Repeat([]byte{0}, 1<<20+1), wantCode: http.StatusRequestEntityTooLarge, wantReason: "too_large"},
		{name: "bad gzip", contentType: "application/x-thrift", encoding: "gzip", body: valid, wantCode: http.StatusBadRequest, wantReason: "body"},
		{
			name: "distributor refuses", contentType: "application/x-thrift", body: valid, pushErr: fmt.Errorf("%w: too many spans", receiver.ErrBadInput),
			wantCode: http.StatusBadRequest, wantBody: "too many spans", wantReason: "rejected", refusedSpans: 2,
		},
		{name: "distributor fails", contentType: "application/x-thrift", body: valid, pushErr: errors.New("no ingesters"), wantCode: http.StatusServiceUnavailable, wantBody: "no ingesters"},
		{
			name: "tenant over a limit", contentType: "application/x-thrift", body: valid, pushErr: errOverLimit,
			wantCode: http.StatusTooManyRequests, wantBody: "ingestion rate limit (10 bytes/s, burst 20 bytes) exceeded for tenant single-tenant",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := &fakePusher{keep: true, err: tc.pushErr}
			r := startReceiver(t, testConfig(), tc.multitenancy, p)
			method := tc.method
			if method == "" {
				method = http.MethodPost
			}
			req, err := http.NewRequest(method, "http://"+r.ThriftHTTPAddr().String()+"/api/traces", bytes.NewReader(tc.body))
			require.NoError(t, err)
			if tc.contentType != "" {
				req.Header.Set("Content-Type", tc.contentType)
			}
			if tc.encoding != "" {
				req.Header.Set("Content-Encoding", tc.encoding)
			}
			if tc.tenant != "" {
				req.Header.Set(vmodel.TenantHeader, tc.tenant)
			}
			resp, err := httpClient(t).Do(req)
			require.NoError(t, err)
			body, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			require.NoError(t, resp.Body.Close())

			require.Equal(t, tc.wantCode, resp.StatusCode, "%s", body)
			require.Contains(t, string(body), tc.wantBody)
			if tc.wantCode == http.StatusMethodNotAllowed {
				require.Equal(t, http.MethodPost, resp.Header.Get("Allow"))
			}
			if tc.wantReason != "" {
				require.Equal(t, 1.0, r.refusedCount(protoThriftHTTP, tc.wantReason))
				require.Equal(t, float64(tc.refusedSpans), r.refusedSpansCount(tc.wantReason))
			}
			if tc.wantTenant != "" {
				require.Equal(t, http.StatusAccepted, resp.StatusCode)
				require.Empty(t, body, "the Jaeger collector answers 202 with no body")
				got := p.last(t)
				require.Equal(t, tc.wantTenant, got.tenant)
				requireProtoEqual(t, testBatchOTLP(), got.req)
				require.Equal(t, 1.0, r.requestCount(protoThriftHTTP, "ok"))
			}
			if tc.pushErr != nil && tc.wantReason == "" {
				require.Equal(t, 1.0, r.requestCount(protoThriftHTTP, receiver.Outcome(tc.pushErr)))
			}
			if tc.wantCode == http.StatusTooManyRequests {
				require.Equal(t, "3", resp.Header.Get("Retry-After"))
			}
		})
	}
}

func TestThriftHTTPEmptyBatchPushesNothing(t *testing.T) {
	p := &fakePusher{keep: true}
	r := startReceiver(t, testConfig(), false, p)
	resp, err := httpClient(t).Post("http://"+r.ThriftHTTPAddr().String()+"/api/traces", "application/x-thrift",
		bytes.NewReader(serializeBinary(t, &jaeger.Batch{Process: &jaeger.Process{ServiceName: "x"}})))
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	require.Zero(t, p.count())
}

// httpClient is a client whose connections are closed when the test ends.
func httpClient(tb testing.TB) *http.Client {
	tr := &http.Transport{}
	tb.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

func gzipped(tb testing.TB, b []byte) []byte {
	tb.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, err := zw.Write(b)
	require.NoError(tb, err)
	require.NoError(tb, zw.Close())
	return buf.Bytes()
}

// udpTransport is a client TTransport sending each flush as one datagram,
// as Jaeger clients' UDP senders do.
type udpTransport struct {
	conn net.Conn
	buf  bytes.Buffer
}

func dialUDP(tb testing.TB, addr net.Addr) *udpTransport {
	tb.Helper()
	conn, err := net.Dial("udp", addr.String())
	require.NoError(tb, err)
	tb.Cleanup(func() { conn.Close() })
	return &udpTransport{conn: conn}
}

func (t *udpTransport) Write(b []byte) (int, error) { return t.buf.Write(b) }
func (t *udpTransport) Read([]byte) (int, error)    { return 0, errors.New("write only") }
func (t *udpTransport) Flush(context.Context) error {
	_, err := t.conn.Write(t.buf.Bytes())
	t.buf.Reset()
	return err
}
func (t *udpTransport) Close() error           { return nil }
func (t *udpTransport) Open() error            { return nil }
func (t *udpTransport) IsOpen() bool           { return true }
func (t *udpTransport) RemainingBytes() uint64 { return 0 }
func (t *udpTransport) send(b []byte) error    { _, err := t.conn.Write(b); return err }
func protocolFactory(compact bool) thrift.TProtocolFactory {
	if compact {
		return thrift.NewTCompactProtocolFactoryConf(&thrift.TConfiguration{})
	}
	return thrift.NewTBinaryProtocolFactoryConf(&thrift.TConfiguration{})
}

// emitOneway writes an emitBatch message the way jaeger-client-go's agent
// client does: message type ONEWAY (thrift's Go client writes CALL).
func emitOneway(tb testing.TB, tr *udpTransport, compact bool, b *jaeger.Batch) {
	tb.Helper()
	ctx := context.Background()
	p := protocolFactory(compact).GetProtocol(tr)
	require.NoError(tb, p.WriteMessageBegin(ctx, "emitBatch", thrift.ONEWAY, 1))
	require.NoError(tb, (&agent.AgentEmitBatchArgs{Batch: b}).Write(ctx, p))
	require.NoError(tb, p.WriteMessageEnd(ctx))
	require.NoError(tb, p.Flush(ctx))
}

// emitDatagram is the bytes of one emitBatch call.
func emitDatagram(tb testing.TB, compact bool, method string, b *jaeger.Batch) []byte {
	tb.Helper()
	ctx := context.Background()
	buf := thrift.NewTMemoryBuffer()
	p := protocolFactory(compact).GetProtocol(buf)
	require.NoError(tb, p.WriteMessageBegin(ctx, method, thrift.ONEWAY, 1))
	require.NoError(tb, (&agent.AgentEmitBatchArgs{Batch: b}).Write(ctx, p))
	require.NoError(tb, p.WriteMessageEnd(ctx))
	require.NoError(tb, p.Flush(ctx))
	return buf.Bytes()
}

func TestUDP(t *testing.T) {
	for _, compact := range []bool{true, false} {
		protocol := protoThriftBinary
		if compact {
			protocol = protoThriftCompact
		}
		addrOf := func(r *Receiver) net.Addr {
			if compact {
				return r.ThriftCompactAddr()
			}
			return r.ThriftBinaryAddr()
		}
		t.Run(protocol, func(t *testing.T) {
			t.Run("agent client", func(t *testing.T) {
				p := &fakePusher{keep: true}
				r := startReceiver(t, testConfig(), false, p)
				tr := dialUDP(t, addrOf(r))
				client := agent.NewAgentClientFactory(tr, protocolFactory(compact))
				require.NoError(t, client.EmitBatch(context.Background(), testBatch()))
				require.Eventually(t, func() bool { return p.count() == 1 }, 10*time.Second, 5*time.Millisecond)
				got := p.last(t)
				require.Equal(t, vmodel.SingleTenant, got.tenant)
				requireProtoEqual(t, testBatchOTLP(), got.req)

				emitOneway(t, tr, compact, testBatch())
				require.Eventually(t, func() bool { return p.count() == 2 }, 10*time.Second, 5*time.Millisecond)
				requireProtoEqual(t, testBatchOTLP(), p.last(t).req)
				require.Eventually(t, func() bool { return r.requestCount(protocol, "ok") == 2 }, 10*time.Second, 5*time.Millisecond)
			})

			zeroSpan := testBatch()
			zeroSpan.Spans[0].SpanId = 0
			validLen := len(emitDatagram(t, compact, "emitBatch", testBatch()))
			for _, tc := range []struct {
				name         string
				datagram     []byte
				multitenancy bool
				maxPacket    int
				reason       string
				refusedSpans int
			}{
				{name: "garbage", datagram: []byte("\x00\x01garbage"), reason: "malformed"},
				{name: "empty", datagram: []byte{}, reason: "malformed"},
				{name: "other method", datagram: emitDatagram(t, compact, "emitZipkinBatch", testBatch()), reason: "malformed"},
				{name: "other protocol", datagram: emitDatagram(t, !compact, "emitBatch", testBatch()), reason: "malformed"},
				{name: "truncated", datagram: emitDatagram(t, compact, "emitBatch", testBatch())[:40], reason: "malformed"},
				{name: "zero span ID", datagram: emitDatagram(t, compact, "emitBatch", zeroSpan), reason: "zero_span_id", refusedSpans: 2},
				{name: "too large", datagram: bytes.Repeat([]byte{1}, validLen+1), maxPacket: validLen, reason: "too_large"},
				{name: "multitenancy", datagram: emitDatagram(t, compact, "emitBatch", testBatch()), multitenancy: true, reason: "tenant"},
			} {
				t.Run(tc.name, func(t *testing.T) {
					cfg := testConfig()
					if tc.maxPacket > 0 {
						cfg.Protocols.ThriftBinary.MaxPacketSize = tc.maxPacket
						cfg.Protocols.ThriftCompact.MaxPacketSize = tc.maxPacket
					}
					p := &fakePusher{keep: true}
					r := startReceiver(t, cfg, tc.multitenancy, p)
					tr := dialUDP(t, addrOf(r))
					require.NoError(t, tr.send(tc.datagram))
					require.Eventually(t, func() bool { return r.refusedCount(protocol, tc.reason) == 1 }, 10*time.Second, 5*time.Millisecond)
					require.Equal(t, float64(tc.refusedSpans), r.refusedSpansCount(tc.reason))
					if tc.multitenancy {
						return
					}
					// The loop keeps serving.
					require.NoError(t, tr.send(emitDatagram(t, compact, "emitBatch", testBatch())))
					require.Eventually(t, func() bool { return p.count() == 1 }, 10*time.Second, 5*time.Millisecond)
				})
			}
		})
	}
}

func TestUDPDropsWhenQueueIsFull(t *testing.T) {
	cfg := testConfig()
	cfg.Protocols.ThriftCompact.Workers = 1
	cfg.Protocols.ThriftCompact.QueueSize = 1
	p := &fakePusher{keep: true, block: make(chan struct{})}
	r := startReceiver(t, cfg, false, p)
	tr := dialUDP(t, r.ThriftCompactAddr())
	dg := emitDatagram(t, true, "emitBatch", testBatch())
	const sent = 20
	for range sent {
		require.NoError(t, tr.send(dg))
	}
	dropped := func() float64 {
		return testutil.ToFloat64(r.m.dropped.WithLabelValues(protoThriftCompact, "queue_full"))
	}
	require.Eventually(t, func() bool { return dropped() >= sent-2 }, 10*time.Second, 5*time.Millisecond)
	close(p.block)
	require.Eventually(t, func() bool { return float64(p.count())+dropped() == sent }, 10*time.Second, 5*time.Millisecond)
}

func TestUDPStopDrainsQueue(t *testing.T) {
	cfg := testConfig()
	cfg.Protocols.ThriftBinary.Workers = 1
	p := &fakePusher{keep: true, block: make(chan struct{})}
	r, err := New(cfg, false, p, discardLogger(), prometheus.NewRegistry())
	require.NoError(t, err)
	require.NoError(t, services.StartAndAwaitRunning(context.Background(), r))
	tr := dialUDP(t, r.ThriftBinaryAddr())
	for range 3 {
		require.NoError(t, tr.send(emitDatagram(t, false, "emitBatch", testBatch())))
	}
	require.Eventually(t, func() bool { return len(r.binary.queue) == 2 }, 10*time.Second, 5*time.Millisecond)
	r.StopAsync()
	time.Sleep(50 * time.Millisecond)
	close(p.block)
	require.NoError(t, r.AwaitTerminated(context.Background()))
	require.Equal(t, 3, p.count(), "queued datagrams are pushed before stopping")
}

// gogoCodec is a client codec for jaeger-idl's gogo types (as Jaeger's
// own agent registers); []byte is sent as is.
type gogoCodec struct{}

func (gogoCodec) Name() string { return "proto" }
func (gogoCodec) Marshal(v any) (mem.BufferSlice, error) {
	switch v := v.(type) {
	case []byte:
		return mem.BufferSlice{mem.SliceBuffer(v)}, nil
	case interface{ Marshal() ([]byte, error) }:
		b, err := v.Marshal()
		return mem.BufferSlice{mem.SliceBuffer(b)}, err
	}
	return nil, fmt.Errorf("cannot encode %T", v)
}
func (gogoCodec) Unmarshal(data mem.BufferSlice, v any) error {
	return v.(interface{ Unmarshal([]byte) error }).Unmarshal(data.Materialize())
}

func grpcConn(tb testing.TB, r *Receiver) *grpc.ClientConn {
	tb.Helper()
	conn, err := grpc.NewClient(r.GRPCAddr().String(),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.ForceCodecV2(gogoCodec{}), grpc.MaxCallSendMsgSize(8<<20)))
	require.NoError(tb, err)
	tb.Cleanup(func() { conn.Close() })
	return conn
}

func TestGRPC(t *testing.T) {
	valid := &api_v2.PostSpansRequest{Batch: *thriftToProto(testBatch())}
	zeroTrace := &api_v2.PostSpansRequest{Batch: *thriftToProto(testBatch())}
	zeroTrace.Batch.Spans[0].TraceID = model.TraceID{}
	validBytes, err := valid.Marshal()
	require.NoError(t, err)

	tests := []struct {
		name         string
		req          any // *api_v2.PostSpansRequest or raw []byte
		tenant       string
		multitenancy bool
		pushErr      error
		wantCode     codes.Code
		wantMsg      string
		wantReason   string
		refusedSpans int
		wantTenant   string
	}{
		{name: "ok", req: valid, wantCode: codes.OK, wantTenant: vmodel.SingleTenant},
		{name: "tenant", req: valid, multitenancy: true, tenant: "team-b", wantCode: codes.OK, wantTenant: "team-b"},
		{name: "no tenant", req: valid, multitenancy: true, wantCode: codes.Unauthenticated, wantMsg: "X-Scope-OrgID", wantReason: "tenant"},
		{name: "invalid tenant", req: valid, multitenancy: true, tenant: "a/b", wantCode: codes.Unauthenticated, wantReason: "tenant"},
		{name: "garbage", req: []byte("\xff\xff\xff"), wantCode: codes.InvalidArgument, wantMsg: "invalid jaeger.api_v2.PostSpansRequest", wantReason: "malformed"},
		{name: "truncated", req: validBytes[:len(validBytes)-3], wantCode: codes.InvalidArgument, wantReason: "malformed"},
		{
			name: "zero trace ID", req: zeroTrace, wantCode: codes.InvalidArgument,
			wantMsg: `span 0 (operation "GET /cart"): trace ID is zero`, wantReason: "zero_trace_id", refusedSpans: 2,
		},
		{name: "too large", req: bytes.Repeat([]byte{0}, 2<<20), wantCode: codes.ResourceExhausted},
		{name: "distributor refuses", req: valid, pushErr: fmt.Errorf("%w: nope", receiver.ErrBadInput), wantCode: codes.InvalidArgument, wantReason: "rejected", refusedSpans: 2},
		{name: "distributor fails", req: valid, pushErr: errors.New("no ingesters"), wantCode: codes.Unavailable, wantMsg: "no ingesters"},
		{name: "tenant over a limit", req: valid, pushErr: errOverLimit, wantCode: codes.ResourceExhausted, wantMsg: "ingestion rate limit (10 bytes/s"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := &fakePusher{keep: true, err: tc.pushErr}
			r := startReceiver(t, testConfig(), tc.multitenancy, p)
			conn := grpcConn(t, r)
			ctx := context.Background()
			if tc.tenant != "" {
				ctx = metadata.AppendToOutgoingContext(ctx, "x-scope-orgid", tc.tenant)
			}
			var err error
			switch req := tc.req.(type) {
			case *api_v2.PostSpansRequest:
				var resp *api_v2.PostSpansResponse
				resp, err = api_v2.NewCollectorServiceClient(conn).PostSpans(ctx, req)
				if err == nil {
					require.NotNil(t, resp)
				}
			case []byte:
				err = conn.Invoke(ctx, "/jaeger.api_v2.CollectorService/PostSpans", req, &api_v2.PostSpansResponse{})
			}
			require.Equal(t, tc.wantCode, status.Code(err), "%v", err)
			require.Contains(t, status.Convert(err).Message(), tc.wantMsg)
			if tc.wantReason != "" {
				require.Equal(t, 1.0, r.refusedCount(protoGRPC, tc.wantReason))
				require.Equal(t, float64(tc.refusedSpans), r.refusedSpansCount(tc.wantReason))
			}
			if tc.pushErr == errOverLimit {
				require.Equal(t, 1.0, r.requestCount(protoGRPC, "limited"))
				require.Equal(t, 2500*time.Millisecond, status.Convert(err).Details()[0].(*errdetails.RetryInfo).GetRetryDelay().AsDuration())
			}
			if tc.wantTenant != "" {
				got := p.last(t)
				require.Equal(t, tc.wantTenant, got.tenant)
				requireProtoEqual(t, testBatchOTLP(), got.req)
				require.Equal(t, 1.0, r.requestCount(protoGRPC, "ok"))
			}
		})
	}
}

// errOverLimit is a distributor refusing a tenant over a limit.
var errOverLimit = &receiver.LimitError{
	Reason: "rate_limited", RetryAfter: 2500 * time.Millisecond,
	Msg: "ingestion rate limit (10 bytes/s, burst 20 bytes) exceeded for tenant single-tenant while adding 30 bytes; retry later",
}

// TestMetricsShareRegistryWithOtherReceivers checks that the shared metric
// names can live in one registry next to another receiver's.
func TestMetricsShareRegistryWithOtherReceivers(t *testing.T) {
	reg := prometheus.NewRegistry()
	other := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "vivace_receiver_requests_total", Help: "Requests received, by receiver and outcome.",
		ConstLabels: prometheus.Labels{"receiver": "otlp"},
	}, []string{"protocol", "outcome"})
	require.NoError(t, reg.Register(other))
	_, err := New(testConfig(), false, &fakePusher{}, discardLogger(), reg)
	require.NoError(t, err)
}
