package opencensus

import (
	"context"
	"os"
	"testing"

	"contrib.go.opencensus.io/exporter/ocagent"
	"github.com/stretchr/testify/require"
	"go.opencensus.io/trace"
	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"
)

// TestOCAgentExporter sends spans with the OpenCensus Go agent exporter
// (what emojivoto runs with OC_AGENT_HOST), which opens the Export, Config
// and metrics streams, sends its Node and Resource once, then batches of
// spans without them.
func TestOCAgentExporter(t *testing.T) {
	p := &fakePusher{keep: true}
	r := startReceiver(t, testConfig(), true, p)
	t.Setenv("OC_RESOURCE_TYPE", "k8s")
	t.Setenv("OC_RESOURCE_LABELS", `k8s.pod.name="emoji-1",cloud.zone="eu-west-1a"`)

	exp, err := ocagent.NewExporter(
		ocagent.WithInsecure(),
		ocagent.WithAddress(r.Addr().String()),
		ocagent.WithServiceName("emoji-svc"),
		ocagent.WithHeaders(map[string]string{"x-scope-orgid": "emojivoto"}),
	)
	require.NoError(t, err)
	trace.RegisterExporter(exp)
	defer trace.UnregisterExporter(exp)

	ctx, server := trace.StartSpan(context.Background(), "/emojivoto.v1.EmojiService/FindByShortcode",
		trace.WithSampler(trace.AlwaysSample()), trace.WithSpanKind(trace.SpanKindServer))
	server.AddAttributes(trace.StringAttribute("shortcode", ":joy:"), trace.Int64Attribute("attempt", 2),
		trace.BoolAttribute("cached", false), trace.Float64Attribute("score", 0.5))
	_, client := trace.StartSpan(ctx, "/emojivoto.v1.VotingService/VoteJoy", trace.WithSpanKind(trace.SpanKindClient))
	client.Annotate([]trace.Attribute{trace.StringAttribute("emoji", "joy")}, "voting")
	client.AddMessageSendEvent(1, 120, 80)
	client.AddLink(trace.Link{TraceID: trace.TraceID{1, 2, 3}, SpanID: trace.SpanID{4, 5, 6}, Type: trace.LinkTypeParent})
	client.SetStatus(trace.Status{Code: trace.StatusCodeUnavailable, Message: "voting is down"})
	client.End()
	server.End()

	// Flush sends; Stop right after would close the connection under the
	// message in flight.
	exp.Flush()
	require.Eventually(t, func() bool { return p.spans() == 2 }, time10s, tick)
	require.NoError(t, exp.Stop())

	spans := map[string]*tracev1.Span{}
	for _, ps := range p.all() {
		require.Equal(t, "emojivoto", ps.tenant)
		for _, rs := range ps.req.ResourceSpans {
			a := rs.Resource.Attributes
			require.Equal(t, "emoji-svc", attrValue(a, "service.name").GetStringValue())
			require.Equal(t, "go", attrValue(a, "telemetry.sdk.language").GetStringValue())
			require.NotEmpty(t, attrValue(a, "telemetry.sdk.version").GetStringValue(), "the OpenCensus library version")
			require.NotEmpty(t, attrValue(a, "opencensus.exporterversion").GetStringValue())
			require.NotEmpty(t, attrValue(a, "opencensus.starttime").GetStringValue())
			require.Equal(t, int64(os.Getpid()), attrValue(a, "process.pid").GetIntValue())
			require.Equal(t, "k8s", attrValue(a, "opencensus.resourcetype").GetStringValue())
			require.Equal(t, "emoji-1", attrValue(a, "k8s.pod.name").GetStringValue())
			require.Equal(t, "eu-west-1a", attrValue(a, "cloud.availability_zone").GetStringValue())
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					spans[s.Name] = s
				}
			}
		}
	}
	srv, cli := spans["/emojivoto.v1.EmojiService/FindByShortcode"], spans["/emojivoto.v1.VotingService/VoteJoy"]
	require.NotNil(t, srv)
	require.NotNil(t, cli)
	sc := server.SpanContext()
	require.Equal(t, sc.TraceID[:], srv.TraceId)
	require.Equal(t, sc.SpanID[:], srv.SpanId)
	require.Empty(t, srv.ParentSpanId, "a root: the exporter's zero parent is no parent")
	require.Equal(t, srv.TraceId, cli.TraceId)
	require.Equal(t, srv.SpanId, cli.ParentSpanId)
	require.Equal(t, tracev1.Span_SPAN_KIND_SERVER, srv.Kind)
	require.Equal(t, tracev1.Span_SPAN_KIND_CLIENT, cli.Kind)
	require.Greater(t, srv.EndTimeUnixNano, srv.StartTimeUnixNano)
	require.Nil(t, srv.Status, "OK is unset")

	require.Equal(t, ":joy:", attrValue(srv.Attributes, "shortcode").GetStringValue())
	require.Equal(t, int64(2), attrValue(srv.Attributes, "attempt").GetIntValue())
	require.False(t, attrValue(srv.Attributes, "cached").GetBoolValue())
	require.Nil(t, attrValue(srv.Attributes, "score"), "this exporter sends no float attributes (the golden tables cover doubles)")

	require.Equal(t, tracev1.Status_STATUS_CODE_ERROR, cli.Status.GetCode())
	require.Equal(t, "voting is down", cli.Status.GetMessage())
	require.Len(t, cli.Events, 2)
	require.Equal(t, "voting", cli.Events[0].Name)
	require.Equal(t, "joy", attrValue(cli.Events[0].Attributes, "emoji").GetStringValue())
	require.Equal(t, "message", cli.Events[1].Name)
	require.Equal(t, "SENT", attrValue(cli.Events[1].Attributes, "message.type").GetStringValue())
	require.Equal(t, int64(120), attrValue(cli.Events[1].Attributes, "messaging.message_payload_size_bytes").GetIntValue())
	require.Len(t, cli.Links, 1)
	require.Equal(t, []byte{1, 2, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, cli.Links[0].TraceId)
}
