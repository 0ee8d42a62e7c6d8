package zipkin

import (
	"strings"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonv1 "go.opentelemetry.io/proto/otlp/common/v1"
	resourcev1 "go.opentelemetry.io/proto/otlp/resource/v1"
	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"

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

// plan is what the first pass learns about a span.
type plan struct {
	scope      int
	kind       tracev1.Span_SpanKind
	code       tracev1.Status_StatusCode
	message    string
	traceState string
	consumed   uint16 // bit per tag class that does not become an attribute
	explicit   uint16 // bit per tag class present among the tags
	strs, ints int    // attribute counts by type
	bools      int
}

func (p *plan) attrs() int { return p.strs + p.ints + p.bools }

type scopeKey struct {
	resource      int
	name, version string
}

// translate turns a batch into an OTLP request. Everything of the request
// is allocated in a few slabs, one per message type.
func translate(b *batch) *coltracepb.ExportTraceServiceRequest {
	plans := make([]plan, len(b.spans))
	var (
		resources    []*tracev1.ResourceSpans
		resourceIdx  = map[string]int{}
		scopes       []*tracev1.ScopeSpans
		scopeIdx     = map[scopeKey]int{}
		scopeCounts  []int
		lastService  string
		lastResource = -1
		totals       plan
		events       int
		statuses     int
	)
	for i := range b.spans {
		sp := &b.spans[i]
		p := &plans[i]
		name, version := planSpan(b, sp, p)

		r := lastResource
		if r < 0 || sp.local.serviceName != lastService {
			var ok bool
			if r, ok = resourceIdx[sp.local.serviceName]; !ok {
				r = len(resources)
				resourceIdx[sp.local.serviceName] = r
				resources = append(resources, newResourceSpans(sp.local.serviceName))
			}
			lastService, lastResource = sp.local.serviceName, r
		}
		key := scopeKey{r, name, version}
		s, ok := scopeIdx[key]
		if !ok {
			s = len(scopes)
			scopeIdx[key] = s
			ss := &tracev1.ScopeSpans{}
			if name != "" || version != "" {
				ss.Scope = &commonv1.InstrumentationScope{Name: name, Version: version}
			}
			scopes = append(scopes, ss)
			scopeCounts = append(scopeCounts, 0)
			resources[r].ScopeSpans = append(resources[r].ScopeSpans, ss)
		}
		p.scope = s
		scopeCounts[s]++
		totals.strs += p.strs
		totals.ints += p.ints
		totals.bools += p.bools
		events += sp.annosTo - sp.annosFrom
		if p.code != tracev1.Status_STATUS_CODE_UNSET || p.message != "" {
			statuses++
		}
	}

	// Slabs. Each ScopeSpans gets its share of one []*Span.
	spans := make([]tracev1.Span, len(b.spans))
	spanPtrs := make([]*tracev1.Span, len(b.spans))
	off := 0
	for s, n := range scopeCounts {
		scopes[s].Spans = spanPtrs[off : off : off+n]
		off += n
	}
	a := attrSlab{
		kvs:   make([]commonv1.KeyValue, totals.attrs()),
		ptrs:  make([]*commonv1.KeyValue, totals.attrs()),
		anys:  make([]commonv1.AnyValue, totals.attrs()),
		strs:  make([]commonv1.AnyValue_StringValue, totals.strs),
		ints:  make([]commonv1.AnyValue_IntValue, totals.ints),
		bools: make([]commonv1.AnyValue_BoolValue, totals.bools),
	}
	evs := make([]tracev1.Span_Event, events)
	evPtrs := make([]*tracev1.Span_Event, events)
	sts := make([]tracev1.Status, statuses)

	for i := range b.spans {
		sp, p, out := &b.spans[i], &plans[i], &spans[i]
		out.TraceId = sp.traceID[:]
		out.SpanId = sp.id[:]
		if sp.hasParent && sp.parentID != sp.id {
			out.ParentSpanId = sp.parentID[:]
		}
		out.TraceState = p.traceState
		out.Name = sp.name
		out.Kind = p.kind

		annos := b.annos[sp.annosFrom:sp.annosTo]
		start := sp.timestamp
		if start == 0 {
			for _, an := range annos {
				if start == 0 || an.ts < start {
					start = an.ts
				}
			}
		}
		out.StartTimeUnixNano = start * 1000
		out.EndTimeUnixNano = (start + sp.duration) * 1000

		out.Attributes = a.take(p.attrs())
		for _, t := range b.tags[sp.tagsFrom:sp.tagsTo] {
			if p.consumed&(1<<classify(t.k)) == 0 {
				a.str(t.k, t.v)
			}
		}
		if sp.local.ip6 != "" && p.explicit&(1<<clsLocalAddress) == 0 {
			a.str(attrLocalAddress, sp.local.ip6)
		} else if sp.local.ip4 != "" && p.explicit&(1<<clsLocalAddress) == 0 {
			a.str(attrLocalAddress, sp.local.ip4)
		}
		if sp.local.port != 0 && p.explicit&(1<<clsLocalPort) == 0 {
			a.int(attrLocalPort, int64(sp.local.port))
		}
		if sp.remote.serviceName != "" && p.explicit&(1<<clsPeerService) == 0 {
			a.str(attrPeerService, sp.remote.serviceName)
		}
		if sp.remote.ip6 != "" && p.explicit&(1<<clsPeerAddress) == 0 {
			a.str(attrPeerAddress, sp.remote.ip6)
		} else if sp.remote.ip4 != "" && p.explicit&(1<<clsPeerAddress) == 0 {
			a.str(attrPeerAddress, sp.remote.ip4)
		}
		if sp.remote.port != 0 && p.explicit&(1<<clsPeerPort) == 0 {
			a.int(attrPeerPort, int64(sp.remote.port))
		}
		if sp.shared && p.kind != tracev1.Span_SPAN_KIND_CLIENT {
			a.bool(attrShared, true)
		}
		if sp.debug {
			a.bool(attrDebug, true)
		}
		if start == 0 {
			a.bool(attrStartTimeAbsent, true)
		}

		if len(annos) > 0 {
			out.Events = evPtrs[:len(annos):len(annos)]
			evPtrs = evPtrs[len(annos):]
			for j, an := range annos {
				ev := &evs[j]
				ev.TimeUnixNano = an.ts * 1000
				ev.Name = an.value
				out.Events[j] = ev
			}
			evs = evs[len(annos):]
		}
		if p.code != tracev1.Status_STATUS_CODE_UNSET || p.message != "" {
			st := &sts[0]
			sts = sts[1:]
			st.Code, st.Message = p.code, p.message
			out.Status = st
		}
		ss := scopes[p.scope]
		ss.Spans = append(ss.Spans, out)
	}
	return &coltracepb.ExportTraceServiceRequest{ResourceSpans: resources}
}

func newResourceSpans(service string) *tracev1.ResourceSpans {
	rs := &tracev1.ResourceSpans{Resource: &resourcev1.Resource{}}
	if service != "" {
		rs.Resource.Attributes = []*commonv1.KeyValue{{
			Key:   attrServiceName,
			Value: &commonv1.AnyValue{Value: &commonv1.AnyValue_StringValue{StringValue: service}},
		}}
	}
	return rs
}

// planSpan reads a span's tags: status, kind, scope, trace state, which
// tags are consumed and how many attributes the span gets.
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
	has := func(c int) bool { return p.explicit&(1<<c) != 0 }
	consume := func(c int) { p.consumed |= 1 << c }

	consume(clsScopeName)
	consume(clsScopeVersion)
	consume(clsLibraryName)
	consume(clsLibraryVersion)
	consume(clsTraceState)
	if !has(clsScopeName) && !has(clsScopeVersion) {
		scopeName, scopeVersion = libName, libVersion
	}

	p.kind = sp.kind
	if p.kind == tracev1.Span_SPAN_KIND_UNSPECIFIED && has(clsSpanKind) {
		if k, ok := receiver.SpanKind(spanKind); ok {
			p.kind = k
			consume(clsSpanKind)
		}
	}

	known := false
	if has(clsStatusCode) {
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
		if has(clsStatusDescription) {
			p.message = desc
			consume(clsStatusDescription)
		}
		if has(clsError) && p.code == tracev1.Status_STATUS_CODE_ERROR {
			consume(clsError)
			if p.message == "" && !strings.EqualFold(errVal, "true") {
				p.message = errVal
			}
		}
	case has(clsError):
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

	for _, t := range tags {
		if p.consumed&(1<<classify(t.k)) == 0 {
			p.strs++
		}
	}
	if (sp.local.ip4 != "" || sp.local.ip6 != "") && !has(clsLocalAddress) {
		p.strs++
	}
	if sp.local.port != 0 && !has(clsLocalPort) {
		p.ints++
	}
	if sp.remote.serviceName != "" && !has(clsPeerService) {
		p.strs++
	}
	if (sp.remote.ip4 != "" || sp.remote.ip6 != "") && !has(clsPeerAddress) {
		p.strs++
	}
	if sp.remote.port != 0 && !has(clsPeerPort) {
		p.ints++
	}
	if sp.shared && p.kind != tracev1.Span_SPAN_KIND_CLIENT {
		p.bools++
	}
	if sp.debug {
		p.bools++
	}
	if sp.timestamp == 0 && sp.annosFrom == sp.annosTo {
		p.bools++
	}
	return scopeName, scopeVersion
}

// attrSlab hands out attributes from preallocated slabs.
type attrSlab struct {
	kvs   []commonv1.KeyValue
	ptrs  []*commonv1.KeyValue
	anys  []commonv1.AnyValue
	strs  []commonv1.AnyValue_StringValue
	ints  []commonv1.AnyValue_IntValue
	bools []commonv1.AnyValue_BoolValue
	cur   []*commonv1.KeyValue // the span's attributes being filled
}

// take reserves n attributes for a span; str, int and bool fill them.
func (a *attrSlab) take(n int) []*commonv1.KeyValue {
	if n == 0 {
		a.cur = nil
		return nil
	}
	out := a.ptrs[:n:n]
	a.ptrs = a.ptrs[n:]
	a.cur = out[:0]
	return out
}

func (a *attrSlab) next(k string) *commonv1.AnyValue {
	kv, v := &a.kvs[0], &a.anys[0]
	a.kvs, a.anys = a.kvs[1:], a.anys[1:]
	kv.Key, kv.Value = k, v
	a.cur = append(a.cur, kv)
	return v
}

func (a *attrSlab) str(k, s string) {
	v := &a.strs[0]
	a.strs = a.strs[1:]
	v.StringValue = s
	a.next(k).Value = v
}

func (a *attrSlab) int(k string, n int64) {
	v := &a.ints[0]
	a.ints = a.ints[1:]
	v.IntValue = n
	a.next(k).Value = v
}

func (a *attrSlab) bool(k string, b bool) {
	v := &a.bools[0]
	a.bools = a.bools[1:]
	v.BoolValue = b
	a.next(k).Value = v
}
