package receiver

import (
	"strings"

	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"
)

// SpanKind reads an OpenTracing-style span.kind value (client, server,
// producer, consumer, internal; any case), as Jaeger, Zipkin and Datadog
// tracers write it.
func SpanKind(v string) (tracev1.Span_SpanKind, bool) {
	switch strings.ToLower(v) {
	case "client":
		return tracev1.Span_SPAN_KIND_CLIENT, true
	case "server":
		return tracev1.Span_SPAN_KIND_SERVER, true
	case "producer":
		return tracev1.Span_SPAN_KIND_PRODUCER, true
	case "consumer":
		return tracev1.Span_SPAN_KIND_CONSUMER, true
	case "internal":
		return tracev1.Span_SPAN_KIND_INTERNAL, true
	}
	return tracev1.Span_SPAN_KIND_UNSPECIFIED, false
}
