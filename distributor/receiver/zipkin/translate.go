package zipkin

import (
	"slices"
	"strings"
	"sync"

	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/vivace-dev/vivace/distributor/receiver"
)

// The translation follows the OpenTelemetry specification's Zipkin mapping
// (specification/trace/sdk_exporters/zipkin.md) read backwards, and where
// the specification is silent, the OpenTelemetry Collector's Zipkin receiver
// (pkg/translator/zipkin/zipkinv2), which Tempo runs:
//
//   - localEndpoint.serviceName → resource service.name; spans are grouped
//     into one ResourceSpans per local service name, and into one ScopeSpans
//     per otel.scope.name/version (or otel.library.name/version) tag, which
//     is consumed.
//   - kind CLIENT/SERVER/PRODUCER/CONSUMER → the same SpanKind; Zipkin's
//     absent kind is what the specification maps INTERNAL to, but it is also
//     what any kind-less tracer sends, so like the collector it becomes
//     UNSPECIFIED, unless an OpenTracing span.kind tag names the kind.
//   - remoteEndpoint.serviceName → peer.service, "unless there is a
//     peer.service tag defined explicitly" (the specification's one
//     Zipkin→OTLP rule). Endpoint addresses and ports are span attributes
//     under the current semantic conventions, network.local.address/port and
//     network.peer.address/port (the collector's default since its
//     EmitV1NetworkConventions gate); an explicit tag of the same key wins.
//   - tags → string attributes: the specification turns typed attributes
//     into strings and gives no way back, so "200" stays "200" (the
//     collector's default, parse_string_tags off).
//   - status: otel.status_code OK/ERROR (or STATUS_CODE_*) → the code and
//     otel.status_description → the message; the `error` tag → ERROR whose
//     message is the tag's value (the specification puts the description
//     there), "true" or "" meaning no message and "false" no error (the
//     specification: a boolean false error tag SHOULD be removed). Consumed
//     tags do not become attributes.
//   - annotations → events named by the value; µs → ns everywhere.
//   - w3c.tracestate tag → trace_state (the collector's convention).
//   - 64-bit trace IDs are left-padded to 128 bits; a parentId equal to the
//     span's own id is dropped, as Zipkin does.
//   - shared (a server span that reuses its client's span ID) and debug have
//     no OTLP field and the specification leaves them open: they become the
//     bool attributes zipkin.shared and zipkin.debug, so that a Zipkin read
//     API can give them back. Shared spans stay separate spans: same span ID,
//     different kind.
//   - no timestamp: the earliest annotation's, else 0 with the collector's
//     otel.zipkin.absentField.startTime=true marker.
const (
	attrServiceName        = "service.name"
	attrPeerService        = "peer.service"
	attrLocalAddress       = "network.local.address"
	attrLocalPort          = "network.local.port"
	attrPeerAddress        = "network.peer.address"
	attrPeerPort           = "network.peer.port"
	attrShared             = "zipkin.shared"
	attrDebug              = "zipkin.debug"
	attrStartTimeAbsent    = "otel.zipkin.absentField.startTime"
	tagStatusCode          = "otel.status_code"
	tagStatusDescription   = "otel.status_description"
	tagError               = "error"
	tagScopeName           = "otel.scope.name"
	tagScopeVersion        = "otel.scope.version"
	tagLibraryName         = "otel.library.name"
	tagLibraryVersion      = "otel.library.version"
	tagTraceState          = "w3c.tracestate"
	tagOpenTracingSpanKind = "span.kind"
)

// Tag classes: what a tag means to the translation.
const (
	clsPlain = iota
	clsStatusCode
	clsStatusDescription
	clsError
	clsScopeName
	clsScopeVersion
	clsLibraryName
	clsLibraryVersion
	clsTraceState
	clsSpanKind
	clsPeerService
	clsLocalAddress
	clsLocalPort
	clsPeerAddress
	clsPeerPort
)

func classify(k string) int {
	switch k {
	case tagStatusCode:
		return clsStatusCode
	case tagStatusDescription:
		return clsStatusDescription
	case tagError:
		return clsError
	case tagScopeName:
		return clsScopeName
	case tagScopeVersion:
		return clsScopeVersion
	case tagLibraryName:
		return clsLibraryName
	case tagLibraryVersion:
		return clsLibraryVersion
	case tagTraceState:
		return clsTraceState
	case tagOpenTracingSpanKind:
		return clsSpanKind
	case attrPeerService:
		return clsPeerService
	case attrLocalAddress:
		return clsLocalAddress
	case attrLocalPort:
		return clsLocalPort
	case attrPeerAddress:
		return clsPeerAddress
	case attrPeerPort:
		return clsPeerPort
	}
	return clsPlain
}

// plan is what planSpan learns about a span from its tags.
type plan struct {
	kind       tracev1.Span_SpanKind
	code       tracev1.Status_StatusCode
	message    string
	traceState string
	consumed   uint16 // bit per tag class that does not become an attribute
	explicit   uint16 // bit per tag class present among the tags
}

// has tells whether a tag of class c is among the span's tags.
func (p *plan) has(c int) bool { return p.explicit&(1<<c) != 0 }

type scopeKey struct {
	resource      int
	name, version string
}

// planSpan reads a span's tags: status, kind, scope, trace state and which
// tags are consumed. p must be zero.
func planSpan(b *batch, sp *span, p *plan) (scopeName, scopeVersion string) {
	var (
		code, desc, errVal, libName, libVersion, spanKind string
	)
	tags := b.tags[sp.tagsFrom:sp.tagsTo]
	for _, t := range tags {
		c := classify(t.k)
		p.explicit |= 1 << c
		switch c {
		case clsStatusCode:
			code = t.v
		case clsStatusDescription:
			desc = t.v
		case clsError:
			errVal = t.v
		case clsScopeName:
			scopeName = t.v
		case clsScopeVersion:
			scopeVersion = t.v
		case clsLibraryName:
			libName = t.v
		case clsLibraryVersion:
			libVersion = t.v
		case clsTraceState:
			p.traceState = t.v
		case clsSpanKind:
			spanKind = t.v
		}
	}
	consume := func(c int) { p.consumed |= 1 << c }

	consume(clsScopeName)
	consume(clsScopeVersion)
	consume(clsLibraryName)
	consume(clsLibraryVersion)
	consume(clsTraceState)
	if !p.has(clsScopeName) && !p.has(clsScopeVersion) {
		scopeName, scopeVersion = libName, libVersion
	}

	p.kind = sp.kind
	if p.kind == tracev1.Span_SPAN_KIND_UNSPECIFIED && p.has(clsSpanKind) {
		if k, ok := receiver.SpanKind(spanKind); ok {
			p.kind = k
			consume(clsSpanKind)
		}
	}

	known := false
	if p.has(clsStatusCode) {
		switch code {
		case "OK", "STATUS_CODE_OK":
			p.code, known = tracev1.Status_STATUS_CODE_OK, true
		case "ERROR", "STATUS_CODE_ERROR":
			p.code, known = tracev1.Status_STATUS_CODE_ERROR, true
		case "UNSET", "STATUS_CODE_UNSET":
			known = true
		}
	}
	switch {
	case known:
		consume(clsStatusCode)
		if p.has(clsStatusDescription) {
			p.message = desc
			consume(clsStatusDescription)
		}
		if p.has(clsError) && p.code == tracev1.Status_STATUS_CODE_ERROR {
			consume(clsError)
			if p.message == "" && !strings.EqualFold(errVal, "true") {
				p.message = errVal
			}
		}
	case p.has(clsError):
		consume(clsError)
		if !strings.EqualFold(errVal, "false") {
			p.code = tracev1.Status_STATUS_CODE_ERROR
			if !strings.EqualFold(errVal, "true") {
				p.message = errVal
			}
		}
	}
	if p.code != tracev1.Status_STATUS_CODE_ERROR && p.message != "" {
		// OTLP: a description only goes with ERROR; keep it as the tag.
		p.message = ""
		p.consumed &^= 1 << clsStatusDescription
	}
	return scopeName, scopeVersion
}

// appendRequest appends to dst the OTLP ExportTraceServiceRequest of b in
// protobuf: the bytes proto.Marshal writes for the request the rules above
// make of b (translate_ref_test.go builds that request as messages, and the
// tests hold the two to the same bytes), encoded straight from the batch.
//
// Spans are grouped into one ResourceSpans per local service name and one
// ScopeSpans per resource and scope, each in the order of its first span in
// the request, and keep the request's order within their scope. Each span is
// encoded once into a scratch buffer, in request order; the resources and
// scopes are then written around copies of those bytes, their lengths known
// from the spans'.
//
// Every string of a batch is valid UTF-8, as OTLP's proto3 strings must be:
// the JSON scanner replaces invalid UTF-8 with U+FFFD, and proto.Unmarshal
// refuses a zipkin.proto3 body holding any.
func appendRequest(dst []byte, b *batch) []byte {
	e := encoders.Get().(*encoder)
	dst = e.appendRequest(dst, b)
	if e.reset() {
		encoders.Put(e)
	}
	return dst
}

// encoders holds the scratch space of appendRequest between requests.
var encoders = sync.Pool{New: func() any { return new(encoder) }}

// maxPooledBytes bounds the buffers kept for reuse: a rare huge request
// does not pin its memory.
const maxPooledBytes = 16 << 20

// encoder is appendRequest's scratch space.
type encoder struct {
	spans     []byte // the encoded spans, in request order
	ends      []int  // ends[i]: where span i ends in spans
	next      []int  // next[i]: the span after span i in its scope, -1 for none
	resources []encResource
	scopes    []encScope

	resourceIdx map[string]int
	scopeIdx    map[scopeKey]int
}

// encResource is one ResourceSpans of the request.
type encResource struct {
	service     string
	size        int // of the ResourceSpans message
	first, last int // its scopes, linked by encScope.next; -1 for none
	recent      int // the scope of its latest span
}

// encScope is one ScopeSpans of the request.
type encScope struct {
	name, version string
	size          int // of the ScopeSpans message
	first, last   int // its spans, linked by encoder.next
	next          int // the resource's next scope, -1 for none
}

// reset empties e for the next request and tells whether it is worth keeping.
func (e *encoder) reset() bool {
	if cap(e.spans) > maxPooledBytes || len(e.resources) > 1024 || len(e.scopes) > 1024 {
		return false
	}
	e.spans, e.ends, e.next = e.spans[:0], e.ends[:0], e.next[:0]
	clear(e.resources) // drop the strings
	clear(e.scopes)
	e.resources, e.scopes = e.resources[:0], e.scopes[:0]
	clear(e.resourceIdx)
	clear(e.scopeIdx)
	return true
}

func (e *encoder) appendRequest(dst []byte, b *batch) []byte {
	if e.resourceIdx == nil {
		e.resourceIdx = map[string]int{}
		e.scopeIdx = map[scopeKey]int{}
	}
	n := len(b.spans)
	e.ends = slices.Grow(e.ends, n)[:n]
	e.next = slices.Grow(e.next, n)[:n]
	e.spans = slices.Grow(e.spans, spansSize(b))
	lastService, lastResource := "", -1
	for i := range b.spans {
		sp := &b.spans[i]
		var p plan
		name, version := planSpan(b, sp, &p)

		r := lastResource
		if r < 0 || sp.local.serviceName != lastService {
			r = e.resource(sp.local.serviceName)
			lastService, lastResource = sp.local.serviceName, r
		}
		s := e.scope(r, name, version)
		sc := &e.scopes[s]
		e.next[i] = -1
		if sc.first < 0 {
			sc.first = i
		} else {
			e.next[sc.last] = i
		}
		sc.last = i

		from := len(e.spans)
		e.spans = appendSpan(e.spans, b, sp, &p)
		e.ends[i] = len(e.spans)
		sc.size += 1 + protowire.SizeBytes(len(e.spans)-from)
	}

	// Sizes, innermost first.
	total := 0
	for r := range e.resources {
		res := &e.resources[r]
		res.size = 1 + protowire.SizeBytes(resourceSize(res.service))
		for s := res.first; s >= 0; s = e.scopes[s].next {
			sc := &e.scopes[s]
			if sc.name != "" || sc.version != "" {
				sc.size += 1 + protowire.SizeBytes(scopeSize(sc.name, sc.version))
			}
			res.size += 1 + protowire.SizeBytes(sc.size)
		}
		total += 1 + protowire.SizeBytes(res.size)
	}

	dst = slices.Grow(dst, total)
	for r := range e.resources {
		res := &e.resources[r]
		dst = append(dst, pbRequestResourceSpans)
		dst = appendVarint(dst, uint64(res.size))
		dst = append(dst, pbResourceSpansResource)
		dst = appendVarint(dst, uint64(resourceSize(res.service)))
		if res.service != "" {
			dst = appendStrKV(dst, pbResourceAttributes, attrServiceName, res.service)
		}
		for s := res.first; s >= 0; s = e.scopes[s].next {
			sc := &e.scopes[s]
			dst = append(dst, pbResourceSpansScopeSpans)
			dst = appendVarint(dst, uint64(sc.size))
			if sc.name != "" || sc.version != "" {
				dst = append(dst, pbScopeSpansScope)
				dst = appendVarint(dst, uint64(scopeSize(sc.name, sc.version)))
				dst = appendStr(dst, pbScopeName, sc.name)
				dst = appendStr(dst, pbScopeVersion, sc.version)
			}
			for i := sc.first; i >= 0; i = e.next[i] {
				from := 0
				if i > 0 {
					from = e.ends[i-1]
				}
				dst = append(dst, pbScopeSpansSpans)
				dst = appendBytes(dst, e.spans[from:e.ends[i]])
			}
		}
	}
	return dst
}

// spansSize estimates the size of b's encoded spans, so that the scratch
// buffer grows once, if at all: per span its IDs, times, kind and the
// endpoints' attributes, and its strings and their keys.
func spansSize(b *batch) int {
	n := 0
	for i := range b.tags {
		n += len(b.tags[i].k) + len(b.tags[i].v) + 12
	}
	for i := range b.annos {
		n += len(b.annos[i].value) + 16
	}
	for i := range b.spans {
		n += 256 + len(b.spans[i].name) + len(b.spans[i].remote.serviceName)
	}
	return n
}

// resource returns the index of the resource of a local service name,
// adding it if it is new.
func (e *encoder) resource(service string) int {
	r, ok := e.resourceIdx[service]
	if !ok {
		r = len(e.resources)
		e.resourceIdx[service] = r
		e.resources = append(e.resources, encResource{service: service, first: -1, last: -1, recent: -1})
	}
	return r
}

// scope returns the index of the scope of a resource, adding it if it is new.
func (e *encoder) scope(r int, name, version string) int {
	res := &e.resources[r]
	if s := res.recent; s >= 0 && e.scopes[s].name == name && e.scopes[s].version == version {
		return s // most spans of a resource share its scope
	}
	key := scopeKey{r, name, version}
	s, ok := e.scopeIdx[key]
	if !ok {
		s = len(e.scopes)
		e.scopeIdx[key] = s
		e.scopes = append(e.scopes, encScope{name: name, version: version, first: -1, last: -1, next: -1})
		if res.last < 0 {
			res.first = s
		} else {
			e.scopes[res.last].next = s
		}
		res.last = s
	}
	res.recent = s
	return s
}

// appendSpan appends the fields of a span's Span message, without its tag
// and length.
func appendSpan(buf []byte, b *batch, sp *span, p *plan) []byte {
	buf = append(buf, pbSpanTraceID, byte(len(sp.traceID)))
	buf = append(buf, sp.traceID[:]...)
	buf = append(buf, pbSpanSpanID, byte(len(sp.id)))
	buf = append(buf, sp.id[:]...)
	buf = appendStr(buf, pbSpanTraceState, p.traceState)
	if sp.hasParent && sp.parentID != sp.id {
		buf = append(buf, pbSpanParentSpanID, byte(len(sp.parentID)))
		buf = append(buf, sp.parentID[:]...)
	}
	buf = appendStr(buf, pbSpanName, sp.name)
	if p.kind != tracev1.Span_SPAN_KIND_UNSPECIFIED {
		buf = append(buf, pbSpanKind)
		buf = appendVarint(buf, uint64(p.kind))
	}
	annos := b.annos[sp.annosFrom:sp.annosTo]
	start := sp.timestamp
	if start == 0 {
		for _, an := range annos {
			if start == 0 || an.ts < start {
				start = an.ts
			}
		}
	}
	buf = appendFixed64(buf, pbSpanStartTime, start*1000)
	buf = appendFixed64(buf, pbSpanEndTime, (start+sp.duration)*1000)

	// Attributes: the tags that are not consumed, then the endpoints'
	// unless a tag of the same key was explicit, then the markers.
	tags := b.tags[sp.tagsFrom:sp.tagsTo]
	if p.consumed&p.explicit == 0 { // no tag is consumed
		for _, t := range tags {
			buf = appendStrKV(buf, pbSpanAttributes, t.k, t.v)
		}
	} else {
		for _, t := range tags {
			if p.consumed&(1<<classify(t.k)) == 0 {
				buf = appendStrKV(buf, pbSpanAttributes, t.k, t.v)
			}
		}
	}
	if a := sp.local.address(); a != "" && !p.has(clsLocalAddress) {
		buf = appendStrKV(buf, pbSpanAttributes, attrLocalAddress, a)
	}
	if sp.local.port != 0 && !p.has(clsLocalPort) {
		buf = appendIntKV(buf, pbSpanAttributes, attrLocalPort, int64(sp.local.port))
	}
	if sp.remote.serviceName != "" && !p.has(clsPeerService) {
		buf = appendStrKV(buf, pbSpanAttributes, attrPeerService, sp.remote.serviceName)
	}
	if a := sp.remote.address(); a != "" && !p.has(clsPeerAddress) {
		buf = appendStrKV(buf, pbSpanAttributes, attrPeerAddress, a)
	}
	if sp.remote.port != 0 && !p.has(clsPeerPort) {
		buf = appendIntKV(buf, pbSpanAttributes, attrPeerPort, int64(sp.remote.port))
	}
	if sp.shared && p.kind != tracev1.Span_SPAN_KIND_CLIENT {
		buf = appendBoolKV(buf, pbSpanAttributes, attrShared, true)
	}
	if sp.debug {
		buf = appendBoolKV(buf, pbSpanAttributes, attrDebug, true)
	}
	if start == 0 {
		buf = appendBoolKV(buf, pbSpanAttributes, attrStartTimeAbsent, true)
	}

	for _, an := range annos {
		ts := an.ts * 1000
		buf = append(buf, pbSpanEvents)
		buf = appendVarint(buf, uint64(fixed64Size(ts)+strSize(an.value)))
		buf = appendFixed64(buf, pbEventTime, ts)
		buf = appendStr(buf, pbEventName, an.value)
	}
	if p.code != tracev1.Status_STATUS_CODE_UNSET || p.message != "" {
		size := strSize(p.message)
		if p.code != tracev1.Status_STATUS_CODE_UNSET {
			size += 1 + protowire.SizeVarint(uint64(p.code))
		}
		buf = append(buf, pbSpanStatus)
		buf = appendVarint(buf, uint64(size))
		buf = appendStr(buf, pbStatusMessage, p.message)
		if p.code != tracev1.Status_STATUS_CODE_UNSET {
			buf = append(buf, pbStatusCode)
			buf = appendVarint(buf, uint64(p.code))
		}
	}
	return buf
}

// The OTLP fields appendRequest writes, pb<Message><Field>, as their
// one-byte tags: field number << 3 | wire type (the field numbers of
// opentelemetry/proto/collector/trace/v1, trace/v1, resource/v1, common/v1).
const (
	pbRequestResourceSpans    = 1<<3 | byte(protowire.BytesType) // ExportTraceServiceRequest.resource_spans
	pbResourceSpansResource   = 1<<3 | byte(protowire.BytesType) // ResourceSpans.resource
	pbResourceSpansScopeSpans = 2<<3 | byte(protowire.BytesType) // ResourceSpans.scope_spans
	pbResourceAttributes      = 1<<3 | byte(protowire.BytesType) // Resource.attributes
	pbScopeSpansScope         = 1<<3 | byte(protowire.BytesType) // ScopeSpans.scope
	pbScopeSpansSpans         = 2<<3 | byte(protowire.BytesType) // ScopeSpans.spans
	pbScopeName               = 1<<3 | byte(protowire.BytesType) // InstrumentationScope.name
	pbScopeVersion            = 2<<3 | byte(protowire.BytesType) // InstrumentationScope.version
	pbSpanTraceID             = 1<<3 | byte(protowire.BytesType)
	pbSpanSpanID              = 2<<3 | byte(protowire.BytesType)
	pbSpanTraceState          = 3<<3 | byte(protowire.BytesType)
	pbSpanParentSpanID        = 4<<3 | byte(protowire.BytesType)
	pbSpanName                = 5<<3 | byte(protowire.BytesType)
	pbSpanKind                = 6<<3 | byte(protowire.VarintType)
	pbSpanStartTime           = 7<<3 | byte(protowire.Fixed64Type)
	pbSpanEndTime             = 8<<3 | byte(protowire.Fixed64Type)
	pbSpanAttributes          = 9<<3 | byte(protowire.BytesType)
	pbSpanEvents              = 11<<3 | byte(protowire.BytesType)
	pbSpanStatus              = 15<<3 | byte(protowire.BytesType)
	pbEventTime               = 1<<3 | byte(protowire.Fixed64Type) // Span.Event.time_unix_nano
	pbEventName               = 2<<3 | byte(protowire.BytesType)   // Span.Event.name
	pbStatusMessage           = 2<<3 | byte(protowire.BytesType)   // Status.message
	pbStatusCode              = 3<<3 | byte(protowire.VarintType)  // Status.code
	pbKeyValueKey             = 1<<3 | byte(protowire.BytesType)
	pbKeyValueValue           = 2<<3 | byte(protowire.BytesType)
	pbAnyValueString          = 1<<3 | byte(protowire.BytesType) // AnyValue.string_value
	pbAnyValueBool            = 2<<3 | byte(protowire.VarintType)
	pbAnyValueInt             = 3<<3 | byte(protowire.VarintType)
)

// As proto.Marshal does for proto3, zero scalars and empty strings are not
// written, but a value of a oneof (AnyValue's) always is.

// strSize is the size of a string field, 0 if empty.
func strSize(s string) int {
	if s == "" {
		return 0
	}
	return 1 + protowire.SizeBytes(len(s))
}

func appendStr(b []byte, tag byte, s string) []byte {
	if s == "" {
		return b
	}
	b = append(b, tag)
	return appendString(b, s)
}

func fixed64Size(v uint64) int {
	if v == 0 {
		return 0
	}
	return 1 + protowire.SizeFixed64()
}

func appendFixed64(b []byte, tag byte, v uint64) []byte {
	if v == 0 {
		return b
	}
	b = append(b, tag)
	return protowire.AppendFixed64(b, v)
}

func resourceSize(service string) int {
	if service == "" {
		return 0
	}
	return strKVSize(attrServiceName, service)
}

func scopeSize(name, version string) int { return strSize(name) + strSize(version) }

// strKVSize is the size of a KeyValue field holding a string.
func strKVSize(k, v string) int { return kvSize(k, 1+protowire.SizeBytes(len(v))) }

// kvSize is the size of a KeyValue field, tag included, whose AnyValue
// has size valueSize.
func kvSize(k string, valueSize int) int {
	n := strSize(k) + 1 + protowire.SizeBytes(valueSize)
	return 1 + protowire.SizeBytes(n)
}

// appendKV appends a KeyValue's tag, length and key, and its AnyValue's tag
// and length.
func appendKV(b []byte, tag byte, k string, valueSize int) []byte {
	b = append(b, tag)
	b = appendVarint(b, uint64(strSize(k)+1+protowire.SizeBytes(valueSize)))
	b = appendStr(b, pbKeyValueKey, k)
	b = append(b, pbKeyValueValue)
	return appendVarint(b, uint64(valueSize))
}

func appendStrKV(b []byte, tag byte, k, v string) []byte {
	b = appendKV(b, tag, k, 1+protowire.SizeBytes(len(v)))
	b = append(b, pbAnyValueString)
	return appendString(b, v)
}

func appendIntKV(b []byte, tag byte, k string, v int64) []byte {
	b = appendKV(b, tag, k, 1+protowire.SizeVarint(uint64(v)))
	b = append(b, pbAnyValueInt)
	return appendVarint(b, uint64(v))
}

func appendBoolKV(b []byte, tag byte, k string, v bool) []byte {
	b = appendKV(b, tag, k, 2)
	return append(b, pbAnyValueBool, byte(protowire.EncodeBool(v)))
}

// appendVarint is protowire.AppendVarint, inlined for the one-byte values
// most lengths are.
func appendVarint(b []byte, v uint64) []byte {
	if v < 0x80 {
		return append(b, byte(v))
	}
	return protowire.AppendVarint(b, v)
}

func appendString(b []byte, s string) []byte {
	b = appendVarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendBytes(b []byte, v []byte) []byte {
	b = appendVarint(b, uint64(len(v)))
	return append(b, v...)
}
