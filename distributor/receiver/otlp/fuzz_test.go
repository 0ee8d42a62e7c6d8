package otlp

import (
	"bytes"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/vivace-dev/vivace/internal/model"
)

var updateSeeds = flag.Bool("update-seeds", false, "rewrite the generated seed files under testdata/fuzz/")

// handlerOnly is a receiver that is never started: its HTTP handler is
// called directly, without a network.
func handlerOnly(tb testing.TB) *Receiver {
	tb.Helper()
	r, err := New(testConfig(1), false, &fakePusher{discard: true}, discardLogger(), prometheus.NewRegistry())
	require.NoError(tb, err)
	return r
}

// serve posts body to the handler and checks the answer is 200 with an
// ExportTraceServiceResponse or a 4xx with a google.rpc.Status naming the
// problem, in the request's encoding. It returns the status code.
func serve(t testing.TB, r *Receiver, contentType string, body []byte) int {
	req := httptest.NewRequest(http.MethodPost, "/v1/traces", bytes.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	rec := httptest.NewRecorder()
	r.handleHTTP(rec, req)

	unmarshal := proto.Unmarshal
	if contentType == "application/json" {
		unmarshal = func(b []byte, m proto.Message) error { return protojson.Unmarshal(b, m) }
	}
	code := rec.Code
	switch {
	case code == http.StatusOK:
		require.NoError(t, unmarshal(rec.Body.Bytes(), &coltracepb.ExportTraceServiceResponse{}))
	case code >= 400 && code < 500:
		var st spb.Status
		require.NoError(t, unmarshal(rec.Body.Bytes(), &st))
		require.Equal(t, int32(codes.InvalidArgument), st.Code)
		require.NotEmpty(t, st.Message)
	default:
		t.Fatalf("answered %d: %s", code, rec.Body.Bytes())
	}
	return code
}

func FuzzOTLPHTTPProtobuf(f *testing.F) {
	r := handlerOnly(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		code := serve(t, r, "application/x-protobuf", body)
		// Accepted exactly when the distributor can route it.
		_, err := model.SplitByTrace(body)
		require.Equal(t, err == nil, code == http.StatusOK, "answered %d, split error %v", code, err)
	})
}

func FuzzOTLPHTTPJSON(f *testing.F) {
	r := handlerOnly(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		code := serve(t, r, "application/json", body)

		pb, err := jsonToProto(body)
		if err != nil {
			require.Equal(t, http.StatusBadRequest, code)
			return
		}
		// What JSON turns into is valid protobuf, and stable: encoding it
		// back to OTLP/JSON and converting again gives the same message.
		var req coltracepb.ExportTraceServiceRequest
		require.NoError(t, proto.Unmarshal(pb, &req))
		again, err := jsonToProto(otlpJSON(t, &req))
		require.NoError(t, err)
		var req2 coltracepb.ExportTraceServiceRequest
		require.NoError(t, proto.Unmarshal(again, &req2))
		require.True(t, proto.Equal(&req, &req2))

		_, err = model.SplitByTrace(pb)
		require.Equal(t, err == nil, code == http.StatusOK, "answered %d, split error %v", code, err)
	})
}

// TestWriteFuzzSeeds regenerates the generated seeds of the receiver's fuzz
// targets (go test -run TestWriteFuzzSeeds -update-seeds ./distributor/receiver/otlp).
func TestWriteFuzzSeeds(t *testing.T) {
	if !*updateSeeds {
		t.Skip("run with -update-seeds to rewrite testdata/fuzz/")
	}
	small := testRequest(t, 99, 2, 1)
	minimal := &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracev1.ResourceSpans{{
		ScopeSpans: []*tracev1.ScopeSpans{{Spans: []*tracev1.Span{{
			TraceId: bytes.Repeat([]byte{0xab}, 16), SpanId: []byte{1, 2, 3, 4, 5, 6, 7, 8}, ParentSpanId: []byte{8, 7, 6, 5, 4, 3, 2, 1},
			Name: "GET /", Kind: tracev1.Span_SPAN_KIND_SERVER, StartTimeUnixNano: 1, EndTimeUnixNano: 2,
			Links: []*tracev1.Span_Link{{TraceId: bytes.Repeat([]byte{0xcd}, 16), SpanId: []byte{9, 9, 9, 9, 9, 9, 9, 9}}},
		}}}},
	}}}
	smallPB, minimalPB := mustMarshal(t, small), mustMarshal(t, minimal)
	write := func(target string, seeds map[string][]byte) {
		dir := filepath.Join("testdata", "fuzz", target)
		require.NoError(t, os.MkdirAll(dir, 0o755))
		for name, b := range seeds {
			content := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)
			require.Less(t, len(content), 20<<10, "seed %s/%s too big", target, name)
			require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644))
		}
	}
	write("FuzzOTLPHTTPProtobuf", map[string][]byte{
		"modeltest":  smallPB,
		"minimal":    minimalPB,
		"truncated":  minimalPB[:len(minimalPB)-2],
		"empty":      {},
		"json-bytes": otlpJSON(t, minimal),
	})
	write("FuzzOTLPHTTPJSON", map[string][]byte{
		"modeltest":      otlpJSON(t, small),
		"minimal":        otlpJSON(t, minimal),
		"snake-case":     []byte(`{"resource_spans":[{"scope_spans":[{"spans":[{"trace_id":"5b8efff798038103d269b633813fc60c","span_id":"eee19b7ec3c1b174","parent_span_id":"eee19b7ec3c1b173","kind":2,"start_time_unix_nano":1544712660000000000}]}]}]}`),
		"enum-names":     []byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"5B8EFFF798038103D269B633813FC60C","spanId":"EEE19B7EC3C1B174","kind":"SPAN_KIND_CLIENT","status":{"code":"STATUS_CODE_ERROR","message":"boom"}}]}]}]}`),
		"not-hex":        []byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"zz"}]}]}]}`),
		"short-trace-id": []byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"463ac35c9f6413ad"}]}]}]}`),
		"empty-object":   []byte(`{}`),
		"trailing":       []byte(`{} []`),
		"null":           []byte(`null`),
		"array":          []byte(`[{"traceId":"00"}]`),
	})
}
