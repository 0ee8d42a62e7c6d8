package integration

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"testing"

	"contrib.go.opencensus.io/exporter/ocagent"
	"github.com/DataDog/dd-trace-go/v2/ddtrace/ext"
	ddtracer "github.com/DataDog/dd-trace-go/v2/ddtrace/tracer"
	"github.com/stretchr/testify/require"
	octrace "go.opencensus.io/trace"
	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/vivace-dev/vivace/internal/model"
)

// TestDatadogTracer: dd-trace-go, with its default transport pointed at
// Vivace's Datadog port, sends a trace that reads back by the decimal trace
// ID a Datadog log line shows (the low 64 bits), and by its 128-bit ID.
func TestDatadogTracer(t *testing.T) {
	v := startVivace(t, "", nil)
	for k, val := range map[string]string{
		"DD_INSTRUMENTATION_TELEMETRY_ENABLED": "false",
		"DD_REMOTE_CONFIGURATION_ENABLED":      "false",
		"DD_TRACE_STARTUP_LOGS":                "false",
		"DD_RUNTIME_METRICS_ENABLED":           "false",
		"DD_DATA_STREAMS_ENABLED":              "false",
	} {
		t.Setenv(k, val)
	}
	require.NoError(t, ddtracer.Start(ddtracer.WithAgentAddr(v.Datadog), ddtracer.WithService("kong"), ddtracer.WithLogger(discardDDLogger{})))
	root := ddtracer.StartSpan("kong.request", ddtracer.ResourceName("GET /orders"), ddtracer.Tag(ext.SpanKind, ext.SpanKindServer))
	child := ddtracer.StartSpan("kong.upstream", ddtracer.ChildOf(root.Context()))
	child.Finish(ddtracer.WithError(errors.New("upstream timeout")))
	root.Finish()
	full := root.Context().TraceID() // 32 hex digits
	low := root.Context().TraceIDLower()
	ddtracer.Flush()
	ddtracer.Stop()

	id, err := model.ParseTraceID(full)
	require.NoError(t, err)
	td := waitForSpans(t, v, id, 2)
	spans := byName(td)
	require.Equal(t, tracev1.Span_SPAN_KIND_SERVER, spans["GET /orders"].Kind)
	require.Equal(t, tracev1.Status_STATUS_CODE_ERROR, spans["kong.upstream"].Status.GetCode())
	require.Equal(t, "kong", resourceService(td))

	// What Kong's log shows: the low 64 bits in decimal.
	code, body, _ := v.get("/api/v2/traces/" + strconv.FormatUint(low, 10))
	require.Equal(t, http.StatusOK, code, string(body))
	var doc struct {
		Trace struct {
			ResourceSpans []json.RawMessage `json:"resourceSpans"`
		} `json:"trace"`
	}
	require.NoError(t, json.Unmarshal(body, &doc))
	require.NotEmpty(t, doc.Trace.ResourceSpans)
}

// TestOpenCensusAgent: the OpenCensus Go exporter, as emojivoto runs it
// with OC_AGENT_HOST, sends spans to Vivace's OpenCensus port; they read back
// by trace ID with the service name and kinds.
func TestOpenCensusAgent(t *testing.T) {
	v := startVivace(t, "", nil)
	exp, err := ocagent.NewExporter(ocagent.WithInsecure(), ocagent.WithAddress(v.OpenCensus), ocagent.WithServiceName("emoji-svc"))
	require.NoError(t, err)
	octrace.RegisterExporter(exp)
	defer octrace.UnregisterExporter(exp)
	ctx, server := octrace.StartSpan(context.Background(), "/emojivoto.v1.EmojiService/ListAll",
		octrace.WithSampler(octrace.AlwaysSample()), octrace.WithSpanKind(octrace.SpanKindServer))
	_, client := octrace.StartSpan(ctx, "/emojivoto.v1.VotingService/Results", octrace.WithSpanKind(octrace.SpanKindClient))
	client.End()
	server.End()
	exp.Flush()
	defer func() { require.NoError(t, exp.Stop()) }()

	tid := server.SpanContext().TraceID
	td := waitForSpans(t, v, model.TraceID(tid), 2)
	spans := byName(td)
	require.Equal(t, tracev1.Span_SPAN_KIND_SERVER, spans["/emojivoto.v1.EmojiService/ListAll"].Kind)
	require.Equal(t, tracev1.Span_SPAN_KIND_CLIENT, spans["/emojivoto.v1.VotingService/Results"].Kind)
	require.Equal(t, "emoji-svc", resourceService(td))
}

func resourceService(td *tracev1.TracesData) string {
	for _, rs := range td.GetResourceSpans() {
		for _, a := range rs.GetResource().GetAttributes() {
			if a.Key == "service.name" {
				return a.Value.GetStringValue()
			}
		}
	}
	return ""
}

type discardDDLogger struct{}

func (discardDDLogger) Log(string) {}
