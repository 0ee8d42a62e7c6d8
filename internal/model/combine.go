package model

import (
	"encoding/binary"
	"slices"

	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// spanKey identifies a span across replicas and partial results. The kind is
// part of it so that Zipkin "shared" client and server spans, which carry the
// same span ID, stay two spans.
type spanKey struct {
	id   uint64
	kind tracev1.Span_SpanKind
}

// Combine merges partial traces (from ingesters, blocks and replicas) into
// one, keeping each span once. Spans under an identical resource and scope are
// put together; order is that of first appearance. Nil parts are skipped; the
// result is nil when no part has spans.
func Combine(parts ...*tracev1.TracesData) *tracev1.TracesData {
	var (
		out     = &tracev1.TracesData{}
		seen    = map[spanKey]struct{}{}
		rsByKey = map[string]*tracev1.ResourceSpans{}
		ssByKey = map[string]*tracev1.ScopeSpans{}
		marshal = proto.MarshalOptions{Deterministic: true}
		spans   int
	)
	for _, part := range parts {
		if part == nil {
			continue
		}
		for _, rs := range part.ResourceSpans {
			rkey, _ := marshal.Marshal(&tracev1.ResourceSpans{Resource: rs.Resource, SchemaUrl: rs.SchemaUrl})
			outRS, ok := rsByKey[string(rkey)]
			if !ok {
				outRS = &tracev1.ResourceSpans{Resource: rs.Resource, SchemaUrl: rs.SchemaUrl}
				rsByKey[string(rkey)] = outRS
				out.ResourceSpans = append(out.ResourceSpans, outRS)
			}
			for _, ss := range rs.ScopeSpans {
				skey, _ := marshal.Marshal(&tracev1.ScopeSpans{Scope: ss.Scope, SchemaUrl: ss.SchemaUrl})
				key := string(rkey) + "\x00" + string(skey)
				outSS, ok := ssByKey[key]
				if !ok {
					outSS = &tracev1.ScopeSpans{Scope: ss.Scope, SchemaUrl: ss.SchemaUrl}
					ssByKey[key] = outSS
					outRS.ScopeSpans = append(outRS.ScopeSpans, outSS)
				}
				for _, s := range ss.Spans {
					k := spanKey{kind: s.Kind}
					if len(s.SpanId) == 8 {
						k.id = binary.BigEndian.Uint64(s.SpanId)
					}
					if _, dup := seen[k]; dup && len(s.SpanId) == 8 {
						continue
					}
					seen[k] = struct{}{}
					outSS.Spans = append(outSS.Spans, s)
					spans++
				}
			}
		}
	}
	if spans == 0 {
		return nil
	}
	// A resource or scope whose spans were all duplicates stays out.
	out.ResourceSpans = slices.DeleteFunc(out.ResourceSpans, func(rs *tracev1.ResourceSpans) bool {
		rs.ScopeSpans = slices.DeleteFunc(rs.ScopeSpans, func(ss *tracev1.ScopeSpans) bool { return len(ss.Spans) == 0 })
		return len(rs.ScopeSpans) == 0
	})
	return out
}

// SpanCount is the number of spans in a trace.
func SpanCount(td *tracev1.TracesData) int {
	n := 0
	for _, rs := range td.GetResourceSpans() {
		for _, ss := range rs.ScopeSpans {
			n += len(ss.Spans)
		}
	}
	return n
}

// Truncate returns the longest prefix of td, in whole spans, whose encoding
// fits in maxBytes, and whether anything was cut.
func Truncate(td *tracev1.TracesData, maxBytes int) (*tracev1.TracesData, bool) {
	if maxBytes <= 0 || proto.Size(td) <= maxBytes {
		return td, false
	}
	out := &tracev1.TracesData{}
	size := 0
	for _, rs := range td.ResourceSpans {
		outRS := &tracev1.ResourceSpans{Resource: rs.Resource, SchemaUrl: rs.SchemaUrl}
		rsBase := proto.Size(outRS) + 8 // tag and length of the ResourceSpans, at most
		for _, ss := range rs.ScopeSpans {
			outSS := &tracev1.ScopeSpans{Scope: ss.Scope, SchemaUrl: ss.SchemaUrl}
			ssBase := proto.Size(outSS) + 8
			for _, s := range ss.Spans {
				need := proto.Size(s) + 8
				if len(outSS.Spans) == 0 {
					need += ssBase
					if len(outRS.ScopeSpans) == 0 {
						need += rsBase
					}
				}
				if size+need > maxBytes {
					return finish(out, outRS, outSS), true
				}
				size += need
				outSS.Spans = append(outSS.Spans, s)
			}
			if len(outSS.Spans) > 0 {
				outRS.ScopeSpans = append(outRS.ScopeSpans, outSS)
			}
		}
		if len(outRS.ScopeSpans) > 0 {
			out.ResourceSpans = append(out.ResourceSpans, outRS)
		}
	}
	return out, true
}

func finish(out *tracev1.TracesData, rs *tracev1.ResourceSpans, ss *tracev1.ScopeSpans) *tracev1.TracesData {
	if len(ss.Spans) > 0 {
		rs.ScopeSpans = append(rs.ScopeSpans, ss)
	}
	if len(rs.ScopeSpans) > 0 {
		out.ResourceSpans = append(out.ResourceSpans, rs)
	}
	return out
}
