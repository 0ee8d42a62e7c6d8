package block

import (
	"context"
	"fmt"
	"time"

	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/metadata"
	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/vivace-dev/vivace/internal/model"
	"github.com/vivace-dev/vivace/internal/traceql"
)

// SearchStats says what a search read.
type SearchStats struct {
	InspectedTraces  uint64 // traces rebuilt and handed to fn
	InspectedSpans   uint64
	InspectedBytes   uint64 // bytes of data.parquet fetched
	SkippedRowGroups int    // ruled out by column statistics or the dedicated columns
}

// Search calls fn, in trace ID order, with every trace of the block that may
// satisfy all of conds (from traceql.Query.Conditions) and leaves the others
// out, reading as little as it can:
//   - a row group whose column statistics rule out a condition is not fetched;
//   - in the others, the trace_id column and the dedicated columns the
//     conditions need (name, kind, status_code, duration_nano, service_name)
//     are decoded first, and only traces with, for each condition, a span
//     satisfying it are rebuilt from the remaining columns.
//
// Conditions on other fields are left to the caller's evaluation of the
// rebuilt trace. Search stops at, and returns, the first error of fn.
func (r *Reader) Search(ctx context.Context, conds []traceql.Condition, fn func(id model.TraceID, td *tracev1.TracesData) error) (SearchStats, error) {
	var st SearchStats
	l, err := r.load(ctx)
	if err != nil {
		return st, fmt.Errorf("search block %s: %w", r.meta.BlockID, err)
	}
	var colConds []columnCondition
	for _, c := range conds {
		if col, ok := conditionColumn(c); ok {
			colConds = append(colConds, columnCondition{col, c})
		}
	}
	for i := range l.idx.RowGroups {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		if skipRowGroup(l.footer.RowGroup(i), colConds) {
			st.SkippedRowGroups++
			continue
		}
		rgr, closeRG, err := r.openRowGroup(ctx, l, i)
		if err != nil {
			return st, fmt.Errorf("search block %s: %w", r.meta.BlockID, err)
		}
		st.InspectedBytes += uint64(l.idx.RowGroups[i].Length)
		err = searchRowGroup(rgr, colConds, &st, fn)
		closeRG()
		if err != nil {
			return st, err
		}
	}
	return st, nil
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
// the conditions: no value within [min, max] can satisfy it.
func skipRowGroup(rg *metadata.RowGroupMetaData, conds []columnCondition) bool {
	for _, cc := range conds {
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
	return false
}

// minMax reads a column chunk's statistics as TraceQL values.
func minMax(rg *metadata.RowGroupMetaData, col int) (lo, hi traceql.Value, ok bool) {
	cc, err := rg.ColumnChunk(col)
	if err != nil {
		return lo, hi, false
	}
	if set, err := cc.StatsSet(); err != nil || !set {
		return lo, hi, false
	}
	stats, err := cc.Statistics()
	if err != nil || stats == nil || !stats.HasMinMax() {
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

// searchRowGroup pre-filters a row group's traces on the dedicated columns
// and rebuilds the candidates.
func searchRowGroup(rgr *file.RowGroupReader, conds []columnCondition, st *SearchStats, fn func(id model.TraceID, td *tracev1.TracesData) error) (err error) {
	var (
		ids        []model.TraceID
		candidates [][2]int // row ranges of candidate traces
		all        rows
		readAll    bool
	)
	err = func() (err error) {
		defer func() {
			if p := recover(); p != nil {
				err = fmt.Errorf("%w: decode row group: %v", ErrCorrupt, p)
			}
		}()
		if ids, err = readIDs(rgr); err != nil {
			return err
		}
		values := make(map[int][]traceql.Value, len(conds))
		for _, cc := range conds {
			if values[cc.col] == nil {
				if values[cc.col], err = readValues(rgr, cc.col, int64(len(ids))); err != nil {
					return err
				}
			}
		}
		candRows := 0
		for lo := 0; lo < len(ids); {
			if lo > 0 && ids[lo-1].Compare(ids[lo]) >= 0 {
				return fmt.Errorf("%w: trace IDs out of order in a row group", ErrCorrupt)
			}
			hi := lo + 1
			for hi < len(ids) && ids[hi] == ids[lo] {
				hi++
			}
			if traceMayMatch(conds, values, lo, hi) {
				candidates = append(candidates, [2]int{lo, hi})
				candRows += hi - lo
			}
			lo = hi
		}
		// More than a few candidates: one pass over every column beats
		// seeking to each, which decompresses a page per column each time.
		if readAll = len(candidates) > 4 || candRows*4 > len(ids); readAll {
			return readRows(rgr, &all, 0, int64(len(ids)))
		}
		return nil
	}()
	if err != nil {
		return err
	}
	for _, c := range candidates {
		var sub *rows
		if readAll {
			sub = all.slice(c[0], c[1])
		} else {
			sub = &rows{}
			if err := readRowsSafe(rgr, sub, int64(c[0]), int64(c[1]-c[0])); err != nil {
				return err
			}
		}
		td, err := sub.rebuild(ids[c[0]])
		if err != nil {
			return err
		}
		st.InspectedTraces++
		st.InspectedSpans += uint64(c[1] - c[0])
		if err := fn(ids[c[0]], td); err != nil {
			return err
		}
	}
	if len(candidates) == 0 {
		st.SkippedRowGroups++
	}
	return nil
}

// traceMayMatch tells whether rows [lo, hi) have, for each condition, a row
// satisfying it.
func traceMayMatch(conds []columnCondition, values map[int][]traceql.Value, lo, hi int) bool {
	for _, cc := range conds {
		vs := values[cc.col]
		found := false
		for i := lo; i < hi && !found; i++ {
			found = cc.cond.Holds(vs[i])
		}
		if !found {
			return false
		}
	}
	return true
}

func readRowsSafe(rgr *file.RowGroupReader, r *rows, skip, n int64) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: decode row group: %v", ErrCorrupt, p)
		}
	}()
	return readRows(rgr, r, skip, n)
}

// readValues reads a whole dedicated column as TraceQL values.
func readValues(rgr *file.RowGroupReader, col int, n int64) ([]traceql.Value, error) {
	out := make([]traceql.Value, n)
	switch columns[col].physical {
	case parquet.Types.ByteArray:
		vs, err := readColumn[parquet.ByteArray](rgr, col, 0, n)
		if err != nil {
			return nil, err
		}
		// Dictionary columns repeat few strings: convert each once.
		seen := map[string]traceql.Value{}
		for i, v := range vs {
			cv, ok := seen[string(v)]
			if !ok {
				cv = columnValue(col, v)
				seen[string(v)] = cv
			}
			out[i] = cv
		}
	case parquet.Types.Int32:
		vs, err := readColumn[int32](rgr, col, 0, n)
		if err != nil {
			return nil, err
		}
		for i, v := range vs {
			out[i] = columnValue(col, v)
		}
	case parquet.Types.Int64:
		vs, err := readColumn[int64](rgr, col, 0, n)
		if err != nil {
			return nil, err
		}
		for i, v := range vs {
			out[i] = columnValue(col, v)
		}
	default:
		return nil, fmt.Errorf("column %s: no search values", columns[col].name)
	}
	return out, nil
}
