package zipkin

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	zipkinpb "github.com/openzipkin/zipkin-go/proto/zipkin_proto3"
	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// decodeProto appends the spans of a zipkin.proto3 ListOfSpans to b, with
// zipkin-go's generated types. It returns the number of spans in the list.
// zipkin.proto's rules: trace_id is 8 or 16 bytes, id 8, parent_id 8 or
// absent; as in JSON, all-zero IDs are invalid.
func decodeProto(body []byte, b *batch) (int, error) {
	// An empty body is a valid, empty list.
	var list zipkinpb.ListOfSpans
	if err := proto.Unmarshal(body, &list); err != nil {
		return 0, fmt.Errorf("invalid zipkin.proto3 ListOfSpans: %w", err)
	}
	var bad error
	b.spans = slices.Grow(b.spans, len(list.Spans))
	for i, ps := range list.Spans {
		if err := protoSpan(ps, b); err != nil && bad == nil {
			bad = &spanError{i, err}
		}
	}
	return len(list.Spans), bad
}

func protoSpan(ps *zipkinpb.Span, b *batch) error {
	sp := span{
		name:      ps.Name,
		kind:      protoKind(ps.Kind),
		timestamp: ps.Timestamp,
		duration:  ps.Duration,
		debug:     ps.Debug,
		shared:    ps.Shared,
		local:     protoEndpoint(ps.LocalEndpoint),
		remote:    protoEndpoint(ps.RemoteEndpoint),
		tagsFrom:  len(b.tags),
		annosFrom: len(b.annos),
	}
	switch len(ps.TraceId) {
	case 0:
		return errors.New("trace_id is missing")
	case 8, 16:
		copy(sp.traceID[16-len(ps.TraceId):], ps.TraceId)
	default:
		return fmt.Errorf("trace_id has %d bytes, want 8 or 16", len(ps.TraceId))
	}
	if allZero(sp.traceID[:]) {
		return errors.New("trace_id is all zeros")
	}
	switch len(ps.Id) {
	case 0:
		return errors.New("id is missing")
	case 8:
		copy(sp.id[:], ps.Id)
	default:
		return fmt.Errorf("id has %d bytes, want 8", len(ps.Id))
	}
	if allZero(sp.id[:]) {
		return errors.New("id is all zeros")
	}
	switch len(ps.ParentId) {
	case 0:
	case 8:
		copy(sp.parentID[:], ps.ParentId)
		sp.hasParent = !allZero(sp.parentID[:])
	default:
		return fmt.Errorf("parent_id has %d bytes, want 8", len(ps.ParentId))
	}
	for j, a := range ps.Annotations {
		if a == nil || a.Timestamp == 0 {
			return fmt.Errorf("annotation %d has no timestamp", j)
		}
		b.annos = append(b.annos, annotation{ts: a.Timestamp, value: a.Value})
	}
	// A proto map has no order: sort by key, so that a request always
	// translates to the same bytes.
	start := len(b.tags)
	for k, v := range ps.Tags {
		b.tags = append(b.tags, tag{k, v})
	}
	slices.SortFunc(b.tags[start:], func(x, y tag) int { return strings.Compare(x.k, y.k) })
	sp.tagsTo, sp.annosTo = len(b.tags), len(b.annos)
	if err := sp.checkTimes(b); err != nil {
		return err
	}
	b.spans = append(b.spans, sp)
	return nil
}

func protoKind(k zipkinpb.Span_Kind) tracev1.Span_SpanKind {
	switch k {
	case zipkinpb.Span_CLIENT:
		return tracev1.Span_SPAN_KIND_CLIENT
	case zipkinpb.Span_SERVER:
		return tracev1.Span_SPAN_KIND_SERVER
	case zipkinpb.Span_PRODUCER:
		return tracev1.Span_SPAN_KIND_PRODUCER
	case zipkinpb.Span_CONSUMER:
		return tracev1.Span_SPAN_KIND_CONSUMER
	}
	return tracev1.Span_SPAN_KIND_UNSPECIFIED
}

// protoEndpoint converts an endpoint; addresses of the wrong length and
// ports outside 1-65535 are dropped, as Zipkin does.
func protoEndpoint(pe *zipkinpb.Endpoint) endpoint {
	if pe == nil {
		return endpoint{}
	}
	e := endpoint{serviceName: pe.ServiceName}
	// zipkin-go writes a net.IP as is, which may be the 16-byte form of an
	// IPv4 address.
	if a, ok := netip.AddrFromSlice(pe.Ipv4); ok && a.Unmap().Is4() {
		e.ip4 = a.Unmap().String()
	}
	if a, ok := netip.AddrFromSlice(pe.Ipv6); ok && a.Is6() {
		e.ip6 = a.String()
	}
	if pe.Port > 0 && pe.Port <= 0xffff {
		e.port = uint16(pe.Port)
	}
	return e
}
