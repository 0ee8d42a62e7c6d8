package otlp

import (
	"bytes"
	"compress/gzip"
	"context"
	cryptorand "crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grafana/dskit/services"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonv1 "go.opentelemetry.io/proto/otlp/common/v1"
	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"
	"go.uber.org/goleak"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/vivace-dev/vivace/distributor/receiver"
	"github.com/vivace-dev/vivace/internal/model"
	"github.com/vivace-dev/vivace/internal/model/modeltest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakePusher splits what it gets, as the distributor does, and records it.
type fakePusher struct {
	err     error // returned after a successful split
	discard bool  // keep nothing (fuzzing)

	mu     sync.Mutex
	pushes []pushed
}

type pushed struct {
	tenant string
	req    []byte
	split  *model.Split
}

func (p *fakePusher) PushOTLP(_ context.Context, tenant string, req []byte) (int, error) {
	split, err := model.SplitByTrace(req)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", receiver.ErrBadInput, err)
	}
	if !p.discard {
		p.mu.Lock()
		p.pushes = append(p.pushes, pushed{tenant: tenant, req: bytes.Clone(req), split: split})
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

func testConfig(maxMiB int) Config {
	var cfg Config
	cfg.Protocols.GRPC = Endpoint{Endpoint: "127.0.0.1:0", MaxRecvMsgSizeMiB: maxMiB}
	cfg.Protocols.HTTP = Endpoint{Endpoint: "127.0.0.1:0", MaxRecvMsgSizeMiB: maxMiB}
	return cfg
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// startReceiver runs a receiver on loopback ports until the test ends.
func startReceiver(tb testing.TB, multitenancy bool, maxMiB int, p *fakePusher) *Receiver {
	tb.Helper()
	r, err := New(testConfig(maxMiB), multitenancy, p, discardLogger(), prometheus.NewRegistry())
	require.NoError(tb, err)
	require.NoError(tb, services.StartAndAwaitRunning(context.Background(), r))
	tb.Cleanup(func() { require.NoError(tb, services.StopAndAwaitTerminated(context.Background(), r)) })
	return r
}

func (r *Receiver) refusedCount(protocol, reason string) float64 {
	return testutil.ToFloat64(r.metrics.Refused.WithLabelValues(protocol, reason))
}

// httpClient is a client whose connections are closed when the test ends.
func httpClient(tb testing.TB) *http.Client {
	tr := &http.Transport{}
	tb.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

type httpReq struct {
	method      string // POST when empty
	contentType string
	encoding    string
	tenant      string
	body        []byte
}

type httpResp struct {
	code        int
	contentType string
	allow       string
	retryAfter  string
	body        []byte
}

func do(tb testing.TB, c *http.Client, r *Receiver, hr httpReq) httpResp {
	tb.Helper()
	method := hr.method
	if method == "" {
		method = http.MethodPost
	}
	req, err := http.NewRequest(method, "http://"+r.HTTPAddr().String()+"/v1/traces", bytes.NewReader(hr.body))
	require.NoError(tb, err)
	if hr.contentType != "" {
		req.Header.Set("Content-Type", hr.contentType)
	}
	if hr.encoding != "" {
		req.Header.Set("Content-Encoding", hr.encoding)
	}
	if hr.tenant != "" {
		req.Header.Set(model.TenantHeader, hr.tenant)
	}
	resp, err := c.Do(req)
	require.NoError(tb, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(tb, err)
	return httpResp{code: resp.StatusCode, contentType: resp.Header.Get("Content-Type"), allow: resp.Header.Get("Allow"), retryAfter: resp.Header.Get("Retry-After"), body: body}
}

// rpcStatus decodes a google.rpc.Status answer in the encoding it claims.
func rpcStatus(tb testing.TB, resp httpResp) *spb.Status {
	tb.Helper()
	var st spb.Status
	switch resp.contentType {
	case "application/json":
		require.NoError(tb, protojson.Unmarshal(resp.body, &st), "%s", resp.body)
	case "application/x-protobuf":
		require.NoError(tb, proto.Unmarshal(resp.body, &st))
	default:
		tb.Fatalf("answer of content type %q", resp.contentType)
	}
	return &st
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

func testRequest(tb testing.TB, seed uint64, traces, spans int) *coltracepb.ExportTraceServiceRequest {
	tb.Helper()
	rng := rand.New(rand.NewPCG(seed, seed))
	_, tds := modeltest.Traces(rng, traces, spans)
	req := &coltracepb.ExportTraceServiceRequest{}
	for _, td := range tds {
		req.ResourceSpans = append(req.ResourceSpans, td.ResourceSpans...)
	}
	return req
}

func mustMarshal(tb testing.TB, m proto.Message) []byte {
	tb.Helper()
	b, err := proto.Marshal(m)
	require.NoError(tb, err)
	return b
}

// otlpJSON encodes m as OTLP/JSON: protobuf's JSON mapping with the IDs in hex.
func otlpJSON(tb testing.TB, m proto.Message) []byte {
	tb.Helper()
	b, err := protojson.Marshal(m)
	require.NoError(tb, err)
	var doc any
	require.NoError(tb, json.Unmarshal(b, &doc))
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, e := range v {
				if s, ok := e.(string); ok && (k == "traceId" || k == "spanId" || k == "parentSpanId") {
					raw, err := base64.StdEncoding.DecodeString(s)
					require.NoError(tb, err)
					v[k] = hex.EncodeToString(raw)
					continue
				}
				walk(e)
			}
		case []any:
			for _, e := range v {
				walk(e)
			}
		}
	}
	walk(doc)
	out, err := json.Marshal(doc)
	require.NoError(tb, err)
	return out
}

func decodeRequest(tb testing.TB, b []byte) *coltracepb.ExportTraceServiceRequest {
	tb.Helper()
	var req coltracepb.ExportTraceServiceRequest
	require.NoError(tb, proto.Unmarshal(b, &req))
	return &req
}

func TestHTTPAccepts(t *testing.T) {
	p := &fakePusher{}
	r := startReceiver(t, false, 16, p)
	c := httpClient(t)
	req := testRequest(t, 1, 4, 6)
	pb := mustMarshal(t, req)
	js := otlpJSON(t, req)
	require.True(t, bytes.Contains(js, []byte(`"traceId":"`)))

	for _, tc := range []struct {
		name     string
		req      httpReq
		wantJSON bool
	}{
		{name: "protobuf", req: httpReq{contentType: "application/x-protobuf", body: pb}},
		{name: "protobuf, other media type", req: httpReq{contentType: "application/protobuf", body: pb}},
		{name: "protobuf with parameters", req: httpReq{contentType: "application/x-protobuf; proto=opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest", body: pb}},
		{name: "gzip protobuf", req: httpReq{contentType: "application/x-protobuf", encoding: "gzip", body: gzipped(t, pb)}},
		{name: "identity protobuf", req: httpReq{contentType: "application/x-protobuf", encoding: "identity", body: pb}},
		{name: "json", req: httpReq{contentType: "application/json", body: js}, wantJSON: true},
		{name: "gzip json", req: httpReq{contentType: "application/json; charset=utf-8", encoding: "gzip", body: gzipped(t, js)}, wantJSON: true},
		{name: "tenant header ignored without multitenancy", req: httpReq{contentType: "application/x-protobuf", tenant: "team-a", body: pb}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := p.count()
			resp := do(t, c, r, tc.req)
			require.Equal(t, http.StatusOK, resp.code, "%s", resp.body)
			var out coltracepb.ExportTraceServiceResponse
			if tc.wantJSON {
				require.Equal(t, "application/json", resp.contentType)
				require.NoError(t, protojson.Unmarshal(resp.body, &out))
			} else {
				require.Equal(t, "application/x-protobuf", resp.contentType)
				require.NoError(t, proto.Unmarshal(resp.body, &out))
			}
			require.Equal(t, n+1, p.count())
			got := p.last(t)
			require.Equal(t, model.SingleTenant, got.tenant)
			if !tc.wantJSON {
				require.Equal(t, pb, got.req, "protobuf is passed on as received")
			}
			require.True(t, proto.Equal(req, decodeRequest(t, got.req)), "every field of every span arrives")
			require.Len(t, got.split.IDs, 4)
		})
	}
	require.Equal(t, float64(p.count()), testutil.ToFloat64(r.metrics.Requests.WithLabelValues("http", "ok")))
}

func TestHTTPJSONHexIDs(t *testing.T) {
	// The example of the OTLP specification, with a link and upper-case hex.
	const body = `{
  "resourceSpans": [{
    "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "my.service"}}]},
    "scopeSpans": [{
      "scope": {"name": "my.library", "version": "1.0.0", "attributes": [{"key": "my.scope.attribute", "value": {"stringValue": "some scope attribute"}}]},
      "spans": [{
        "traceId": "5B8EFFF798038103D269B633813FC60C",
        "spanId": "EEE19B7EC3C1B174",
        "parentSpanId": "EEE19B7EC3C1B173",
        "name": "I'm a server span",
        "startTimeUnixNano": "1544712660000000000",
        "endTimeUnixNano": "1544712661000000000",
        "kind": 2,
        "attributes": [{"key": "my.span.attr", "value": {"stringValue": "some value"}}],
        "links": [{"traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": "b7ad6b7169203331", "attributes": [{"key": "link.kind", "value": {"stringValue": "follows_from"}}]}],
        "events": [{"timeUnixNano": "1544712660500000000", "name": "cache miss"}],
        "unknownField": {"x": [1, 2]}
      }, {
        "trace_id": "5b8efff798038103d269b633813fc60c",
        "span_id": "0102030405060708",
        "parent_span_id": "eee19b7ec3c1b174",
        "name": "snake_case names",
        "kind": "SPAN_KIND_CLIENT"
      }]
    }]
  }]
}`
	unhex := func(s string) []byte {
		b, err := hex.DecodeString(s)
		require.NoError(t, err)
		return b
	}
	p := &fakePusher{}
	r := startReceiver(t, false, 16, p)
	c := httpClient(t)

	resp := do(t, c, r, httpReq{contentType: "application/json", body: []byte(body)})
	require.Equal(t, http.StatusOK, resp.code, "%s", resp.body)

	got := p.last(t)
	req := decodeRequest(t, got.req)
	spans := req.ResourceSpans[0].ScopeSpans[0].Spans
	require.Len(t, spans, 2)
	s := spans[0]
	require.Equal(t, unhex("5b8efff798038103d269b633813fc60c"), s.TraceId)
	require.Equal(t, unhex("eee19b7ec3c1b174"), s.SpanId)
	require.Equal(t, unhex("eee19b7ec3c1b173"), s.ParentSpanId)
	require.Equal(t, tracev1.Span_SPAN_KIND_SERVER, s.Kind)
	require.Equal(t, uint64(1544712660000000000), s.StartTimeUnixNano)
	require.Equal(t, "I'm a server span", s.Name)
	require.Len(t, s.Links, 1)
	require.Equal(t, unhex("0af7651916cd43dd8448eb211c80319c"), s.Links[0].TraceId)
	require.Equal(t, unhex("b7ad6b7169203331"), s.Links[0].SpanId)
	require.Equal(t, "some value", s.Attributes[0].Value.GetStringValue())
	require.Equal(t, uint64(1544712660500000000), s.Events[0].TimeUnixNano)

	c2 := spans[1]
	require.Equal(t, unhex("5b8efff798038103d269b633813fc60c"), c2.TraceId)
	require.Equal(t, unhex("0102030405060708"), c2.SpanId)
	require.Equal(t, unhex("eee19b7ec3c1b174"), c2.ParentSpanId)
	require.Equal(t, tracev1.Span_SPAN_KIND_CLIENT, c2.Kind)

	id, err := model.ParseTraceID("5b8efff798038103d269b633813fc60c")
	require.NoError(t, err)
	require.Equal(t, []model.TraceID{id}, got.split.IDs)
	require.Equal(t, 2, got.split.Spans)
}

func TestHTTPRefuses(t *testing.T) {
	p := &fakePusher{}
	r := startReceiver(t, false, 1, p) // 1 MiB limit
	c := httpClient(t)
	const limit = 1 << 20

	good := testRequest(t, 2, 2, 3)
	pb := mustMarshal(t, good)
	shortID := mustMarshal(t, &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracev1.ResourceSpans{{
		ScopeSpans: []*tracev1.ScopeSpans{{Spans: []*tracev1.Span{{TraceId: []byte{1, 2, 3, 4, 5, 6, 7, 8}, Name: "zipkin"}}}},
	}}})
	noise := make([]byte, limit+10<<10) // does not compress: the gzip body itself is over the limit
	_, _ = cryptorand.Read(noise)

	for _, tc := range []struct {
		name     string
		req      httpReq
		code     int
		grpcCode codes.Code
		reason   string // of vivace_receiver_refused_requests_total
		msg      string
		json     bool // answered in JSON
	}{
		{name: "GET", req: httpReq{method: http.MethodGet}, code: http.StatusMethodNotAllowed, grpcCode: codes.InvalidArgument, reason: "method", msg: "only POST is allowed"},
		{name: "PUT JSON", req: httpReq{method: http.MethodPut, contentType: "application/json", body: []byte("{}")}, code: http.StatusMethodNotAllowed, grpcCode: codes.InvalidArgument, reason: "method", msg: "only POST is allowed", json: true},
		{name: "text/plain", req: httpReq{contentType: "text/plain", body: pb}, code: http.StatusUnsupportedMediaType, grpcCode: codes.InvalidArgument, reason: "content_type", msg: `content type "text/plain" is not supported`},
		{name: "no content type", req: httpReq{body: pb}, code: http.StatusUnsupportedMediaType, grpcCode: codes.InvalidArgument, reason: "content_type", msg: `content type "" is not supported`},
		{name: "brotli", req: httpReq{contentType: "application/x-protobuf", encoding: "br", body: pb}, code: http.StatusUnsupportedMediaType, grpcCode: codes.InvalidArgument, reason: "body", msg: `content encoding "br" is not supported`},
		{name: "gzip header on plain body", req: httpReq{contentType: "application/x-protobuf", encoding: "gzip", body: pb}, code: http.StatusBadRequest, grpcCode: codes.InvalidArgument, reason: "body", msg: "invalid gzip body"},
		{name: "truncated gzip", req: httpReq{contentType: "application/x-protobuf", encoding: "gzip", body: gzipped(t, pb)[:40]}, code: http.StatusBadRequest, grpcCode: codes.InvalidArgument, reason: "body", msg: "read body"},
		{name: "body over the limit", req: httpReq{contentType: "application/x-protobuf", body: make([]byte, limit+1)}, code: http.StatusRequestEntityTooLarge, grpcCode: codes.InvalidArgument, reason: "too_large", msg: "request body is over the limit of 1048576 bytes"},
		{name: "gzip over the limit once inflated", req: httpReq{contentType: "application/x-protobuf", encoding: "gzip", body: gzipped(t, make([]byte, 4*limit))}, code: http.StatusRequestEntityTooLarge, grpcCode: codes.InvalidArgument, reason: "too_large", msg: "over the limit"},
		{name: "gzip body over the limit", req: httpReq{contentType: "application/x-protobuf", encoding: "gzip", body: gzipped(t, noise)}, code: http.StatusRequestEntityTooLarge, grpcCode: codes.InvalidArgument, reason: "too_large", msg: "over the limit"},
		{name: "JSON over the limit", req: httpReq{contentType: "application/json", body: bytes.Repeat([]byte(" "), limit+1)}, code: http.StatusRequestEntityTooLarge, grpcCode: codes.InvalidArgument, reason: "too_large", msg: "over the limit", json: true},
		{name: "truncated protobuf", req: httpReq{contentType: "application/x-protobuf", body: pb[:len(pb)-1]}, code: http.StatusBadRequest, grpcCode: codes.InvalidArgument, reason: "malformed", msg: "malformed OTLP trace data"},
		{name: "JSON sent as protobuf", req: httpReq{contentType: "application/x-protobuf", body: otlpJSON(t, good)}, code: http.StatusBadRequest, grpcCode: codes.InvalidArgument, reason: "malformed", msg: "malformed OTLP trace data"},
		{name: "8-byte trace id", req: httpReq{contentType: "application/x-protobuf", body: shortID}, code: http.StatusBadRequest, grpcCode: codes.InvalidArgument, reason: "malformed", msg: "trace_id has 8 bytes, want 16"},
		{name: "invalid JSON", req: httpReq{contentType: "application/json", body: []byte(`{"resourceSpans": [`)}, code: http.StatusBadRequest, grpcCode: codes.InvalidArgument, reason: "malformed", msg: "invalid JSON", json: true},
		{name: "two JSON documents", req: httpReq{contentType: "application/json", body: []byte(`{} {}`)}, code: http.StatusBadRequest, grpcCode: codes.InvalidArgument, reason: "malformed", msg: "data after the top-level value", json: true},
		{name: "JSON base64 trace id", req: httpReq{contentType: "application/json", body: []byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"W47/95gDgQPSabYzgT/GDA==","spanId":"EEE19B7EC3C1B174"}]}]}]}`)}, code: http.StatusBadRequest, grpcCode: codes.InvalidArgument, reason: "malformed", msg: `traceId "W47/95gDgQPSabYzgT/GDA==" is not hex`, json: true},
		{name: "JSON odd-length span id", req: httpReq{contentType: "application/json", body: []byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"abc"}]}]}]}`)}, code: http.StatusBadRequest, grpcCode: codes.InvalidArgument, reason: "malformed", msg: `spanId "abc" is not hex`, json: true},
		{name: "JSON short trace id", req: httpReq{contentType: "application/json", body: []byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"463ac35c9f6413ad","spanId":"0102030405060708"}]}]}]}`)}, code: http.StatusBadRequest, grpcCode: codes.InvalidArgument, reason: "malformed", msg: "trace_id has 8 bytes, want 16", json: true},
		{name: "JSON wrong type", req: httpReq{contentType: "application/json", body: []byte(`{"resourceSpans":{"scopeSpans":1}}`)}, code: http.StatusBadRequest, grpcCode: codes.InvalidArgument, reason: "malformed", msg: "invalid OTLP JSON", json: true},
		{name: "JSON span without trace id", req: httpReq{contentType: "application/json", body: []byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"name":"orphan"}]}]}]}`)}, code: http.StatusBadRequest, grpcCode: codes.InvalidArgument, reason: "malformed", msg: "span without a trace_id", json: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, before := p.count(), r.refusedCount("http", tc.reason)
			resp := do(t, c, r, tc.req)
			require.Equal(t, tc.code, resp.code, "%s", resp.body)
			if tc.json {
				require.Equal(t, "application/json", resp.contentType)
			} else {
				require.Equal(t, "application/x-protobuf", resp.contentType)
			}
			if tc.code == http.StatusMethodNotAllowed {
				require.Equal(t, http.MethodPost, resp.allow)
			}
			st := rpcStatus(t, resp)
			require.Equal(t, int32(tc.grpcCode), st.Code)
			require.Contains(t, st.Message, tc.msg)
			require.Equal(t, before+1, r.refusedCount("http", tc.reason))
			require.Equal(t, n, p.count(), "nothing pushed")

			// And the receiver keeps serving.
			ok := do(t, c, r, httpReq{contentType: "application/x-protobuf", body: pb})
			require.Equal(t, http.StatusOK, ok.code)
			require.Equal(t, n+1, p.count())
		})
	}
	require.Zero(t, testutil.ToFloat64(r.metrics.Requests.WithLabelValues("http", "error")))
}

func TestHTTPPushFailure(t *testing.T) {
	p := &fakePusher{err: errors.New("no ingester reachable")}
	r := startReceiver(t, false, 16, p)
	resp := do(t, httpClient(t), r, httpReq{contentType: "application/x-protobuf", body: mustMarshal(t, testRequest(t, 3, 1, 2))})
	require.Equal(t, http.StatusServiceUnavailable, resp.code)
	st := rpcStatus(t, resp)
	require.Equal(t, int32(codes.Unavailable), st.Code)
	require.Contains(t, st.Message, "no ingester reachable")
	require.Equal(t, 1.0, testutil.ToFloat64(r.metrics.Requests.WithLabelValues("http", "error")))
}

// errOverLimit is a distributor refusing a tenant over a limit.
var errOverLimit = &receiver.LimitError{
	Reason: "rate_limited", RetryAfter: 2500 * time.Millisecond,
	Msg: "ingestion rate limit (10 bytes/s, burst 20 bytes) exceeded for tenant single-tenant while adding 30 bytes; retry later",
}

// A tenant over a limit is answered 429 with Retry-After, as OTLP/HTTP
// specifies for a retryable refusal.
func TestHTTPOverLimit(t *testing.T) {
	p := &fakePusher{err: errOverLimit}
	r := startReceiver(t, false, 16, p)
	resp := do(t, httpClient(t), r, httpReq{contentType: "application/x-protobuf", body: mustMarshal(t, testRequest(t, 3, 1, 2))})
	require.Equal(t, http.StatusTooManyRequests, resp.code)
	require.Equal(t, "3", resp.retryAfter)
	st := rpcStatus(t, resp)
	require.Equal(t, int32(codes.ResourceExhausted), st.Code)
	require.Equal(t, errOverLimit.Msg, st.Message)
	require.Equal(t, 1.0, testutil.ToFloat64(r.metrics.Requests.WithLabelValues("http", "limited")))
	require.Zero(t, testutil.ToFloat64(r.metrics.Requests.WithLabelValues("http", "error")))
}

func TestHTTPMultitenancy(t *testing.T) {
	p := &fakePusher{}
	r := startReceiver(t, true, 16, p)
	c := httpClient(t)
	pb := mustMarshal(t, testRequest(t, 4, 1, 2))
	for _, tc := range []struct {
		name   string
		tenant string
		json   bool
		code   int
		msg    string
	}{
		{name: "no tenant", code: http.StatusUnauthorized, msg: "the X-Scope-OrgID header is required"},
		{name: "no tenant, JSON", json: true, code: http.StatusUnauthorized, msg: "the X-Scope-OrgID header is required"},
		{name: "invalid tenant", tenant: "../etc", code: http.StatusUnauthorized, msg: `tenant "../etc"`},
		{name: "tenant", tenant: "team-a", code: http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hr := httpReq{contentType: "application/x-protobuf", tenant: tc.tenant, body: pb}
			if tc.json {
				hr.contentType, hr.body = "application/json", []byte(`{"resourceSpans":[]}`)
			}
			n, before := p.count(), r.refusedCount("http", "tenant")
			resp := do(t, c, r, hr)
			require.Equal(t, tc.code, resp.code, "%s", resp.body)
			if tc.code == http.StatusOK {
				require.Equal(t, tc.tenant, p.last(t).tenant)
				return
			}
			st := rpcStatus(t, resp)
			require.Equal(t, int32(codes.Unauthenticated), st.Code)
			require.Contains(t, st.Message, tc.msg)
			require.Equal(t, before+1, r.refusedCount("http", "tenant"))
			require.Equal(t, n, p.count())
		})
	}
}

// rawBytes is a gRPC codec that sends bytes as they are, to send malformed
// messages a generated client cannot encode.
type rawBytes struct{}

func (rawBytes) Name() string { return "proto" }

func (rawBytes) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(*v.(*[]byte))}, nil
}

func (rawBytes) Unmarshal(data mem.BufferSlice, v any) error {
	*v.(*[]byte) = data.Materialize()
	return nil
}

func grpcClient(tb testing.TB, r *Receiver) (coltracepb.TraceServiceClient, *grpc.ClientConn) {
	tb.Helper()
	conn, err := grpc.NewClient(r.GRPCAddr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(tb, err)
	tb.Cleanup(func() { conn.Close() })
	return coltracepb.NewTraceServiceClient(conn), conn
}

func testContext(tb testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	tb.Cleanup(cancel)
	return ctx
}

func TestGRPC(t *testing.T) {
	p := &fakePusher{}
	r := startReceiver(t, false, 1, p)
	client, conn := grpcClient(t, r)
	ctx := testContext(t)

	good := testRequest(t, 5, 3, 4)
	shortID := &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracev1.ResourceSpans{{
		ScopeSpans: []*tracev1.ScopeSpans{{Spans: []*tracev1.Span{{TraceId: []byte{1, 2, 3, 4, 5, 6, 7, 8}, Name: "zipkin"}}}},
	}}}
	huge := &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracev1.ResourceSpans{{
		ScopeSpans: []*tracev1.ScopeSpans{{Spans: []*tracev1.Span{{
			TraceId: bytes.Repeat([]byte{7}, 16), Name: "huge",
			Attributes: []*commonv1.KeyValue{{Key: "blob", Value: &commonv1.AnyValue{Value: &commonv1.AnyValue_StringValue{StringValue: strings.Repeat("x", 3<<19)}}}},
		}}}},
	}}}

	for _, tc := range []struct {
		name   string
		export func() error
		code   codes.Code
		msg    string
		reason string // of vivace_receiver_refused_requests_total
	}{
		{name: "ok", code: codes.OK, export: func() error {
			resp, err := client.Export(ctx, good)
			if err == nil {
				require.NotNil(t, resp)
				got := p.last(t)
				require.Equal(t, model.SingleTenant, got.tenant)
				require.True(t, proto.Equal(good, decodeRequest(t, got.req)))
				require.Len(t, got.split.IDs, 3)
			}
			return err
		}},
		{name: "empty request", code: codes.OK, export: func() error {
			_, err := client.Export(ctx, &coltracepb.ExportTraceServiceRequest{})
			return err
		}},
		{name: "8-byte trace id", code: codes.InvalidArgument, msg: "trace_id has 8 bytes, want 16", reason: "malformed", export: func() error {
			_, err := client.Export(ctx, shortID)
			return err
		}},
		{name: "not protobuf", code: codes.InvalidArgument, msg: "malformed OTLP trace data", reason: "malformed", export: func() error {
			in, out := []byte("\x0a\xff\xff\xff\xff\x0fnot protobuf"), []byte(nil)
			return conn.Invoke(ctx, "/opentelemetry.proto.collector.trace.v1.TraceService/Export", &in, &out, grpc.ForceCodecV2(rawBytes{}))
		}},
		{name: "over the size limit", code: codes.ResourceExhausted, msg: "larger than max", export: func() error {
			_, err := client.Export(ctx, huge)
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := p.count()
			var before float64
			if tc.reason != "" {
				before = r.refusedCount("grpc", tc.reason)
			}
			err := tc.export()
			require.Equal(t, tc.code, status.Code(err), "%v", err)
			if tc.code != codes.OK {
				require.ErrorContains(t, err, tc.msg)
				require.Equal(t, n, p.count(), "nothing pushed")
			}
			if tc.reason != "" {
				require.Equal(t, before+1, r.refusedCount("grpc", tc.reason))
			}
			// And the receiver keeps serving.
			_, err = client.Export(ctx, good)
			require.NoError(t, err)
		})
	}
}

func TestGRPCPushFailure(t *testing.T) {
	p := &fakePusher{err: errors.New("no ingester reachable")}
	r := startReceiver(t, false, 16, p)
	client, _ := grpcClient(t, r)
	_, err := client.Export(testContext(t), testRequest(t, 6, 1, 2))
	require.Equal(t, codes.Unavailable, status.Code(err))
	require.ErrorContains(t, err, "no ingester reachable")
	require.Equal(t, 1.0, testutil.ToFloat64(r.metrics.Requests.WithLabelValues("grpc", "error")))
}

func TestGRPCOverLimit(t *testing.T) {
	p := &fakePusher{err: errOverLimit}
	r := startReceiver(t, false, 16, p)
	client, _ := grpcClient(t, r)
	_, err := client.Export(testContext(t), testRequest(t, 6, 1, 2))
	st := status.Convert(err)
	require.Equal(t, codes.ResourceExhausted, st.Code())
	require.Equal(t, errOverLimit.Msg, st.Message())
	require.Equal(t, 2500*time.Millisecond, st.Details()[0].(*errdetails.RetryInfo).GetRetryDelay().AsDuration())
	require.Equal(t, 1.0, testutil.ToFloat64(r.metrics.Requests.WithLabelValues("grpc", "limited")))
}

func TestGRPCMultitenancy(t *testing.T) {
	p := &fakePusher{}
	r := startReceiver(t, true, 16, p)
	client, _ := grpcClient(t, r)
	req := testRequest(t, 7, 2, 2)
	for _, tc := range []struct {
		name   string
		md     []string
		code   codes.Code
		tenant string
		msg    string
	}{
		{name: "no metadata", code: codes.Unauthenticated, msg: "X-Scope-OrgID header is required"},
		{name: "other metadata", md: []string{"authorization", "Bearer x"}, code: codes.Unauthenticated, msg: "X-Scope-OrgID header is required"},
		{name: "invalid tenant", md: []string{"x-scope-orgid", "a/b"}, code: codes.Unauthenticated, msg: `tenant "a/b"`},
		{name: "tenant", md: []string{"x-scope-orgid", "team-a"}, code: codes.OK, tenant: "team-a"},
		{name: "tenant, header case", md: []string{"X-Scope-OrgID", "team-b"}, code: codes.OK, tenant: "team-b"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testContext(t)
			if len(tc.md) > 0 {
				ctx = metadata.AppendToOutgoingContext(ctx, tc.md...)
			}
			n, before := p.count(), r.refusedCount("grpc", "tenant")
			_, err := client.Export(ctx, req)
			require.Equal(t, tc.code, status.Code(err), "%v", err)
			if tc.code == codes.OK {
				require.Equal(t, tc.tenant, p.last(t).tenant)
				return
			}
			require.ErrorContains(t, err, tc.msg)
			require.Equal(t, before+1, r.refusedCount("grpc", "tenant"))
			require.Equal(t, n, p.count())
		})
	}
}

func TestNewValidates(t *testing.T) {
	cfg := testConfig(0)
	_, err := New(cfg, false, &fakePusher{}, discardLogger(), prometheus.NewRegistry())
	require.ErrorContains(t, err, "max_recv_msg_size_mib must be positive")
}

func TestStartFailsOnBusyPort(t *testing.T) {
	first := startReceiver(t, false, 1, &fakePusher{})
	cfg := testConfig(1)
	cfg.Protocols.HTTP.Endpoint = first.HTTPAddr().String()
	r, err := New(cfg, false, &fakePusher{}, discardLogger(), prometheus.NewRegistry())
	require.NoError(t, err)
	err = services.StartAndAwaitRunning(context.Background(), r)
	require.ErrorContains(t, err, "OTLP HTTP listen")
}

func TestEndpointsCanBeOff(t *testing.T) {
	cfg := testConfig(1)
	cfg.Protocols.GRPC.Endpoint = ""
	r, err := New(cfg, false, &fakePusher{}, discardLogger(), prometheus.NewRegistry())
	require.NoError(t, err)
	require.NoError(t, services.StartAndAwaitRunning(context.Background(), r))
	defer func() { require.NoError(t, services.StopAndAwaitTerminated(context.Background(), r)) }()
	require.Nil(t, r.GRPCAddr())
	require.NotNil(t, r.HTTPAddr())
}
