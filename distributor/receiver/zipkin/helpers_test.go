package zipkin

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/grafana/dskit/services"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonv1 "go.opentelemetry.io/proto/otlp/common/v1"
	resourcev1 "go.opentelemetry.io/proto/otlp/resource/v1"
	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"
	"go.uber.org/goleak"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/vivace-dev/vivace/distributor/receiver"
	"github.com/vivace-dev/vivace/internal/model"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakePusher checks what it gets as the distributor would, decodes it and
// records it.
type fakePusher struct {
	err     error // returned after a successful split
	discard bool  // keep nothing (fuzzing, benchmarks)

	mu     sync.Mutex
	pushes []pushed
}

type pushed struct {
	tenant string
	req    *coltracepb.ExportTraceServiceRequest
}

func (p *fakePusher) PushOTLP(_ context.Context, tenant string, req []byte) (int, error) {
	split, err := model.SplitByTrace(req)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", receiver.ErrBadInput, err)
	}
	if !p.discard {
		var m coltracepb.ExportTraceServiceRequest
		if err := proto.Unmarshal(req, &m); err != nil {
			return 0, fmt.Errorf("%w: %v", receiver.ErrBadInput, err)
		}
		p.mu.Lock()
		p.pushes = append(p.pushes, pushed{tenant: tenant, req: &m})
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

func (p *fakePusher) last(tb testing.TB) pushed {
	tb.Helper()
	all := p.all()
	require.NotEmpty(tb, all, "nothing pushed")
	return all[len(all)-1]
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func testConfig() Config {
	return Config{Endpoint: "127.0.0.1:0", MaxRequestBodySize: 1 << 20}
}

// startReceiver runs a receiver on a loopback port until the test ends.
func startReceiver(tb testing.TB, cfg Config, multitenancy bool, p receiver.Pusher) *Receiver {
	tb.Helper()
	r, err := New(cfg, multitenancy, p, discardLogger(), prometheus.NewRegistry())
	require.NoError(tb, err)
	require.NoError(tb, services.StartAndAwaitRunning(context.Background(), r))
	tb.Cleanup(func() { require.NoError(tb, services.StopAndAwaitTerminated(context.Background(), r)) })
	return r
}

// handlerOnly is a receiver that is never started: its handler is called
// without a network.
func handlerOnly(tb testing.TB, p receiver.Pusher) *Receiver {
	tb.Helper()
	r, err := New(testConfig(), false, p, discardLogger(), prometheus.NewRegistry())
	require.NoError(tb, err)
	return r
}

type httpReq struct {
	method      string // POST when empty
	path        string // /api/v2/spans when empty
	contentType string
	encoding    string
	tenant      string
	body        []byte
}

type httpResp struct {
	code       int
	allow      string
	retryAfter string
	body       string
}

// serve runs a request through the handler, without a network.
func serve(r *Receiver, hr httpReq) httpResp {
	method, path := hr.method, hr.path
	if method == "" {
		method = http.MethodPost
	}
	if path == "" {
		path = "/api/v2/spans"
	}
	req := httptest.NewRequest(method, path, bytes.NewReader(hr.body))
	if hr.contentType != "" {
		req.Header.Set("Content-Type", hr.contentType)
	}
	if hr.encoding != "" {
		req.Header.Set("Content-Encoding", hr.encoding)
	}
	if hr.tenant != "" {
		req.Header.Set(model.TenantHeader, hr.tenant)
	}
	rec := httptest.NewRecorder()
	r.Handler().ServeHTTP(rec, req)
	return httpResp{code: rec.Code, allow: rec.Header().Get("Allow"), retryAfter: rec.Header().Get("Retry-After"), body: rec.Body.String()}
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

func (r *Receiver) refusedCount(protocol, reason string) float64 {
	return testutil.ToFloat64(r.metrics.Refused.WithLabelValues(protocol, reason))
}

func (r *Receiver) refusedSpans(reason string) float64 {
	return testutil.ToFloat64(r.metrics.RefusedSpans.WithLabelValues(reason))
}

// requireProtoEqual compares messages and shows both as JSON when they differ.
func requireProtoEqual(tb testing.TB, want, got proto.Message) {
	tb.Helper()
	if !proto.Equal(want, got) {
		o := protojson.MarshalOptions{Multiline: true}
		tb.Fatalf("messages differ\nwant: %s\ngot:  %s", o.Format(want), o.Format(got))
	}
}

// encodeRequest encodes a batch as the handler does, checks the bytes are
// those proto.Marshal writes for translateRef's request, and decodes them.
func encodeRequest(tb testing.TB, b *batch) *coltracepb.ExportTraceServiceRequest {
	tb.Helper()
	enc := requireSameAsRef(tb, b)
	var got coltracepb.ExportTraceServiceRequest
	require.NoError(tb, proto.Unmarshal(enc, &got))
	return &got
}

// requireSameAsRef checks appendRequest against the oracle, translateRef
// and proto.Marshal, byte for byte, and returns its bytes. It appends to a
// buffer holding garbage, as the handler's pooled buffers do.
func requireSameAsRef(tb testing.TB, b *batch) []byte {
	tb.Helper()
	want, err := proto.MarshalOptions{}.Marshal(translateRef(b))
	require.NoError(tb, err)
	prefix := []byte("garbage")
	got := appendRequest(prefix, b)
	require.Equal(tb, prefix, got[:len(prefix)], "appendRequest changed dst")
	got = got[len(prefix):]
	if !bytes.Equal(want, got) {
		i := 0
		for i < len(want) && i < len(got) && want[i] == got[i] {
			i++
		}
		tb.Fatalf("appendRequest differs from proto.Marshal(translateRef(b)) at byte %d of %d (got %d bytes)\nwant: % x\ngot:  % x",
			i, len(want), len(got), want[max(0, i-16):min(len(want), i+16)], got[max(0, i-16):min(len(got), i+16)])
	}
	return got
}

// OTLP builders for expected values.

func hexBytes(tb testing.TB, s string) []byte {
	tb.Helper()
	b := make([]byte, len(s)/2)
	for i := range b {
		hi, ok1 := unhex(s[2*i])
		lo, ok2 := unhex(s[2*i+1])
		require.True(tb, ok1 && ok2, "bad hex %q", s)
		b[i] = hi<<4 | lo
	}
	return b
}

func strAttr(k, v string) *commonv1.KeyValue {
	return &commonv1.KeyValue{Key: k, Value: &commonv1.AnyValue{Value: &commonv1.AnyValue_StringValue{StringValue: v}}}
}

func intAttr(k string, v int64) *commonv1.KeyValue {
	return &commonv1.KeyValue{Key: k, Value: &commonv1.AnyValue{Value: &commonv1.AnyValue_IntValue{IntValue: v}}}
}

func boolAttr(k string, v bool) *commonv1.KeyValue {
	return &commonv1.KeyValue{Key: k, Value: &commonv1.AnyValue{Value: &commonv1.AnyValue_BoolValue{BoolValue: v}}}
}

// rs is a ResourceSpans for a service ("" for none) with one scope.
func rs(service string, scope *commonv1.InstrumentationScope, spans ...*tracev1.Span) *tracev1.ResourceSpans {
	res := &resourcev1.Resource{}
	if service != "" {
		res.Attributes = []*commonv1.KeyValue{strAttr("service.name", service)}
	}
	return &tracev1.ResourceSpans{Resource: res, ScopeSpans: []*tracev1.ScopeSpans{{Scope: scope, Spans: spans}}}
}

func request(rss ...*tracev1.ResourceSpans) *coltracepb.ExportTraceServiceRequest {
	return &coltracepb.ExportTraceServiceRequest{ResourceSpans: rss}
}

// spans lists the spans of a request in order.
func spans(req *coltracepb.ExportTraceServiceRequest) []*tracev1.Span {
	var out []*tracev1.Span
	for _, rs := range req.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			out = append(out, ss.Spans...)
		}
	}
	return out
}
