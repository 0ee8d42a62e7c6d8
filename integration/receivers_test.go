package integration

import (
	"encoding/binary"
	"net/http"
	"strings"
	"testing"
	"time"

	zipkinmodel "github.com/openzipkin/zipkin-go/model"
	zipkinpb "github.com/openzipkin/zipkin-go/proto/zipkin_proto3"
	"github.com/openzipkin/zipkin-go/reporter"
	zipkinhttp "github.com/openzipkin/zipkin-go/reporter/http"
	"github.com/stretchr/testify/require"
	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/vivace-dev/vivace/internal/model"
)

// TestZipkin sends spans as Envoy and Traefik do, with zipkin-go's HTTP
// reporter in JSON and protobuf, including a shared client/server span pair
// with one span ID and a 64-bit trace ID, and reads them back.
func TestZipkin(t *testing.T) {
	v := startVivace(t, "", nil)
	for i, ser := range []reporter.SpanSerializer{reporter.JSONSerializer{}, zipkinpb.SpanSerializer{}} {
		t.Run(ser.ContentType(), func(t *testing.T) {
			rep := zipkinhttp.NewReporter("http://"+v.Zipkin+"/api/v2/spans", zipkinhttp.Serializer(ser), zipkinhttp.BatchInterval(10*time.Millisecond))
			low := uint64(0xa1b2c3d4e5f60000) + uint64(i)
			trace64 := zipkinmodel.TraceID{Low: low} // a 64-bit (B3) trace ID
			start := time.Now().Add(-time.Second).Truncate(time.Microsecond)
			shared := zipkinmodel.ID(0x1111 + uint64(i))
			spans := []zipkinmodel.SpanModel{
				{SpanContext: zipkinmodel.SpanContext{TraceID: trace64, ID: shared}, Name: "get /cart", Kind: zipkinmodel.Client,
					Timestamp: start, Duration: 20 * time.Millisecond,
					LocalEndpoint:  &zipkinmodel.Endpoint{ServiceName: "frontend"},
					RemoteEndpoint: &zipkinmodel.Endpoint{ServiceName: "cart"},
					Tags:           map[string]string{"http.method": "GET"}},
				{SpanContext: zipkinmodel.SpanContext{TraceID: trace64, ID: shared}, Shared: true, Name: "get /cart", Kind: zipkinmodel.Server,
					Timestamp: start.Add(time.Millisecond), Duration: 15 * time.Millisecond,
					LocalEndpoint: &zipkinmodel.Endpoint{ServiceName: "cart"},
					Tags:          map[string]string{"error": "connection reset"},
					Annotations:   []zipkinmodel.Annotation{{Timestamp: start.Add(2 * time.Millisecond), Value: "retry"}}},
			}
			for _, s := range spans {
				rep.Send(s)
			}
			require.NoError(t, rep.Close())

			var id model.TraceID
			binary.BigEndian.PutUint64(id[8:], low)
			var td *tracev1.TracesData
			require.Eventually(t, func() bool {
				var code int
				code, td = fetch(t, v, id, "v2", true, "")
				return code == http.StatusOK && model.SpanCount(td) == 2
			}, 30*time.Second, 50*time.Millisecond)
			// The 16-digit form finds it as the 32-digit one does.
			code, _, _ := v.get("/api/traces/" + strings.TrimLeft(id.String(), "0"))
			require.Equal(t, http.StatusOK, code)

			kinds := map[tracev1.Span_SpanKind]*tracev1.Span{}
			services := map[tracev1.Span_SpanKind]string{}
			for _, rs := range td.ResourceSpans {
				for _, ss := range rs.ScopeSpans {
					for _, s := range ss.Spans {
						kinds[s.Kind] = s
						for _, kv := range rs.Resource.Attributes {
							if kv.Key == "service.name" {
								services[s.Kind] = kv.Value.GetStringValue()
							}
						}
					}
				}
			}
			client, server := kinds[tracev1.Span_SPAN_KIND_CLIENT], kinds[tracev1.Span_SPAN_KIND_SERVER]
			require.NotNil(t, client)
			require.NotNil(t, server)
			require.Equal(t, client.SpanId, server.SpanId, "shared spans keep one ID and stay two spans")
			require.Equal(t, "frontend", services[tracev1.Span_SPAN_KIND_CLIENT])
			require.Equal(t, "cart", services[tracev1.Span_SPAN_KIND_SERVER])
			require.Equal(t, uint64(start.UnixNano()), client.StartTimeUnixNano)
			require.Equal(t, tracev1.Status_STATUS_CODE_ERROR, server.Status.GetCode())
			require.Equal(t, "connection reset", server.Status.GetMessage())
			require.Len(t, server.Events, 1)
			require.Equal(t, "retry", server.Events[0].Name)

			// Both survive a flush into a block, still two spans.
			v.flushAndWait(1) // counted since the last (re)start
			v.restart()
			code, td = fetch(t, v, id, "v1", false, "")
			require.Equal(t, http.StatusOK, code)
			require.Equal(t, 2, model.SpanCount(td))
		})
	}
}
