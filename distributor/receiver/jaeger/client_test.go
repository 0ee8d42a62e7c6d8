package jaeger

import (
	"testing"
	"time"

	"github.com/opentracing/opentracing-go"
	"github.com/opentracing/opentracing-go/ext"
	otlog "github.com/opentracing/opentracing-go/log"
	"github.com/stretchr/testify/require"
	jaegerclient "github.com/uber/jaeger-client-go"
	"github.com/uber/jaeger-client-go/transport"
	commonv1 "go.opentelemetry.io/proto/otlp/common/v1"
	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"
)

// TestJaegerClientGo sends spans with the real (archived) Jaeger Go client,
// which has its own thrift code: over UDP compact to the agent port and
// over HTTP to the collector port, as applications configured for Jaeger do.
func TestJaegerClientGo(t *testing.T) {
	for _, sender := range []string{"udp", "http"} {
		t.Run(sender, func(t *testing.T) {
			p := &fakePusher{keep: true}
			r := startReceiver(t, testConfig(), false, p)
			var tr jaegerclient.Transport
			if sender == "udp" {
				var err error
				tr, err = jaegerclient.NewUDPTransport(r.ThriftCompactAddr().String(), 0)
				require.NoError(t, err)
			} else {
				tr = transport.NewHTTPTransport("http://" + r.ThriftHTTPAddr().String() + "/api/traces")
			}
			tracer, closer := jaegerclient.NewTracer("shop", jaegerclient.NewConstSampler(true),
				jaegerclient.NewRemoteReporter(tr, jaegerclient.ReporterOptions.BufferFlushInterval(10*time.Millisecond)),
				jaegerclient.TracerOptions.Tag("region", "eu-1"))

			parent := tracer.StartSpan("GET /checkout", ext.SpanKindRPCServer)
			child := tracer.StartSpan("SELECT orders", opentracing.ChildOf(parent.Context()), ext.SpanKindRPCClient)
			ext.Error.Set(child, true)
			child.LogFields(otlog.String("event", "timeout"), otlog.Int("retries", 2))
			child.Finish()
			parent.Finish()
			require.NoError(t, closer.Close())

			require.Eventually(t, func() bool { return countPushedSpans(p) == 2 }, 10*time.Second, 10*time.Millisecond)
			spans := map[string]*tracev1.Span{}
			p.mu.Lock()
			for _, push := range p.pushes {
				for _, rs := range push.req.ResourceSpans {
					res := map[string]string{}
					for _, kv := range rs.Resource.Attributes {
						res[kv.Key] = kv.Value.GetStringValue()
					}
					require.Equal(t, "shop", res["service.name"])
					require.Equal(t, "eu-1", res["region"])
					require.NotEmpty(t, res["host.name"], "the client's hostname tag")
					require.Contains(t, res["jaeger.version"], "Go-")
					for _, ss := range rs.ScopeSpans {
						for _, s := range ss.Spans {
							spans[s.Name] = s
						}
					}
				}
			}
			p.mu.Unlock()

			server, client := spans["GET /checkout"], spans["SELECT orders"]
			require.NotNil(t, server)
			require.NotNil(t, client)
			sc := parent.Context().(jaegerclient.SpanContext)
			wantTrace := traceID(sc.TraceID().High, sc.TraceID().Low)
			require.Equal(t, wantTrace[:], server.TraceId)
			require.Zero(t, sc.TraceID().High, "64-bit IDs by default, left-padded")
			require.Equal(t, server.TraceId, client.TraceId)
			require.Equal(t, server.SpanId, client.ParentSpanId)
			require.Empty(t, server.ParentSpanId)
			require.Empty(t, client.Links, "the CHILD_OF parent is not also a link")
			require.Equal(t, tracev1.Span_SPAN_KIND_SERVER, server.Kind)
			require.Equal(t, tracev1.Span_SPAN_KIND_CLIENT, client.Kind)
			require.Equal(t, tracev1.Status_STATUS_CODE_ERROR, client.GetStatus().GetCode())
			require.Equal(t, uint32(1), client.Flags, "sampled")
			require.Greater(t, client.EndTimeUnixNano, client.StartTimeUnixNano)
			require.Len(t, client.Events, 1)
			require.Equal(t, "timeout", client.Events[0].Name)
			require.Equal(t, int64(2), attrValue(client.Events[0].Attributes, "retries").GetIntValue())
			require.Equal(t, "const", attrValue(server.Attributes, "sampler.type").GetStringValue())
			require.Nil(t, attrValue(client.Attributes, "error"))
			require.Nil(t, attrValue(client.Attributes, "span.kind"))
		})
	}
}

func countPushedSpans(p *fakePusher) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, push := range p.pushes {
		n += countSpans(push.req)
	}
	return n
}

func attrValue(kvs []*commonv1.KeyValue, key string) *commonv1.AnyValue {
	for _, kv := range kvs {
		if kv.Key == key {
			return kv.Value
		}
	}
	return nil
}
