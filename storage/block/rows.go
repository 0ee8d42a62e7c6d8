package block

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/vivace-dev/vivace/internal/model"
)

// Copying traces between blocks without decoding them: Reader.IterateRows
// yields each trace as its rows, the column values a block stores, and
// Writer.AddRows writes one trace combined from the rows of several, the way
// model.Combine combines decoded traces. This is how the compactor merges
// blocks: decoding every span into OTLP and encoding it again was most of its
// work.

// TraceRows is one trace as a block stores it: one row per span, every column
// but trace_id, in the block's row order. It shares memory with nothing a
// Reader reuses, and is read-only.
//
// Its row group is read in two steps: first the columns that tell which of
// its rows a merge keeps (span_id, kind, resource, scope), then, when one of
// them is kept, the others. A merge of replicas, whose spans are all in the
// first source that holds the trace, then decompresses the span blobs of
// that source only.
type TraceRows struct {
	id     model.TraceID
	lo, hi int
	keys   rows // rows [lo, hi) of the key columns (span_id, kind, resource, scope)
	rg     *rowGroupRows
}

// ID is the trace's ID.
func (t *TraceRows) ID() model.TraceID { return t.id }

// Len is the number of rows (spans).
func (t *TraceRows) Len() int { return t.hi - t.lo }

// Trace decodes the rows into the trace Reader.Iterate returns.
func (t *TraceRows) Trace() (*tracev1.TracesData, error) {
	r, err := t.all()
	if err != nil {
		return nil, err
	}
	return r.rebuild(t.id)
}

// all returns the trace's rows, every column read.
func (t *TraceRows) all() (*rows, error) {
	all, err := t.rg.load()
	if err != nil {
		return nil, err
	}
	r := all.sliceAll(t.lo, t.hi)
	return &r, nil
}

// rowGroupRows is one row group of a block being iterated: the key columns
// read, the others read by load, once.
type rowGroupRows struct {
	blockID string
	index   int
	keys    rows
	n       int64

	once    sync.Once
	loaded  atomic.Bool
	rgr     *file.RowGroupReader // until loaded
	closeRG func()
	all     rows // every column, once loaded
	err     error
}

// load reads the columns that are not keys (at most once) and returns every
// column of the row group.
func (g *rowGroupRows) load() (*rows, error) {
	g.once.Do(func() {
		g.all, g.err = readRest(g.rgr, &g.keys, g.n)
		if g.err != nil {
			g.err = fmt.Errorf("iterate block %s: row group %d: %w", g.blockID, g.index, g.err)
		}
		g.closeRG() // what was read is copies
		g.rgr, g.closeRG = nil, nil
		g.loaded.Store(true)
	})
	return &g.all, g.err
}

// IterateRows calls fn for every trace of the block in ascending ID order,
// as Iterate does, with the trace's rows instead of the decoded trace,
// reading one row group at a time. It fails with ErrCorrupt where Iterate
// would, but for span blobs, which it does not decode (checking them as
// proto.Unmarshal would add some 40 % to a compaction's CPU time):
// data.parquet's pages carry ZSTD checksums, and a writer stores only blobs
// that decode. Resource and scope values are checked to decode, and replaced
// by their deterministic encodings (which every writer of this package
// stores, so normally the same bytes); names are checked to be valid UTF-8,
// and trace IDs to ascend. It stops at the first error fn returns and
// returns it.
//
// A row group's columns but the keys (TraceRows) are read when a row of
// it is first needed, by Trace or AddRows, which then return the errors of
// reading them. If the previous row group's were needed, IterateRows reads
// them itself, before calling fn, so that a merge whose every row is needed
// keeps decoding in the goroutine that iterates.
func (r *Reader) IterateRows(ctx context.Context, fn func(tr *TraceRows) error) error {
	l, err := r.load(ctx)
	if err != nil {
		return fmt.Errorf("iterate block %s: %w", r.meta.BlockID, err)
	}
	var (
		canon   canonicalizer
		last    model.TraceID
		hasLast bool
		prev    *rowGroupRows
	)
	for i := range l.idx.RowGroups {
		if err := ctx.Err(); err != nil {
			return err
		}
		rgr, closeRG, err := r.openRowGroup(ctx, l, i)
		if err != nil {
			return fmt.Errorf("iterate block %s: %w", r.meta.BlockID, err)
		}
		g := &rowGroupRows{blockID: r.meta.BlockID, index: i, rgr: rgr, closeRG: closeRG}
		ids, err := readKeys(rgr, &canon, g)
		if err != nil {
			closeRG()
			return fmt.Errorf("iterate block %s: row group %d: %w", r.meta.BlockID, i, err)
		}
		if prev != nil && prev.loaded.Load() {
			if _, err := g.load(); err != nil {
				return err
			}
		}
		prev = g
		for lo := 0; lo < len(ids); {
			if hasLast && ids[lo].Compare(last) <= 0 {
				return fmt.Errorf("iterate block %s: %w: trace %s after %s", r.meta.BlockID, ErrCorrupt, ids[lo], last)
			}
			hi := lo + 1
			for hi < len(ids) && ids[hi] == ids[lo] {
				hi++
			}
			if err := fn(&TraceRows{id: ids[lo], lo: lo, hi: hi, keys: g.keys.sliceAll(lo, hi), rg: g}); err != nil {
				return err
			}
			last, hasLast = ids[lo], true
			lo = hi
		}
	}
	return nil
}

// readKeys reads a row group's trace IDs and its key columns into g.keys.
func readKeys(rgr *file.RowGroupReader, canon *canonicalizer, g *rowGroupRows) (ids []model.TraceID, err error) {
	defer func() {
		if p := recover(); p != nil {
			ids, err = nil, fmt.Errorf("%w: decode row group: %v", ErrCorrupt, p)
		}
	}()
	if ids, err = readIDs(rgr); err != nil {
		return nil, err
	}
	n := int64(len(ids))
	k := &g.keys
	if k.spanID, err = readColumn[parquet.ByteArray](rgr, colSpanID, 0, n); err != nil {
		return nil, err
	}
	if k.kind, err = readColumn[int32](rgr, colKind, 0, n); err != nil {
		return nil, err
	}
	if k.resource, err = canon.readColumn(rgr, colResource, n, &canon.resources, canonicalResource); err != nil {
		return nil, err
	}
	if k.scope, err = canon.readColumn(rgr, colScope, n, &canon.scopes, canonicalScope); err != nil {
		return nil, err
	}
	g.n = n
	return ids, nil
}

// readRest reads the columns of a row group that are not keys, and returns
// them with the keys.
func readRest(rgr *file.RowGroupReader, keys *rows, n int64) (r rows, err error) {
	defer func() {
		if p := recover(); p != nil {
			r, err = rows{}, fmt.Errorf("%w: decode row group: %v", ErrCorrupt, p)
		}
	}()
	r = rows{spanID: keys.spanID, kind: keys.kind, resource: keys.resource, scope: keys.scope}
	if r.parentID, err = readColumn[parquet.ByteArray](rgr, colParentSpanID, 0, n); err != nil {
		return rows{}, err
	}
	if r.start, err = readColumn[int64](rgr, colStartUnixNano, 0, n); err != nil {
		return rows{}, err
	}
	if r.duration, err = readColumn[int64](rgr, colDurationNano, 0, n); err != nil {
		return rows{}, err
	}
	if r.name, err = readColumn[parquet.ByteArray](rgr, colName, 0, n); err != nil {
		return rows{}, err
	}
	if r.status, err = readColumn[int32](rgr, colStatusCode, 0, n); err != nil {
		return rows{}, err
	}
	if r.service, err = readColumn[parquet.ByteArray](rgr, colServiceName, 0, n); err != nil {
		return rows{}, err
	}
	if r.span, err = readColumn[parquet.ByteArray](rgr, colSpan, 0, n); err != nil {
		return rows{}, err
	}
	for i, name := range r.name {
		if !utf8.Valid(name) {
			return rows{}, fmt.Errorf("%w: row %d: name is not valid UTF-8", ErrCorrupt, i)
		}
	}
	return r, nil
}

// sliceAll returns rows [lo, hi) of every column but trace_id (sharing
// memory); columns not read stay nil.
func (r *rows) sliceAll(lo, hi int) rows {
	return rows{
		spanID: sub(r.spanID, lo, hi), parentID: sub(r.parentID, lo, hi), start: sub(r.start, lo, hi), duration: sub(r.duration, lo, hi),
		name: sub(r.name, lo, hi), kind: sub(r.kind, lo, hi), status: sub(r.status, lo, hi), service: sub(r.service, lo, hi),
		resource: sub(r.resource, lo, hi), scope: sub(r.scope, lo, hi), span: sub(r.span, lo, hi),
	}
}

func sub[T any](s []T, lo, hi int) []T {
	if s == nil {
		return nil
	}
	return s[lo:hi:hi]
}

// canonicalizer replaces resource and scope values by their deterministic
// encodings (what every writer of this package stores, so normally the same
// bytes), checking that they decode. Equal values then share memory, which
// makes comparing them cheap, and a value is copied out of the pages only
// the first time it is seen. It remembers up to maxCanonicalCache bytes of
// values.
type canonicalizer struct {
	resources, scopes map[string][]byte
	size              int
}

// readColumn reads the n values of column col (resource or scope), each
// replaced by its canonical value, remembered in m. The values read are
// not copied: they are looked up as they are in the page, which holds them
// until the next read, and only new ones are kept, canonical.
func (c *canonicalizer) readColumn(rgr *file.RowGroupReader, col int, n int64, m *map[string][]byte, canonical func([]byte) ([]byte, error)) ([]parquet.ByteArray, error) {
	cr, err := rgr.Column(col)
	if err != nil {
		return nil, fmt.Errorf("%w: column %s: %v", ErrCorrupt, columns[col].name, err)
	}
	defer cr.Close()
	br, ok := cr.(*file.ByteArrayColumnChunkReader)
	if !ok {
		return nil, fmt.Errorf("%w: column %s has type %s", ErrCorrupt, columns[col].name, cr.Type())
	}
	if *m == nil {
		*m = map[string][]byte{}
	}
	out := make([]parquet.ByteArray, n)
	batch := make([]parquet.ByteArray, min(n, 1024))
	var prevIn, prevOut []byte // rows of a trace mostly share their resource
	for read := int64(0); read < n; {
		total, _, err := br.ReadBatchInPage(min(n-read, int64(len(batch))), batch, nil, nil)
		if err != nil {
			return nil, fmt.Errorf("%w: column %s: %v", ErrCorrupt, columns[col].name, err)
		}
		if total == 0 {
			return nil, fmt.Errorf("%w: column %s has %d values, want %d: %v", ErrCorrupt, columns[col].name, read, n, cr.Err())
		}
		for i, v := range batch[:total] {
			if prevOut != nil && bytes.Equal(v, prevIn) {
				out[read+int64(i)] = prevOut
				continue
			}
			o, ok := (*m)[string(v)]
			if !ok {
				if o, err = canonical(v); err != nil {
					return nil, fmt.Errorf("%w: column %s row %d: %v", ErrCorrupt, columns[col].name, read+int64(i), err)
				}
				if c.size += 2*len(v) + 64; c.size > maxCanonicalCache {
					clear(c.resources)
					clear(c.scopes)
					c.size = 0
				}
				(*m)[string(v)] = o
			}
			out[read+int64(i)] = o
			prevIn, prevOut = v, o
		}
		prevOut = nil // v aliases the page: not valid after the next read
		read += total
	}
	return out, nil
}

func canonicalResource(b []byte) ([]byte, error) {
	rs := &tracev1.ResourceSpans{}
	if err := proto.Unmarshal(b, rs); err != nil {
		return nil, fmt.Errorf("resource: %v", err)
	}
	out, err := marshalOpts.Marshal(&tracev1.ResourceSpans{Resource: rs.Resource, SchemaUrl: rs.SchemaUrl})
	if err != nil {
		return nil, fmt.Errorf("resource: %v", err)
	}
	return out, nil
}

func canonicalScope(b []byte) ([]byte, error) {
	ss := &tracev1.ScopeSpans{}
	if err := proto.Unmarshal(b, ss); err != nil {
		return nil, fmt.Errorf("scope: %v", err)
	}
	out, err := marshalOpts.Marshal(&tracev1.ScopeSpans{Scope: ss.Scope, SchemaUrl: ss.SchemaUrl})
	if err != nil {
		return nil, fmt.Errorf("scope: %v", err)
	}
	return out, nil
}

// AddRows appends one trace combined from parts, rows of the same trace
// (from IterateRows of several blocks), and returns how many spans it
// wrote. The rows written are those Add(id, model.Combine(decoded parts...))
// writes, but for span blobs, which are copied as they are: each span once
// (the first of those with the same 8-byte span ID and kind), spans under an
// identical resource and scope together, in order of first appearance. IDs
// must ascend across calls as for Add, whose errors AddRows shares; a part
// whose rows fail to read (see IterateRows) fails it with a *PartError. It
// retains the parts' memory until the row group is written.
func (w *Writer) AddRows(parts ...*TraceRows) (int, error) {
	if len(parts) == 0 {
		return 0, fmt.Errorf("add rows: %w: no parts", ErrInvalidTrace)
	}
	id := parts[0].id
	for _, p := range parts[1:] {
		if p.id != id {
			return 0, fmt.Errorf("add rows of trace %s: %w: a part of trace %s", id, ErrInvalidTrace, p.id)
		}
	}
	if err := w.checkNext(id); err != nil {
		return 0, err
	}
	refs := w.comb.combine(parts)
	if len(refs) == 0 {
		return 0, fmt.Errorf("add trace %s: %w: no spans", id, ErrInvalidTrace)
	}
	// Read the parts that give rows before changing anything.
	all := w.comb.all[:0]
	for range parts {
		all = append(all, nil)
	}
	w.comb.all = all
	for _, ref := range refs {
		if all[ref.part] == nil {
			r, err := parts[ref.part].all()
			if err != nil {
				clear(all)
				return 0, &PartError{Part: ref.part, Err: err}
			}
			all[ref.part] = r
		}
	}
	if err := w.cutBefore(len(refs)); err != nil {
		return 0, err
	}
	idBytes := w.rows.store(id[:])
	var st traceStats
	r := &w.rows
	for _, ref := range refs {
		p, i := all[ref.part], ref.row
		start := uint64(p.start[i])
		r.traceID = append(r.traceID, idBytes)
		r.spanID = append(r.spanID, p.spanID[i])
		r.parentID = append(r.parentID, p.parentID[i])
		r.start = append(r.start, p.start[i])
		r.duration = append(r.duration, p.duration[i])
		r.name = append(r.name, p.name[i])
		r.kind = append(r.kind, p.kind[i])
		r.status = append(r.status, p.status[i])
		r.service = append(r.service, p.service[i])
		r.resource = append(r.resource, p.resource[i])
		r.scope = append(r.scope, p.scope[i])
		r.span = append(r.span, p.span[i])
		st.add(start, start+uint64(p.duration[i]))
	}
	clear(all) // do not keep the parts alive
	w.added(id, st)
	return len(refs), nil
}

// PartError is AddRows' error when the rows of parts[Part] fail to read.
type PartError struct {
	Part int
	Err  error
}

func (e *PartError) Error() string { return fmt.Sprintf("rows of part %d: %v", e.Part, e.Err) }
func (e *PartError) Unwrap() error { return e.Err }

// rowCombiner orders and deduplicates the rows of a trace's parts as
// model.Combine does with the decoded parts; a Writer keeps one to reuse its
// memory.
//
// Combine walks each part as rows.rebuild makes it (its rows grouped by
// resource, then by scope, in order of first appearance, keeping row order
// within a group), drops a span whose 8-byte span ID and kind it has seen,
// and puts the spans under one resource and scope in the order it meets
// them, resources and scopes in the order it first meets them, even through
// a span it drops. So: walk each part in its grouped order, numbering
// resources and scopes as they come and dropping duplicates, then sort what
// is left by those numbers, keeping the walking order.
type rowCombiner struct {
	seen   map[combineKey]struct{}
	global groups // over all parts
	local  groups // within one part
	refs   []rowRef
	keys   []int64 // per row of a part: its local group, for sorting
	order  []int   // a part's rows in grouped order
	all    []*rows // AddRows' scratch: every column of each part
}

// combineKey is model.Combine's span key.
type combineKey struct {
	id   uint64
	kind int32
}

// rowRef is row row of part part, in resource group res and scope group
// scope.
type rowRef struct {
	part, row  int
	res, scope int32
}

func (c *rowCombiner) combine(parts []*TraceRows) []rowRef {
	c.seen = emptied(c.seen)
	c.global.reset()
	c.refs = c.refs[:0]
	for pi, p := range parts {
		r := &p.keys
		for _, i := range c.grouped(r) {
			res, scope := c.global.of(r.resource[i], r.scope[i])
			if dropSeen(c.seen, r.spanID[i], r.kind[i]) {
				continue
			}
			c.refs = append(c.refs, rowRef{part: pi, row: i, res: res, scope: scope})
		}
	}
	if !slices.IsSortedFunc(c.refs, compareGroups) {
		slices.SortStableFunc(c.refs, compareGroups)
	}
	return c.refs
}

func compareGroups(a, b rowRef) int {
	if a.res != b.res {
		return cmp.Compare(a.res, b.res)
	}
	return cmp.Compare(a.scope, b.scope)
}

// grouped returns the rows of r in the order rebuild puts them: grouped by
// resource, then by scope, in order of first appearance, keeping row order
// within a group. That is row order in a trace written from one
// ResourceSpans per resource and one ScopeSpans per scope, as almost all are.
func (c *rowCombiner) grouped(r *rows) []int {
	c.order, c.keys = c.order[:0], c.keys[:0]
	c.local.reset()
	sorted := true
	for i := range len(r.spanID) {
		res, scope := c.local.of(r.resource[i], r.scope[i])
		k := int64(res)<<32 | int64(scope)
		if i > 0 && k < c.keys[i-1] {
			sorted = false
		}
		c.keys = append(c.keys, k)
		c.order = append(c.order, i)
	}
	if !sorted {
		slices.SortStableFunc(c.order, func(a, b int) int { return cmp.Compare(c.keys[a], c.keys[b]) })
	}
	return c.order
}

// groups numbers resources, and scopes within a resource, in order of first
// appearance.
type groups struct {
	res    map[string]int32
	scopes map[scopeKey]int32
	// The last value numbered: rows of a trace mostly share their resource
	// and scope, and then comparing is cheaper than hashing.
	lastRes, lastScope []byte
	lastR, lastS       int32
	hasLast            bool
}

type scopeKey struct {
	res   int32
	scope string
}

func (g *groups) reset() {
	g.res, g.scopes = emptied(g.res), emptied(g.scopes)
	g.lastRes, g.lastScope, g.hasLast = nil, nil, false
}

// of returns the numbers of a resource and scope, numbering them if new.
func (g *groups) of(res, scope []byte) (int32, int32) {
	if g.hasLast && bytes.Equal(res, g.lastRes) {
		if bytes.Equal(scope, g.lastScope) {
			return g.lastR, g.lastS
		}
	} else {
		g.lastRes, g.lastR = res, g.resource(res)
	}
	s := g.scope(g.lastR, scope)
	g.lastScope, g.lastS, g.hasLast = scope, s, true
	return g.lastR, s
}

// resource returns the number of a resource, numbering it if new.
func (g *groups) resource(res []byte) int32 {
	r, ok := g.res[string(res)]
	if !ok {
		r = int32(len(g.res))
		g.res[string(res)] = r
	}
	return r
}

// scope returns the number of a scope within resource res, numbering it if
// new.
func (g *groups) scope(res int32, scope []byte) int32 {
	k := scopeKey{res: res, scope: string(scope)}
	s, ok := g.scopes[k]
	if !ok {
		s = int32(len(g.scopes))
		g.scopes[k] = s
	}
	return s
}

// emptied returns m emptied, or a new map if m is nil or was large: clearing
// a map costs as much as its capacity, which one large trace would leave
// for every trace after it to pay.
func emptied[K comparable, V any](m map[K]V) map[K]V {
	if m == nil || len(m) > 1024 {
		return map[K]V{}
	}
	clear(m)
	return m
}
