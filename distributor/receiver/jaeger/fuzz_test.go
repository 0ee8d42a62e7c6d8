package jaeger

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/apache/thrift/lib/go/thrift"
	model "github.com/jaegertracing/jaeger-idl/model/v1"
	"github.com/jaegertracing/jaeger-idl/proto-gen/api_v2"
	"github.com/jaegertracing/jaeger-idl/thrift-gen/jaeger"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	vmodel "github.com/vivace-dev/vivace/internal/model"
)

var updateSeeds = flag.Bool("update-seeds", false, "rewrite the generated seed files under testdata/fuzz/")

// requireRoutable checks a translation's outcome: a refusal names its
// reason, and anything accepted encodes to OTLP the distributor can route,
// with every span counted and carrying valid IDs.
func requireRoutable(t *testing.T, req *coltracepb.ExportTraceServiceRequest, spans int, err error) {
	t.Helper()
	if err != nil {
		var br *badRequest
		require.True(t, errors.As(err, &br), "%T: %v", err, err)
		require.NotEmpty(t, br.reason)
		require.NotEmpty(t, br.Error())
		return
	}
	require.Equal(t, countSpans(req), spans)
	if spans == 0 {
		return
	}
	b, err := proto.Marshal(req)
	require.NoError(t, err)
	split, err := vmodel.SplitByTrace(b)
	require.NoError(t, err)
	require.Equal(t, spans, split.Spans)
	for _, rs := range req.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				require.Len(t, s.TraceId, 16)
				require.Len(t, s.SpanId, 8)
				require.NotEqual(t, make([]byte, 8), s.SpanId)
				require.GreaterOrEqual(t, s.EndTimeUnixNano, s.StartTimeUnixNano)
			}
		}
	}
}

// FuzzThriftBinary feeds POST /api/traces bodies (thrift-binary Batch).
func FuzzThriftBinary(f *testing.F) {
	r, err := New(testConfig(), false, &fakePusher{}, discardLogger(), prometheus.NewRegistry())
	require.NoError(f, err)
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest(http.MethodPost, "/api/traces", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/x-thrift")
		rec := httptest.NewRecorder()
		r.handleThriftHTTP(rec, req)
		require.Contains(t, []int{http.StatusAccepted, http.StatusBadRequest}, rec.Code, "%s", rec.Body.Bytes())

		batch, err := decodeThriftBatch(body)
		if err != nil {
			require.Equal(t, http.StatusBadRequest, rec.Code)
			return
		}
		otlp, spans, err := thriftToOTLP(batch)
		requireRoutable(t, otlp, spans, err)
		require.Equal(t, err == nil, rec.Code == http.StatusAccepted)
	})
}

// FuzzThriftCompactUDP feeds Agent.emitBatch datagrams in thrift compact.
func FuzzThriftCompactUDP(f *testing.F) {
	f.Fuzz(func(t *testing.T, datagram []byte) { fuzzDatagram(t, datagram, true) })
}

// FuzzThriftBinaryUDP feeds Agent.emitBatch datagrams in thrift binary.
func FuzzThriftBinaryUDP(f *testing.F) {
	f.Fuzz(func(t *testing.T, datagram []byte) { fuzzDatagram(t, datagram, false) })
}

func fuzzDatagram(t *testing.T, datagram []byte, compact bool) {
	batch, err := decodeEmitBatch(datagram, compact)
	if err != nil {
		var br *badRequest
		require.True(t, errors.As(err, &br))
		return
	}
	otlp, spans, err := thriftToOTLP(batch)
	requireRoutable(t, otlp, spans, err)
}

// FuzzProto feeds gRPC PostSpansRequest messages.
func FuzzProto(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte) {
		batch, err := decodePostSpans(body)
		if err != nil {
			var br *badRequest
			require.True(t, errors.As(err, &br))
			return
		}
		otlp, spans, err := protoToOTLP(batch)
		requireRoutable(t, otlp, spans, err)
	})
}

// richBatch uses every field and every translation rule.
func richBatch() *jaeger.Batch {
	b := testBatch()
	b.Process.Tags = append(b.Process.Tags, tLong("pid", 7), tDouble("load", 0.5), tBinary("id", []byte{1, 2}), tBool("canary", false))
	seq := int64(3)
	b.SeqNo = &seq
	b.Spans = append(b.Spans, tSpan(func(s *jaeger.Span) {
		s.SpanId, s.TraceIdHigh = 3, 0
		s.References = []*jaeger.SpanRef{tRef(false, 0, baseTraceLow, 9), tRef(true, 5, 6, 7)}
		s.Logs = []*jaeger.Log{{Timestamp: baseStartUS + 1, Fields: []*jaeger.Tag{tStr("event", "retry"), tLong("n", 1)}}}
	}, withTags(tStr("otel.status_code", "OK"), tStr("otel.status_description", "d"), tStr("w3c.tracestate", "a=b"),
		tStr("otel.scope.name", "lib"), tStr("otel.scope.version", "1"), tLong("http.status_code", 503), tStr("a", "1"), tStr("a", "2"))))
	return b
}

// hugeList is a thrift-binary Batch whose span list claims 2^31-1 spans:
// decoding must fail without allocating for them.
func hugeList() []byte {
	var buf bytes.Buffer
	buf.Write([]byte{byte(thrift.STRUCT), 0, 1})                                // process:
	buf.Write([]byte{byte(thrift.STRING), 0, 1, 0, 0, 0, 0, byte(thrift.STOP)}) // {serviceName: ""}
	buf.Write([]byte{byte(thrift.LIST), 0, 2, byte(thrift.STRUCT)})             // spans: list<Span>
	buf.Write([]byte{0x7f, 0xff, 0xff, 0xff})                                   // of 2^31-1
	return buf.Bytes()
}

// TestWriteFuzzSeeds regenerates the generated seeds of the fuzz targets
// (go test -run TestWriteFuzzSeeds -update-seeds ./distributor/receiver/jaeger).
func TestWriteFuzzSeeds(t *testing.T) {
	if !*updateSeeds {
		t.Skip("run with -update-seeds to rewrite testdata/fuzz/")
	}
	write := func(target string, seeds map[string][]byte) {
		dir := filepath.Join("testdata", "fuzz", target)
		require.NoError(t, os.MkdirAll(dir, 0o755))
		for name, b := range seeds {
			content := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)
			require.Less(t, len(content), 20<<10, "seed %s/%s too big", target, name)
			require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644))
		}
	}
	zero := testBatch()
	zero.Spans[0].TraceIdHigh, zero.Spans[0].TraceIdLow = 0, 0
	rich := serializeBinary(t, richBatch())
	write("FuzzThriftBinary", map[string][]byte{
		"client-batch": serializeBinary(t, testBatch()),
		"rich":         rich,
		"truncated":    rich[:len(rich)/2],
		"zero-trace":   serializeBinary(t, zero),
		"empty-batch":  serializeBinary(t, &jaeger.Batch{Process: &jaeger.Process{ServiceName: "x"}}),
		"no-process":   {byte(thrift.STOP)},
		"huge-list":    hugeList(),
		"empty":        {},
	})
	for _, compact := range []bool{true, false} {
		target, other := "FuzzThriftCompactUDP", false
		if !compact {
			target, other = "FuzzThriftBinaryUDP", true
		}
		rich := emitDatagram(t, compact, "emitBatch", richBatch())
		write(target, map[string][]byte{
			"client-batch":   emitDatagram(t, compact, "emitBatch", testBatch()),
			"rich":           rich,
			"truncated":      rich[:len(rich)/2],
			"zero-trace":     emitDatagram(t, compact, "emitBatch", zero),
			"other-method":   emitDatagram(t, compact, "emitZipkinBatch", testBatch()),
			"other-protocol": emitDatagram(t, other, "emitBatch", testBatch()),
			"empty":          {},
		})
	}
	richProto := mustGogo(t, &api_v2.PostSpansRequest{Batch: *thriftToProto(richBatch())})
	ownProcess := thriftToProto(testBatch())
	ownProcess.Spans[1].Process = &model.Process{ServiceName: "db", Tags: []model.KeyValue{{Key: "k", VStr: "v"}}}
	zeroProto := thriftToProto(testBatch())
	zeroProto.Spans[1].SpanID = 0
	write("FuzzProto", map[string][]byte{
		"client-batch": mustGogo(t, &api_v2.PostSpansRequest{Batch: *thriftToProto(testBatch())}),
		"rich":         richProto,
		"truncated":    richProto[:len(richProto)/2],
		"own-process":  mustGogo(t, &api_v2.PostSpansRequest{Batch: *ownProcess}),
		"zero-span":    mustGogo(t, &api_v2.PostSpansRequest{Batch: *zeroProto}),
		"bad-trace-id": {0x0a, 0x06, 0x0a, 0x04, 0x0a, 0x02, 0x01, 0x02}, // batch{spans{trace_id: 2 bytes}}
		"empty":        {},
	})
}

func mustGogo(tb testing.TB, m interface{ Marshal() ([]byte, error) }) []byte {
	tb.Helper()
	b, err := m.Marshal()
	require.NoError(tb, err)
	return b
}
