package block

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"slices"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/vivace-dev/vivace/internal/model"
)

// A lookup answers with an encoded TracesData, and writing it straight from
// the rows, without building a message per span, resource and scope and
// marshaling them, halves what a lookup costs past decompression. The span
// blobs are encoded spans already; the resource and scope columns are
// encoded ResourceSpans and ScopeSpans holding only their own fields.

// Field numbers of the OTLP messages this file writes.
const (
	fieldResourceSpans = 1 // TracesData.resource_spans
	fieldScopeSpans    = 2 // ResourceSpans.scope_spans
	fieldSpans         = 2 // ScopeSpans.spans

	fieldTraceID      = 1 // Span fields with their own columns
	fieldSpanID       = 2
	fieldParentSpanID = 4
	fieldName         = 5
	fieldKind         = 6
	fieldStart        = 7
	fieldEnd          = 8
)

// encodedRow is a row appendTracesData keeps, with its place in the output.
type encodedRow struct {
	row        int
	res, scope int32 // rebuild's groups, numbered in order of first appearance
	size       int   // of the span's encoding
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
	refs := make([]encodedRow, r.len())
	for i := range refs {
		res, scope := g.of(r.resource[i], r.scope[i])
		refs[i] = encodedRow{row: i, res: res, scope: scope}
	}
	byGroup := func(a, b encodedRow) int {
		return cmp.Or(cmp.Compare(a.res, b.res), cmp.Compare(a.scope, b.scope))
	}
	if !slices.IsSortedFunc(refs, byGroup) {
		slices.SortStableFunc(refs, byGroup)
	}

	// model.Combine's span key, with its quirk: a span without an 8-byte ID
	// is never dropped but still marks its key as seen.
	seen := make(map[combineKey]struct{}, len(refs))
	kept := refs[:0]
	for _, e := range refs {
		k := combineKey{kind: r.kind[e.row]}
		if len(r.spanID[e.row]) == 8 {
			k.id = binary.BigEndian.Uint64(r.spanID[e.row])
		}
		if _, dup := seen[k]; dup && len(r.spanID[e.row]) == 8 {
			continue
		}
		seen[k] = struct{}{}
		e.size = r.spanSize(e.row)
		kept = append(kept, e)
	}

	start := len(dst)
	for i := 0; i < len(kept); {
		// One ResourceSpans: kept[i:j].
		j := i
		for j < len(kept) && kept[j].res == kept[i].res {
			j++
		}
		res := withoutField(r.resource[kept[i].row], fieldScopeSpans)
		size := len(res)
		for k := i; k < j; {
			l, n := scopeRun(kept, k, j, r)
			size += sizeLen(n)
			k = l
		}
		dst = protowire.AppendTag(dst, fieldResourceSpans, protowire.BytesType)
		dst = protowire.AppendVarint(dst, uint64(size))
		dst = append(dst, res...)
		for k := i; k < j; {
			l, n := scopeRun(kept, k, j, r)
			dst = protowire.AppendTag(dst, fieldScopeSpans, protowire.BytesType)
			dst = protowire.AppendVarint(dst, uint64(n))
			dst = append(dst, withoutField(r.scope[kept[k].row], fieldSpans)...)
			for _, e := range kept[k:l] {
				dst = protowire.AppendTag(dst, fieldSpans, protowire.BytesType)
				dst = protowire.AppendVarint(dst, uint64(e.size))
				dst = r.appendSpan(dst, e.row, id)
			}
			k = l
		}
		i = j
	}
	if err := model.CheckTracesData(dst[start:]); err != nil {
		return dst[:start], fmt.Errorf("%w: trace %s: %v", ErrCorrupt, id, err)
	}
	return dst, nil
}

// scopeRun returns the end of the run of rows in kept[k:end] that share
// kept[k]'s scope, and the size of their ScopeSpans encoding.
func scopeRun(kept []encodedRow, k, end int, r *rows) (int, int) {
	n := len(withoutField(r.scope[kept[k].row], fieldSpans))
	l := k
	for l < end && kept[l].scope == kept[k].scope {
		n += sizeLen(kept[l].size)
		l++
	}
	return l, n
}

// sizeLen is the size of a length-delimited record of n bytes with a
// one-byte tag.
func sizeLen(n int) int { return 1 + protowire.SizeVarint(uint64(n)) + n }

// spanSize is the size of appendSpan's output for row i.
func (r *rows) spanSize(i int) int {
	n := len(r.span[i]) + sizeLen(16)
	if l := len(r.spanID[i]); l > 0 {
		n += sizeLen(l)
	}
	if l := len(r.parentID[i]); l > 0 {
		n += sizeLen(l)
	}
	if l := len(r.name[i]); l > 0 {
		n += sizeLen(l)
	}
	if k := r.kind[i]; k != 0 {
		n += 1 + protowire.SizeVarint(uint64(int64(k)))
	}
	if r.start[i] != 0 {
		n += 1 + 8
	}
	if uint64(r.start[i])+uint64(r.duration[i]) != 0 {
		n += 1 + 8
	}
	return n
}

// appendSpan appends row i's span: its blob, then the column fields that
// proto.Marshal would write (proto3 leaves out zero values).
func (r *rows) appendSpan(dst []byte, i int, id model.TraceID) []byte {
	dst = append(dst, r.span[i]...)
	dst = protowire.AppendTag(dst, fieldTraceID, protowire.BytesType)
	dst = protowire.AppendBytes(dst, id[:])
	if b := r.spanID[i]; len(b) > 0 {
		dst = protowire.AppendTag(dst, fieldSpanID, protowire.BytesType)
		dst = protowire.AppendBytes(dst, b)
	}
	if b := r.parentID[i]; len(b) > 0 {
		dst = protowire.AppendTag(dst, fieldParentSpanID, protowire.BytesType)
		dst = protowire.AppendBytes(dst, b)
	}
	if b := r.name[i]; len(b) > 0 {
		dst = protowire.AppendTag(dst, fieldName, protowire.BytesType)
		dst = protowire.AppendBytes(dst, b)
	}
	if k := r.kind[i]; k != 0 {
		dst = protowire.AppendTag(dst, fieldKind, protowire.VarintType)
		dst = protowire.AppendVarint(dst, uint64(int64(k)))
	}
	if s := r.start[i]; s != 0 {
		dst = protowire.AppendTag(dst, fieldStart, protowire.Fixed64Type)
		dst = protowire.AppendFixed64(dst, uint64(s))
	}
	if e := uint64(r.start[i]) + uint64(r.duration[i]); e != 0 {
		dst = protowire.AppendTag(dst, fieldEnd, protowire.Fixed64Type)
		dst = protowire.AppendFixed64(dst, e)
	}
	return dst
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
