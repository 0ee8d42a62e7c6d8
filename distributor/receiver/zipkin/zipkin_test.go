package zipkin

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/grafana/dskit/services"
	zipkinpb "github.com/openzipkin/zipkin-go/proto/zipkin_proto3"
	"github.com/openzipkin/zipkin-go/reporter"
	zipkinhttp "github.com/openzipkin/zipkin-go/reporter/http"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/vivace-dev/vivace/distributor/receiver"
	"github.com/vivace-dev/vivace/distributor/receiver/otlp"
	"github.com/vivace-dev/vivace/internal/model"
)

func TestConfigDefaults(t *testing.T) {
	var cfg Config
	cfg.RegisterFlagsAndApplyDefaults("distributor.receivers.zipkin", flag.NewFlagSet("", flag.PanicOnError))
	require.Equal(t, Config{Endpoint: "0.0.0.0:9411", MaxRequestBodySize: 16 << 20}, cfg)
	require.NoError(t, cfg.Validate())
	cfg.MaxRequestBodySize = 0
	require.Error(t, cfg.Validate())
	_, err := New(cfg, false, &fakePusher{}, discardLogger(), prometheus.NewRegistry())
	require.Error(t, err)
}

func TestAccepted(t *testing.T) {
	jsonBody := []byte(oneSpan(`,"localEndpoint":{"serviceName":"frontend"}`))
	protoBody, err := zipkinpb.SpanSerializer{}.Serialize(zipkinGoSpans())
	require.NoError(t, err)
	v1Body := []byte(`[{` + v1IDs + `,"annotations":[` + v1Anno("1000000", "cs", v1Frontend) + `,` +
		v1Anno("1000100", "sr", v1Backend) + `]}]`)
	cases := []struct {
		name  string
		req   httpReq
		spans int
	}{
		{"v2 JSON", httpReq{contentType: "application/json", body: jsonBody}, 1},
		{"v2 JSON with a charset", httpReq{contentType: "application/json; charset=utf-8", body: jsonBody}, 1},
		{"v2 JSON without a content type, as a Zipkin server takes it", httpReq{body: jsonBody}, 1},
		{"v2 JSON gzipped", httpReq{contentType: "application/json", encoding: "gzip", body: gzipped(t, jsonBody)}, 1},
		{"v2 protobuf", httpReq{contentType: "application/x-protobuf", body: protoBody}, 5},
		{"v2 protobuf, application/protobuf", httpReq{contentType: "application/protobuf", body: protoBody}, 5},
		{"v2 protobuf gzipped", httpReq{contentType: "application/x-protobuf", encoding: "gzip", body: gzipped(t, protoBody)}, 5},
		{"v1 JSON: one v1 span with both sides is two spans", httpReq{path: "/api/v1/spans", contentType: "application/json", body: v1Body}, 2},
		{"v2 JSON, empty list: nothing to push", httpReq{contentType: "application/json", body: []byte(`[]`)}, 0},
		{"v2 protobuf, empty list", httpReq{contentType: "application/x-protobuf"}, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := &fakePusher{}
			r := handlerOnly(t, p)
			resp := serve(r, tc.req)
			require.Equal(t, http.StatusAccepted, resp.code, resp.body)
			require.Empty(t, resp.body)
			if tc.spans == 0 {
				require.Empty(t, p.all())
				return
			}
			got := p.last(t)
			require.Equal(t, model.SingleTenant, got.tenant)
			require.Len(t, spans(got.req), tc.spans)
		})
	}
}

func TestBadInput(t *testing.T) {
	validSpan := `{"traceId":"` + traceHex + `","id":"` + spanHex + `","timestamp":1}`
	protoList := func(spans ...*zipkinpb.Span) []byte {
		b, err := proto.Marshal(&zipkinpb.ListOfSpans{Spans: spans})
		require.NoError(t, err)
		return b
	}
	id8 := []byte{1, 2, 3, 4, 5, 6, 7, 8}
	json := func(body string) httpReq { return httpReq{contentType: "application/json", body: []byte(body)} }
	v1 := func(body string) httpReq {
		return httpReq{path: "/api/v1/spans", contentType: "application/json", body: []byte(body)}
	}
	pb := func(body []byte) httpReq { return httpReq{contentType: "application/x-protobuf", body: body} }
	cases := []struct {
		name     string
		req      httpReq
		code     int
		msg      string
		protocol string
		reason   string
		spans    float64 // refused spans counted
	}{
		{"truncated JSON", json(`[` + validSpan + `,{"traceId":`), 400, "span 1: invalid JSON at offset", "v2_json", "malformed", 2},
		{"not an array", json(`{"traceId":"01"}`), 400, "the body must be a JSON array of spans, not an object", "v2_json", "malformed", 0},
		{"empty body", json(``), 400, "the request body is empty", "v2_json", "malformed", 0},
		{"data after the list", json(`[] []`), 400, "data after the top-level value", "v2_json", "malformed", 0},
		{"a span that is no object", json(`[` + validSpan + `,1]`), 400, "span 1: must be an object, not a number", "v2_json", "invalid_span", 2},
		{"missing traceId: the whole request is refused, every span counted",
			json(`[` + validSpan + `,{"id":"01"},` + validSpan + `]`), 400, "span 1: traceId is missing", "v2_json", "invalid_span", 3},
		{"missing id", json(`[{"traceId":"01"}]`), 400, "span 0: id is missing", "v2_json", "invalid_span", 1},
		{"traceId too long", json(`[{"traceId":"` + traceHex + `0","id":"01"}]`), 400,
			`span 0: traceId "` + traceHex + `0" has 33 hex digits, at most 32 allowed`, "v2_json", "invalid_span", 1},
		{"traceId not hex", json(`[{"traceId":"5b8efff79803810x","id":"01"}]`), 400, `span 0: traceId "5b8efff79803810x" is not hex`, "v2_json", "invalid_span", 1},
		{"traceId all zeros", json(`[{"traceId":"0000000000000000","id":"01"}]`), 400, "span 0: traceId \"0000000000000000\" is all zeros", "v2_json", "invalid_span", 1},
		{"id too long", json(`[{"traceId":"01","id":"` + spanHex + `0"}]`), 400, "span 0: id \"" + spanHex + "0\" has 17 hex digits, at most 16 allowed", "v2_json", "invalid_span", 1},
		{"id not hex", json(`[{"traceId":"01","id":"-1"}]`), 400, `span 0: id "-1" is not hex`, "v2_json", "invalid_span", 1},
		{"parentId not hex", json(`[{"traceId":"01","id":"02","parentId":"xyz"}]`), 400, `span 0: parentId "xyz" is not hex`, "v2_json", "invalid_span", 1},
		{"traceId of the wrong type", json(`[{"traceId":12,"id":"02"}]`), 400, "span 0: traceId must be a string, not a number", "v2_json", "invalid_span", 1},
		{"negative timestamp", json(`[{"traceId":"01","id":"02","timestamp":-5}]`), 400, "span 0: timestamp -5 is out of range", "v2_json", "invalid_span", 1},
		{"timestamp past 2262", json(`[{"traceId":"01","id":"02","timestamp":99999999999999999}]`), 400, "span 0: timestamp 99999999999999999 is out of range", "v2_json", "invalid_span", 1},
		{"annotation without timestamp", json(`[{"traceId":"01","id":"02","annotations":[{"value":"x"}]}]`), 400, "span 0: annotation 0 has no timestamp", "v2_json", "invalid_span", 1},
		{"annotation without value", json(`[{"traceId":"01","id":"02","annotations":[{"timestamp":1}]}]`), 400, "span 0: annotation 0 has no value", "v2_json", "invalid_span", 1},
		{"tag value that is an object", json(`[{"traceId":"01","id":"02","tags":{"k":{}}}]`), 400, `span 0: tag "k" must be a string, not an object`, "v2_json", "invalid_span", 1},
		{"too deep", json(`[{"traceId":"01","id":"02","x":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}]`), 400, "nested deeper than 64", "v2_json", "malformed", 1},
		{"protobuf that is not a ListOfSpans", pb([]byte("not proto")), 400, "invalid zipkin.proto3 ListOfSpans", "v2_proto", "malformed", 0},
		{"protobuf trace_id of 5 bytes", pb(protoList(&zipkinpb.Span{TraceId: []byte{1, 2, 3, 4, 5}, Id: id8})), 400,
			"span 0: trace_id has 5 bytes, want 8 or 16", "v2_proto", "invalid_span", 1},
		{"protobuf without trace_id", pb(protoList(&zipkinpb.Span{Id: id8}, &zipkinpb.Span{Id: id8})), 400, "span 0: trace_id is missing", "v2_proto", "invalid_span", 2},
		{"protobuf without id", pb(protoList(&zipkinpb.Span{TraceId: id8})), 400, "span 0: id is missing", "v2_proto", "invalid_span", 1},
		{"protobuf id of 4 bytes", pb(protoList(&zipkinpb.Span{TraceId: id8, Id: id8[:4]})), 400, "span 0: id has 4 bytes, want 8", "v2_proto", "invalid_span", 1},
		{"protobuf parent_id of 2 bytes", pb(protoList(&zipkinpb.Span{TraceId: id8, Id: id8, ParentId: id8[:2]})), 400, "span 0: parent_id has 2 bytes, want 8", "v2_proto", "invalid_span", 1},
		{"protobuf all-zero id", pb(protoList(&zipkinpb.Span{TraceId: id8, Id: make([]byte, 8)})), 400, "span 0: id is all zeros", "v2_proto", "invalid_span", 1},
		{"v1 without traceId", v1(`[{"id":"01","name":"x"}]`), 400, "span 0: traceId is missing", "v1_json", "invalid_span", 1},
		{"v1 annotation without value", v1(`[{"traceId":"01","id":"01","annotations":[{"timestamp":1}]}]`), 400, "span 0: annotation 0 has no value", "v1_json", "invalid_span", 1},
		{"v1 binary annotation without key", v1(`[{"traceId":"01","id":"01","binaryAnnotations":[{"value":"x"}]}]`), 400, "span 0: binaryAnnotation 0 has no key", "v1_json", "invalid_span", 1},
		{"v1 malformed", v1(`[{"traceId":"01",}]`), 400, `span 0: invalid JSON at offset 17: unexpected '}', want a member name`, "v1_json", "malformed", 1},
		{"invalid gzip", httpReq{contentType: "application/json", encoding: "gzip", body: []byte("[]")}, 400, "invalid gzip body", "v2_json", "body", 0},
		{"unsupported content type", httpReq{contentType: "text/plain", body: []byte("[]")}, 415,
			`content type "text/plain" is not supported: use application/json or application/x-protobuf`, "http", "content_type", 0},
		{"unparsable content type", httpReq{contentType: "application/json; =", body: []byte("[]")}, 415, "invalid Content-Type", "http", "content_type", 0},
		{"v1 Thrift", httpReq{path: "/api/v1/spans", contentType: "application/x-thrift", body: []byte("x")}, 415, "Zipkin v1 Thrift is not supported", "http", "content_type", 0},
		{"protobuf on v1", httpReq{path: "/api/v1/spans", contentType: "application/x-protobuf", body: []byte("x")}, 415,
			"is not supported on /api/v1/spans: use application/json", "http", "content_type", 0},
		{"unsupported content encoding", httpReq{contentType: "application/json", encoding: "br", body: []byte("[]")}, 415,
			`content encoding "br" is not supported: use gzip or none`, "v2_json", "content_encoding", 0},
		{"GET", httpReq{method: http.MethodGet}, 405, "only POST is allowed", "http", "method", 0},
		{"PUT on v1", httpReq{method: http.MethodPut, path: "/api/v1/spans"}, 405, "only POST is allowed", "http", "method", 0},
		{"too large", json(`[` + strings.Repeat(" ", 1<<20) + `]`), 413, "request body is over the limit of 1048576 bytes", "v2_json", "too_large", 0},
		{"too large once gunzipped", httpReq{contentType: "application/json", encoding: "gzip", body: gzipped(t, []byte(`[`+strings.Repeat(" ", 2<<20)+`]`))},
			413, "request body is over the limit", "v2_json", "too_large", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := &fakePusher{}
			r := handlerOnly(t, p)
			resp := serve(r, tc.req)
			require.Equal(t, tc.code, resp.code, resp.body)
			require.Contains(t, resp.body, tc.msg)
			if tc.code == http.StatusMethodNotAllowed {
				require.Equal(t, http.MethodPost, resp.allow)
			}
			require.Equal(t, 1.0, r.refusedCount(tc.protocol, tc.reason))
			require.Equal(t, tc.spans, r.refusedSpans(tc.reason))
			require.Empty(t, p.all(), "a refused request pushes nothing")
		})
	}
}

func TestTenant(t *testing.T) {
	p := &fakePusher{}
	r, err := New(testConfig(), true, p, discardLogger(), prometheus.NewRegistry())
	require.NoError(t, err)
	body := []byte(oneSpan(``))

	resp := serve(r, httpReq{contentType: "application/json", body: body})
	require.Equal(t, http.StatusUnauthorized, resp.code)
	require.Contains(t, resp.body, "X-Scope-OrgID header is required")
	require.Equal(t, 1.0, r.refusedCount("v2_json", "tenant"))

	resp = serve(r, httpReq{contentType: "application/json", body: body, tenant: "team-a"})
	require.Equal(t, http.StatusAccepted, resp.code, resp.body)
	require.Equal(t, "team-a", p.last(t).tenant)
}

func TestPushErrors(t *testing.T) {
	body := []byte(`[` + strings.TrimSuffix(strings.TrimPrefix(oneSpan(``), "["), "]") + `,` +
		strings.TrimSuffix(strings.TrimPrefix(oneSpan(`,"kind":"SERVER"`), "["), "]") + `]`)

	p := &fakePusher{err: fmt.Errorf("%w: too many spans", receiver.ErrBadInput)}
	r := handlerOnly(t, p)
	resp := serve(r, httpReq{contentType: "application/json", body: body})
	require.Equal(t, http.StatusBadRequest, resp.code)
	require.Contains(t, resp.body, "too many spans")
	require.Equal(t, 2.0, r.refusedSpans("malformed"))

	p = &fakePusher{err: errors.New("no quorum")}
	r = handlerOnly(t, p)
	resp = serve(r, httpReq{contentType: "application/json", body: body})
	require.Equal(t, http.StatusServiceUnavailable, resp.code)
	require.Contains(t, resp.body, "no quorum")

	limit := &receiver.LimitError{Reason: "rate_limited", Msg: "ingestion rate limit (10 bytes/s, burst 20 bytes) exceeded for tenant single-tenant; retry later", RetryAfter: 1500 * time.Millisecond}
	r = handlerOnly(t, &fakePusher{err: limit})
	resp = serve(r, httpReq{contentType: "application/json", body: body})
	require.Equal(t, http.StatusTooManyRequests, resp.code)
	require.Equal(t, "2", resp.retryAfter)
	require.Contains(t, resp.body, limit.Msg)
	require.Equal(t, 1.0, testutil.ToFloat64(r.metrics.Requests.WithLabelValues("v2_json", "limited")))
}

// TestZipkinGoReporter sends spans with zipkin-go's own HTTP reporter, JSON
// and protobuf, to a receiver listening on a loopback port.
func TestZipkinGoReporter(t *testing.T) {
	for _, ser := range []reporter.SpanSerializer{reporter.JSONSerializer{}, zipkinpb.SpanSerializer{}} {
		t.Run(ser.ContentType(), func(t *testing.T) {
			p := &fakePusher{}
			r := startReceiver(t, testConfig(), false, p)
			var logs bytes.Buffer
			rep := zipkinhttp.NewReporter("http://"+r.Addr().String()+"/api/v2/spans",
				zipkinhttp.Serializer(ser),
				zipkinhttp.Client(httpClient(t)),
				zipkinhttp.BatchSize(2),
				zipkinhttp.BatchInterval(time.Millisecond),
				zipkinhttp.Logger(log.New(&logs, "", 0)), // where it reports failed sends
			)
			want := zipkinGoSpans()
			for _, s := range want {
				rep.Send(*s)
			}
			require.NoError(t, rep.Close()) // sends what is left
			require.Empty(t, logs.String())

			// Batches and grouping by service reorder spans: compare by
			// span ID and kind, which tell apart the two halves of the
			// shared span.
			key := func(s *tracev1.Span) string { return fmt.Sprintf("%x/%s", s.SpanId, s.Kind) }
			got := map[string]*tracev1.Span{}
			for _, push := range p.all() {
				for _, s := range spans(push.req) {
					require.NotContains(t, got, key(s), "pushed twice")
					got[key(s)] = s
				}
			}
			wantSpans := spans(fromZipkinGo(want))
			require.Len(t, got, len(wantSpans))
			for _, w := range wantSpans {
				requireProtoEqual(t, w, got[key(w)])
			}
			require.Contains(t, got, "eee19b7ec3c1b174/SPAN_KIND_CLIENT")
			require.Contains(t, got, "eee19b7ec3c1b174/SPAN_KIND_SERVER")
		})
	}
}

func TestOverTheNetwork(t *testing.T) {
	p := &fakePusher{}
	r := startReceiver(t, testConfig(), false, p)
	c := httpClient(t)
	post := func(path, ct string, body []byte) (int, string) {
		resp, err := c.Post("http://"+r.Addr().String()+path, ct, bytes.NewReader(body))
		require.NoError(t, err)
		defer resp.Body.Close()
		var buf bytes.Buffer
		_, err = buf.ReadFrom(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, buf.String()
	}
	code, body := post("/api/v2/spans", "application/json", []byte(oneSpan(``)))
	require.Equal(t, http.StatusAccepted, code)
	require.Empty(t, body)
	code, _ = post("/api/v2/nothing", "application/json", []byte(`[]`))
	require.Equal(t, http.StatusNotFound, code)
	require.Len(t, p.all(), 1)
}

func TestOff(t *testing.T) {
	r := startReceiver(t, Config{MaxRequestBodySize: 1}, false, &fakePusher{})
	require.Nil(t, r.Addr())
}

func TestListenError(t *testing.T) {
	r, err := New(Config{Endpoint: "256.0.0.1:1", MaxRequestBodySize: 1}, false, &fakePusher{}, discardLogger(), prometheus.NewRegistry())
	require.NoError(t, err)
	require.Error(t, services.StartAndAwaitRunning(context.Background(), r))
}

// TestSharedMetrics registers the OTLP and Zipkin receivers' metrics in one
// registry, as the distributor does: same names, same help and labels.
func TestSharedMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	var ocfg otlp.Config
	ocfg.RegisterFlagsAndApplyDefaults("otlp", flag.NewFlagSet("", flag.PanicOnError))
	_, err := otlp.New(ocfg, false, &fakePusher{}, discardLogger(), reg)
	require.NoError(t, err)
	r, err := New(testConfig(), false, &fakePusher{}, discardLogger(), reg)
	require.NoError(t, err)
	serve(r, httpReq{method: http.MethodGet})
	_, err = reg.Gather()
	require.NoError(t, err)
}
