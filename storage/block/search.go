package block

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/metadata"
	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/vivace-dev/vivace/internal/model"
	"github.com/vivace-dev/vivace/internal/traceql"
	"github.com/vivace-dev/vivace/storage"
)

// SearchStats says what a search read.
type SearchStats struct {
	InspectedTraces  uint64 // traces rebuilt and handed to fn
	InspectedSpans   uint64
	InspectedBytes   uint64 // bytes of data.parquet fetched
	SkippedRowGroups int    // ruled out by column statistics or the dedicated columns
}

// SearchOptions says which traces a search hands over, and how much of each.
type SearchOptions struct {
	// Conditions (from traceql.Query.Conditions) that every trace handed
	// over may satisfy: a trace is left out when, for one of them, no span
	// satisfies it on a dedicated column, or, for a string equality on an
	// attribute, no span's blob, resource or scope (as the attribute's scope
	// says) holds the string. Other conditions are left to the caller's
	// evaluation.
	Conditions []traceql.Condition
	// Start and End (unix nanoseconds, 0 open) leave out the traces that end
	// before Start or start at or after End, as search.Matcher does: a
	// trace's start is its earliest span start, its end its latest span end
	// (at least its start).
	Start, End uint64
	// Project, when set, rebuilds of each trace only what traceql.Summarize
	// and the evaluation of a query reading Fields (traceql.Query.Fields)
	// look at: every span with its IDs, name, kind and times; its resource
	// and instrumentation scope; its status if a field reads one; and of its
	// attributes only those a field may name. Events, links, trace state,
	// flags, dropped counts and other attributes are left out, and the
	// span column, most of a block's bytes, is not even fetched when no
	// field needs it. Resources and scopes are shared between the traces of
	// one search, and the spans of a trace are reused for the next: fn must
	// not modify a trace, nor keep any of it but strings once it returns.
	Project bool
	Fields  []traceql.Attribute
}

// Search calls fn, in trace ID order, with every trace of the block that
// opts admits, reading as little as it can:
//   - a row group whose column statistics rule out a condition or the time
//     range is not fetched;
//   - in the others, the trace_id column and the columns the conditions and
//     the time range need (the dedicated name, kind, status_code,
//     duration_nano, service_name, start_unix_nano; span, resource or scope
//     for attribute equalities) are fetched and decoded first, and only the
//     traces with, for each condition, a span that may satisfy it and
//     within the time range are rebuilt, from the other columns, which are
//     fetched only then (with opts.Project, only those it needs) and decoded
//     only for the rows of those traces.
//
// Search stops at, and returns, the first error of fn.
func (r *Reader) Search(ctx context.Context, opts SearchOptions, fn func(id model.TraceID, td *tracev1.TracesData) error) (SearchStats, error) {
	var st SearchStats
	l, err := r.load(ctx)
	if err != nil {
		return st, fmt.Errorf("search block %s: %w", r.meta.BlockID, err)
	}
	s := newSearcher(opts)
	for i := range l.idx.RowGroups {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		if s.skipRowGroup(l.footer.RowGroup(i)) {
			st.SkippedRowGroups++
			continue
		}
		if err := r.searchRowGroup(ctx, l, i, s, &st, fn); err != nil {
			return st, err
		}
	}
	return st, nil
}

// searcher is one search's plan: what rules traces out, which columns it
// reads, and what it keeps of the traces it rebuilds.
type searcher struct {
	conds      []columnCondition
	contains   []containsCondition
	start, end uint64
	project    bool
	proj       projection
	filterCols []int // decoded first to pick candidates: trace_id, conditions, time
	rowCols    []int // decoded for the candidates' rows
	cache      messageCache
	dict       interner                // values of the dictionary columns
	dcols      [numColumns]*dictColumn // of the row group being searched
	arena      arena                   // span blobs of the row group being searched
	spans      []tracev1.Span          // of the last trace handed over
}

func newSearcher(opts SearchOptions) *searcher {
	s := &searcher{start: opts.Start, end: opts.End, project: opts.Project}
	s.filterCols = []int{colTraceID}
	for _, c := range opts.Conditions {
		if col, ok := conditionColumn(c); ok {
			s.conds = append(s.conds, columnCondition{col, c})
			s.filterCols = appendUnique(s.filterCols, col)
		}
	}
	for _, c := range opts.Conditions {
		if cc, ok := newContainsCondition(c); ok {
			s.contains = append(s.contains, cc)
			if cc.span {
				s.filterCols = appendUnique(s.filterCols, colSpan)
			}
			if cc.resource {
				s.filterCols = appendUnique(s.filterCols, colResource)
			}
			if cc.scope {
				s.filterCols = appendUnique(s.filterCols, colScope)
			}
		}
	}
	if s.timed() {
		s.filterCols = appendUnique(s.filterCols, colStartUnixNano, colDurationNano)
	}
	if s.project {
		s.proj = newProjection(opts.Fields)
		s.rowCols = []int{colSpanID, colParentSpanID, colStartUnixNano, colDurationNano, colName, colKind, colResource, colScope}
		if s.proj.status {
			s.rowCols = append(s.rowCols, colStatusCode)
		}
		if s.proj.blob() {
			s.rowCols = append(s.rowCols, colSpan)
		}
	} else {
		s.rowCols = []int{colSpanID, colParentSpanID, colStartUnixNano, colDurationNano, colName, colKind, colResource, colScope, colSpan}
	}
	return s
}

func (s *searcher) timed() bool { return s.start > 0 || s.end > 0 }

func appendUnique(s []int, vs ...int) []int {
	for _, v := range vs {
		if !slices.Contains(s, v) {
			s = append(s, v)
		}
	}
	return s
}

// columnCondition is a condition that a dedicated column can decide.
type columnCondition struct {
	col  int
	cond traceql.Condition
}

// conditionColumn is the dedicated column holding a condition's field.
// resource.service.name only for string literals: the column holds "" for a
// service.name of another type.
func conditionColumn(c traceql.Condition) (int, bool) {
	a := c.Attribute
	switch a.Intrinsic {
	case traceql.IntrinsicName:
		return colName, true
	case traceql.IntrinsicKind:
		return colKind, true
	case traceql.IntrinsicStatus:
		return colStatusCode, true
	case traceql.IntrinsicDuration:
		return colDurationNano, true
	case traceql.IntrinsicNone:
		if a.Scope == traceql.ScopeResource && a.Name == "service.name" && c.Value.Type == traceql.TypeString {
			return colServiceName, true
		}
	}
	return 0, false
}

// containsCondition is a string equality on an attribute that a span can
// satisfy only if the encoding of its span blob, resource or scope holds the
// string: protobuf stores strings as they are.
type containsCondition struct {
	lit                   string
	span, resource, scope bool // where the attribute may be
}

func newContainsCondition(c traceql.Condition) (containsCondition, bool) {
	a := c.Attribute
	if a.Intrinsic != traceql.IntrinsicNone || c.Op != traceql.OpEqual || c.Value.Type != traceql.TypeString || c.Value.S == "" {
		return containsCondition{}, false
	}
	if _, ok := conditionColumn(c); ok {
		return containsCondition{}, false // the column decides it
	}
	cc := containsCondition{lit: c.Value.S}
	switch a.Scope {
	case traceql.ScopeSpan:
		cc.span = true
	case traceql.ScopeResource:
		cc.resource = true
	case traceql.ScopeInstrumentation:
		cc.scope = true
	case traceql.ScopeNone:
		cc.span, cc.resource = true, true
	default:
		return containsCondition{}, false
	}
	return cc, true
}

// containsHolds tells, for each of n rows, whether its resource or scope
// (as cc says) holds cc's string; streamSpans tests span blobs.
func (s *searcher) containsHolds(cc containsCondition, n int) []bool {
	out := make([]bool, n)
	lit := []byte(cc.lit)
	// Resources and scopes repeat: test each dictionary value once.
	within := func(d *dictColumn) []bool {
		var seen addrCache[bool]
		entry := make([]bool, len(d.dict))
		for k, v := range d.dict {
			h, ok := seen.get(v)
			if !ok {
				h = bytes.Contains(v, lit)
				seen.put(v, h)
			}
			entry[k] = h
		}
		return entry
	}
	var res, scope []bool
	if cc.resource {
		res = within(s.dcols[colResource])
	}
	if cc.scope {
		scope = within(s.dcols[colScope])
	}
	for i := range out {
		out[i] = (cc.resource && res[s.dcols[colResource].idx[i]]) ||
			(cc.scope && scope[s.dcols[colScope].idx[i]])
	}
	return out
}

// streamSpans reads the span column of a row group of n rows, one page at a
// time, testing the blobs of the traces that may still match (may) for the
// strings of the span conditions; it keeps (in r.span, from s.arena) the
// blobs of the traces that pass and returns, per span condition, which rows
// may satisfy it.
func (s *searcher) streamSpans(rgr *file.RowGroupReader, r *rows, traces rowRanges, may []bool, n int) ([][]bool, error) {
	var conds []containsCondition
	for _, cc := range s.contains {
		if cc.span {
			conds = append(conds, cc)
		}
	}
	holds := make([][]bool, len(conds))
	for k, cc := range conds {
		// Conditions also on resources start from those.
		if cc.resource || cc.scope {
			holds[k] = s.containsHolds(cc, n)
		} else {
			holds[k] = make([]bool, n)
		}
	}
	finders := make([]finder, len(conds))
	for k, cc := range conds {
		finders[k] = newFinder(cc.lit)
	}
	cr, err := rgr.Column(colSpan)
	if err != nil {
		return nil, fmt.Errorf("%w: column span: %v", ErrCorrupt, err)
	}
	defer cr.Close()
	br, ok := cr.(*file.ByteArrayColumnChunkReader)
	if !ok {
		return nil, fmt.Errorf("%w: column span has type %s", ErrCorrupt, cr.Type())
	}
	s.arena.reset()
	r.span = make([]parquet.ByteArray, n)
	batch := make([]parquet.ByteArray, min(n, 1024))
	t, mark := 0, s.arena.mark()
	for row := 0; row < n; {
		// Values alias the reader's buffers until the next call.
		m, _, err := br.ReadBatchInPage(int64(min(n-row, len(batch))), batch, nil, nil)
		if err != nil {
			return nil, fmt.Errorf("%w: column span: %v", ErrCorrupt, err)
		}
		if m == 0 {
			if err := cr.Err(); err != nil {
				return nil, fmt.Errorf("%w: column span: %v", ErrCorrupt, err)
			}
			return nil, fmt.Errorf("%w: column span has %d values, want %d", ErrCorrupt, row, n)
		}
		for _, v := range batch[:m] {
			if may[t] {
				for k, f := range finders {
					holds[k][row] = holds[k][row] || f.in(v)
				}
				r.span[row] = s.arena.store(v)
			}
			row++
			if row == traces[t][1] {
				// The trace's last row: forget its blobs if it cannot match.
				if may[t] && !traceMayMatch(holds, traces[t][0], traces[t][1]) {
					clear(r.span[traces[t][0]:traces[t][1]])
					s.arena.release(mark)
				}
				if t++; t < len(traces) {
					mark = s.arena.mark()
				}
			}
		}
	}
	return holds, nil
}

// finder tells whether a byte string holds a literal, looking first for its
// byte least frequent in span blobs, which are mostly lower-case text.
type finder struct {
	lit []byte
	at  int // the index in lit of that byte
}

// byteFrequency ranks bytes by how often they occur in span blobs: English
// letter frequencies for lower-case letters, less for anything else.
func byteFrequency(c byte) int {
	const letters = "zqxjkvbpygfwmucldrhsnioate" // rarest first
	if i := strings.IndexByte(letters, c); i >= 0 {
		return 10 + i
	}
	switch {
	case c >= '0' && c <= '9', c == '.', c == '/', c == '_', c == '-', c == ' ':
		return 8
	case c >= 'A' && c <= 'Z':
		return 5
	}
	return 3
}

func newFinder(lit string) finder {
	f := finder{lit: []byte(lit)}
	for i := range f.lit {
		if byteFrequency(f.lit[i]) < byteFrequency(f.lit[f.at]) {
			f.at = i
		}
	}
	return f
}

// in is bytes.Contains(b, f.lit).
func (f finder) in(b []byte) bool {
	if len(f.lit) == 0 {
		return true
	}
	c := f.lit[f.at]
	for i := f.at; i < len(b); {
		k := bytes.IndexByte(b[i:], c)
		if k < 0 {
			return false
		}
		if start := i + k - f.at; start+len(f.lit) <= len(b) && bytes.Equal(b[start:start+len(f.lit)], f.lit) {
			return true
		}
		i += k + 1
	}
	return false
}

// arena holds the span blobs a search keeps of a row group, in memory it
// reuses for the next: nothing handed to fn refers to them.
type arena struct {
	buf   []byte
	chunk int // counts the buffers buf has had
}

type arenaMark struct{ len, chunk int }

func (a *arena) reset()          { a.buf = a.buf[:0] }
func (a *arena) mark() arenaMark { return arenaMark{len(a.buf), a.chunk} }

// release forgets what was stored since m, if it is in the current buffer.
func (a *arena) release(m arenaMark) {
	if m.chunk == a.chunk {
		a.buf = a.buf[:m.len]
	}
}

// store copies b into the arena.
func (a *arena) store(b []byte) parquet.ByteArray {
	if cap(a.buf)-len(a.buf) < len(b) {
		a.buf = make([]byte, 0, max(2*cap(a.buf), len(b), 1<<20))
		a.chunk++
	}
	n := len(a.buf)
	a.buf = append(a.buf, b...)
	return a.buf[n:len(a.buf):len(a.buf)]
}

// columnValue turns a column value into the value TraceQL sees.
func columnValue(col int, v any) traceql.Value {
	switch col {
	case colName, colServiceName:
		return traceql.StringValue(string(v.(parquet.ByteArray)))
	case colKind:
		return traceql.KindValue(tracev1.Span_SpanKind(v.(int32)))
	case colStatusCode:
		return traceql.StatusValue(tracev1.Status_StatusCode(v.(int32)))
	case colDurationNano:
		// A span ending before it starts has duration 0 for TraceQL.
		return traceql.DurationValue(max(0, time.Duration(v.(int64))))
	}
	return traceql.NilValue()
}

// skipRowGroup tells whether the statistics of a row group rule out one of
// the conditions (no value within [min, max] can satisfy it) or the time
// range.
func (s *searcher) skipRowGroup(rg *metadata.RowGroupMetaData) bool {
	for _, cc := range s.conds {
		lo, hi, ok := minMax(rg, cc.col)
		if !ok {
			continue
		}
		c := cc.cond
		below := traceql.Condition{Op: traceql.OpLess, Value: lo}    // v < min
		above := traceql.Condition{Op: traceql.OpGreater, Value: hi} // v > max
		switch c.Op {
		case traceql.OpEqual:
			if below.Holds(c.Value) || above.Holds(c.Value) {
				return true
			}
		case traceql.OpGreater, traceql.OpGreaterEqual:
			if !c.Holds(hi) {
				return true
			}
		case traceql.OpLess, traceql.OpLessEqual:
			if !c.Holds(lo) {
				return true
			}
		case traceql.OpNotEqual:
			if lo.String() == hi.String() && !c.Holds(lo) {
				return true
			}
		}
	}
	return s.timed() && s.outsideTime(rg)
}

// outsideTime tells whether the start and duration statistics of a row group
// put every trace in it outside the time range: each trace starts at or
// after the smallest start and ends by the largest start plus the largest
// duration.
func (s *searcher) outsideTime(rg *metadata.RowGroupMetaData) bool {
	minStart, maxStart, ok := int64MinMax(rg, colStartUnixNano)
	if !ok || minStart < 0 {
		return false
	}
	if s.end > 0 && uint64(minStart) >= s.end {
		return true
	}
	minDur, maxDur, ok := int64MinMax(rg, colDurationNano)
	if !ok || minDur < 0 {
		return false // a span ending before it starts: no bound on ends
	}
	return s.start > 0 && uint64(maxStart)+uint64(maxDur) < s.start
}

// minMax reads a column chunk's statistics as TraceQL values.
func minMax(rg *metadata.RowGroupMetaData, col int) (lo, hi traceql.Value, ok bool) {
	stats, ok := columnStats(rg, col)
	if !ok {
		return lo, hi, false
	}
	switch s := stats.(type) {
	case *metadata.ByteArrayStatistics:
		return columnValue(col, s.Min()), columnValue(col, s.Max()), true
	case *metadata.Int32Statistics:
		return columnValue(col, s.Min()), columnValue(col, s.Max()), true
	case *metadata.Int64Statistics:
		if s.Min() < 0 {
			return lo, hi, false // wrapped durations: no useful order
		}
		return columnValue(col, s.Min()), columnValue(col, s.Max()), true
	}
	return lo, hi, false
}

// int64MinMax reads the statistics of an INT64 column chunk.
func int64MinMax(rg *metadata.RowGroupMetaData, col int) (lo, hi int64, ok bool) {
	stats, ok := columnStats(rg, col)
	if !ok {
		return 0, 0, false
	}
	s, ok := stats.(*metadata.Int64Statistics)
	if !ok {
		return 0, 0, false
	}
	return s.Min(), s.Max(), true
}

func columnStats(rg *metadata.RowGroupMetaData, col int) (metadata.TypedStatistics, bool) {
	cc, err := rg.ColumnChunk(col)
	if err != nil {
		return nil, false
	}
	if set, err := cc.StatsSet(); err != nil || !set {
		return nil, false
	}
	stats, err := cc.Statistics()
	if err != nil || stats == nil || !stats.HasMinMax() {
		return nil, false
	}
	return stats, true
}

// searchRowGroup pre-filters a row group's traces on the dedicated columns
// and rebuilds the candidates.
func (r *Reader) searchRowGroup(ctx context.Context, l *loaded, i int, s *searcher, st *SearchStats, fn func(id model.TraceID, td *tracev1.TracesData) error) error {
	src := r.newChunkSource(l, i)
	defer src.close()
	fetch := func(cols []int) error {
		n, err := src.fetch(ctx, cols)
		st.InspectedBytes += uint64(n)
		if err != nil {
			return fmt.Errorf("search block %s: %w", r.meta.BlockID, err)
		}
		return nil
	}
	if err := fetch(s.filterCols); err != nil {
		return err
	}
	rgr, err := src.open()
	if err != nil {
		return fmt.Errorf("search block %s: %w", r.meta.BlockID, err)
	}
	pages := src.pageStarts
	var (
		ids        []model.TraceID
		all        rows // whole columns: those filterCols decoded
		candidates rowRanges
	)
	s.dcols = [numColumns]*dictColumn{}
	err = decodeSafe(func() (err error) {
		if ids, err = readTraceIDs(rgr); err != nil {
			return err
		}
		// Dictionary columns stay dictionaries and indexes until the
		// candidates' rows are read; span blobs are tested as they stream.
		var plain []int
		spans := false
		for _, c := range s.filterCols[1:] {
			switch {
			case isDictColumn(c):
				if _, err := s.dictCol(rgr, pages, c, len(ids)); err != nil {
					return err
				}
			case c == colSpan:
				spans = true
			default:
				plain = append(plain, c)
			}
		}
		if err := s.readColumns(rgr, pages, &all, plain, rowRanges{{0, len(ids)}}); err != nil {
			return err
		}
		var traces rowRanges
		for lo := 0; lo < len(ids); {
			if lo > 0 && ids[lo-1].Compare(ids[lo]) >= 0 {
				return fmt.Errorf("%w: trace IDs out of order in a row group", ErrCorrupt)
			}
			hi := lo + 1
			for hi < len(ids) && ids[hi] == ids[lo] {
				hi++
			}
			traces = append(traces, [2]int{lo, hi})
			lo = hi
		}
		holds := make([][]bool, 0, len(s.conds)+len(s.contains))
		for _, cc := range s.conds {
			holds = append(holds, s.conditionHolds(&all, cc))
		}
		for _, cc := range s.contains {
			if !cc.span {
				holds = append(holds, s.containsHolds(cc, len(ids)))
			}
		}
		// What the columns but span decide.
		may := make([]bool, len(traces))
		for t, tr := range traces {
			may[t] = traceMayMatch(holds, tr[0], tr[1]) && s.inTime(&all, tr[0], tr[1])
		}
		if spans {
			if holds, err = s.streamSpans(rgr, &all, traces, may, len(ids)); err != nil {
				return err
			}
			for t, tr := range traces {
				may[t] = may[t] && traceMayMatch(holds, tr[0], tr[1])
			}
		}
		for t, tr := range traces {
			if may[t] {
				candidates = append(candidates, tr)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(candidates) == 0 {
		st.SkippedRowGroups++
		return nil
	}
	if err := fetch(s.rowCols); err != nil {
		return err
	}
	// The candidates' rows, one after the other: the filter columns picked
	// from all, the others read in one pass over each column that skips
	// the rows between them (whole pages through the offset index).
	runs := candidates.merged()
	cand := all.gather(runs)
	if err := decodeSafe(func() error {
		return s.readColumns(rgr, pages, cand, missingColumns(cand, s.rowCols), runs)
	}); err != nil {
		return err
	}
	off := 0
	for _, c := range candidates {
		n := c[1] - c[0]
		sub := cand.window(off, off+n)
		off += n
		var td *tracev1.TracesData
		if s.project {
			td, err = sub.rebuildProjected(ids[c[0]], &s.proj, &s.cache, &s.dict, &s.spans)
		} else {
			td, err = sub.rebuild(ids[c[0]])
		}
		if err != nil {
			return err
		}
		st.InspectedTraces++
		st.InspectedSpans += uint64(n)
		if err := fn(ids[c[0]], td); err != nil {
			return err
		}
	}
	return nil
}

// rowRanges are ascending, disjoint [lo, hi) ranges of rows.
type rowRanges [][2]int

// rows counts the rows in the ranges.
func (rr rowRanges) rows() int {
	n := 0
	for _, r := range rr {
		n += r[1] - r[0]
	}
	return n
}

// merged joins adjacent ranges.
func (rr rowRanges) merged() rowRanges {
	var out rowRanges
	for _, r := range rr {
		if k := len(out) - 1; k >= 0 && out[k][1] == r[0] {
			out[k][1] = r[1]
			continue
		}
		out = append(out, r)
	}
	return out
}

// decodeSafe runs f, turning a panic of the parquet decoder on corrupt data
// into ErrCorrupt.
func decodeSafe(f func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: decode row group: %v", ErrCorrupt, p)
		}
	}()
	return f()
}

// conditionHolds tells, for each row, whether its value in the condition's
// column satisfies it.
func (s *searcher) conditionHolds(r *rows, cc columnCondition) []bool {
	var out []bool
	switch cc.col {
	case colName, colServiceName:
		// Test each dictionary value once.
		d := s.dcols[cc.col]
		var seen addrCache[bool]
		entry := make([]bool, len(d.dict))
		for k, v := range d.dict {
			h, ok := seen.get(v)
			if !ok {
				h = cc.cond.Holds(columnValue(cc.col, v))
				seen.put(v, h)
			}
			entry[k] = h
		}
		out = make([]bool, len(d.idx))
		for i, k := range d.idx {
			out[i] = entry[k]
		}
	case colKind, colStatusCode:
		vs := r.kind
		if cc.col == colStatusCode {
			vs = r.status
		}
		out = make([]bool, len(vs))
		for i, v := range vs {
			out[i] = cc.cond.Holds(columnValue(cc.col, v))
		}
	case colDurationNano:
		out = make([]bool, len(r.duration))
		for i, v := range r.duration {
			out[i] = cc.cond.Holds(columnValue(cc.col, v))
		}
	}
	return out
}

// traceMayMatch tells whether rows [lo, hi) have, for each condition, a row
// satisfying it.
func traceMayMatch(holds [][]bool, lo, hi int) bool {
	for _, h := range holds {
		if !slices.Contains(h[lo:hi], true) {
			return false
		}
	}
	return true
}

// inTime tells whether the trace in rows [lo, hi) overlaps the time range,
// with the start and end traceql.Summarize gives it.
func (s *searcher) inTime(r *rows, lo, hi int) bool {
	if !s.timed() {
		return true
	}
	start, end := uint64(r.start[lo]), uint64(r.start[lo])+uint64(r.duration[lo])
	for i := lo + 1; i < hi; i++ {
		start = min(start, uint64(r.start[i]))
		end = max(end, uint64(r.start[i])+uint64(r.duration[i]))
	}
	end = max(end, start)
	return !(s.start > 0 && end < s.start) && !(s.end > 0 && start >= s.end)
}

// projection is what a projected search keeps of the span blobs.
type projection struct {
	whole         bool            // a field it does not know: decode whole spans
	spanAttrs     map[string]bool // keys of the span attributes to keep
	status        bool            // span:status: the status code, from its column
	statusMessage bool            // span:statusMessage: the status, from the blob
}

func newProjection(fields []traceql.Attribute) projection {
	var p projection
	for _, a := range fields {
		switch a.Intrinsic {
		case traceql.IntrinsicNone:
			switch a.Scope {
			case traceql.ScopeSpan, traceql.ScopeNone:
				if p.spanAttrs == nil {
					p.spanAttrs = map[string]bool{}
				}
				p.spanAttrs[a.Name] = true
			case traceql.ScopeResource, traceql.ScopeInstrumentation:
				// Resources and scopes are always decoded whole.
			default:
				p.whole = true
			}
		case traceql.IntrinsicStatus:
			p.status = true
		case traceql.IntrinsicStatusMessage:
			p.statusMessage = true
		case traceql.IntrinsicName, traceql.IntrinsicDuration, traceql.IntrinsicKind,
			traceql.IntrinsicSpanID, traceql.IntrinsicParentID, traceql.IntrinsicChildCount,
			traceql.IntrinsicNestedSetLeft, traceql.IntrinsicNestedSetRight, traceql.IntrinsicNestedSetParent,
			traceql.IntrinsicTraceDuration, traceql.IntrinsicRootName, traceql.IntrinsicRootService,
			traceql.IntrinsicTraceID, traceql.IntrinsicScopeName, traceql.IntrinsicScopeVersion:
			// From the columns, the resource or the scope.
		default:
			p.whole = true
		}
	}
	return p
}

// blob tells whether the span column is needed.
func (p *projection) blob() bool { return p.whole || p.statusMessage || len(p.spanAttrs) > 0 }

// OTLP field numbers a projection reads from span blobs.
const (
	fieldSpanAttributes = 9 // Span.attributes
	fieldKeyValueKey    = 1 // KeyValue.key
)

// filterBlob appends to dst the records of the span blob b the projection
// keeps: the attributes whose key it needs and, for the status message, the
// status. A record it cannot parse is kept, for proto.Unmarshal to reject.
func (p *projection) filterBlob(dst, b []byte) ([]byte, error) {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return dst, protowire.ParseError(n)
		}
		m := protowire.ConsumeFieldValue(num, typ, b[n:])
		if m < 0 {
			return dst, protowire.ParseError(m)
		}
		rec := b[:n+m]
		b = b[n+m:]
		switch {
		case num == fieldSpanAttributes && len(p.spanAttrs) > 0:
			if key, ok := keyValueKey(rec[n:], typ); !ok || p.spanAttrs[string(key)] {
				dst = append(dst, rec...)
			}
		case num == fieldSpanStatus && p.statusMessage:
			dst = append(dst, rec...)
		}
	}
	return dst, nil
}

// keyValueKey reads the key of an encoded KeyValue record value.
func keyValueKey(v []byte, typ protowire.Type) (key []byte, ok bool) {
	if typ != protowire.BytesType {
		return nil, false
	}
	kv, n := protowire.ConsumeBytes(v)
	if n < 0 {
		return nil, false
	}
	for len(kv) > 0 {
		num, typ, n := protowire.ConsumeTag(kv)
		if n < 0 {
			return nil, false
		}
		if num == fieldKeyValueKey && typ == protowire.BytesType {
			k, m := protowire.ConsumeBytes(kv[n:])
			if m < 0 {
				return nil, false
			}
			key = k // the last record wins
			kv = kv[n+m:]
			continue
		}
		m := protowire.ConsumeFieldValue(num, typ, kv[n:])
		if m < 0 {
			return nil, false
		}
		kv = kv[n+m:]
	}
	return key, true
}

// maxMessageCache bounds how many resources and scopes a messageCache holds.
const maxMessageCache = 4096

// messageCache holds the resources and scopes a search decoded, by the
// address of their interned column value: they repeat from trace to trace.
// A key keeps its value alive, so an address is never reused for another.
type messageCache struct {
	resources map[*byte]*tracev1.ResourceSpans
	scopes    map[*byte]*tracev1.ScopeSpans
}

func (c *messageCache) resource(b []byte) (*tracev1.ResourceSpans, error) {
	return cached(&c.resources, b)
}

func (c *messageCache) scope(b []byte) (*tracev1.ScopeSpans, error) {
	return cached(&c.scopes, b)
}

func cached[M any, PM interface {
	*M
	proto.Message
}](m *map[*byte]PM, b []byte) (PM, error) {
	var key *byte
	if len(b) > 0 {
		key = &b[0]
		if v, ok := (*m)[key]; ok {
			return v, nil
		}
	}
	v := PM(new(M))
	if err := proto.Unmarshal(b, v); err != nil {
		return nil, err
	}
	if key != nil {
		if *m == nil || len(*m) >= maxMessageCache {
			*m = map[*byte]PM{}
		}
		(*m)[key] = v
	}
	return v, nil
}

// rebuildProjected is rebuild keeping only what p needs; see
// SearchOptions.Project. Resources and scopes come from c and are shared;
// the resource and scope values must be interned (see interner).
func (r *rows) rebuildProjected(id model.TraceID, p *projection, c *messageCache, in *interner, slab *[]tracev1.Span) (*tracev1.TracesData, error) {
	type rsEntry struct {
		key    []byte // resource column value
		rs     *tracev1.ResourceSpans
		keys   [][]byte // scope column values
		scopes []*tracev1.ScopeSpans
	}
	var (
		entries []rsEntry // few per trace: a slice beats a map
		scratch []byte
		traceID = id[:]
	)
	// The spans of the last trace are done with: reuse them.
	if cap(*slab) < len(r.spanID) {
		*slab = make([]tracev1.Span, len(r.spanID))
	}
	spans := (*slab)[:len(r.spanID)]
	td := &tracev1.TracesData{}
	for i := range spans {
		spans[i].Reset()
		// Interned values: equal ones share memory, which bytes.Equal checks first.
		res := r.resource[i]
		e := slices.IndexFunc(entries, func(e rsEntry) bool { return bytes.Equal(e.key, res) })
		if e < 0 {
			cached, err := c.resource(res)
			if err != nil {
				return nil, fmt.Errorf("%w: trace %s row %d: resource: %v", ErrCorrupt, id, i, err)
			}
			rs := &tracev1.ResourceSpans{Resource: cached.Resource, SchemaUrl: cached.SchemaUrl}
			entries = append(entries, rsEntry{key: res, rs: rs})
			td.ResourceSpans = append(td.ResourceSpans, rs)
			e = len(entries) - 1
		}
		re := &entries[e]
		scope := r.scope[i]
		k := slices.IndexFunc(re.keys, func(k []byte) bool { return bytes.Equal(k, scope) })
		if k < 0 {
			cached, err := c.scope(scope)
			if err != nil {
				return nil, fmt.Errorf("%w: trace %s row %d: scope: %v", ErrCorrupt, id, i, err)
			}
			ss := &tracev1.ScopeSpans{Scope: cached.Scope, SchemaUrl: cached.SchemaUrl}
			re.keys = append(re.keys, scope)
			re.scopes = append(re.scopes, ss)
			re.rs.ScopeSpans = append(re.rs.ScopeSpans, ss)
			k = len(re.keys) - 1
		}
		ss := re.scopes[k]

		s := &spans[i]
		if p.blob() {
			b := r.span[i]
			if !p.whole {
				var err error
				if scratch, err = p.filterBlob(scratch[:0], b); err != nil {
					return nil, fmt.Errorf("%w: trace %s row %d: span: %v", ErrCorrupt, id, i, err)
				}
				b = scratch
			}
			if len(b) > 0 {
				if err := proto.Unmarshal(b, s); err != nil {
					return nil, fmt.Errorf("%w: trace %s row %d: span: %v", ErrCorrupt, id, i, err)
				}
			}
		}
		if p.status && !p.statusMessage && !p.whole {
			if code := r.status[i]; code != 0 {
				s.Status = &tracev1.Status{Code: tracev1.Status_StatusCode(code)}
			}
		}
		s.TraceId = traceID
		s.SpanId = nonEmpty(r.spanID[i])
		s.ParentSpanId = nonEmpty(r.parentID[i])
		s.Name = in.string(r.name[i])
		s.Kind = tracev1.Span_SpanKind(r.kind[i])
		s.StartTimeUnixNano = uint64(r.start[i])
		s.EndTimeUnixNano = uint64(r.start[i]) + uint64(r.duration[i])
		ss.Spans = append(ss.Spans, s)
	}
	return td, nil
}

// gather returns rows rr of the columns r holds, one after the other.
func (r *rows) gather(rr rowRanges) *rows {
	n := rr.rows()
	if len(rr) == 1 {
		return r.window(rr[0][0], rr[0][1])
	}
	return &rows{
		spanID: gather(r.spanID, rr, n), parentID: gather(r.parentID, rr, n), start: gather(r.start, rr, n),
		duration: gather(r.duration, rr, n), name: gather(r.name, rr, n), kind: gather(r.kind, rr, n),
		status: gather(r.status, rr, n), service: gather(r.service, rr, n), resource: gather(r.resource, rr, n),
		scope: gather(r.scope, rr, n), span: gather(r.span, rr, n),
	}
}

func gather[T any](vs []T, rr rowRanges, n int) []T {
	if vs == nil {
		return nil
	}
	out := make([]T, 0, n)
	for _, r := range rr {
		out = append(out, vs[r[0]:r[1]]...)
	}
	return out
}

// window returns rows [lo, hi) of the columns r holds, sharing memory.
func (r *rows) window(lo, hi int) *rows {
	return &rows{
		spanID: window(r.spanID, lo, hi), parentID: window(r.parentID, lo, hi), start: window(r.start, lo, hi),
		duration: window(r.duration, lo, hi), name: window(r.name, lo, hi), kind: window(r.kind, lo, hi),
		status: window(r.status, lo, hi), service: window(r.service, lo, hi), resource: window(r.resource, lo, hi),
		scope: window(r.scope, lo, hi), span: window(r.span, lo, hi),
	}
}

func window[T any](vs []T, lo, hi int) []T {
	if vs == nil {
		return nil
	}
	return vs[lo:hi:hi]
}

// readColumns reads the rows rr of the given columns into r, one after the
// other. The values of dictionary columns are interned: they repeat.
func (s *searcher) readColumns(rgr *file.RowGroupReader, pages func(col int) []int64, r *rows, cols []int, rr rowRanges) error {
	var err error
	for _, c := range cols {
		if isDictColumn(c) {
			d, err := s.dictCol(rgr, pages, c, int(rgr.NumRows()))
			if err != nil {
				return err
			}
			vs := d.values(rr)
			switch c {
			case colName:
				r.name = vs
			case colServiceName:
				r.service = vs
			case colResource:
				r.resource = vs
			case colScope:
				r.scope = vs
			}
			continue
		}
		switch c {
		case colSpanID:
			r.spanID, err = readRanges(rgr, c, pages(c), rr, readBatch[parquet.ByteArray])
		case colParentSpanID:
			r.parentID, err = readRanges(rgr, c, pages(c), rr, readBatch[parquet.ByteArray])
		case colStartUnixNano:
			r.start, err = readRanges(rgr, c, pages(c), rr, readBatch[int64])
		case colDurationNano:
			r.duration, err = readRanges(rgr, c, pages(c), rr, readBatch[int64])
		case colKind:
			r.kind, err = readRanges(rgr, c, pages(c), rr, readBatch[int32])
		case colStatusCode:
			r.status, err = readRanges(rgr, c, pages(c), rr, readBatch[int32])
		case colSpan:
			r.span, err = readRanges(rgr, c, pages(c), rr, readBatch[parquet.ByteArray])
		default:
			err = fmt.Errorf("column %s: not readable as rows", columns[c].name)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// readBatch reads values with ReadBatch, which copies them out of the
// reader's buffers.
func readBatch[T any](br batchReader[T], out []T) (int64, error) {
	n, _, err := br.ReadBatch(int64(len(out)), out, nil, nil)
	return n, err
}

// readRanges reads the values of the rows rr of a column, one after the
// other, with read. Between ranges it skips values within a page and seeks
// through the offset index to another page (pageStarts: the first row of
// each page; nil if unknown), which it then need not decompress.
func readRanges[T any](rgr *file.RowGroupReader, col int, pageStarts []int64, rr rowRanges, read func(br batchReader[T], out []T) (int64, error)) ([]T, error) {
	cr, err := rgr.Column(col)
	if err != nil {
		return nil, fmt.Errorf("%w: column %s: %v", ErrCorrupt, columns[col].name, err)
	}
	defer cr.Close()
	br, ok := cr.(batchReader[T])
	if !ok {
		return nil, fmt.Errorf("%w: column %s has type %s", ErrCorrupt, columns[col].name, cr.Type())
	}
	page := func(row int) int {
		i, _ := slices.BinarySearch(pageStarts, int64(row)+1)
		return i - 1
	}
	out := make([]T, rr.rows())
	pos, k, started := 0, 0, false
	for _, r := range rr {
		if gap := int64(r[0] - pos); gap > 0 {
			if pageStarts == nil || page(pos) == page(r[0]) {
				if _, err := br.Skip(gap); err != nil {
					return nil, fmt.Errorf("%w: column %s: skip to row %d: %v", ErrCorrupt, columns[col].name, r[0], err)
				}
			} else {
				// A dictionary-encoded column needs its dictionary page
				// read first, which HasNext does.
				if !started && !cr.HasNext() {
					return nil, fmt.Errorf("%w: column %s is empty: %v", ErrCorrupt, columns[col].name, cr.Err())
				}
				if err := cr.SeekToRow(int64(r[0])); err != nil {
					return nil, fmt.Errorf("%w: column %s: seek to row %d: %v", ErrCorrupt, columns[col].name, r[0], err)
				}
			}
		}
		started = true
		for end := k + r[1] - r[0]; k < end; {
			n, err := read(br, out[k:end])
			if err != nil {
				return nil, fmt.Errorf("%w: column %s: %v", ErrCorrupt, columns[col].name, err)
			}
			if n == 0 {
				if err := cr.Err(); err != nil {
					return nil, fmt.Errorf("%w: column %s: %v", ErrCorrupt, columns[col].name, err)
				}
				return nil, fmt.Errorf("%w: column %s ends before row %d", ErrCorrupt, columns[col].name, r[1])
			}
			k += int(n)
		}
		pos = r[1]
	}
	return out, nil
}

// readBatch reads the values of one page at most with ReadBatchInPage and
// interns them: unlike ReadBatch, it copies only values it has not seen.
func (in *interner) readBatch(br batchReader[parquet.ByteArray], out []parquet.ByteArray) (int64, error) {
	r, ok := br.(*file.ByteArrayColumnChunkReader)
	if !ok {
		return 0, fmt.Errorf("column of type %s", br.Type())
	}
	n, _, err := r.ReadBatchInPage(int64(len(out)), out, nil, nil)
	if err != nil {
		return n, err
	}
	// The values alias the reader's buffers until the next call; within
	// this one, values at the same address are equal (the same dictionary
	// entry), which saves hashing them again.
	in.batch.reset()
	for i, v := range out[:n] {
		c, ok := in.batch.get(v)
		if !ok {
			c = in.intern(v)
			in.batch.put(v, c)
		}
		out[i] = c
	}
	return n, nil
}

// addrCache maps byte slices to values by their address and length: a
// direct-mapped cache, faster than a map for the few distinct values of a
// dictionary column, and only as valid as the addresses are: reset forgets
// every entry.
type addrCache[V any] struct {
	gen   uint32 // entries of other generations are forgotten ones
	slots [256]struct {
		key []byte
		gen uint32
		val V
	}
}

func (c *addrCache[V]) slot(b []byte) int {
	return (len(b)*131 + int(b[0])*31 + int(b[len(b)-1])*7 + int(b[len(b)/2])) & 255
}

// get returns the value put for b's address and length.
func (c *addrCache[V]) get(b []byte) (v V, ok bool) {
	if len(b) == 0 {
		return v, false
	}
	s := &c.slots[c.slot(b)]
	if s.gen == c.gen && len(s.key) == len(b) && &s.key[0] == &b[0] {
		return s.val, true
	}
	return v, false
}

func (c *addrCache[V]) put(b []byte, v V) {
	if len(b) > 0 {
		s := &c.slots[c.slot(b)]
		s.key, s.gen, s.val = b, c.gen, v
	}
}

func (c *addrCache[V]) reset() {
	c.gen++
	if c.gen == 0 { // wrapped: entries of generation 0 could look current
		clear(c.slots[:])
	}
}

// maxInternBytes bounds the bytes an interner holds.
const maxInternBytes = 64 << 20

// interner keeps one copy of each value it is given.
type interner struct {
	batch   addrCache[parquet.ByteArray] // readBatch's, valid within one batch
	values  map[string]parquet.ByteArray
	strings map[string]string
	size    int
}

// intern returns the interner's copy of b.
func (in *interner) intern(b []byte) parquet.ByteArray {
	if v, ok := in.values[string(b)]; ok {
		return v
	}
	if in.values == nil || in.size > maxInternBytes {
		// Values handed out stay valid; later ones are copied anew.
		in.values, in.strings, in.size = map[string]parquet.ByteArray{}, nil, 0
	}
	v := parquet.ByteArray(bytes.Clone(b))
	if v == nil {
		v = parquet.ByteArray{}
	}
	in.values[string(v)] = v
	in.size += 2*len(v) + 64
	return v
}

// string returns b as a string, converting each value once.
func (in *interner) string(b []byte) string {
	if v, ok := in.strings[string(b)]; ok {
		return v
	}
	if in.strings == nil {
		in.strings = map[string]string{}
	}
	v := string(b)
	in.strings[v] = v
	in.size += 2*len(v) + 64
	return v
}

// missingColumns returns those of cols that r has not read.
func missingColumns(r *rows, cols []int) []int {
	var out []int
	for _, c := range cols {
		var have bool
		switch c {
		case colSpanID:
			have = r.spanID != nil
		case colParentSpanID:
			have = r.parentID != nil
		case colStartUnixNano:
			have = r.start != nil
		case colDurationNano:
			have = r.duration != nil
		case colName:
			have = r.name != nil
		case colKind:
			have = r.kind != nil
		case colStatusCode:
			have = r.status != nil
		case colServiceName:
			have = r.service != nil
		case colResource:
			have = r.resource != nil
		case colScope:
			have = r.scope != nil
		case colSpan:
			have = r.span != nil
		}
		if !have {
			out = append(out, c)
		}
	}
	return out
}

// chunkSource fetches the column chunks of one row group as a search needs
// them, each run of adjacent chunks with one ranged read, and serves a
// parquet reader from what it fetched.
type chunkSource struct {
	r       *Reader
	l       *loaded
	rg      int
	src     *rangeReaderAt
	bufs    []*[]byte
	fetched [numColumns]bool
	pr      *file.Reader
	pages   [numColumns][]int64 // pageStarts, once read
}

// maxFetchGap is how many bytes of unneeded column chunks a fetch reads
// rather than split one ranged read in two.
const maxFetchGap = 256 << 10

func (r *Reader) newChunkSource(l *loaded, rg int) *chunkSource {
	return &chunkSource{r: r, l: l, rg: rg, src: &rangeReaderAt{size: r.meta.Size, segments: []segment{{off: l.idx.TailOffset, buf: l.tail}}}}
}

// fetch reads the chunks of cols not fetched yet and returns how many bytes
// it read.
func (c *chunkSource) fetch(ctx context.Context, cols []int) (int64, error) {
	md := c.l.footer.RowGroup(c.rg)
	type byteRange struct{ off, end int64 }
	var want []byteRange
	for _, col := range cols {
		if c.fetched[col] {
			continue
		}
		off, length, err := chunkRange(md, col)
		if err != nil {
			return 0, err
		}
		want = append(want, byteRange{off, off + length})
	}
	slices.SortFunc(want, func(a, b byteRange) int { return cmp.Compare(a.off, b.off) })
	var merged []byteRange
	for _, w := range want {
		if k := len(merged) - 1; k >= 0 && w.off-merged[k].end <= maxFetchGap {
			merged[k].end = max(merged[k].end, w.end)
			continue
		}
		merged = append(merged, w)
	}
	e := c.l.idx.RowGroups[c.rg]
	var total int64
	for _, m := range merged {
		if m.off < e.Offset || m.end > e.Offset+e.Length {
			return total, fmt.Errorf("%w: row group %d column chunk at %d+%d is outside it", ErrCorrupt, c.rg, m.off, m.end-m.off)
		}
		buf := getRowGroupBuf(m.end - m.off)
		if err := c.r.readRange(ctx, storage.DataKey(c.r.meta.TenantID, c.r.meta.BlockID), m.off, *buf); err != nil {
			rowGroupBufs.Put(buf)
			return total, err
		}
		c.bufs = append(c.bufs, buf)
		c.src.segments = append(c.src.segments, segment{off: m.off, buf: *buf})
		total += m.end - m.off
		for col := range numColumns {
			if off, length, err := chunkRange(md, col); err == nil && off >= m.off && off+length <= m.end {
				c.fetched[col] = true
			}
		}
	}
	return total, nil
}

// chunkRange is where a column chunk is in data.parquet, as arrow-go reads it.
func chunkRange(md *metadata.RowGroupMetaData, col int) (off, length int64, err error) {
	cc, err := md.ColumnChunk(col)
	if err != nil {
		return 0, 0, fmt.Errorf("%w: column %s: %v", ErrCorrupt, columns[col].name, err)
	}
	off = cc.DataPageOffset()
	if cc.HasDictionaryPage() && cc.DictionaryPageOffset() > 0 && cc.DictionaryPageOffset() < off {
		off = cc.DictionaryPageOffset()
	}
	if off < 0 || cc.TotalCompressedSize() <= 0 {
		return 0, 0, fmt.Errorf("%w: column %s at %d+%d", ErrCorrupt, columns[col].name, off, cc.TotalCompressedSize())
	}
	return off, cc.TotalCompressedSize(), nil
}

// open opens the row group over the fetched chunks; later fetches add to
// what it can read.
func (c *chunkSource) open() (*file.RowGroupReader, error) {
	pr, err := file.NewParquetReader(c.src, file.WithMetadata(c.l.footer), file.WithReadProps(searchReadProps()))
	if err != nil {
		return nil, fmt.Errorf("%w: open row group %d: %v", ErrCorrupt, c.rg, err)
	}
	c.pr = pr
	return pr.RowGroup(c.rg), nil
}

// pageStarts returns the first row of each page of a column chunk, from its
// offset index; nil if it has none.
func (c *chunkSource) pageStarts(col int) []int64 {
	if c.pages[col] != nil || c.pr == nil {
		return c.pages[col]
	}
	pir := c.pr.GetPageIndexReader()
	if pir == nil {
		return nil
	}
	rgi, err := pir.RowGroup(c.rg)
	if err != nil || rgi == nil {
		return nil
	}
	oi, err := rgi.GetOffsetIndex(col)
	if err != nil || oi == nil {
		return nil
	}
	locs := oi.GetPageLocations()
	starts := make([]int64, len(locs))
	for i, l := range locs {
		starts[i] = l.FirstRowIndex
	}
	if len(starts) == 0 || starts[0] != 0 || !slices.IsSorted(starts) {
		return nil
	}
	c.pages[col] = starts
	return starts
}

// close releases the fetched buffers: everything decoded from them was
// copied out (see openRowGroup).
func (c *chunkSource) close() {
	if c.pr != nil {
		_ = c.pr.Close()
	}
	for _, b := range c.bufs {
		rowGroupBufs.Put(b)
	}
}

// Dictionary columns decoded directly: arrow-go's readers turn every row of
// a dictionary-encoded column into a value (a slice into the dictionary),
// which costs more than everything else a search does with the column. The
// pages hold a dictionary and, per row, an index into it; a search tests a
// condition once per dictionary value and copies each value once.

// dictColumn is a dictionary-encoded column chunk: its values, interned
// (values of PLAIN pages, after a dictionary grew too big, are added to
// them), and per row the index of its value.
type dictColumn struct {
	dict []parquet.ByteArray
	idx  []int32
}

// values returns the values of the rows rr, one after the other.
func (d *dictColumn) values(rr rowRanges) []parquet.ByteArray {
	out := make([]parquet.ByteArray, 0, rr.rows())
	for _, r := range rr {
		for _, i := range d.idx[r[0]:r[1]] {
			out = append(out, d.dict[i])
		}
	}
	return out
}

// isDictColumn tells the dictionary-encoded BYTE_ARRAY columns, which a
// search reads as dictColumns.
func isDictColumn(col int) bool {
	return columns[col].dict && columns[col].physical == parquet.Types.ByteArray
}

// dictCol returns column col of the row group of n rows, decoding it on
// first use; an unusual one is read through arrow-go, each row its own
// dictionary entry.
func (s *searcher) dictCol(rgr *file.RowGroupReader, pages func(col int) []int64, col, n int) (*dictColumn, error) {
	if d := s.dcols[col]; d != nil {
		return d, nil
	}
	d, err := readDictColumn(rgr, col, n, 0, &s.dict)
	if errors.Is(err, errUnusualPage) {
		vs, err := readRanges(rgr, col, pages(col), rowRanges{{0, n}}, s.dict.readBatch)
		if err != nil {
			return nil, err
		}
		d = &dictColumn{dict: vs, idx: make([]int32, n)}
		for i := range d.idx {
			d.idx[i] = int32(i)
		}
	} else if err != nil {
		return nil, err
	}
	s.dcols[col] = d
	return d, nil
}

// readTraceIDs reads a row group's whole trace_id column, as readIDs does,
// from its dictionary.
func readTraceIDs(rgr *file.RowGroupReader) ([]model.TraceID, error) {
	n := int(rgr.NumRows())
	d, err := readDictColumn(rgr, colTraceID, n, 16, nil)
	if errors.Is(err, errUnusualPage) {
		return readIDs(rgr)
	}
	if err != nil {
		return nil, err
	}
	dict := make([]model.TraceID, len(d.dict))
	for k, v := range d.dict {
		dict[k] = model.TraceID(v)
	}
	ids := make([]model.TraceID, n)
	for i, k := range d.idx {
		ids[i] = dict[k]
	}
	return ids, nil
}

// decodeDictPages is false only in tests of the way through arrow-go.
var decodeDictPages = true

// errUnusualPage: a page that readDictColumn does not decode itself (not one
// Vivace writes); the column is read through arrow-go instead.
var errUnusualPage = errors.New("unusual page")

// readDictColumn decodes a BYTE_ARRAY (fixed 0) or FIXED_LEN_BYTE_ARRAY
// (fixed its length) column chunk of n rows whose pages are a PLAIN
// dictionary page and V1 data pages of dictionary indexes or PLAIN values.
// Values are interned by in, or copied when in is nil.
func readDictColumn(rgr *file.RowGroupReader, col, n, fixed int, in *interner) (*dictColumn, error) {
	if !decodeDictPages {
		return nil, errUnusualPage
	}
	pages, err := rgr.GetColumnPageReader(col)
	if err != nil {
		return nil, fmt.Errorf("%w: column %s: %v", ErrCorrupt, columns[col].name, err)
	}
	defer pages.Close()
	d := &dictColumn{idx: make([]int32, 0, n)}
	keep := func(v []byte) parquet.ByteArray {
		if in != nil {
			return in.intern(v)
		}
		return bytes.Clone(v)
	}
	haveDict := false
	for pages.Next() {
		var err error
		switch p := pages.Page().(type) {
		case *file.DictionaryPage:
			if haveDict || len(d.idx) > 0 {
				return nil, fmt.Errorf("%w: column %s: a dictionary page after others", ErrCorrupt, columns[col].name)
			}
			haveDict = true
			enc := parquet.Encoding(p.Encoding())
			if enc != parquet.Encodings.Plain && enc != parquet.Encodings.PlainDict {
				return nil, errUnusualPage
			}
			d.dict, err = appendPlain(d.dict, p.Data(), int(p.NumValues()), fixed, keep)
		case *file.DataPageV1:
			// REQUIRED and not nested: a V1 page holds no levels.
			m := int(p.NumValues())
			if m < 0 || len(d.idx)+m > n {
				return nil, fmt.Errorf("%w: column %s has more than %d values", ErrCorrupt, columns[col].name, n)
			}
			switch parquet.Encoding(p.Encoding()) {
			case parquet.Encodings.RLEDict, parquet.Encodings.PlainDict:
				if !haveDict {
					return nil, fmt.Errorf("%w: column %s: dictionary indexes without a dictionary", ErrCorrupt, columns[col].name)
				}
				d.idx, err = appendIndexes(d.idx, p.Data(), m, len(d.dict))
			case parquet.Encodings.Plain:
				k := len(d.dict)
				if d.dict, err = appendPlain(d.dict, p.Data(), m, fixed, keep); err == nil {
					for i := range m {
						d.idx = append(d.idx, int32(k+i))
					}
				}
			default:
				return nil, errUnusualPage
			}
		default: // data page V2, which Vivace does not write
			return nil, errUnusualPage
		}
		if err != nil {
			return nil, fmt.Errorf("%w: column %s: %v", ErrCorrupt, columns[col].name, err)
		}
	}
	if err := pages.Err(); err != nil {
		return nil, fmt.Errorf("%w: column %s: %v", ErrCorrupt, columns[col].name, err)
	}
	if len(d.idx) != n {
		return nil, fmt.Errorf("%w: column %s has %d values, want %d", ErrCorrupt, columns[col].name, len(d.idx), n)
	}
	return d, nil
}

// appendPlain appends to dst the n PLAIN values in b: each a 4-byte
// little-endian length and its bytes, or, with fixed > 0, fixed bytes.
func appendPlain(dst []parquet.ByteArray, b []byte, n, fixed int, keep func([]byte) parquet.ByteArray) ([]parquet.ByteArray, error) {
	if n < 0 {
		return dst, fmt.Errorf("%d values", n)
	}
	for range n {
		size := fixed
		if fixed == 0 {
			if len(b) < 4 {
				return dst, errors.New("truncated PLAIN value")
			}
			size, b = int(binary.LittleEndian.Uint32(b)), b[4:]
		}
		if size < 0 || size > len(b) {
			return dst, errors.New("truncated PLAIN value")
		}
		dst = append(dst, keep(b[:size]))
		b = b[size:]
	}
	return dst, nil
}

// appendIndexes appends to dst the n dictionary indexes of a data page: a
// bit width byte, then runs of the RLE / bit-packing hybrid encoding (the
// Parquet format's Encodings.md), each index below dictLen.
func appendIndexes(dst []int32, b []byte, n, dictLen int) ([]int32, error) {
	if len(b) < 1 || b[0] > 32 {
		return dst, errors.New("bad bit width")
	}
	width := int(b[0])
	b = b[1:]
	mask := uint64(1)<<width - 1
	for want := len(dst) + n; len(dst) < want; {
		h, k := binary.Uvarint(b)
		if k <= 0 || h>>1 > uint64(n)+8 {
			return dst, errors.New("bad run header")
		}
		b = b[k:]
		count := int(h >> 1)
		if h&1 == 0 { // a run of one value
			w := (width + 7) / 8
			if len(b) < w || count == 0 {
				return dst, errors.New("bad RLE run")
			}
			var v uint64
			for j := range w {
				v |= uint64(b[j]) << (8 * j)
			}
			b = b[w:]
			if v >= uint64(dictLen) {
				return dst, fmt.Errorf("index %d of a dictionary of %d", v, dictLen)
			}
			for range min(count, want-len(dst)) {
				dst = append(dst, int32(v))
			}
			continue
		}
		// count groups of 8 bit-packed values, the last maybe padding.
		size := count * width
		if len(b) < size || count == 0 {
			return dst, errors.New("bad bit-packed run")
		}
		packed := b[:size]
		b = b[size:]
		for i := range min(count*8, want-len(dst)) {
			bit := i * width
			var v uint64
			for j, at := 0, bit>>3; j < (bit&7+width+7)/8; j++ {
				v |= uint64(packed[at+j]) << (8 * j)
			}
			v = v >> (bit & 7) & mask
			if v >= uint64(dictLen) {
				return dst, fmt.Errorf("index %d of a dictionary of %d", v, dictLen)
			}
			dst = append(dst, int32(v))
		}
	}
	return dst, nil
}

// searchReadProps are readProps with page buffers from pagePool: a search
// opens a dozen column readers per row group, and their buffers were most
// of the memory it allocated. Everything a search keeps is copied out of
// them before the readers close.
func searchReadProps() *parquet.ReaderProperties {
	p := parquet.NewReaderProperties(pagePool{})
	d := readProps()
	p.BufferedStreamEnabled = d.BufferedStreamEnabled
	p.BufferSize = d.BufferSize
	p.MaxCompressedPageSize = d.MaxCompressedPageSize
	p.MaxUncompressedPageSize = d.MaxUncompressedPageSize
	return p
}

// pagePool is a memory.Allocator of zeroed buffers recycled in power-of-two
// size classes up to 64 MiB.
type pagePool struct{}

var pageBufs [27]sync.Pool // of *[]byte, by log2 of capacity

func (pagePool) Allocate(size int) []byte {
	c := bits.Len(uint(max(size, 1) - 1))
	if c >= len(pageBufs) {
		return make([]byte, size)
	}
	if p, ok := pageBufs[c].Get().(*[]byte); ok {
		b := (*p)[:size]
		clear(b)
		return b
	}
	return make([]byte, size, 1<<c)
}

func (a pagePool) Reallocate(size int, b []byte) []byte {
	if size <= cap(b) {
		old := len(b)
		b = b[:size]
		if size > old {
			clear(b[old:])
		}
		return b
	}
	nb := a.Allocate(size)
	copy(nb, b)
	a.Free(b)
	return nb
}

func (pagePool) Free(b []byte) {
	c := bits.Len(uint(cap(b) - 1))
	if cap(b) == 0 || cap(b) != 1<<c || c >= len(pageBufs) {
		return
	}
	b = b[:0]
	pageBufs[c].Put(&b)
}
