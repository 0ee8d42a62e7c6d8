package zipkin

import (
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonv1 "go.opentelemetry.io/proto/otlp/common/v1"
	resourcev1 "go.opentelemetry.io/proto/otlp/resource/v1"
	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"
)

// translateRef is the translation as it was before appendRequest: it builds
// the OTLP request as a tree of messages, allocated in a few slabs, one per
// message type, for proto.Marshal. It is the oracle appendRequest must match
// byte for byte. Only the attribute counts moved out of planSpan, into
// countAttrs.
func translateRef(b *batch) *coltracepb.ExportTraceServiceRequest {
	plans := make([]plan, len(b.spans))
	counts := make([]attrCounts, len(b.spans))
	spanScope := make([]int, len(b.spans))
	var (
		resources    []*tracev1.ResourceSpans
		resourceIdx  = map[string]int{}
		scopes       []*tracev1.ScopeSpans
		scopeIdx     = map[scopeKey]int{}
		scopeCounts  []int
		lastService  string
		lastResource = -1
		totals       attrCounts
		events       int
		statuses     int
	)
	for i := range b.spans {
		sp := &b.spans[i]
		p := &plans[i]
		name, version := planSpan(b, sp, p)
		counts[i] = countAttrs(b, sp, p)

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
		spanScope[i] = s
		scopeCounts[s]++
		totals.strs += counts[i].strs
		totals.ints += counts[i].ints
		totals.bools += counts[i].bools
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

		out.Attributes = a.take(counts[i].attrs())
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
		ss := scopes[spanScope[i]]
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

// attrCounts counts a span's attributes by type, for the slabs.
type attrCounts struct{ strs, ints, bools int }

func (c attrCounts) attrs() int { return c.strs + c.ints + c.bools }

// countAttrs counts the attributes translateRef gives a span (once the last
// part of planSpan).
func countAttrs(b *batch, sp *span, p *plan) attrCounts {
	var c attrCounts
	has := func(cls int) bool { return p.explicit&(1<<cls) != 0 }
	for _, t := range b.tags[sp.tagsFrom:sp.tagsTo] {
		if p.consumed&(1<<classify(t.k)) == 0 {
			c.strs++
		}
	}
	if (sp.local.ip4 != "" || sp.local.ip6 != "") && !has(clsLocalAddress) {
		c.strs++
	}
	if sp.local.port != 0 && !has(clsLocalPort) {
		c.ints++
	}
	if sp.remote.serviceName != "" && !has(clsPeerService) {
		c.strs++
	}
	if (sp.remote.ip4 != "" || sp.remote.ip6 != "") && !has(clsPeerAddress) {
		c.strs++
	}
	if sp.remote.port != 0 && !has(clsPeerPort) {
		c.ints++
	}
	if sp.shared && p.kind != tracev1.Span_SPAN_KIND_CLIENT {
		c.bools++
	}
	if sp.debug {
		c.bools++
	}
	if sp.timestamp == 0 && sp.annosFrom == sp.annosTo {
		c.bools++
	}
	return c
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
