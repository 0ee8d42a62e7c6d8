package integration

import (
	"context"
	"encoding/binary"
	"fmt"
	"net/http"
	"testing"
	"time"

	model "github.com/jaegertracing/jaeger-idl/model/v1"
	"github.com/jaegertracing/jaeger-idl/proto-gen/api_v2"
	"github.com/opentracing/opentracing-go"
	"github.com/opentracing/opentracing-go/ext"
	otlog "github.com/opentracing/opentracing-go/log"
	"github.com/stretchr/testify/require"
	jaegerclient "github.com/uber/jaeger-client-go"
	"github.com/uber/jaeger-client-go/transport"
	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/mem"

	vmodel "github.com/vivace-dev/vivace/internal/model"
)

// TestJaeger sends with the Jaeger Go client over the agent's UDP port
// (thrift compact) and the collector's HTTP port (thrift binary), and with
// the collector gRPC API, then reads every trace back.
func TestJaeger(t *testing.T) {
	v := startVivace(t, "", nil)
	for _, sender := range []string{"udp-compact", "thrift-http"} {
		t.Run(sender, func(t *testing.T) {
			var tr jaegerclient.Transport
			if sender == "udp-compact" {
				var err error
				tr, err = jaegerclient.NewUDPTransport(v.JaegerCompact, 0)
				require.NoError(t, err)
			} else {
				tr = transport.NewHTTPTransport("http://" + v.JaegerHTTP + "/api/traces")
			}
			tracer, closer := jaegerclient.NewTracer("shop", jaegerclient.NewConstSampler(true),
				jaegerclient.NewRemoteReporter(tr, jaegerclient.ReporterOptions.BufferFlushInterval(10*time.Millisecond)))
			parent := tracer.StartSpan("GET /checkout", ext.SpanKindRPCServer)
			child := tracer.StartSpan("SELECT orders", opentracing.ChildOf(parent.Context()), ext.SpanKindRPCClient)
			ext.Error.Set(child, true)
			child.LogFields(otlog.String("event", "timeout"))
			child.Finish()
			parent.Finish()
			require.NoError(t, closer.Close())

			sc := parent.Context().(jaegerclient.SpanContext)
			var id vmodel.TraceID
			binary.BigEndian.PutUint64(id[:8], sc.TraceID().High)
			binary.BigEndian.PutUint64(id[8:], sc.TraceID().Low)
			td := waitForSpans(t, v, id, 2)
			spans := byName(td)
			require.Equal(t, tracev1.Span_SPAN_KIND_SERVER, spans["GET /checkout"].Kind)
			require.Equal(t, spans["GET /checkout"].SpanId, spans["SELECT orders"].ParentSpanId)
			require.Equal(t, tracev1.Status_STATUS_CODE_ERROR, spans["SELECT orders"].Status.GetCode())
			require.Equal(t, "timeout", spans["SELECT orders"].Events[0].Name)
		})
	}
	t.Run("grpc", func(t *testing.T) {
		conn, err := grpc.NewClient(v.JaegerGRPC, grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithDefaultCallOptions(grpc.ForceCodecV2(gogoCodec{})))
		require.NoError(t, err)
		defer conn.Close()
		traceID := model.TraceID{High: 0x0102030405060708, Low: 0x1112131415161718}
		now := time.Now().Add(-time.Second).Truncate(time.Microsecond)
		req := &api_v2.PostSpansRequest{Batch: model.Batch{
			Process: &model.Process{ServiceName: "inventory", Tags: []model.KeyValue{model.String("k8s.pod.name", "inv-1")}},
			Spans: []*model.Span{
				{TraceID: traceID, SpanID: 1, OperationName: "reserve", StartTime: now, Duration: time.Millisecond,
					Tags: []model.KeyValue{model.String("span.kind", "server"), model.Int64("items", 3)}},
				{TraceID: traceID, SpanID: 2, OperationName: "db", StartTime: now, Duration: time.Millisecond,
					References: []model.SpanRef{{TraceID: traceID, SpanID: 1, RefType: model.SpanRefType_CHILD_OF}}},
			},
		}}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err = api_v2.NewCollectorServiceClient(conn).PostSpans(ctx, req)
		require.NoError(t, err)
		var id vmodel.TraceID
		binary.BigEndian.PutUint64(id[:8], traceID.High)
		binary.BigEndian.PutUint64(id[8:], traceID.Low)
		td := waitForSpans(t, v, id, 2)
		spans := byName(td)
		require.Equal(t, int64(3), spans["reserve"].Attributes[0].Value.GetIntValue())
		require.Equal(t, spans["reserve"].SpanId, spans["db"].ParentSpanId)
		require.Equal(t, uint64(now.UnixNano()), spans["db"].StartTimeUnixNano)
	})
}

func waitForSpans(t *testing.T, v *vivace, id vmodel.TraceID, n int) *tracev1.TracesData {
	t.Helper()
	var td *tracev1.TracesData
	require.Eventually(t, func() bool {
		var code int
		code, td = fetch(t, v, id, "v2", true, "")
		return code == http.StatusOK && vmodel.SpanCount(td) == n
	}, 30*time.Second, 50*time.Millisecond, "trace %s", id)
	return td
}

func byName(td *tracev1.TracesData) map[string]*tracev1.Span {
	out := map[string]*tracev1.Span{}
	for _, rs := range td.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				out[s.Name] = s
			}
		}
	}
	return out
}

// gogoCodec encodes jaeger-idl's gogo-generated messages, as Jaeger's own
// clients do.
type gogoCodec struct{}

func (gogoCodec) Name() string { return "proto" }

func (gogoCodec) Marshal(v any) (mem.BufferSlice, error) {
	m, ok := v.(interface{ Marshal() ([]byte, error) })
	if !ok {
		return nil, fmt.Errorf("cannot encode %T", v)
	}
	b, err := m.Marshal()
	return mem.BufferSlice{mem.SliceBuffer(b)}, err
}

func (gogoCodec) Unmarshal(data mem.BufferSlice, v any) error {
	return v.(interface{ Unmarshal([]byte) error }).Unmarshal(data.Materialize())
}
