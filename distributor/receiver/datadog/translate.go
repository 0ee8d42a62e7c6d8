package datadog

// Datadog → OTLP translation. There is no OpenTelemetry specification of
// this mapping; it follows the Datadog agent's own OTLP ingest conventions
// (read backwards) and the generic non-OTLP rules
// (specification/common/mapping-to-non-otlp.md):
//
//   - trace_id (64 bits) → the low 8 bytes of the 16-byte trace ID, big
//     endian; the _dd.p.tid meta tag (16 hex digits, written by tracers
//     generating 128-bit IDs) → the high 8 bytes, and is removed. Tracers
//     write it on one span of each trace chunk only (like every _dd.p.*
//     trace-level tag): it applies to every span of the request with the
//     same 64-bit trace_id. Without it the high bytes are zero
//     (left-padded, as DESIGN.md says).
//   - span_id, parent_id → 8 bytes big endian; parent_id 0 → no parent.
//   - start, duration (ns) → start and end in Unix nanoseconds.
//   - service → resource service.name ("unknown_service" if empty); the
//     env and version meta tags → deployment.environment.name and
//     service.version on the resource, removed from the span. Spans are
//     grouped into one ResourceSpans per (service, env, version).
//   - The tracer's Datadog-Meta-Lang and Datadog-Meta-Tracer-Version
//     headers → telemetry.sdk.language and telemetry.sdk.version, with
//     telemetry.sdk.name "datadog".
//   - v0.7 tracer payload (the keys of the OpenTelemetry Collector's
//     datadog receiver): language_name and tracer_version, when set, win
//     over the headers; language_version → process.runtime.version,
//     container_id → container.id, hostname → host.name, env and
//     app_version → the resource's env and version of spans without env or
//     version meta; the payload's tags → resource attributes (a key set
//     above wins). A chunk's origin (as _dd.origin) and tags are meta of
//     each of its spans, the span's own meta winning; so _dd.p.tid among a
//     chunk's tags gives its spans their high 64 bits. runtime_id (also
//     the spans' runtime-id meta), priority and dropped_trace (sampling
//     state: Vivace keeps every span) are not kept.
//   - resource → the span name (falling back to name, then
//     "unnamed_operation"), since it is what Datadog shows as the
//     operation ("GET /users/{id}"); name → attribute operation.name,
//     resource → resource.name, type → span.type (the attributes Datadog's
//     own OTLP ingest reads back).
//   - span.kind meta (server, client, producer, consumer, internal) → kind,
//     removed. Without it: type web → SERVER, http/grpc/db/sql/cache/redis/
//     memcached/mongodb/elasticsearch/cassandra → CLIENT, else unspecified.
//   - error != 0 → status ERROR with the error.message (or error.msg) meta
//     tag as its message; otherwise status unset.
//   - meta → string attributes, metrics → double attributes, in received
//     order; a duplicate key keeps the last value.
//   - Spans with a zero trace ID or span ID are dropped (the agent drops
//     them too) and counted as refused.
//   - meta_struct, span_links and span_events are not translated yet.

import (
	"encoding/binary"
	"encoding/hex"
	"slices"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonv1 "go.opentelemetry.io/proto/otlp/common/v1"
	resourcev1 "go.opentelemetry.io/proto/otlp/resource/v1"
	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/vivace-dev/vivace/distributor/receiver"
)

// tracer is what the request says about the sender and its process: the
// headers, and for v0.7 the tracer payload's fields.
type tracer struct {
	lang, version string // language and tracer version
	// v0.7 only.
	langVersion, containerID, hostname string
	env, appVersion                    string // for spans without env, version meta
	tags                               []tag  // the payload's tags
}

type resourceKey struct{ service, env, version string }

var clientTypes = map[string]bool{
	"http": true, "grpc": true, "db": true, "sql": true, "cache": true, "redis": true,
	"memcached": true, "mongodb": true, "elasticsearch": true, "cassandra": true,
}

// translate turns decoded spans into one OTLP request. dropped counts the
// spans left out for a zero trace or span ID.
func translate(spans []span, t tracer) (req *coltracepb.ExportTraceServiceRequest, kept, dropped int) {
	req = &coltracepb.ExportTraceServiceRequest{}
	byResource := map[resourceKey]*tracev1.ScopeSpans{}
	var high map[uint64]uint64 // trace_id → high 64 bits from _dd.p.tid
	for i := range spans {
		for _, m := range spans[i].meta {
			if m.key == "_dd.p.tid" {
				if hi, ok := parseHex64(m.value); ok {
					if high == nil {
						high = map[uint64]uint64{}
					}
					high[spans[i].traceID] = hi
				}
			}
		}
	}
	for i := range spans {
		s := &spans[i]
		if s.traceID == 0 || s.spanID == 0 {
			dropped++
			continue
		}
		out, key := translateSpan(s)
		key.env, key.version = or(key.env, t.env), or(key.version, t.appVersion)
		if hi, ok := high[s.traceID]; ok {
			binary.BigEndian.PutUint64(out.TraceId[:8], hi)
		}
		ss := byResource[key]
		if ss == nil {
			ss = &tracev1.ScopeSpans{}
			byResource[key] = ss
			req.ResourceSpans = append(req.ResourceSpans, &tracev1.ResourceSpans{
				Resource:   resource(key, t),
				ScopeSpans: []*tracev1.ScopeSpans{ss},
			})
		}
		ss.Spans = append(ss.Spans, out)
		kept++
	}
	return req, kept, dropped
}

func resource(k resourceKey, t tracer) *resourcev1.Resource {
	r := &resourcev1.Resource{Attributes: []*commonv1.KeyValue{strAttr("service.name", k.service)}}
	if k.env != "" {
		r.Attributes = append(r.Attributes, strAttr("deployment.environment.name", k.env))
	}
	if k.version != "" {
		r.Attributes = append(r.Attributes, strAttr("service.version", k.version))
	}
	r.Attributes = append(r.Attributes, strAttr("telemetry.sdk.name", "datadog"))
	if t.lang != "" {
		r.Attributes = append(r.Attributes, strAttr("telemetry.sdk.language", t.lang))
	}
	if t.version != "" {
		r.Attributes = append(r.Attributes, strAttr("telemetry.sdk.version", t.version))
	}
	if t.langVersion != "" {
		r.Attributes = append(r.Attributes, strAttr("process.runtime.version", t.langVersion))
	}
	if t.containerID != "" {
		r.Attributes = append(r.Attributes, strAttr("container.id", t.containerID))
	}
	if t.hostname != "" {
		r.Attributes = append(r.Attributes, strAttr("host.name", t.hostname))
	}
	for _, pt := range t.tags {
		if !slices.ContainsFunc(r.Attributes, func(kv *commonv1.KeyValue) bool { return kv.Key == pt.key }) {
			r.Attributes = append(r.Attributes, strAttr(pt.key, pt.value))
		}
	}
	return r
}

func translateSpan(s *span) (*tracev1.Span, resourceKey) {
	key := resourceKey{service: s.service}
	if key.service == "" {
		key.service = "unknown_service"
	}
	out := &tracev1.Span{
		TraceId:           make([]byte, 16),
		SpanId:            binary.BigEndian.AppendUint64(nil, s.spanID),
		StartTimeUnixNano: uint64(s.start),
		Attributes:        make([]*commonv1.KeyValue, 0, len(s.meta)+len(s.metrics)+3),
	}
	binary.BigEndian.PutUint64(out.TraceId[8:], s.traceID)
	// A negative duration is 0; an end past 2^64 ns is the start.
	if out.EndTimeUnixNano = out.StartTimeUnixNano + uint64(max(s.duration, 0)); out.EndTimeUnixNano < out.StartTimeUnixNano {
		out.EndTimeUnixNano = out.StartTimeUnixNano
	}
	if s.parentID != 0 {
		out.ParentSpanId = binary.BigEndian.AppendUint64(nil, s.parentID)
	}
	switch {
	case s.resource != "":
		out.Name = s.resource
	case s.name != "":
		out.Name = s.name
	default:
		out.Name = "unnamed_operation"
	}
	if s.name != "" {
		out.Attributes = append(out.Attributes, strAttr("operation.name", s.name))
	}
	if s.resource != "" {
		out.Attributes = append(out.Attributes, strAttr("resource.name", s.resource))
	}
	if s.typ != "" {
		out.Attributes = append(out.Attributes, strAttr("span.type", s.typ))
	}
	var errMsg, errMsgOld string
	index := make(map[string]int, len(s.meta)+len(s.metrics))
	put := func(kv *commonv1.KeyValue) {
		if i, ok := index[kv.Key]; ok {
			out.Attributes[i] = kv
			return
		}
		index[kv.Key] = len(out.Attributes)
		out.Attributes = append(out.Attributes, kv)
	}
	for _, m := range s.meta {
		switch m.key {
		case "_dd.p.tid":
			if _, ok := parseHex64(m.value); ok {
				continue // set by translate for the whole trace
			}
		case "span.kind":
			if k, ok := receiver.SpanKind(m.value); ok {
				out.Kind = k
				continue
			}
		case "env":
			key.env = m.value
			continue
		case "version":
			key.version = m.value
			continue
		case "error.message":
			errMsg = m.value
		case "error.msg":
			errMsgOld = m.value
		}
		put(strAttr(m.key, m.value))
	}
	for _, m := range s.metrics {
		put(&commonv1.KeyValue{Key: m.key, Value: &commonv1.AnyValue{Value: &commonv1.AnyValue_DoubleValue{DoubleValue: m.value}}})
	}
	if out.Kind == tracev1.Span_SPAN_KIND_UNSPECIFIED {
		switch {
		case s.typ == "web":
			out.Kind = tracev1.Span_SPAN_KIND_SERVER
		case clientTypes[s.typ]:
			out.Kind = tracev1.Span_SPAN_KIND_CLIENT
		}
	}
	if s.error != 0 {
		if errMsg == "" {
			errMsg = errMsgOld
		}
		out.Status = &tracev1.Status{Code: tracev1.Status_STATUS_CODE_ERROR, Message: errMsg}
	}
	return out, key
}

// parseHex64 reads exactly 16 hex digits.
func parseHex64(s string) (uint64, bool) {
	if len(s) != 16 {
		return 0, false
	}
	var b [8]byte
	if _, err := hex.Decode(b[:], []byte(s)); err != nil {
		return 0, false
	}
	return binary.BigEndian.Uint64(b[:]), true
}

func strAttr(k, v string) *commonv1.KeyValue {
	return &commonv1.KeyValue{Key: k, Value: &commonv1.AnyValue{Value: &commonv1.AnyValue_StringValue{StringValue: v}}}
}
