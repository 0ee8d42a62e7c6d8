package block

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"slices"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/vivace-dev/vivace/internal/model"
)

// A by-ID answer travels encoded from the block or the ingester to the
// client. Writing it straight from a block's rows, or from the ingesters'
// encodings, without building a message per span, resource and scope and
// marshaling them, halves what a lookup costs past decompression: span blobs
// and received spans are encodings already, and so are the canonical
// resource and scope values.

// outSpan is one span of an answer being encoded.
type outSpan struct {
	i          int   // a row of rows, or a span of combined
	res, scope int32 // its groups, numbered in order of first appearance
	size       int   // of its encoding
}

// spanSource is what appendGrouped reads of the spans it encodes.
type spanSource interface {
	resource(i int) []byte // a ResourceSpans encoding without scope_spans
	scope(i int) []byte    // a ScopeSpans encoding without spans
	appendSpan(dst []byte, i int) []byte
}

func byGroup(a, b outSpan) int {
	return cmp.Or(cmp.Compare(a.res, b.res), cmp.Compare(a.scope, b.scope))
}

// appendGrouped appends the TracesData records of spans, sorted by group:
// a ResourceSpans per run of res, a ScopeSpans in it per run of scope.
func appendGrouped(dst []byte, spans []outSpan, src spanSource) []byte {
	var runs []scopeRun // of one resource: sized first, for the length prefix
	for i := 0; i < len(spans); {
		j := i
		for j < len(spans) && spans[j].res == spans[i].res {
			j++
		}
		res := src.resource(spans[i].i)
		size := len(res)
		runs = runs[:0]
		for k := i; k < j; {
			r := nextScopeRun(spans, k, j, src)
			runs = append(runs, r)
			size += sizeLen(r.size)
			k = r.end
		}
		dst = protowire.AppendTag(dst, fieldTracesResourceSpans, protowire.BytesType)
		dst = protowire.AppendVarint(dst, uint64(size))
		dst = append(dst, res...)
		k := i
		for _, r := range runs {
			dst = protowire.AppendTag(dst, fieldRSScopeSpans, protowire.BytesType)
			dst = protowire.AppendVarint(dst, uint64(r.size))
			dst = append(dst, r.scope...)
			for _, s := range spans[k:r.end] {
				dst = protowire.AppendTag(dst, fieldSSSpans, protowire.BytesType)
				dst = protowire.AppendVarint(dst, uint64(s.size))
				dst = src.appendSpan(dst, s.i)
			}
			k = r.end
		}
		i = j
	}
	return dst
}

// scopeRun is a run of spans that share a scope: one ScopeSpans.
type scopeRun struct {
	end   int    // index past the run's last span
	scope []byte // the ScopeSpans encoding without spans
	size  int    // of the ScopeSpans encoding, spans included
}

// nextScopeRun returns the run of spans[k:end] that share spans[k]'s scope.
func nextScopeRun(spans []outSpan, k, end int, src spanSource) scopeRun {
	r := scopeRun{end: k, scope: src.scope(spans[k].i)}
	r.size = len(r.scope)
	for r.end < end && spans[r.end].scope == spans[k].scope {
		r.size += sizeLen(spans[r.end].size)
		r.end++
	}
	return r
}

// sizeLen is the size of a length-delimited record of n bytes with a
// one-byte tag.
func sizeLen(n int) int { return 1 + protowire.SizeVarint(uint64(n)) + n }

// dropSeen tells whether a span is one model.Combine drops: its 8-byte
// span ID and kind were seen before. A span without an 8-byte ID is never
// dropped but still marks its key as seen, as in Combine.
func dropSeen(seen map[combineKey]struct{}, spanID []byte, kind int32) bool {
	k := combineKey{kind: kind}
	if len(spanID) == 8 {
		k.id = binary.BigEndian.Uint64(spanID)
	}
	if _, dup := seen[k]; dup && len(spanID) == 8 {
		return true
	}
	seen[k] = struct{}{}
	return false
}

// appendTracesData appends to dst the rows, all of trace id, as an encoded
// TracesData that decodes to model.Combine(r.rebuild(id)): rows grouped by
// resource, then scope, in order of first appearance, and a span dropped
// when one before it in that order has its 8-byte span ID and kind. A span
// is its blob followed by its column fields, so a column wins over a field
// of the same number in the blob, as rebuild's assignments do. The output
// is checked as proto.Unmarshal would check it: a block whose rows do not
// encode a trace is ErrCorrupt.
func (r *rows) appendTracesData(dst []byte, id model.TraceID) ([]byte, error) {
	var g groups
	g.reset()
	spans := make([]outSpan, r.len())
	for i := range spans {
		res, scope := g.of(r.resource[i], r.scope[i])
		spans[i] = outSpan{i: i, res: res, scope: scope}
	}
	if !slices.IsSortedFunc(spans, byGroup) {
		slices.SortStableFunc(spans, byGroup)
	}
	seen := make(map[combineKey]struct{}, len(spans))
	kept := spans[:0]
	for _, s := range spans {
		if !dropSeen(seen, r.spanID[s.i], r.kind[s.i]) {
			s.size = r.spanSize(s.i)
			kept = append(kept, s)
		}
	}
	start := len(dst)
	dst = appendGrouped(dst, kept, rowsSource{r, id})
	if err := model.CheckTracesData(dst[start:]); err != nil {
		return dst[:start], fmt.Errorf("%w: trace %s: %v", ErrCorrupt, id, err)
	}
	return dst, nil
}

// rowsSource encodes rows of one trace.
type rowsSource struct {
	r  *rows
	id model.TraceID
}

func (s rowsSource) resource(i int) []byte { return withoutField(s.r.resource[i], fieldRSScopeSpans) }
func (s rowsSource) scope(i int) []byte    { return withoutField(s.r.scope[i], fieldSSSpans) }

// appendSpan appends row i's span: its blob, then the column fields that
// proto.Marshal would write (proto3 leaves out zero values).
func (s rowsSource) appendSpan(dst []byte, i int) []byte {
	r := s.r
	dst = append(dst, r.span[i]...)
	dst = protowire.AppendTag(dst, fieldSpanTraceID, protowire.BytesType)
	dst = protowire.AppendBytes(dst, s.id[:])
	if b := r.spanID[i]; len(b) > 0 {
		dst = protowire.AppendTag(dst, fieldSpanSpanID, protowire.BytesType)
		dst = protowire.AppendBytes(dst, b)
	}
	if b := r.parentID[i]; len(b) > 0 {
		dst = protowire.AppendTag(dst, fieldSpanParentSpanID, protowire.BytesType)
		dst = protowire.AppendBytes(dst, b)
	}
	if b := r.name[i]; len(b) > 0 {
		dst = protowire.AppendTag(dst, fieldSpanName, protowire.BytesType)
		dst = protowire.AppendBytes(dst, b)
	}
	if k := r.kind[i]; k != 0 {
		dst = protowire.AppendTag(dst, fieldSpanKind, protowire.VarintType)
		dst = protowire.AppendVarint(dst, uint64(int64(k)))
	}
	if t := r.start[i]; t != 0 {
		dst = protowire.AppendTag(dst, fieldSpanStart, protowire.Fixed64Type)
		dst = protowire.AppendFixed64(dst, uint64(t))
	}
	if e := r.end(i); e != 0 {
		dst = protowire.AppendTag(dst, fieldSpanEnd, protowire.Fixed64Type)
		dst = protowire.AppendFixed64(dst, e)
	}
	return dst
}

// end is row i's end time, as rebuild computes it.
func (r *rows) end(i int) uint64 { return uint64(r.start[i]) + uint64(r.duration[i]) }

// spanSize is the size of rowsSource.appendSpan's output for row i.
func (r *rows) spanSize(i int) int {
	n := len(r.span[i]) + sizeLen(16)
	for _, b := range [...][]byte{r.spanID[i], r.parentID[i], r.name[i]} {
		if len(b) > 0 {
			n += sizeLen(len(b))
		}
	}
	if k := r.kind[i]; k != 0 {
		n += 1 + protowire.SizeVarint(uint64(int64(k)))
	}
	if r.start[i] != 0 {
		n += 1 + 8
	}
	if r.end(i) != 0 {
		n += 1 + 8
	}
	return n
}

// withoutField returns b, an encoded message, without its records of field
// num: a resource or scope column value holds none, so this is b itself but
// for a block written by some other writer. A malformed b is returned as it
// is, for the final check to reject.
func withoutField(b []byte, num protowire.Number) []byte {
	var out []byte
	for rest, at := b, 0; len(rest) > 0; {
		n, _, l := protowire.ConsumeField(rest)
		if l < 0 {
			return b
		}
		if n == num && out == nil {
			out = append(make([]byte, 0, len(b)), b[:at]...)
		} else if n != num && out != nil {
			out = append(out, rest[:l]...)
		}
		rest, at = rest[l:], at+l
	}
	if out == nil {
		return b
	}
	return out
}

// AppendCombined appends to dst the parts of trace id (the answers of
// ingesters and blocks, each an encoded TracesData) combined into one trace
// the way model.Combine combines them decoded, and returns it. No span is
// decoded: received spans are copied as they are, and each distinct resource
// and scope is decoded once to compare it. It fails, wrapping
// ErrInvalidTrace, when a part does not decode or holds a span of another
// trace.
func AppendCombined(dst []byte, id model.TraceID, parts ...[]byte) ([]byte, error) {
	var c combined
	c.groups.reset()
	seen := map[combineKey]struct{}{}
	var p encodedTrace
	for _, b := range parts {
		if err := model.CheckTracesData(b); err != nil {
			return dst, fmt.Errorf("%w: %v", ErrInvalidTrace, err)
		}
		if err := p.parse(id, b); err != nil {
			return dst, err
		}
		// Groups are numbered as Combine meets them, spans or not.
		resNum := make([]int32, len(p.resources))
		for r, res := range p.resources {
			resNum[r] = c.groups.resource(res.bytes)
		}
		scopeNum := make([]int32, len(p.scopes))
		for s, scope := range p.scopes {
			scopeNum[s] = c.groups.scope(resNum[p.scopeRes[s]], scope.bytes)
		}
		for _, s := range p.spans {
			if dropSeen(seen, s.spanID, s.kind) {
				continue
			}
			c.out = append(c.out, outSpan{i: len(c.spans), res: resNum[s.resource], scope: scopeNum[s.scope], size: len(s.b)})
			c.spans = append(c.spans, combinedSpan{b: s.b, resource: p.resources[s.resource].bytes, scope: p.scopes[s.scope].bytes})
		}
	}
	if !slices.IsSortedFunc(c.out, byGroup) {
		slices.SortStableFunc(c.out, byGroup)
	}
	return appendGrouped(dst, c.out, &c), nil
}

// combined is AppendCombined's spanSource: the spans it keeps, with the
// canonical encodings of their resource and scope.
type combined struct {
	spans  []combinedSpan
	out    []outSpan
	groups groups
}

type combinedSpan struct {
	b, resource, scope []byte
}

func (c *combined) resource(i int) []byte { return c.spans[i].resource }
func (c *combined) scope(i int) []byte    { return c.spans[i].scope }
func (c *combined) appendSpan(dst []byte, i int) []byte {
	return append(dst, c.spans[i].b...)
}
