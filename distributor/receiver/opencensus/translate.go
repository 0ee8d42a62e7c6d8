package opencensus

// OpenCensus → OTLP translation. It gives the spans the OpenTelemetry
// Collector's opencensus receiver (the one Tempo runs) gives, so a trace
// reads the same in Vivace as in Tempo; the rules below are the
// collector's translator's (pkg/translator/opencensus) unless marked
// "Vivace:".
//
// Stream: a message without a Node or Resource inherits the last one sent
// on the stream (each on its own). The first message must have a Node
// (refused otherwise, reason no_node, as the collector does).
//
// Resource, in this order, a later key replacing an earlier one in place:
//   - Resource.labels (sorted by key; Vivace: sorted, for a stable order),
//     with cloud.zone renamed cloud.availability_zone; then
//     Node.attributes (sorted by key).
//   - Node.service_info.name → service.name.
//   - Node.identifier: start_timestamp → opencensus.starttime (RFC 3339
//     with nanoseconds), host_name → host.name, pid → process.pid (int).
//   - Node.library_info: core_library_version → telemetry.sdk.version,
//     exporter_version → opencensus.exporterversion, language →
//     telemetry.sdk.language (cpp, dotnet, erlang, go, java, nodejs, php,
//     python, ruby, webjs).
//   - Resource.type → opencensus.resourcetype.
//
// A span with a Resource of its own goes to a ResourceSpans with the Node
// and that Resource (not the message's); Vivace: spans with equal Resources
// share one. Spans have no instrumentation scope.
//
// Span:
//   - trace_id (16 bytes), span_id (8 bytes) as sent. Vivace: an empty or
//     zero ID, or one of another length, refuses the message
//     (zero_trace_id, zero_span_id, invalid_span) where the collector pads
//     or truncates; parent_span_id empty or zero → no parent, another length
//     than 8 refuses the message.
//   - tracestate entries → "k1=v1,k2=v2"; name → its TruncatableString's
//     value.
//   - kind SERVER, CLIENT → SERVER, CLIENT. Unspecified kind with a string
//     attribute span.kind (producer, consumer, internal; Vivace: also
//     server, client) → that kind, attribute removed; any other value stays
//     an attribute.
//   - start_time, end_time → Unix nanoseconds. Vivace: a missing start is
//     the end and a missing end the start (the proto's advice), and an end
//     before the start is the start.
//   - attributes: string, int, bool, double keep their type, sorted by key;
//     dropped_attributes_count kept. Vivace: an attribute without a value
//     is left out and counted as dropped (the collector writes a
//     placeholder string).
//   - status: code 0 (OK) → UNSET, any other (OC codes are gRPC codes) →
//     ERROR; message kept. An int attribute otel.status_code 0, 1 or 2
//     (written by the collector's OTLP → OC translation) replaces the code
//     and is removed.
//   - time events: an annotation → an event named by its description,
//     with its attributes; a message event → an event named "message" with
//     message.type (SENT, RECEIVED, TYPE_UNSPECIFIED), messaging.message_id,
//     messaging.message_payload_size_bytes and
//     messaging.message_payload_compressed_size_bytes. Dropped annotations
//     and message events add up to dropped_events_count. Vivace: a time
//     event with neither is left out and counted as dropped.
//   - links → links with trace ID, span ID, tracestate, attributes (the
//     link type has no OTLP equivalent and is not kept). Vivace: a link
//     with an empty or zero ID is left out and counted in
//     dropped_links_count; one with an ID of the wrong length refuses the
//     message.
//   - same_process_as_parent_span, when set → bool attribute
//     opencensus.same_process_as_parent_span. Vivace: child_span_count,
//     when set → int attribute opencensus.child_span_count (the collector
//     drops it).
//   - stack_trace is not kept.

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	commonpb "github.com/census-instrumentation/opencensus-proto/gen-go/agent/common/v1"
	agenttracepb "github.com/census-instrumentation/opencensus-proto/gen-go/agent/trace/v1"
	resourcepb "github.com/census-instrumentation/opencensus-proto/gen-go/resource/v1"
	tracepb "github.com/census-instrumentation/opencensus-proto/gen-go/trace/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonv1 "go.opentelemetry.io/proto/otlp/common/v1"
	resourcev1 "go.opentelemetry.io/proto/otlp/resource/v1"
	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Attribute keys and names with a meaning of their own.
const (
	attrServiceName     = "service.name"
	attrHostName        = "host.name"
	attrPID             = "process.pid"
	attrStartTime       = "opencensus.starttime"
	attrExporterVersion = "opencensus.exporterversion"
	attrResourceType    = "opencensus.resourcetype"
	attrSDKVersion      = "telemetry.sdk.version"
	attrSDKLanguage     = "telemetry.sdk.language"
	labelCloudZone      = "cloud.zone"
	attrCloudZone       = "cloud.availability_zone"

	attrSpanKind       = "span.kind"
	attrStatusCode     = "otel.status_code"
	attrSameProcess    = "opencensus.same_process_as_parent_span"
	attrChildSpanCount = "opencensus.child_span_count"

	eventMessage              = "message"
	attrMessageType           = "message.type"
	attrMessageID             = "messaging.message_id"
	attrMessageSize           = "messaging.message_payload_size_bytes"
	attrMessageCompressedSize = "messaging.message_payload_compressed_size_bytes"
)

// languages are telemetry.sdk.language's values for LibraryInfo.Language.
var languages = map[commonpb.LibraryInfo_Language]string{
	commonpb.LibraryInfo_CPP:     "cpp",
	commonpb.LibraryInfo_C_SHARP: "dotnet",
	commonpb.LibraryInfo_ERLANG:  "erlang",
	commonpb.LibraryInfo_GO_LANG: "go",
	commonpb.LibraryInfo_JAVA:    "java",
	commonpb.LibraryInfo_NODE_JS: "nodejs",
	commonpb.LibraryInfo_PHP:     "php",
	commonpb.LibraryInfo_PYTHON:  "python",
	commonpb.LibraryInfo_RUBY:    "ruby",
	commonpb.LibraryInfo_WEB_JS:  "webjs",
}

// kinds are the span.kind attribute values that set an unspecified kind.
var kinds = map[string]tracev1.Span_SpanKind{
	"server":   tracev1.Span_SPAN_KIND_SERVER,
	"client":   tracev1.Span_SPAN_KIND_CLIENT,
	"producer": tracev1.Span_SPAN_KIND_PRODUCER,
	"consumer": tracev1.Span_SPAN_KIND_CONSUMER,
	"internal": tracev1.Span_SPAN_KIND_INTERNAL,
}

// stream is what an Export stream remembers between its messages.
type stream struct {
	node     *commonpb.Node
	resource *resourcepb.Resource
	// base is node and resource translated, made when first needed and
	// shared by the requests until either changes.
	base *resourcev1.Resource
}

// next translates one Export message after applying the stream's rule. It
// refuses the whole message if any span is invalid; the error is a
// *badRequest.
func (st *stream) next(msg *agenttracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceRequest, int, error) {
	switch {
	case msg.Node != nil:
		st.node, st.base = msg.Node, nil
	case st.node == nil:
		return nil, 0, &badRequest{reason: "no_node", spans: len(msg.Spans), err: errNoNode}
	}
	if msg.Resource != nil {
		st.resource, st.base = msg.Resource, nil
	}
	req := &coltracepb.ExportTraceServiceRequest{}
	var (
		a      arena
		shared *tracev1.ScopeSpans            // spans without a Resource of their own
		own    map[string]*tracev1.ScopeSpans // the others, by Resource
		n      int
	)
	for i, s := range msg.Spans {
		if s == nil {
			continue
		}
		out := a.spans.take()
		if err := a.translateSpan(out, s); err != nil {
			return nil, 0, invalidSpan(err, i, s.GetName().GetValue(), len(msg.Spans))
		}
		var ss *tracev1.ScopeSpans
		if s.Resource == nil {
			if shared == nil {
				if st.base == nil {
					st.base = resourceOf(st.node, st.resource)
				}
				shared = &tracev1.ScopeSpans{}
				req.ResourceSpans = append(req.ResourceSpans, &tracev1.ResourceSpans{Resource: st.base, ScopeSpans: []*tracev1.ScopeSpans{shared}})
			}
			ss = shared
		} else {
			key := resourceKey(s.Resource)
			if ss = own[key]; ss == nil {
				if own == nil {
					own = map[string]*tracev1.ScopeSpans{}
				}
				ss = &tracev1.ScopeSpans{}
				own[key] = ss
				req.ResourceSpans = append(req.ResourceSpans, &tracev1.ResourceSpans{Resource: resourceOf(st.node, s.Resource), ScopeSpans: []*tracev1.ScopeSpans{ss}})
			}
		}
		ss.Spans = append(ss.Spans, out)
		n++
	}
	return req, n, nil
}

// resourceKey is a Resource's identity for grouping: its deterministic encoding.
func resourceKey(r *resourcepb.Resource) string {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(r)
	if err != nil { // cannot happen for a decoded message; keep it apart
		return fmt.Sprintf("\x00%p", r)
	}
	return "\x01" + string(b)
}

func resourceOf(node *commonpb.Node, res *resourcepb.Resource) *resourcev1.Resource {
	var a attrList
	labels := res.GetLabels()
	for _, k := range sortedKeys(labels) {
		key := k
		if k == labelCloudZone {
			key = attrCloudZone
		}
		a.set(key, strValue(labels[k]))
	}
	nodeAttrs := node.GetAttributes()
	for _, k := range sortedKeys(nodeAttrs) {
		a.set(k, strValue(nodeAttrs[k]))
	}
	if name := node.GetServiceInfo().GetName(); name != "" {
		a.set(attrServiceName, strValue(name))
	}
	if id := node.GetIdentifier(); id != nil {
		if ts := id.StartTimestamp; ts != nil {
			a.set(attrStartTime, strValue(ts.AsTime().Format(time.RFC3339Nano)))
		}
		if id.HostName != "" {
			a.set(attrHostName, strValue(id.HostName))
		}
		if id.Pid != 0 {
			a.set(attrPID, intValue(int64(id.Pid)))
		}
	}
	if li := node.GetLibraryInfo(); li != nil {
		if li.CoreLibraryVersion != "" {
			a.set(attrSDKVersion, strValue(li.CoreLibraryVersion))
		}
		if li.ExporterVersion != "" {
			a.set(attrExporterVersion, strValue(li.ExporterVersion))
		}
		if lang, ok := languages[li.Language]; ok {
			a.set(attrSDKLanguage, strValue(lang))
		}
	}
	if t := res.GetType(); t != "" {
		a.set(attrResourceType, strValue(t))
	}
	return &resourcev1.Resource{Attributes: a.kvs}
}

// translateSpan translates s into out, a zero Span.
func (a *arena) translateSpan(out *tracev1.Span, s *tracepb.Span) error {
	if err := checkID(s.TraceId, 16, "trace_id"); err != nil {
		return err
	}
	if isZero(s.TraceId) {
		return errZeroTraceID
	}
	if err := checkID(s.SpanId, 8, "span_id"); err != nil {
		return err
	}
	if isZero(s.SpanId) {
		return errZeroSpanID
	}
	if err := checkID(s.ParentSpanId, 8, "parent_span_id"); err != nil {
		return err
	}
	out.TraceId, out.SpanId = s.TraceId, s.SpanId
	out.TraceState = traceState(s.Tracestate)
	out.Name = s.GetName().GetValue()
	if !isZero(s.ParentSpanId) {
		out.ParentSpanId = s.ParentSpanId
	}
	switch s.Kind {
	case tracepb.Span_SERVER:
		out.Kind = tracev1.Span_SPAN_KIND_SERVER
	case tracepb.Span_CLIENT:
		out.Kind = tracev1.Span_SPAN_KIND_CLIENT
	}
	out.StartTimeUnixNano, out.EndTimeUnixNano = nanos(s.StartTime), nanos(s.EndTime)
	switch {
	case s.StartTime == nil:
		out.StartTimeUnixNano = out.EndTimeUnixNano
	case s.EndTime == nil || out.EndTimeUnixNano < out.StartTimeUnixNano:
		out.EndTimeUnixNano = out.StartTimeUnixNano
	}

	statusCode, statusOverride := tracev1.Status_STATUS_CODE_UNSET, false
	attrs := s.GetAttributes().GetAttributeMap()
	out.DroppedAttributesCount = count(s.GetAttributes().GetDroppedAttributesCount())
	out.Attributes = a.ptrs.slice(len(attrs) + 2)
	for _, k := range sortedKeys(attrs) {
		v := attrs[k]
		switch k {
		case attrSpanKind:
			if kind, ok := kinds[v.GetStringValue().GetValue()]; ok && out.Kind == tracev1.Span_SPAN_KIND_UNSPECIFIED {
				out.Kind = kind
				continue
			}
		case attrStatusCode:
			if c, ok := v.GetValue().(*tracepb.AttributeValue_IntValue); ok && c.IntValue >= 0 && c.IntValue <= 2 {
				statusCode, statusOverride = tracev1.Status_StatusCode(c.IntValue), true
				continue
			}
		}
		kv, ok := a.attr(k, v)
		if !ok {
			out.DroppedAttributesCount = addCount(out.DroppedAttributesCount, 1)
			continue
		}
		out.Attributes = append(out.Attributes, kv)
	}
	if v := s.SameProcessAsParentSpan; v != nil {
		kv, val := a.kv(attrSameProcess)
		val.Value = &commonv1.AnyValue_BoolValue{BoolValue: v.Value}
		out.Attributes = setAttr(out.Attributes, kv)
	}
	if v := s.ChildSpanCount; v != nil {
		out.Attributes = setAttr(out.Attributes, a.int(attrChildSpanCount, int64(v.Value)))
	}
	if len(out.Attributes) == 0 {
		out.Attributes = nil
	}

	var message string
	if st := s.Status; st != nil {
		message = st.Message
		if !statusOverride && st.Code != 0 {
			statusCode = tracev1.Status_STATUS_CODE_ERROR
		}
	}
	if statusCode != tracev1.Status_STATUS_CODE_UNSET || message != "" {
		out.Status = &tracev1.Status{Code: statusCode, Message: message}
	}

	if te := s.TimeEvents; te != nil {
		out.DroppedEventsCount = addCount(count(te.DroppedAnnotationsCount), count(te.DroppedMessageEventsCount))
		if len(te.TimeEvent) > 0 {
			out.Events = make([]*tracev1.Span_Event, 0, len(te.TimeEvent))
		}
		for _, e := range te.TimeEvent {
			ev := a.timeEvent(e)
			if ev == nil {
				out.DroppedEventsCount = addCount(out.DroppedEventsCount, 1)
				continue
			}
			out.Events = append(out.Events, ev)
		}
	}
	if ls := s.Links; ls != nil {
		out.DroppedLinksCount = count(ls.DroppedLinksCount)
		for i, l := range ls.Link {
			if l == nil {
				continue
			}
			if err := checkID(l.TraceId, 16, "trace_id"); err != nil {
				return fmt.Errorf("link %d: %w", i, err)
			}
			if err := checkID(l.SpanId, 8, "span_id"); err != nil {
				return fmt.Errorf("link %d: %w", i, err)
			}
			if isZero(l.TraceId) || isZero(l.SpanId) {
				out.DroppedLinksCount = addCount(out.DroppedLinksCount, 1)
				continue
			}
			link := &tracev1.Span_Link{TraceId: l.TraceId, SpanId: l.SpanId, TraceState: traceState(l.Tracestate)}
			link.Attributes, link.DroppedAttributesCount = a.attributes(l.Attributes)
			out.Links = append(out.Links, link)
		}
	}
	return nil
}

// timeEvent translates an annotation or a message event; nil for neither.
func (a *arena) timeEvent(e *tracepb.Span_TimeEvent) *tracev1.Span_Event {
	switch v := e.GetValue().(type) {
	case *tracepb.Span_TimeEvent_Annotation_:
		ev := a.events.take()
		ev.TimeUnixNano, ev.Name = nanos(e.Time), v.Annotation.GetDescription().GetValue()
		ev.Attributes, ev.DroppedAttributesCount = a.attributes(v.Annotation.GetAttributes())
		return ev
	case *tracepb.Span_TimeEvent_MessageEvent_:
		me := v.MessageEvent
		ev := a.events.take()
		ev.TimeUnixNano, ev.Name = nanos(e.Time), eventMessage
		ev.Attributes = append(a.ptrs.slice(4),
			a.str(attrMessageType, me.GetType().String()),
			a.int(attrMessageID, int64(me.GetId())),
			a.int(attrMessageSize, int64(me.GetUncompressedSize())),
			a.int(attrMessageCompressedSize, int64(me.GetCompressedSize())))
		return ev
	}
	return nil
}

// attributes translates an annotation's or a link's attributes.
func (a *arena) attributes(attrs *tracepb.Span_Attributes) ([]*commonv1.KeyValue, uint32) {
	m := attrs.GetAttributeMap()
	dropped := count(attrs.GetDroppedAttributesCount())
	if len(m) == 0 {
		return nil, dropped
	}
	kvs := a.ptrs.slice(len(m))
	for _, k := range sortedKeys(m) {
		kv, ok := a.attr(k, m[k])
		if !ok {
			dropped = addCount(dropped, 1)
			continue
		}
		kvs = append(kvs, kv)
	}
	if len(kvs) == 0 {
		kvs = nil
	}
	return kvs, dropped
}

func strValue(s string) *commonv1.AnyValue {
	return &commonv1.AnyValue{Value: &commonv1.AnyValue_StringValue{StringValue: s}}
}

func intValue(i int64) *commonv1.AnyValue {
	return &commonv1.AnyValue{Value: &commonv1.AnyValue_IntValue{IntValue: i}}
}

// setAttr replaces the value of kv's key, or appends kv.
func setAttr(kvs []*commonv1.KeyValue, kv *commonv1.KeyValue) []*commonv1.KeyValue {
	for _, old := range kvs {
		if old.Key == kv.Key {
			old.Value = kv.Value
			return kvs
		}
	}
	return append(kvs, kv)
}

// attrList builds resource attributes: a key set again keeps its place.
type attrList struct{ kvs []*commonv1.KeyValue }

func (a *attrList) set(key string, v *commonv1.AnyValue) {
	a.kvs = setAttr(a.kvs, &commonv1.KeyValue{Key: key, Value: v})
}

func traceState(ts *tracepb.Span_Tracestate) string {
	if ts == nil || len(ts.Entries) == 0 {
		return ""
	}
	var sb strings.Builder
	for i, e := range ts.Entries {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(e.GetKey())
		sb.WriteByte('=')
		sb.WriteString(e.GetValue())
	}
	return sb.String()
}

// maxSeconds is where Unix nanoseconds stop fitting an int64.
const maxSeconds = math.MaxInt64 / 1_000_000_000

// nanos is a Timestamp in Unix nanoseconds: 0 if unset or before 1970,
// at most math.MaxInt64.
func nanos(ts *timestamppb.Timestamp) uint64 {
	if ts == nil || ts.Seconds < 0 {
		return 0
	}
	if ts.Seconds >= maxSeconds {
		return math.MaxInt64
	}
	t := time.Unix(ts.Seconds, int64(ts.Nanos)) // normalizes out-of-range nanos
	if t.Unix() < 0 {
		return 0
	}
	return uint64(t.UnixNano())
}

// count is a dropped count: a negative one is 0.
func count(n int32) uint32 { return uint32(max(n, 0)) }

// addCount adds dropped counts, saturating.
func addCount(a, b uint32) uint32 {
	if s := a + b; s >= a {
		return s
	}
	return math.MaxUint32
}

// checkID accepts an ID that is empty or of the right size.
func checkID(b []byte, size int, field string) error {
	if len(b) != 0 && len(b) != size {
		return fmt.Errorf("%s has %d bytes, want %d", field, len(b), size)
	}
	return nil
}

func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

func sortedKeys[V any](m map[string]V) []string {
	if len(m) == 0 {
		return nil
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func invalidSpan(err error, i int, name string, spans int) *badRequest {
	reason := "invalid_span"
	switch {
	case errors.Is(err, errZeroTraceID):
		reason = "zero_trace_id"
	case errors.Is(err, errZeroSpanID):
		reason = "zero_span_id"
	}
	return &badRequest{reason: reason, spans: spans, err: spanError{i: i, name: name, err: err}}
}

type spanError struct {
	i    int
	name string
	err  error
}

func (e spanError) Error() string {
	return "span " + strconv.Itoa(e.i) + " (name " + strconv.Quote(truncate(e.name)) + "): " + e.err.Error()
}
func (e spanError) Unwrap() error { return e.err }

func truncate(s string) string {
	if len(s) > 64 {
		return strings.ToValidUTF8(s[:64], "") + "…"
	}
	return s
}
