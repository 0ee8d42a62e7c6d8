package jaeger

// Jaeger → OTLP translation, after the OpenTelemetry specification's Jaeger
// mapping (specification/trace/sdk_exporters/jaeger.md, read backwards) and
// the generic non-OTLP rules (specification/common/mapping-to-non-otlp.md):
//
//   - Process.serviceName → resource service.name (it wins over a
//     "service.name" process tag); process tags → resource attributes; the
//     Jaeger clients' "hostname" tag → host.name (unless host.name is set).
//   - traceIdHigh/traceIdLow (thrift) or trace_id (proto) → 16 bytes, big
//     endian, high first: a 64-bit ID (high = 0) is left-padded with zeros.
//     spanId → 8 bytes big endian. i64 values are reinterpreted as unsigned.
//   - startTime / duration: microseconds (thrift) or Timestamp / Duration
//     (proto) → start and end in Unix nanoseconds.
//   - Parent: thrift parentSpanId if not 0; else the first CHILD_OF
//     reference of the same trace; else the first FOLLOWS_FROM reference of
//     the same trace (Jaeger's own model.Span.ParentSpanID rule, so a span
//     that only FOLLOWS_FROM a span of its trace is not a second root).
//   - References → links, each with the attribute opentracing.ref_type
//     ("child_of" / "follows_from", semantic conventions), except the
//     CHILD_OF reference that became the parent. References with a zero
//     trace or span ID are dropped.
//   - Tags → attributes of their own type (string, bool, long → int, double,
//     binary → bytes); a duplicate key keeps its first position and last
//     value (OTLP keys are unique).
//   - span.kind tag → kind (client, server, producer, consumer, internal;
//     case-insensitive), removed. Another value stays an attribute.
//   - Status: an error tag that is true (bool, or the string "true") →
//     ERROR, removed, with otel.status_description (removed) or else
//     http.status_message as message. Otherwise otel.status_code "OK" /
//     "ERROR" (case-insensitive) → status with otel.status_description as
//     message, both removed. otel.status_code is removed whenever it is
//     valid. Without either, an http.status_code tag sets ERROR for 5xx and
//     for 4xx on anything but a server span (HTTP semantic conventions).
//   - w3c.tracestate tag → trace_state, removed.
//   - otel.scope.name / otel.scope.version (or the older otel.library.*)
//     tags → the instrumentation scope, removed.
//   - Logs → events: timestamp; fields → attributes; a string "event" field
//     → the event name, removed.
//   - Flags: the sampled bit (1) → the W3C sampled bit of Span.flags; the
//     debug and firehose bits have no OTLP equivalent.
//   - Strings that are not valid UTF-8 (thrift and gogo strings are any
//     bytes; OTLP's must be UTF-8) get U+FFFD for each invalid byte run.
//   - Everything else, Jaeger's own tags too (sampler.type, sampler.param,
//     jaeger.version, ...), is kept as an attribute as sent.

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	model "github.com/jaegertracing/jaeger-idl/model/v1"
	"github.com/jaegertracing/jaeger-idl/thrift-gen/jaeger"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonv1 "go.opentelemetry.io/proto/otlp/common/v1"
	resourcev1 "go.opentelemetry.io/proto/otlp/resource/v1"
	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/vivace-dev/vivace/distributor/receiver"
)

// Tag keys with a meaning of their own.
const (
	tagSpanKind          = "span.kind"
	tagError             = "error"
	tagStatusCode        = "otel.status_code"
	tagStatusDescription = "otel.status_description"
	tagHTTPStatusCode    = "http.status_code"
	tagHTTPStatusMessage = "http.status_message"
	tagTraceState        = "w3c.tracestate"
	tagScopeName         = "otel.scope.name"
	tagScopeVersion      = "otel.scope.version"
	tagLibraryName       = "otel.library.name"    // deprecated form of otel.scope.name
	tagLibraryVersion    = "otel.library.version" // deprecated form of otel.scope.version
	tagHostname          = "hostname"             // set by Jaeger clients on the process
	logEvent             = "event"                // the OpenTracing log field naming the event

	attrServiceName = "service.name"
	attrHostName    = "host.name"
	attrRefType     = "opentracing.ref_type"
	refChildOf      = "child_of"
	refFollowsFrom  = "follows_from"

	flagSampled = 1 // in Jaeger flags and in W3C trace flags alike
)

// ref is a span reference of either wire format.
type ref struct {
	trace   [16]byte
	span    uint64
	childOf bool
}

// scopeKey names the instrumentation scope a span is grouped under.
type scopeKey struct{ name, version string }

// resourceGroup collects the spans of one process.
type resourceGroup struct {
	rs *tracev1.ResourceSpans
}

func newResourceGroup(attrs []*commonv1.KeyValue) *resourceGroup {
	return &resourceGroup{rs: &tracev1.ResourceSpans{Resource: &resourcev1.Resource{Attributes: attrs}}}
}

func (g *resourceGroup) add(scope scopeKey, s *tracev1.Span) {
	for _, ss := range g.rs.ScopeSpans {
		if ss.Scope.GetName() == scope.name && ss.Scope.GetVersion() == scope.version {
			ss.Spans = append(ss.Spans, s)
			return
		}
	}
	ss := &tracev1.ScopeSpans{Spans: []*tracev1.Span{s}}
	if scope != (scopeKey{}) {
		ss.Scope = &commonv1.InstrumentationScope{Name: scope.name, Version: scope.version}
	}
	g.rs.ScopeSpans = append(g.rs.ScopeSpans, ss)
}

// thriftToOTLP translates a thrift Batch (HTTP body, UDP emitBatch). It
// refuses the whole batch if any span is invalid; the error is a *badRequest.
func thriftToOTLP(b *jaeger.Batch) (*coltracepb.ExportTraceServiceRequest, int, error) {
	req := &coltracepb.ExportTraceServiceRequest{}
	if len(b.Spans) == 0 {
		return req, 0, nil
	}
	var g *resourceGroup
	if p := b.Process; p != nil {
		g = newResourceGroup(processAttrs(p.ServiceName, thriftTags(p.Tags)))
	} else {
		g = newResourceGroup(nil)
	}
	n := 0
	for i, s := range b.Spans {
		if s == nil {
			continue
		}
		span, scope, err := thriftSpan(s)
		if err != nil {
			return nil, 0, invalidSpan(err, i, s.OperationName, len(b.Spans))
		}
		g.add(scope, span)
		n++
	}
	if n > 0 {
		req.ResourceSpans = []*tracev1.ResourceSpans{g.rs}
	}
	return req, n, nil
}

func invalidSpan(err error, i int, op string, spans int) *badRequest {
	reason := "invalid_span"
	switch err {
	case errZeroTraceID:
		reason = "zero_trace_id"
	case errZeroSpanID:
		reason = "zero_span_id"
	}
	return &badRequest{reason: reason, spans: spans, err: spanError{i: i, op: op, err: err}}
}

type spanError struct {
	i   int
	op  string
	err error
}

func (e spanError) Error() string {
	return "span " + strconv.Itoa(e.i) + " (operation " + strconv.Quote(e.op) + "): " + e.err.Error()
}
func (e spanError) Unwrap() error { return e.err }

func thriftSpan(s *jaeger.Span) (*tracev1.Span, scopeKey, error) {
	trace := traceID(uint64(s.TraceIdHigh), uint64(s.TraceIdLow))
	switch {
	case trace == [16]byte{}:
		return nil, scopeKey{}, errZeroTraceID
	case s.SpanId == 0:
		return nil, scopeKey{}, errZeroSpanID
	}
	start := micros(s.StartTime)
	out := &tracev1.Span{
		TraceId:           trace[:],
		SpanId:            spanID(uint64(s.SpanId)),
		Name:              validUTF8(s.OperationName),
		StartTimeUnixNano: start,
		EndTimeUnixNano:   start + micros(s.Duration),
		Flags:             uint32(s.Flags) & flagSampled,
	}
	var refs []ref
	if len(s.References) > 0 {
		refs = make([]ref, 0, len(s.References))
		for _, r := range s.References {
			if r != nil {
				refs = append(refs, ref{traceID(uint64(r.TraceIdHigh), uint64(r.TraceIdLow)), uint64(r.SpanId), r.RefType == jaeger.SpanRefType_CHILD_OF})
			}
		}
	}
	if len(s.Logs) > 0 {
		out.Events = make([]*tracev1.Span_Event, 0, len(s.Logs))
		for _, l := range s.Logs {
			if l != nil {
				out.Events = append(out.Events, event(micros(l.Timestamp), thriftTags(l.Fields)))
			}
		}
	}
	scope := finishSpan(out, trace, uint64(s.ParentSpanId), refs, thriftTags(s.Tags))
	return out, scope, nil
}

// protoToOTLP translates a proto Batch (gRPC PostSpans). A span's own
// Process, if set, wins over the batch's: spans are grouped into one
// ResourceSpans per distinct process, in the order first seen. It refuses
// the whole batch if any span is invalid; the error is a *badRequest.
func protoToOTLP(b *model.Batch) (*coltracepb.ExportTraceServiceRequest, int, error) {
	req := &coltracepb.ExportTraceServiceRequest{}
	if len(b.Spans) == 0 {
		return req, 0, nil
	}
	var (
		batchGroup *resourceGroup
		batchKey   *string
		groups     []*resourceGroup
		byKey      map[string]*resourceGroup
		n          int
	)
	var groupOf func(p *model.Process) *resourceGroup
	groupOf = func(p *model.Process) *resourceGroup {
		if p == nil || p == b.Process {
			if batchGroup == nil {
				batchGroup = protoGroup(b.Process)
				groups = append(groups, batchGroup)
			}
			return batchGroup
		}
		key := processKey(p)
		if batchKey == nil {
			k := processKey(b.Process)
			batchKey = &k
		}
		if key == *batchKey {
			return groupOf(nil)
		}
		if g := byKey[key]; g != nil {
			return g
		}
		if byKey == nil {
			byKey = map[string]*resourceGroup{}
		}
		g := protoGroup(p)
		byKey[key] = g
		groups = append(groups, g)
		return g
	}
	for i, s := range b.Spans {
		if s == nil {
			continue
		}
		span, scope, err := protoSpan(s)
		if err != nil {
			return nil, 0, invalidSpan(err, i, s.OperationName, len(b.Spans))
		}
		groupOf(s.Process).add(scope, span)
		n++
	}
	req.ResourceSpans = make([]*tracev1.ResourceSpans, len(groups))
	for i, g := range groups {
		req.ResourceSpans[i] = g.rs
	}
	return req, n, nil
}

func protoGroup(p *model.Process) *resourceGroup {
	if p == nil {
		return newResourceGroup(nil)
	}
	return newResourceGroup(processAttrs(p.ServiceName, protoTags(p.Tags)))
}

// processKey is a process's identity for grouping: its encoded form.
func processKey(p *model.Process) string {
	if p == nil {
		return ""
	}
	b, err := p.Marshal()
	if err != nil { // cannot happen for a decoded message; keep it apart
		return fmt.Sprintf("\x00%p", p)
	}
	return "\x01" + string(b)
}

func protoSpan(s *model.Span) (*tracev1.Span, scopeKey, error) {
	trace := traceID(s.TraceID.High, s.TraceID.Low)
	switch {
	case trace == [16]byte{}:
		return nil, scopeKey{}, errZeroTraceID
	case s.SpanID == 0:
		return nil, scopeKey{}, errZeroSpanID
	}
	start := unixNanos(s.StartTime)
	out := &tracev1.Span{
		TraceId:           trace[:],
		SpanId:            spanID(uint64(s.SpanID)),
		Name:              validUTF8(s.OperationName),
		StartTimeUnixNano: start,
		EndTimeUnixNano:   start + nanos(s.Duration),
		Flags:             uint32(s.Flags) & flagSampled,
	}
	var refs []ref
	if len(s.References) > 0 {
		refs = make([]ref, len(s.References))
		for i, r := range s.References {
			refs[i] = ref{traceID(r.TraceID.High, r.TraceID.Low), uint64(r.SpanID), r.RefType == model.ChildOf}
		}
	}
	if len(s.Logs) > 0 {
		out.Events = make([]*tracev1.Span_Event, len(s.Logs))
		for i := range s.Logs {
			out.Events[i] = event(unixNanos(s.Logs[i].Timestamp), protoTags(s.Logs[i].Fields))
		}
	}
	scope := finishSpan(out, trace, 0, refs, protoTags(s.Tags))
	return out, scope, nil
}

// finishSpan sets what both wire formats share: parent, links and the
// attributes with their special tags taken out.
func finishSpan(out *tracev1.Span, trace [16]byte, parent uint64, refs []ref, attrs []*commonv1.KeyValue) scopeKey {
	if parent == 0 {
		parent = parentFromRefs(trace, refs)
	}
	if parent != 0 {
		out.ParentSpanId = spanID(parent)
	}
	for _, r := range refs {
		if r.childOf && r.span == parent && r.trace == trace {
			continue // it is the parent
		}
		if r.span == 0 || r.trace == [16]byte{} {
			continue // points nowhere
		}
		refType := refFollowsFrom
		if r.childOf {
			refType = refChildOf
		}
		out.Links = append(out.Links, &tracev1.Span_Link{
			TraceId:    append([]byte(nil), r.trace[:]...),
			SpanId:     spanID(r.span),
			Attributes: []*commonv1.KeyValue{stringKV(attrRefType, refType)},
		})
	}
	attrs, scope := takeSpecialTags(out, attrs)
	out.Attributes = attrs
	return scope
}

// parentFromRefs is Jaeger's rule: the first CHILD_OF reference of the same
// trace, else the first FOLLOWS_FROM reference of the same trace.
func parentFromRefs(trace [16]byte, refs []ref) uint64 {
	var followsFrom uint64
	for _, r := range refs {
		if r.trace != trace || r.span == 0 {
			continue
		}
		if r.childOf {
			return r.span
		}
		if followsFrom == 0 {
			followsFrom = r.span
		}
	}
	return followsFrom
}

// Indexes into the special-tag table of takeSpecialTags.
const (
	iKind = iota
	iError
	iStatusCode
	iStatusDescription
	iHTTPStatusCode
	iHTTPStatusMessage
	iTraceState
	iScopeName
	iScopeVersion
	iLibraryName
	iLibraryVersion
	nSpecial
)

// takeSpecialTags sets kind, status, trace state and scope from their tags,
// and returns the attributes without the tags it used.
func takeSpecialTags(out *tracev1.Span, attrs []*commonv1.KeyValue) ([]*commonv1.KeyValue, scopeKey) {
	var at [nSpecial]int // index+1 into attrs; 0 if absent
	found := false
	for i, kv := range attrs {
		j := -1
		switch kv.Key {
		case tagSpanKind:
			j = iKind
		case tagError:
			j = iError
		case tagStatusCode:
			j = iStatusCode
		case tagStatusDescription:
			j = iStatusDescription
		case tagHTTPStatusCode:
			j = iHTTPStatusCode
		case tagHTTPStatusMessage:
			j = iHTTPStatusMessage
		case tagTraceState:
			j = iTraceState
		case tagScopeName:
			j = iScopeName
		case tagScopeVersion:
			j = iScopeVersion
		case tagLibraryName:
			j = iLibraryName
		case tagLibraryVersion:
			j = iLibraryVersion
		}
		if j >= 0 {
			at[j] = i + 1
			found = true
		}
	}
	if !found {
		return attrs, scopeKey{}
	}
	removed := false
	get := func(j int) *commonv1.KeyValue {
		if at[j] == 0 {
			return nil
		}
		return attrs[at[j]-1]
	}
	remove := func(j int) {
		attrs[at[j]-1] = nil
		at[j] = 0
		removed = true
	}
	str := func(j int) (string, bool) {
		kv := get(j)
		if kv == nil {
			return "", false
		}
		v, ok := kv.Value.GetValue().(*commonv1.AnyValue_StringValue)
		if !ok {
			return "", false
		}
		return v.StringValue, true
	}

	if v, ok := str(iKind); ok {
		if k, ok := receiver.SpanKind(v); ok {
			out.Kind = k
			remove(iKind)
		}
	}

	// Status: the error tag is the last word, then otel.status_code, then
	// the HTTP status code.
	description := func() string {
		if d, ok := str(iStatusDescription); ok {
			remove(iStatusDescription)
			return d
		}
		return ""
	}
	if kv := get(iError); kv != nil && isTrue(kv.Value) {
		remove(iError)
		msg := description()
		if msg == "" {
			msg, _ = str(iHTTPStatusMessage)
		}
		out.Status = &tracev1.Status{Code: tracev1.Status_STATUS_CODE_ERROR, Message: msg}
	}
	if v, ok := str(iStatusCode); ok {
		if code, ok := statusCode(v); ok {
			remove(iStatusCode)
			if out.Status == nil {
				out.Status = &tracev1.Status{Code: code, Message: description()}
			}
		}
	} else if kv := get(iHTTPStatusCode); kv != nil && out.Status == nil {
		if httpCode, ok := intValue(kv.Value); ok && httpIsError(httpCode, out.Kind) {
			msg, _ := str(iHTTPStatusMessage)
			out.Status = &tracev1.Status{Code: tracev1.Status_STATUS_CODE_ERROR, Message: msg}
		}
	}

	if v, ok := str(iTraceState); ok {
		out.TraceState = v
		remove(iTraceState)
	}

	var scope scopeKey
	for _, p := range [][2]int{{iScopeName, iScopeVersion}, {iLibraryName, iLibraryVersion}} {
		name, okName := str(p[0])
		version, okVersion := str(p[1])
		if okName || okVersion {
			if scope == (scopeKey{}) {
				scope = scopeKey{name, version}
			}
			if okName {
				remove(p[0])
			}
			if okVersion {
				remove(p[1])
			}
		}
	}

	if !removed {
		return attrs, scope
	}
	kept := attrs[:0]
	for _, kv := range attrs {
		if kv != nil {
			kept = append(kept, kv)
		}
	}
	if len(kept) == 0 {
		kept = nil
	}
	return kept, scope
}

func statusCode(v string) (tracev1.Status_StatusCode, bool) {
	switch strings.ToUpper(v) {
	case "OK":
		return tracev1.Status_STATUS_CODE_OK, true
	case "ERROR":
		return tracev1.Status_STATUS_CODE_ERROR, true
	}
	return tracev1.Status_STATUS_CODE_UNSET, false
}

func isTrue(v *commonv1.AnyValue) bool {
	switch v := v.GetValue().(type) {
	case *commonv1.AnyValue_BoolValue:
		return v.BoolValue
	case *commonv1.AnyValue_StringValue:
		return strings.EqualFold(v.StringValue, "true")
	}
	return false
}

func intValue(v *commonv1.AnyValue) (int64, bool) {
	switch v := v.GetValue().(type) {
	case *commonv1.AnyValue_IntValue:
		return v.IntValue, true
	case *commonv1.AnyValue_StringValue:
		n, err := strconv.ParseInt(v.StringValue, 10, 64)
		return n, err == nil
	}
	return 0, false
}

// httpIsError applies the HTTP semantic conventions: 1xx–3xx leave the
// status unset, 4xx is an error except on a server span, 5xx and anything
// unknown is an error.
func httpIsError(code int64, kind tracev1.Span_SpanKind) bool {
	switch {
	case code >= 100 && code < 400:
		return false
	case code >= 400 && code < 500:
		return kind != tracev1.Span_SPAN_KIND_SERVER
	}
	return true
}

func event(ts uint64, attrs []*commonv1.KeyValue) *tracev1.Span_Event {
	e := &tracev1.Span_Event{TimeUnixNano: ts, Attributes: attrs}
	for i, kv := range attrs {
		if kv.Key != logEvent {
			continue
		}
		if v, ok := kv.Value.GetValue().(*commonv1.AnyValue_StringValue); ok {
			e.Name = v.StringValue
			e.Attributes = append(attrs[:i:i], attrs[i+1:]...)
			if len(e.Attributes) == 0 {
				e.Attributes = nil
			}
		}
		break
	}
	return e
}

// processAttrs is the resource of a process.
func processAttrs(serviceName string, attrs []*commonv1.KeyValue) []*commonv1.KeyValue {
	hostname, hasHostName := -1, false
	for i, kv := range attrs {
		switch kv.Key {
		case tagHostname:
			hostname = i
		case attrHostName:
			hasHostName = true
		}
	}
	if hostname >= 0 && !hasHostName {
		attrs[hostname].Key = attrHostName
	}
	if serviceName == "" {
		return attrs
	}
	for _, kv := range attrs {
		if kv.Key == attrServiceName {
			kv.Value = stringValue(serviceName)
			return attrs
		}
	}
	out := make([]*commonv1.KeyValue, 0, len(attrs)+1)
	return append(append(out, stringKV(attrServiceName, serviceName)), attrs...)
}

func thriftTags(tags []*jaeger.Tag) []*commonv1.KeyValue {
	if len(tags) == 0 {
		return nil
	}
	kvs := make([]*commonv1.KeyValue, 0, len(tags))
	for _, t := range tags {
		if t == nil {
			continue
		}
		var v *commonv1.AnyValue
		switch t.VType {
		case jaeger.TagType_STRING:
			v = stringValue(t.GetVStr())
		case jaeger.TagType_BOOL:
			v = &commonv1.AnyValue{Value: &commonv1.AnyValue_BoolValue{BoolValue: t.GetVBool()}}
		case jaeger.TagType_LONG:
			v = &commonv1.AnyValue{Value: &commonv1.AnyValue_IntValue{IntValue: t.GetVLong()}}
		case jaeger.TagType_DOUBLE:
			v = &commonv1.AnyValue{Value: &commonv1.AnyValue_DoubleValue{DoubleValue: t.GetVDouble()}}
		case jaeger.TagType_BINARY:
			v = &commonv1.AnyValue{Value: &commonv1.AnyValue_BytesValue{BytesValue: t.VBinary}}
		default:
			v = stringValue(unknownTag(int64(t.VType)))
		}
		kvs = append(kvs, &commonv1.KeyValue{Key: validUTF8(t.Key), Value: v})
	}
	return dedupe(kvs)
}

func protoTags(tags []model.KeyValue) []*commonv1.KeyValue {
	if len(tags) == 0 {
		return nil
	}
	kvs := make([]*commonv1.KeyValue, len(tags))
	for i := range tags {
		t := &tags[i]
		var v *commonv1.AnyValue
		switch t.VType {
		case model.ValueType_STRING:
			v = stringValue(t.VStr)
		case model.ValueType_BOOL:
			v = &commonv1.AnyValue{Value: &commonv1.AnyValue_BoolValue{BoolValue: t.VBool}}
		case model.ValueType_INT64:
			v = &commonv1.AnyValue{Value: &commonv1.AnyValue_IntValue{IntValue: t.VInt64}}
		case model.ValueType_FLOAT64:
			v = &commonv1.AnyValue{Value: &commonv1.AnyValue_DoubleValue{DoubleValue: t.VFloat64}}
		case model.ValueType_BINARY:
			v = &commonv1.AnyValue{Value: &commonv1.AnyValue_BytesValue{BytesValue: t.VBinary}}
		default:
			v = stringValue(unknownTag(int64(t.VType)))
		}
		kvs[i] = &commonv1.KeyValue{Key: validUTF8(t.Key), Value: v}
	}
	return dedupe(kvs)
}

func unknownTag(t int64) string {
	return "<unknown Jaeger tag type " + strconv.FormatInt(t, 10) + ">"
}

// dedupe keeps each key once, at its first position with its last value.
func dedupe(kvs []*commonv1.KeyValue) []*commonv1.KeyValue {
	if len(kvs) < 2 {
		return kvs
	}
	if len(kvs) <= 16 {
		dup := false
		for i := 1; i < len(kvs) && !dup; i++ {
			for j := 0; j < i; j++ {
				if kvs[i].Key == kvs[j].Key {
					dup = true
					break
				}
			}
		}
		if !dup {
			return kvs
		}
	}
	pos := make(map[string]int, len(kvs))
	out := kvs[:0]
	for _, kv := range kvs {
		if i, ok := pos[kv.Key]; ok {
			out[i] = kv
			continue
		}
		pos[kv.Key] = len(out)
		out = append(out, kv)
	}
	return out
}

func stringValue(s string) *commonv1.AnyValue {
	return &commonv1.AnyValue{Value: &commonv1.AnyValue_StringValue{StringValue: validUTF8(s)}}
}

func stringKV(k, v string) *commonv1.KeyValue {
	return &commonv1.KeyValue{Key: validUTF8(k), Value: stringValue(v)}
}

// validUTF8 replaces invalid UTF-8 with U+FFFD: thrift and gogo strings are
// any bytes, OTLP's (proto3) must be UTF-8 or the request cannot be encoded.
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

func traceID(high, low uint64) [16]byte {
	var id [16]byte
	binary.BigEndian.PutUint64(id[:8], high)
	binary.BigEndian.PutUint64(id[8:], low)
	return id
}

func spanID(id uint64) []byte { return binary.BigEndian.AppendUint64(make([]byte, 0, 8), id) }

// micros converts Jaeger thrift microseconds to nanoseconds; a negative
// value (a broken clock) becomes 0.
func micros(us int64) uint64 {
	if us <= 0 {
		return 0
	}
	return uint64(us) * 1000
}

func unixNanos(t time.Time) uint64 {
	if t.IsZero() || t.Before(time.Unix(0, 0)) {
		return 0
	}
	return uint64(t.UnixNano())
}

func nanos(d time.Duration) uint64 {
	if d < 0 {
		return 0
	}
	return uint64(d)
}
