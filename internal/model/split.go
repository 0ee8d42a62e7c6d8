package model

import (
	"errors"
	"fmt"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
)

// ErrMalformed is wrapped by every error about undecodable OTLP bytes.
var ErrMalformed = errors.New("malformed OTLP trace data")

// Field numbers of the OTLP messages that SplitByTrace walks. An
// ExportTraceServiceRequest and a TracesData share the same wire form.
const (
	fieldTracesResourceSpans = 1 // TracesData.resource_spans
	fieldRSResource          = 1 // ResourceSpans.resource
	fieldRSScopeSpans        = 2 // ResourceSpans.scope_spans
	fieldRSSchemaURL         = 3 // ResourceSpans.schema_url
	fieldSSScope             = 1 // ScopeSpans.scope
	fieldSSSpans             = 2 // ScopeSpans.spans
	fieldSSSchemaURL         = 3 // ScopeSpans.schema_url
	fieldSpanTraceID         = 1 // Span.trace_id
)

// Split is a request cut into one encoded TracesData per trace.
type Split struct {
	IDs    []TraceID
	Traces [][]byte // Traces[i] holds the spans of IDs[i]
	Spans  int
	// Truncated counts the attribute values SplitByTraceTruncating cut.
	Truncated int
}

// span is one span found in the request: where its bytes are and which
// resource and scope it belongs to.
type span struct {
	trace  int // index into Split.IDs
	rs, ss int // index into resources and scopes
	b      []byte
}

type rsParts struct{ resource, schema []byte } // raw fields, tag included
type ssParts struct {
	rs            int
	scope, schema []byte
}

// SplitByTrace groups the spans of an encoded ExportTraceServiceRequest (or
// TracesData) by trace ID without decoding them: each output trace copies the
// span bytes as received, under copies of their resource and scope. It is the
// distributor's hot path. Unknown fields of ResourceSpans and ScopeSpans are
// dropped; spans are kept byte for byte.
func SplitByTrace(req []byte) (*Split, error) {
	return SplitByTraceTruncating(req, 0)
}

// SplitByTraceTruncating is SplitByTrace that also cuts every string or
// bytes attribute value longer than maxAttrBytes (0: none) to that length, a
// string at a UTF-8 character boundary: the attributes of resources, scopes,
// spans, span events and links, and values nested in their arrays and
// key-value lists. Keys are kept. A span, resource or scope no longer than
// maxAttrBytes holds no such value and is not looked into; only one that
// holds one is re-encoded, in the rare case, the rest are copied as received.
func SplitByTraceTruncating(req []byte, maxAttrBytes int) (*Split, error) {
	var (
		out       Split
		resources []rsParts
		scopes    []ssParts
		spans     []span
		traceIdx  = map[TraceID]int{}
	)
	err := forEachField(req, func(num protowire.Number, typ protowire.Type, raw, val []byte) error {
		if num != fieldTracesResourceSpans || typ != protowire.BytesType {
			return nil
		}
		rs := len(resources)
		resources = append(resources, rsParts{})
		return forEachField(val, func(num protowire.Number, typ protowire.Type, raw, val []byte) error {
			switch {
			case num == fieldRSResource && typ == protowire.BytesType:
				resources[rs].resource = raw
				if hasLongValue(val, msgResource, maxAttrBytes, 0) {
					var n int
					resources[rs].resource, n = truncatedField(fieldRSResource, val, msgResource, maxAttrBytes)
					out.Truncated += n
				}
			case num == fieldRSSchemaURL && typ == protowire.BytesType:
				resources[rs].schema = raw
			case num == fieldRSScopeSpans && typ == protowire.BytesType:
				ss := len(scopes)
				scopes = append(scopes, ssParts{rs: rs})
				return forEachField(val, func(num protowire.Number, typ protowire.Type, raw, val []byte) error {
					switch {
					case num == fieldSSScope && typ == protowire.BytesType:
						scopes[ss].scope = raw
						if hasLongValue(val, msgScope, maxAttrBytes, 0) {
							var n int
							scopes[ss].scope, n = truncatedField(fieldSSScope, val, msgScope, maxAttrBytes)
							out.Truncated += n
						}
					case num == fieldSSSchemaURL && typ == protowire.BytesType:
						scopes[ss].schema = raw
					case num == fieldSSSpans && typ == protowire.BytesType:
						id, err := spanTraceID(val)
						if err != nil {
							return fmt.Errorf("span %d: %w", len(spans)+1, err)
						}
						if hasLongValue(val, msgSpan, maxAttrBytes, 0) {
							var n int
							val, n = appendTruncated(nil, val, msgSpan, maxAttrBytes, 0)
							out.Truncated += n
						}
						t, ok := traceIdx[id]
						if !ok {
							t = len(out.IDs)
							traceIdx[id] = t
							out.IDs = append(out.IDs, id)
						}
						spans = append(spans, span{trace: t, rs: rs, ss: ss, b: val})
					}
					return nil
				})
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	out.Spans = len(spans)
	if len(spans) == 0 {
		return &out, nil
	}
	// Spans of one trace together, each trace's spans in request order: a
	// counting sort, as every span's trace index is known.
	next := make([]int, len(out.IDs)+1)
	for _, s := range spans {
		next[s.trace+1]++
	}
	for t := 1; t < len(next); t++ {
		next[t] += next[t-1]
	}
	sorted := make([]span, len(spans))
	for _, s := range spans {
		sorted[next[s.trace]] = s
		next[s.trace]++
	}
	spans = sorted
	out.Traces = make([][]byte, len(out.IDs))
	buf := make([]byte, 0, len(req)+len(req)/8)
	for start := 0; start < len(spans); {
		end := start + 1
		for end < len(spans) && spans[end].trace == spans[start].trace {
			end++
		}
		from := len(buf)
		buf = appendTrace(buf, spans[start:end], resources, scopes)
		out.Traces[spans[start].trace] = buf[from:len(buf):len(buf)]
		start = end
	}
	return &out, nil
}

// appendTrace encodes one trace's spans as a TracesData. Consecutive spans of
// the same resource (scope) share one ResourceSpans (ScopeSpans).
func appendTrace(buf []byte, spans []span, resources []rsParts, scopes []ssParts) []byte {
	for i := 0; i < len(spans); {
		rs := spans[i].rs
		j := i
		for j < len(spans) && spans[j].rs == rs {
			j++
		}
		buf = protowire.AppendTag(buf, fieldTracesResourceSpans, protowire.BytesType)
		buf = protowire.AppendVarint(buf, uint64(resourceSpansSize(spans[i:j], resources[rs], scopes)))
		buf = append(buf, resources[rs].resource...)
		for k := i; k < j; {
			ss := spans[k].ss
			l := k
			for l < j && spans[l].ss == ss {
				l++
			}
			buf = protowire.AppendTag(buf, fieldRSScopeSpans, protowire.BytesType)
			buf = protowire.AppendVarint(buf, uint64(scopeSpansSize(spans[k:l], scopes[ss])))
			buf = append(buf, scopes[ss].scope...)
			for _, s := range spans[k:l] {
				buf = protowire.AppendTag(buf, fieldSSSpans, protowire.BytesType)
				buf = protowire.AppendBytes(buf, s.b)
			}
			buf = append(buf, scopes[ss].schema...)
			k = l
		}
		buf = append(buf, resources[rs].schema...)
		i = j
	}
	return buf
}

func resourceSpansSize(spans []span, rs rsParts, scopes []ssParts) int {
	n := len(rs.resource) + len(rs.schema)
	for k := 0; k < len(spans); {
		ss := spans[k].ss
		l := k
		for l < len(spans) && spans[l].ss == ss {
			l++
		}
		size := scopeSpansSize(spans[k:l], scopes[ss])
		n += protowire.SizeTag(fieldRSScopeSpans) + protowire.SizeBytes(size)
		k = l
	}
	return n
}

func scopeSpansSize(spans []span, ss ssParts) int {
	n := len(ss.scope) + len(ss.schema)
	for _, s := range spans {
		n += protowire.SizeTag(fieldSSSpans) + protowire.SizeBytes(len(s.b))
	}
	return n
}

// spanTraceID finds field 1 of an encoded Span, stopping there: encoders
// write it first, so routing reads a few bytes of each span. OTLP requires
// 16 bytes, not all zero.
func spanTraceID(span []byte) (TraceID, error) {
	var id TraceID
	b := span
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return id, fmt.Errorf("%w: %v", ErrMalformed, protowire.ParseError(n))
		}
		if num == fieldSpanTraceID && typ == protowire.BytesType {
			val, m := protowire.ConsumeBytes(b[n:])
			if m < 0 {
				return id, fmt.Errorf("%w: field %d: %v", ErrMalformed, num, protowire.ParseError(m))
			}
			if len(val) != 16 {
				return id, fmt.Errorf("%w: trace_id has %d bytes, want 16", ErrMalformed, len(val))
			}
			copy(id[:], val)
			if id.IsZero() {
				return id, fmt.Errorf("%w: span without a trace_id", ErrMalformed)
			}
			// The rest of the span is copied unparsed; check it is well framed.
			if err := forEachField(b[n+m:], func(protowire.Number, protowire.Type, []byte, []byte) error { return nil }); err != nil {
				return id, err
			}
			return id, nil
		}
		m := protowire.ConsumeFieldValue(num, typ, b[n:])
		if m < 0 {
			return id, fmt.Errorf("%w: field %d: %v", ErrMalformed, num, protowire.ParseError(m))
		}
		b = b[n+m:]
	}
	return id, fmt.Errorf("%w: span without a trace_id", ErrMalformed)
}

// forEachField calls fn for each top-level field of an encoded message with
// the field's raw bytes (tag included) and, for length-delimited fields, its value.
func forEachField(b []byte, fn func(num protowire.Number, typ protowire.Type, raw, val []byte) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("%w: %v", ErrMalformed, protowire.ParseError(n))
		}
		var val []byte
		var m int
		if typ == protowire.BytesType {
			val, m = protowire.ConsumeBytes(b[n:])
		} else {
			m = protowire.ConsumeFieldValue(num, typ, b[n:])
		}
		if m < 0 {
			return fmt.Errorf("%w: field %d: %v", ErrMalformed, num, protowire.ParseError(m))
		}
		if err := fn(num, typ, b[:n+m], val); err != nil {
			return err
		}
		b = b[n+m:]
	}
	return nil
}

// CountSpans counts the spans of an encoded ExportTraceServiceRequest or
// TracesData without decoding them, up to the first malformed field.
func CountSpans(req []byte) int {
	n := 0
	_ = forEachField(req, func(num protowire.Number, typ protowire.Type, _, rs []byte) error {
		if num != fieldTracesResourceSpans || typ != protowire.BytesType {
			return nil
		}
		return forEachField(rs, func(num protowire.Number, typ protowire.Type, _, ss []byte) error {
			if num != fieldRSScopeSpans || typ != protowire.BytesType {
				return nil
			}
			return forEachField(ss, func(num protowire.Number, typ protowire.Type, _, _ []byte) error {
				if num == fieldSSSpans && typ == protowire.BytesType {
					n++
				}
				return nil
			})
		})
	})
	return n
}

// The messages that hold attributes, for truncating their values.
type attrMsg uint8

const (
	msgNone attrMsg = iota
	msgSpan
	msgEvent
	msgLink
	msgResource
	msgScope
	msgKeyValue
	msgAnyValue
	msgArrayValue
	msgKeyValueList
	msgLeaf // a string_value or bytes_value: what is truncated
)

// maxAttrNesting bounds the descent into nested arrays and key-value lists;
// deeper values are left alone.
const maxAttrNesting = 32

// attrChild tells which field num of a message m leads to attributes.
func attrChild(m attrMsg, num protowire.Number) attrMsg {
	switch m {
	case msgSpan:
		switch num {
		case 9: // attributes
			return msgKeyValue
		case 11: // events
			return msgEvent
		case 13: // links
			return msgLink
		}
	case msgEvent:
		if num == 3 { // attributes
			return msgKeyValue
		}
	case msgLink:
		if num == 4 { // attributes
			return msgKeyValue
		}
	case msgResource:
		if num == 1 { // attributes
			return msgKeyValue
		}
	case msgScope:
		if num == 3 { // attributes
			return msgKeyValue
		}
	case msgKeyValue:
		if num == 2 { // value
			return msgAnyValue
		}
	case msgAnyValue:
		switch num {
		case 1, 7: // string_value, bytes_value
			return msgLeaf
		case 5: // array_value
			return msgArrayValue
		case 6: // kvlist_value
			return msgKeyValueList
		}
	case msgArrayValue:
		if num == 1 { // values
			return msgAnyValue
		}
	case msgKeyValueList:
		if num == 1 { // values
			return msgKeyValue
		}
	}
	return msgNone
}

// hasLongValue tells whether the encoded message b of type m holds an
// attribute value longer than limit. A message no longer than limit cannot, so
// most spans are not looked into. It does not allocate; a malformed part
// counts as holding none.
func hasLongValue(b []byte, m attrMsg, limit, depth int) bool {
	if limit <= 0 || len(b) <= limit || depth > maxAttrNesting {
		return false
	}
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return false
		}
		if typ != protowire.BytesType {
			k := protowire.ConsumeFieldValue(num, typ, b[n:])
			if k < 0 {
				return false
			}
			b = b[n+k:]
			continue
		}
		val, k := protowire.ConsumeBytes(b[n:])
		if k < 0 {
			return false
		}
		switch c := attrChild(m, num); c {
		case msgNone:
		case msgLeaf:
			if len(val) > limit {
				return true
			}
		default:
			if hasLongValue(val, c, limit, depth+1) {
				return true
			}
		}
		b = b[n+k:]
	}
	return false
}

// appendTruncated appends message b of type m to dst with every attribute
// value longer than limit cut, and returns how many it cut. Fields on no path
// to an attribute, and a malformed rest, are copied as they are.
func appendTruncated(dst, b []byte, m attrMsg, limit, depth int) ([]byte, int) {
	cut := 0
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 || typ != protowire.BytesType {
			if n >= 0 {
				if k := protowire.ConsumeFieldValue(num, typ, b[n:]); k >= 0 {
					dst = append(dst, b[:n+k]...)
					b = b[n+k:]
					continue
				}
			}
			return append(dst, b...), cut
		}
		val, k := protowire.ConsumeBytes(b[n:])
		if k < 0 {
			return append(dst, b...), cut
		}
		c := attrChild(m, num)
		switch {
		case c == msgLeaf && len(val) > limit:
			end := limit
			if num == 1 { // a string: do not split a character
				for i := 0; i < utf8.UTFMax-1 && end > 0 && !utf8.RuneStart(val[end]); i++ {
					end--
				}
			}
			dst = protowire.AppendTag(dst, num, protowire.BytesType)
			dst = protowire.AppendBytes(dst, val[:end])
			cut++
		case c != msgNone && c != msgLeaf && hasLongValue(val, c, limit, depth+1):
			sub, k := appendTruncated(nil, val, c, limit, depth+1)
			dst = protowire.AppendTag(dst, num, protowire.BytesType)
			dst = protowire.AppendBytes(dst, sub)
			cut += k
		default:
			dst = append(dst, b[:n+k]...)
		}
		b = b[n+k:]
	}
	return dst, cut
}

// truncatedField is field num holding message val of type m with its long
// attribute values cut, tag included.
func truncatedField(num protowire.Number, val []byte, m attrMsg, limit int) ([]byte, int) {
	sub, n := appendTruncated(nil, val, m, limit, 0)
	raw := protowire.AppendTag(make([]byte, 0, len(sub)+protowire.SizeTag(num)+protowire.SizeVarint(uint64(len(sub)))), num, protowire.BytesType)
	return protowire.AppendBytes(raw, sub), n
}
