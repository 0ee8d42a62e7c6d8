package zipkin

import (
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	zipkinpb "github.com/openzipkin/zipkin-go/proto/zipkin_proto3"
	"github.com/openzipkin/zipkin-go/reporter"
	"github.com/stretchr/testify/require"

	"github.com/vivace-dev/vivace/internal/model"
)

var updateSeeds = flag.Bool("update-seeds", false, "rewrite the generated seed files under testdata/fuzz/")

// fuzzServe posts body to the handler and checks the receiver's promise:
// never a panic, 202 or a 4xx with a message, 202 exactly when the body
// decodes, and then an OTLP request the distributor accepts and can route,
// with every decoded span in it, byte for byte what proto.Marshal writes for
// the reference translation.
func fuzzServe(t *testing.T, r *Receiver, f format, path, contentType string, body []byte) {
	resp := serve(r, httpReq{path: path, contentType: contentType, body: body})
	b, _, err := decode(f, body)
	if err != nil {
		require.True(t, resp.code >= 400 && resp.code < 500, "answered %d to an undecodable body: %s", resp.code, resp.body)
		require.NotEmpty(t, resp.body)
		return
	}
	require.Equal(t, http.StatusAccepted, resp.code, resp.body)
	require.Empty(t, resp.body)
	if len(b.spans) == 0 {
		return
	}
	enc := requireSameAsRef(t, b)
	require.NoError(t, model.CheckTracesData(enc)) // as the distributor checks it: UTF-8 and all
	split, err := model.SplitByTrace(enc)
	require.NoError(t, err)
	require.Equal(t, len(b.spans), split.Spans)
}

func FuzzZipkinJSONV2(f *testing.F) {
	r := handlerOnly(f, &fakePusher{discard: true})
	f.Fuzz(func(t *testing.T, body []byte) {
		fuzzServe(t, r, formatJSONV2, "/api/v2/spans", "application/json", body)
	})
}

func FuzzZipkinProto(f *testing.F) {
	r := handlerOnly(f, &fakePusher{discard: true})
	f.Fuzz(func(t *testing.T, body []byte) {
		fuzzServe(t, r, formatProto, "/api/v2/spans", "application/x-protobuf", body)
	})
}

func FuzzZipkinJSONV1(f *testing.F) {
	r := handlerOnly(f, &fakePusher{discard: true})
	f.Fuzz(func(t *testing.T, body []byte) {
		fuzzServe(t, r, formatJSONV1, "/api/v1/spans", "application/json", body)
	})
}

// TestWriteFuzzSeeds regenerates the seeds of the fuzz targets
// (go test -run TestWriteFuzzSeeds -update-seeds ./distributor/receiver/zipkin).
func TestWriteFuzzSeeds(t *testing.T) {
	if !*updateSeeds {
		t.Skip("run with -update-seeds to rewrite testdata/fuzz/")
	}
	jsonBody, err := reporter.JSONSerializer{}.Serialize(zipkinGoSpans())
	require.NoError(t, err)
	protoBody, err := zipkinpb.SpanSerializer{}.Serialize(zipkinGoSpans())
	require.NoError(t, err)
	write := func(target string, seeds map[string][]byte) {
		dir := filepath.Join("testdata", "fuzz", target)
		require.NoError(t, os.MkdirAll(dir, 0o755))
		for name, b := range seeds {
			content := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)
			require.Less(t, len(content), 20<<10, "seed %s/%s too big", target, name)
			require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644))
		}
	}
	write("FuzzZipkinJSONV2", map[string][]byte{
		"zipkin-go":      jsonBody,
		"envoy":          []byte(benchSpanJSON(0)),
		"escapes":        []byte(oneSpan(`,"tags":{"q":"a\"b\\c\u00e9\ud83d\ude00\n","bad":"\ud800x"}`)),
		"typed-tags":     []byte(oneSpan(`,"tags":{"n":200,"b":true,"f":1.5e3}`)),
		"status":         []byte(oneSpan(`,"tags":{"otel.status_code":"ERROR","error":"boom","otel.scope.name":"s"}`)),
		"no-timestamp":   []byte(`[{"traceId":"01","id":"02","annotations":[{"timestamp":5,"value":"x"}]}]`),
		"missing-id":     []byte(`[{"traceId":"01"}]`),
		"bad-hex":        []byte(`[{"traceId":"zz","id":"01"}]`),
		"truncated":      []byte(`[{"traceId":"01","id":`),
		"not-array":      []byte(`{}`),
		"empty":          {},
		"nested-unknown": []byte(`[{"traceId":"01","id":"02","x":[[[{"a":null}]]]}]`),
		"invalid-utf8":   []byte("[{\"traceId\":\"01\",\"id\":\"02\",\"timestamp\":1,\"name\":\"g\xffet\",\"tags\":{\"k\xfe\":\"v\xff\\n\"}}]"),
		"resources-scopes": []byte(`[{"traceId":"01","id":"01","localEndpoint":{"serviceName":"b"},"tags":{"otel.scope.name":"s","otel.scope.version":"1"}},` +
			`{"traceId":"01","id":"02","timestamp":5,"localEndpoint":{"serviceName":"a"},"tags":{"otel.library.name":"l","error":"x"}},` +
			`{"traceId":"02","id":"03","timestamp":5,"localEndpoint":{"serviceName":"b"},"tags":{"otel.status_code":"OK","w3c.tracestate":"k=v"}},` +
			`{"traceId":"01","id":"04","localEndpoint":{"serviceName":"b"},"tags":{"otel.scope.name":"s","otel.scope.version":"1","span.kind":"producer"},` +
			`"annotations":[{"timestamp":7,"value":"e"}]}]`),
	})
	write("FuzzZipkinProto", map[string][]byte{
		"zipkin-go":    protoBody,
		"truncated":    protoBody[:len(protoBody)/2],
		"empty":        {},
		"json":         jsonBody[:64],
		"invalid-utf8": invalidUTF8Proto(t),
	})
	write("FuzzZipkinJSONV1", map[string][]byte{
		"rpc": []byte(`[{` + v1IDs + `,"timestamp":1000000,"duration":500,"annotations":[` +
			v1Anno("1000000", "cs", v1Frontend) + `,` + v1Anno("1000100", "sr", v1Backend) + `,` +
			v1Anno("1000400", "ss", v1Backend) + `,` + v1Anno("1000500", "cr", v1Frontend) + `],` +
			`"binaryAnnotations":[{"key":"http.path","value":"/api","endpoint":` + v1Backend + `},` +
			`{"key":"ca","value":true,"endpoint":` + v1Frontend + `},{"key":"sa","value":true,"endpoint":` + v1Backend + `}]}]`),
		"loopback": []byte(`[{` + v1IDs + `,"annotations":[` + v1Anno("1000000", "cs", v1Frontend) + `,` +
			v1Anno("1000100", "sr", v1Frontend) + `]}]`),
		"messaging": []byte(`[{` + v1IDs + `,"annotations":[` + v1Anno("1000000", "ms", v1Frontend) + `,` +
			v1Anno("1000100", "mr", v1Backend) + `,` + v1Anno("1000050", "ws", v1Frontend) + `,` + v1Anno("1000080", "wr", v1Backend) + `],` +
			`"binaryAnnotations":[{"key":"ma","value":true,"endpoint":{"serviceName":"kafka"}}]}]`),
		"local":   []byte(`[{` + v1IDs + `,"timestamp":1,"duration":2,"binaryAnnotations":[{"key":"lc","value":"","endpoint":` + v1Frontend + `}]}]`),
		"bad":     []byte(`[{"traceId":"01","annotations":[{"value":"cs"}]}]`),
		"v2-body": jsonBody,
	})
}
