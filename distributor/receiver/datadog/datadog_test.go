package datadog

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/DataDog/dd-trace-go/v2/ddtrace/ext"
	ddtracer "github.com/DataDog/dd-trace-go/v2/ddtrace/tracer"
	"github.com/grafana/dskit/services"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"github.com/tinylib/msgp/msgp"
	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/vivace-dev/vivace/distributor/receiver"
)

func newTestReceiver(tb testing.TB, p *fakePusher) (*Receiver, *prometheus.Registry) {
	tb.Helper()
	reg := prometheus.NewRegistry()
	r, err := New(Config{MaxRequestBodySize: 1 << 20}, false, p, slog.New(slog.DiscardHandler), reg)
	require.NoError(tb, err)
	return r, reg
}

func do(tb testing.TB, h http.Handler, method, path, contentType string, body []byte) *httptest.ResponseRecorder {
	tb.Helper()
	req := httptest.NewRequest(method, path, bytes.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

func TestHandler(t *testing.T) {
	v04 := appendV04(nil, []ddSpan{baseSpan(nil)})
	jsonBody := []byte(`[[{"service":"web","name":"http.request","resource":"GET /users/{id}","trace_id":11803532876627986230,"span_id":72623859790382856,"parent_id":1230066625199609624,"start":1700000000000000000,"duration":1500000,"meta":{"b":"2","a":"1"},"metrics":{"m":1.5}}]]`)
	for _, tc := range []struct {
		name, method, path, ct string
		body                   []byte
		code                   int
		resp                   string
		spans                  int
	}{
		{"v0.4 msgpack", http.MethodPut, "/v0.4/traces", "application/msgpack", v04, 200, rateBody, 1},
		{"v0.4 POST without Content-Type", http.MethodPost, "/v0.4/traces", "", v04, 200, rateBody, 1},
		{"v0.4 JSON", http.MethodPut, "/v0.4/traces", "application/json", jsonBody, 200, rateBody, 1},
		{"v0.3 JSON by default", http.MethodPut, "/v0.3/traces", "", jsonBody, 200, "OK\n", 1},
		{"v0.3 msgpack", http.MethodPut, "/v0.3/traces", "application/msgpack", v04, 200, "OK\n", 1},
		{"v0.5", http.MethodPut, "/v0.5/traces", "application/msgpack", appendV05(nil, []ddSpan{baseSpan(nil)}), 200, rateBody, 1},
		{"v0.7", http.MethodPost, "/v0.7/traces", "application/msgpack", appendV07(nil, chunksOf([]ddSpan{baseSpan(nil)}, []ddSpan{baseSpan(nil)})), 200, rateBody, 2},
		{"v0.7 is not v0.4", http.MethodPost, "/v0.7/traces", "application/msgpack", v04, 400, "", 0},
		{"empty list", http.MethodPut, "/v0.4/traces", "application/msgpack", msgp.AppendArrayHeader(nil, 0), 200, rateBody, 0},
		{"GET is refused", http.MethodGet, "/v0.4/traces", "", nil, 405, "only POST and PUT are allowed\n", 0},
		{"garbage", http.MethodPut, "/v0.4/traces", "application/msgpack", []byte{0xc1}, 400, "", 0},
		{"v0.5 is not v0.4", http.MethodPut, "/v0.5/traces", "application/msgpack", v04, 400, "", 0},
		{"trailing bytes", http.MethodPut, "/v0.4/traces", "application/msgpack", append(append([]byte{}, v04...), 0), 400, "", 0},
		{"bad JSON", http.MethodPut, "/v0.3/traces", "", []byte(`[{`), 400, "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &fakePusher{}
			r, _ := newTestReceiver(t, p)
			w := do(t, r.Handler(), tc.method, tc.path, tc.ct, tc.body)
			require.Equal(t, tc.code, w.Code, w.Body.String())
			if tc.resp != "" {
				require.Equal(t, tc.resp, w.Body.String())
			}
			n := 0
			for _, ps := range p.all() {
				n += countSpans(ps.req)
				require.Equal(t, "single-tenant", ps.tenant)
			}
			require.Equal(t, tc.spans, n)
		})
	}
}

func TestJSONSortsMetaAndKeepsBigIDs(t *testing.T) {
	spans, err := decodeJSON([]byte(`[[{"trace_id":18446744073709551615,"span_id":1,"meta":{"b":"2","a":"1"}}]]`))
	require.NoError(t, err)
	require.Equal(t, uint64(18446744073709551615), spans[0].traceID)
	require.Equal(t, []tag{{"a", "1"}, {"b", "2"}}, spans[0].meta)
}

func TestLenientNumbersAndStrings(t *testing.T) {
	// Tracers write IDs as signed ints, nil strings and bin strings.
	var b []byte
	b = msgp.AppendArrayHeader(b, 1)
	b = msgp.AppendArrayHeader(b, 1)
	b = msgp.AppendMapHeader(b, 6)
	b = msgp.AppendInt64(msgp.AppendString(b, "trace_id"), 5)
	b = msgp.AppendFloat64(msgp.AppendString(b, "span_id"), 6)
	b = msgp.AppendNil(msgp.AppendString(b, "service"))
	b = msgp.AppendBytes(msgp.AppendString(b, "name"), []byte("n\xff"))
	b = msgp.AppendArrayHeader(msgp.AppendString(b, "span_links"), 0)
	b = msgp.AppendMapHeader(msgp.AppendString(b, "metrics"), 1)
	b = msgp.AppendInt(msgp.AppendString(b, "m"), 3)
	spans, err := decodeV04(b)
	require.NoError(t, err)
	require.Equal(t, []span{{traceID: 5, spanID: 6, name: "n\uFFFD", metrics: []metric{{"m", 3}}}}, spans)
}

func TestInfo(t *testing.T) {
	r, _ := newTestReceiver(t, &fakePusher{})
	w := do(t, r.Handler(), http.MethodGet, "/info", "", nil)
	require.Equal(t, 200, w.Code)
	require.JSONEq(t, infoBody, w.Body.String())
}

func TestPushErrors(t *testing.T) {
	body := appendV04(nil, []ddSpan{baseSpan(nil)})
	p := &fakePusher{err: errors.New("ingesters down")}
	r, reg := newTestReceiver(t, p)
	w := do(t, r.Handler(), http.MethodPut, "/v0.4/traces", "application/msgpack", body)
	require.Equal(t, http.StatusServiceUnavailable, w.Code)
	require.Equal(t, 1.0, testutil.ToFloat64(r.metrics.Requests.WithLabelValues("v0.4", "error")))

	// A tenant over a limit: 429 and when to retry.
	p.err = &receiver.LimitError{Reason: "rate_limited", Msg: "ingestion rate limit (10 bytes/s, burst 20 bytes) exceeded for tenant single-tenant; retry later", RetryAfter: 1500 * time.Millisecond}
	w = do(t, r.Handler(), http.MethodPut, "/v0.4/traces", "application/msgpack", body)
	require.Equal(t, http.StatusTooManyRequests, w.Code)
	require.Equal(t, "2", w.Header().Get("Retry-After"))
	require.Contains(t, w.Body.String(), "ingestion rate limit (10 bytes/s")
	require.Equal(t, 1.0, testutil.ToFloat64(r.metrics.Requests.WithLabelValues("v0.4", "limited")))

	// Dropped spans are counted, the rest kept.
	p.err = nil
	body = appendV04(nil, []ddSpan{baseSpan(func(s *ddSpan) { s.TraceID = 0 }), baseSpan(nil)})
	w = do(t, r.Handler(), http.MethodPut, "/v0.4/traces", "application/msgpack", body)
	require.Equal(t, 200, w.Code)
	require.Equal(t, 1.0, testutil.ToFloat64(r.metrics.RefusedSpans.WithLabelValues("invalid_span")))
	_ = reg
}

// startReceiver runs a receiver on a free port of 127.0.0.1.
func startReceiver(tb testing.TB, p *fakePusher) *Receiver {
	tb.Helper()
	r, err := New(Config{Endpoint: "127.0.0.1:0", MaxRequestBodySize: 1 << 20}, false, p, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	require.NoError(tb, err)
	require.NoError(tb, services.StartAndAwaitRunning(context.Background(), r))
	tb.Cleanup(func() { require.NoError(tb, services.StopAndAwaitTerminated(context.Background(), r)) })
	return r
}

// TestDDTraceGo sends spans with dd-trace-go's default transport (it asks
// /info, then PUTs msgpack to /v0.4/traces) and checks what arrives.
func TestDDTraceGo(t *testing.T) {
	p := &fakePusher{}
	r := startReceiver(t, p)
	for k, v := range map[string]string{
		"DD_INSTRUMENTATION_TELEMETRY_ENABLED": "false",
		"DD_REMOTE_CONFIGURATION_ENABLED":      "false",
		"DD_TRACE_STARTUP_LOGS":                "false",
		"DD_RUNTIME_METRICS_ENABLED":           "false",
		"DD_DATA_STREAMS_ENABLED":              "false",
	} {
		t.Setenv(k, v)
	}
	require.NoError(t, ddtracer.Start(
		ddtracer.WithAgentAddr(r.Addr().String()),
		ddtracer.WithService("checkout"),
		ddtracer.WithEnv("test"),
		ddtracer.WithServiceVersion("1.0.0"),
		ddtracer.WithLogger(discardLogger{}),
	))
	root := ddtracer.StartSpan("http.request", ddtracer.ResourceName("GET /cart"), ddtracer.SpanType(ext.SpanTypeWeb), ddtracer.Tag(ext.SpanKind, ext.SpanKindServer))
	child := ddtracer.StartSpan("sql.query", ddtracer.ChildOf(root.Context()), ddtracer.ResourceName("SELECT 1"), ddtracer.Tag("db.system", "postgresql"))
	child.Finish(ddtracer.WithError(errors.New("deadlock")))
	root.Finish()
	traceID := root.Context().TraceID() // 32 hex digits, 128 bits
	ddtracer.Flush()
	ddtracer.Stop()

	require.Eventually(t, func() bool { return len(p.all()) > 0 }, 10*time.Second, 20*time.Millisecond)
	var got []*tracev1.Span
	var service string
	for _, ps := range p.all() {
		for _, rs := range ps.req.ResourceSpans {
			for _, a := range rs.Resource.Attributes {
				if a.Key == "service.name" {
					service = a.Value.GetStringValue()
				}
			}
			for _, ss := range rs.ScopeSpans {
				got = append(got, ss.Spans...)
			}
		}
	}
	require.Len(t, got, 2)
	require.Equal(t, "checkout", service)
	byName := map[string]*tracev1.Span{}
	for _, s := range got {
		byName[s.Name] = s
		require.Equal(t, traceID, hexOf(s.TraceId), "the 128-bit ID, high half from _dd.p.tid")
	}
	require.Equal(t, tracev1.Span_SPAN_KIND_SERVER, byName["GET /cart"].Kind)
	require.Equal(t, tracev1.Status_STATUS_CODE_ERROR, byName["SELECT 1"].Status.GetCode())
	require.Equal(t, "deadlock", byName["SELECT 1"].Status.GetMessage())
	require.Equal(t, byName["GET /cart"].SpanId, byName["SELECT 1"].ParentSpanId)
	require.Equal(t, root.Context().SpanID(), binary.BigEndian.Uint64(byName["GET /cart"].SpanId))
}

func hexOf(b []byte) string {
	const digits = "0123456789abcdef"
	var sb strings.Builder
	for _, c := range b {
		sb.WriteByte(digits[c>>4])
		sb.WriteByte(digits[c&15])
	}
	return sb.String()
}

type discardLogger struct{}

func (discardLogger) Log(string) {}
