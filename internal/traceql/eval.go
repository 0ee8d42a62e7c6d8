package traceql

import (
	"cmp"
	"encoding/binary"
	"encoding/hex"
	"slices"
	"time"

	commonv1 "go.opentelemetry.io/proto/otlp/common/v1"
	resourcev1 "go.opentelemetry.io/proto/otlp/resource/v1"
	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/vivace-dev/vivace/internal/model"
)

// SpanSet is one matching set of spans of a trace.
type SpanSet struct {
	Spans   []Span     // by start time; callers cut it to spss and keep Matched
	Matched int        // how many spans matched
	By      []KeyValue // by() values, keyed "by(<field>)" as Tempo reports them
}

// Span is a matched span with the values the query read.
type Span struct {
	SpanID        []byte // shared with the trace, not copied
	Name          string
	StartUnixNano uint64
	DurationNanos uint64
	ServiceName   string
	// Attributes holds, when the span has them, the values of the fields the
	// query reads (except name, duration, span:id and trace-level intrinsics)
	// and those it select()s, keyed by attribute name without scope ("status"
	// for span:status).
	Attributes []KeyValue
}

// KeyValue is a named value on a result.
type KeyValue struct {
	Key   string
	Value Value
}

// Eval runs the query over one whole trace (spans may be spread over any
// number of ResourceSpans and ScopeSpans) and returns its matching span sets,
// none if the trace does not match.
func (q *Query) Eval(td *tracev1.TracesData) []SpanSet {
	t := newTrace(td)
	if len(t.spans) == 0 {
		return nil
	}
	return q.eval(t)
}

func (q *Query) eval(t *trace) []SpanSet {
	all := make([]int, len(t.spans))
	for i := range all {
		all[i] = i
	}
	sets := t.spansets(q.Root, []spanset{{spans: all}})
	out := make([]SpanSet, 0, len(sets))
	for _, s := range sets {
		out = append(out, t.result(q, s))
	}
	return out
}

// TraceSummary is what a search result shows of a trace.
type TraceSummary struct {
	TraceID         model.TraceID
	RootServiceName string
	RootSpanName    string
	HasRoot         bool // a span without parent exists; else the root is the earliest span
	StartUnixNano   uint64
	DurationNanos   uint64
}

// Summarize returns the root and time range of a trace, with the same root
// that trace:rootName and trace:rootService use.
func Summarize(td *tracev1.TracesData) TraceSummary {
	return newTrace(td).summary()
}

// EvalIf is Summarize and, if keep (when not nil) accepts the summary of a
// trace with spans, Eval, for the price of one.
func (q *Query) EvalIf(td *tracev1.TracesData, keep func(TraceSummary) bool) (TraceSummary, []SpanSet) {
	t := newTrace(td)
	sum := t.summary()
	if len(t.spans) == 0 || (keep != nil && !keep(sum)) {
		return sum, nil
	}
	return sum, q.eval(t)
}

func (t *trace) summary() TraceSummary {
	if len(t.spans) == 0 {
		return TraceSummary{}
	}
	id, _ := model.TraceIDFromBytes(t.spans[0].span.TraceId)
	root := t.spans[t.root]
	return TraceSummary{
		TraceID:         id,
		RootServiceName: root.service,
		RootSpanName:    root.span.Name,
		HasRoot:         t.hasRoot,
		StartUnixNano:   t.start,
		DurationNanos:   t.end - t.start,
	}
}

// trace indexes one trace for evaluation.
type trace struct {
	spans      []evalSpan
	root       int  // the span without parent, else the earliest span
	hasRoot    bool // whether a span without parent exists
	start, end uint64

	linked   bool        // parent fields set; only structure needs them
	children [][]int     // built on first use
	nested   []nestedSet // built on first use
}

type evalSpan struct {
	span    *tracev1.Span
	res     *resourcev1.Resource
	scope   *commonv1.InstrumentationScope
	service string
	parent  int // index in trace.spans, -1 if the parent is not in the trace; see tree
}

type nestedSet struct{ left, right, parent int64 }

func newTrace(td *tracev1.TracesData) *trace {
	n := 0
	for _, rs := range td.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			n += len(ss.GetSpans())
		}
	}
	t := &trace{spans: make([]evalSpan, 0, n)}
	for _, rs := range td.GetResourceSpans() {
		svc := ""
		for _, kv := range rs.GetResource().GetAttributes() {
			if kv.Key == "service.name" {
				svc = kv.Value.GetStringValue()
				break
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				if s != nil {
					t.spans = append(t.spans, evalSpan{span: s, res: rs.Resource, scope: ss.Scope, service: svc, parent: -1})
				}
			}
		}
	}
	if len(t.spans) == 0 {
		return t
	}
	t.start, t.end = t.spans[0].span.StartTimeUnixNano, t.spans[0].span.EndTimeUnixNano
	t.root = -1
	earliest := 0
	for i, es := range t.spans {
		s := es.span
		t.start, t.end = min(t.start, s.StartTimeUnixNano), max(t.end, s.EndTimeUnixNano)
		if s.StartTimeUnixNano < t.spans[earliest].span.StartTimeUnixNano {
			earliest = i
		}
		if _, hasParent := spanID(s.ParentSpanId); !hasParent && (t.root < 0 || s.StartTimeUnixNano < t.spans[t.root].span.StartTimeUnixNano) {
			t.root = i
		}
	}
	t.end = max(t.end, t.start)
	t.hasRoot = t.root >= 0
	if !t.hasRoot {
		t.root = earliest
	}
	return t
}

// spanID reads an 8-byte span ID; the zero ID is no ID.
func spanID(b []byte) (uint64, bool) {
	if len(b) != 8 {
		return 0, false
	}
	id := binary.BigEndian.Uint64(b)
	return id, id != 0
}

// tree resolves parent_span_id to span indexes, on first use: filters on
// attributes do not need it. Zipkin's shared spans (a client and a server
// span with the same ID) are made parent and child, as Jaeger does: the
// server span hangs under the client span, and spans naming that ID as
// parent hang under the server span.
func (t *trace) tree() {
	if t.linked {
		return
	}
	t.linked = true
	first := make(map[uint64]int, len(t.spans))
	var dups map[uint64][]int // IDs held by more than one span
	for i := range t.spans {
		id, ok := spanID(t.spans[i].span.SpanId)
		if !ok {
			continue
		}
		j, seen := first[id]
		if !seen {
			first[id] = i
			continue
		}
		if dups == nil {
			dups = map[uint64][]int{}
		}
		if dups[id] == nil {
			dups[id] = []int{j}
		}
		dups[id] = append(dups[id], i)
	}
	for i := range t.spans {
		t.spans[i].parent = t.findParent(i, first, dups)
	}
	t.breakCycles()
}

// findParent picks the parent of span i: for the server half of a shared
// span, its client half; else the span with its parent ID, preferring the
// server half when that ID is shared.
func (t *trace) findParent(i int, first map[uint64]int, dups map[uint64][]int) int {
	const server, client = tracev1.Span_SPAN_KIND_SERVER, tracev1.Span_SPAN_KIND_CLIENT
	kind := func(j int) tracev1.Span_SpanKind { return t.spans[j].span.Kind }
	if id, ok := spanID(t.spans[i].span.SpanId); ok && kind(i) == server {
		for _, j := range dups[id] {
			if j != i && kind(j) == client {
				return j
			}
		}
	}
	pid, ok := spanID(t.spans[i].span.ParentSpanId)
	if !ok {
		return -1
	}
	if j, ok := first[pid]; ok && dups[pid] == nil {
		if j == i {
			return -1
		}
		return j
	}
	parent := -1
	for _, j := range dups[pid] {
		if j != i && (parent < 0 || (kind(j) == server && kind(parent) != server)) {
			parent = j
		}
	}
	return parent
}

// breakCycles cuts parent loops, which bad data can hold, so that walking up
// always ends.
func (t *trace) breakCycles() {
	const (
		unvisited = iota
		onPath
		done
	)
	state := make([]uint8, len(t.spans))
	for i := range t.spans {
		j := i
		for j >= 0 && state[j] == unvisited {
			state[j] = onPath
			j = t.spans[j].parent
		}
		if j >= 0 && state[j] == onPath {
			t.spans[j].parent = -1
		}
		for k := i; k >= 0 && state[k] == onPath; k = t.spans[k].parent {
			state[k] = done
		}
	}
}

func (t *trace) childLists() [][]int {
	t.tree()
	if t.children == nil {
		t.children = make([][]int, len(t.spans))
		for i, s := range t.spans {
			if s.parent >= 0 {
				t.children[s.parent] = append(t.children[s.parent], i)
			}
		}
	}
	return t.children
}

// nestedSets numbers the spans depth-first, children by start time, as
// Tempo's nestedSetLeft/Right/Parent: roots have parent -1, spans whose
// parent is missing from the trace 0.
func (t *trace) nestedSets() []nestedSet {
	if t.nested != nil {
		return t.nested
	}
	children := t.childLists()
	byStart := func(a, b int) int {
		return cmp.Or(cmp.Compare(t.spans[a].span.StartTimeUnixNano, t.spans[b].span.StartTimeUnixNano), cmp.Compare(a, b))
	}
	var tops []int
	for i, s := range t.spans {
		if s.parent < 0 {
			tops = append(tops, i)
		}
	}
	slices.SortFunc(tops, byStart)
	t.nested = make([]nestedSet, len(t.spans))
	next := int64(1)
	type frame struct{ span, child int }
	for _, top := range tops {
		stack := []frame{{span: top}}
		t.nested[top].left = next
		next++
		for len(stack) > 0 {
			f := &stack[len(stack)-1]
			kids := children[f.span]
			if f.child == 0 {
				slices.SortFunc(kids, byStart)
			}
			if f.child < len(kids) {
				c := kids[f.child]
				f.child++
				t.nested[c].left = next
				next++
				stack = append(stack, frame{span: c})
				continue
			}
			t.nested[f.span].right = next
			next++
			stack = stack[:len(stack)-1]
		}
	}
	for i, s := range t.spans {
		switch _, hasParent := spanID(s.span.ParentSpanId); {
		case s.parent >= 0:
			t.nested[i].parent = t.nested[s.parent].left
		case hasParent:
			t.nested[i].parent = 0
		default:
			t.nested[i].parent = -1
		}
	}
	return t.nested
}

// Field values.

func fromAnyValue(v *commonv1.AnyValue) Value {
	switch v := v.GetValue().(type) {
	case *commonv1.AnyValue_StringValue:
		return StringValue(v.StringValue)
	case *commonv1.AnyValue_BoolValue:
		return BoolValue(v.BoolValue)
	case *commonv1.AnyValue_IntValue:
		return IntValue(v.IntValue)
	case *commonv1.AnyValue_DoubleValue:
		return FloatValue(v.DoubleValue)
	case *commonv1.AnyValue_ArrayValue:
		arr := Value{Type: TypeArray, Array: make([]Value, 0, len(v.ArrayValue.GetValues()))}
		for _, e := range v.ArrayValue.GetValues() {
			if ev := fromAnyValue(e); ev.Type != TypeNil && ev.Type != TypeArray {
				arr.Array = append(arr.Array, ev)
			}
		}
		return arr
	}
	return Value{} // bytes and key-value lists are not searchable, as in Tempo
}

func lookup(kvs []*commonv1.KeyValue, name string) Value {
	for _, kv := range kvs {
		if kv.Key == name {
			return fromAnyValue(kv.Value)
		}
	}
	return Value{}
}

func (t *trace) field(a *Attribute, i int) Value {
	es := &t.spans[i]
	s := es.span
	switch a.Intrinsic {
	case IntrinsicNone:
	case IntrinsicName:
		return StringValue(s.Name)
	case IntrinsicStatus:
		return StatusValue(s.Status.GetCode())
	case IntrinsicStatusMessage:
		return StringValue(s.Status.GetMessage())
	case IntrinsicDuration:
		return DurationValue(spanDuration(s))
	case IntrinsicKind:
		return KindValue(s.Kind)
	case IntrinsicSpanID:
		return StringValue(hex.EncodeToString(s.SpanId))
	case IntrinsicParentID:
		if _, ok := spanID(s.ParentSpanId); !ok {
			return Value{}
		}
		return StringValue(hex.EncodeToString(s.ParentSpanId))
	case IntrinsicChildCount:
		return IntValue(int64(len(t.childLists()[i])))
	case IntrinsicNestedSetLeft:
		return IntValue(t.nestedSets()[i].left)
	case IntrinsicNestedSetRight:
		return IntValue(t.nestedSets()[i].right)
	case IntrinsicNestedSetParent:
		return IntValue(t.nestedSets()[i].parent)
	case IntrinsicTraceDuration:
		return DurationValue(time.Duration(t.end - t.start))
	case IntrinsicRootName:
		return StringValue(t.spans[t.root].span.Name)
	case IntrinsicRootService:
		return StringValue(t.spans[t.root].service)
	case IntrinsicTraceID:
		if id, err := model.TraceIDFromBytes(s.TraceId); err == nil {
			return StringValue(id.String())
		}
		return StringValue(hex.EncodeToString(s.TraceId))
	case IntrinsicScopeName:
		return StringValue(es.scope.GetName())
	case IntrinsicScopeVersion:
		return StringValue(es.scope.GetVersion())
	}
	switch a.Scope {
	case ScopeSpan:
		return lookup(s.Attributes, a.Name)
	case ScopeResource:
		return lookup(es.res.GetAttributes(), a.Name)
	case ScopeInstrumentation:
		return lookup(es.scope.GetAttributes(), a.Name)
	}
	if v := lookup(s.Attributes, a.Name); v.Type != TypeNil {
		return v
	}
	return lookup(es.res.GetAttributes(), a.Name)
}

func spanDuration(s *tracev1.Span) time.Duration {
	if s.EndTimeUnixNano < s.StartTimeUnixNano {
		return 0
	}
	return time.Duration(s.EndTimeUnixNano - s.StartTimeUnixNano)
}

// eval computes a field expression for span i. Missing attributes are nil,
// and anything compared with nil (other than the literal nil) is false.
func (t *trace) eval(e FieldExpr, i int) Value {
	switch e := e.(type) {
	case Value:
		return e
	case *Attribute:
		return t.field(e, i)
	case *UnaryExpr:
		v := t.eval(e.Expr, i)
		if e.Op == OpNot {
			return BoolValue(!isTrue(v))
		}
		switch v.Type {
		case TypeInt, TypeDuration:
			v.N = -v.N
			return v
		case TypeFloat:
			return FloatValue(-v.F)
		}
		return Value{}
	case *BinaryExpr:
		switch e.Op {
		case OpAnd:
			return BoolValue(isTrue(t.eval(e.LHS, i)) && isTrue(t.eval(e.RHS, i)))
		case OpOr:
			return BoolValue(isTrue(t.eval(e.LHS, i)) || isTrue(t.eval(e.RHS, i)))
		case OpAdd, OpSub, OpMul, OpDiv:
			return arithmetic(e.Op, t.eval(e.LHS, i), t.eval(e.RHS, i))
		}
		if e.ids != nil {
			return BoolValue(t.traceIDIn(i, e.ids) == (e.Op == OpEqual))
		}
		// The literal nil tests for absence.
		if isNilLiteral(e.RHS) || isNilLiteral(e.LHS) {
			other := e.LHS
			if isNilLiteral(e.LHS) {
				other = e.RHS
			}
			absent := t.eval(other, i).Type == TypeNil
			return BoolValue(absent == (e.Op == OpEqual))
		}
		return BoolValue(compare(e.Op, t.eval(e.LHS, i), t.eval(e.RHS, i), e))
	}
	return Value{}
}

// traceIDIn tells whether span i's trace ID is one of the readings of a
// trace:id literal or, for a 64-bit reading, has it as its low 64 bits (the
// ID a tracer that keeps only the low half knows the trace by).
func (t *trace) traceIDIn(i int, readings []model.TraceIDReading) bool {
	id, err := model.TraceIDFromBytes(t.spans[i].span.TraceId)
	if err != nil {
		return false
	}
	for _, r := range readings {
		if id == r.ID || (r.ID.Is64Bit() && id.Low64() == r.ID.Low64()) {
			return true
		}
	}
	return false
}

func isNilLiteral(e FieldExpr) bool {
	v, ok := e.(Value)
	return ok && v.Type == TypeNil
}

// isTrue: only the boolean true is true; a bare attribute means "= true".
func isTrue(v Value) bool { return v.Type == TypeBool && v.B }

func isNumeric(v Value) bool {
	return v.Type == TypeInt || v.Type == TypeFloat || v.Type == TypeDuration
}

func toFloat(v Value) float64 {
	if v.Type == TypeFloat {
		return v.F
	}
	return float64(v.N)
}

// arithmetic keeps integers (and durations) exact; "/" and any float operand
// give a float. Division by zero gives nil.
func arithmetic(op Operator, a, b Value) Value {
	if !isNumeric(a) || !isNumeric(b) {
		return Value{}
	}
	if a.Type != TypeFloat && b.Type != TypeFloat && op != OpDiv {
		typ := TypeInt
		if a.Type == TypeDuration || b.Type == TypeDuration {
			typ = TypeDuration
		}
		switch op {
		case OpAdd:
			return Value{Type: typ, N: a.N + b.N}
		case OpSub:
			return Value{Type: typ, N: a.N - b.N}
		}
		return Value{Type: typ, N: a.N * b.N}
	}
	x, y := toFloat(a), toFloat(b)
	switch op {
	case OpAdd:
		return FloatValue(x + y)
	case OpSub:
		return FloatValue(x - y)
	case OpMul:
		return FloatValue(x * y)
	}
	if y == 0 {
		return Value{}
	}
	return FloatValue(x / y)
}

// compare applies a comparison. Arrays match = and =~ (and orderings) when an
// element does, != and !~ when none does. Numbers compare with each other
// (durations in nanoseconds); other types only with their own type.
func compare(op Operator, a, b Value, e *BinaryExpr) bool {
	if a.Type == TypeArray || b.Type == TypeArray {
		arr, other, flipped := a, b, false
		if b.Type == TypeArray {
			if a.Type == TypeArray {
				return false
			}
			arr, other, flipped = b, a, true
		}
		positive := op
		switch op {
		case OpNotEqual:
			positive = OpEqual
		case OpNotRegex:
			positive = OpRegex
		}
		found := false
		for _, el := range arr.Array {
			x, y := el, other
			if flipped {
				x, y = other, el
			}
			if compare(positive, x, y, e) {
				found = true
				break
			}
		}
		return found == (positive == op)
	}
	if a.Type == TypeNil || b.Type == TypeNil {
		return false
	}
	if op == OpRegex || op == OpNotRegex {
		if a.Type != TypeString || e == nil || e.re == nil {
			return false
		}
		return e.re.MatchString(a.S) == (op == OpRegex)
	}
	var c int
	switch {
	case isNumeric(a) && isNumeric(b):
		if a.Type != TypeFloat && b.Type != TypeFloat {
			c = cmp.Compare(a.N, b.N)
		} else {
			x, y := toFloat(a), toFloat(b)
			if x != x || y != y { // NaN matches nothing
				return false
			}
			c = cmp.Compare(x, y)
		}
	case a.Type != b.Type:
		return false
	case a.Type == TypeString:
		c = cmp.Compare(a.S, b.S)
	case a.Type == TypeBool:
		if a.B != b.B {
			c = 1
		}
	default: // status, kind
		c = cmp.Compare(a.N, b.N)
	}
	switch op {
	case OpEqual:
		return c == 0
	case OpNotEqual:
		return c != 0
	}
	if a.Type == TypeBool || a.Type == TypeStatus || a.Type == TypeKind {
		return false // no order
	}
	switch op {
	case OpGreater:
		return c > 0
	case OpGreaterEqual:
		return c >= 0
	case OpLess:
		return c < 0
	}
	return c <= 0
}

// Span sets.

// spanset is a set of span indexes in ascending order, with what the
// pipeline attached to it.
type spanset struct {
	spans []int
	by    []KeyValue
	sel   []Attribute
}

// spansets evaluates e on each input span set: its spans are the candidates,
// while structure is that of the whole trace.
func (t *trace) spansets(e SpansetExpr, in []spanset) []spanset {
	var out []spanset
	switch e := e.(type) {
	case *SpansetFilter:
		if e.Cond == nil {
			return in
		}
		for _, s := range in {
			var kept []int
			for _, i := range s.spans {
				if isTrue(t.eval(e.Cond, i)) {
					kept = append(kept, i)
				}
			}
			if len(kept) > 0 {
				out = append(out, spanset{spans: kept, by: s.by, sel: s.sel})
			}
		}
	case *SpansetOp:
		for _, s := range in {
			lhs := t.spansets(e.LHS, []spanset{s})
			rhs := t.spansets(e.RHS, []spanset{s})
			if c, ok := t.combine(e.Op, s, lhs, rhs); ok {
				out = append(out, c)
			}
		}
	case *Pipeline:
		out = t.spansets(e.Input, in)
		for _, st := range e.Stages {
			if len(out) == 0 {
				break
			}
			out = t.stage(st, out)
		}
	}
	return out
}

// combine joins the two sides of a spanset operator, evaluated on the input
// span set in, into at most one span set, as Tempo does: the spans of all
// span sets of each side count together, so by() groups do not multiply.
func (t *trace) combine(op SpansetOperator, in spanset, lhs, rhs []spanset) (spanset, bool) {
	l, r := flatten(lhs), flatten(rhs)
	out := spanset{by: in.by, sel: mergeAttributes(l.sel, r.sel)}
	switch op {
	case SpansetAnd:
		if len(l.spans) == 0 || len(r.spans) == 0 {
			return out, false
		}
		out.spans = union(l.spans, r.spans)
	case SpansetOr:
		out.spans = union(l.spans, r.spans)
	default:
		out.spans = t.structural(op, l.spans, r.spans)
	}
	return out, len(out.spans) > 0
}

// flatten merges span sets into one, without their by() values.
func flatten(sets []spanset) spanset {
	var all spanset
	for _, s := range sets {
		all.spans = union(all.spans, s.spans)
		all.sel = mergeAttributes(all.sel, s.sel)
	}
	return all
}

type relation int

const (
	relChild relation = iota // the candidate is a child of a span of the other side
	relDescendant
	relParent
	relAncestor
	relSibling
)

// inverse: if c is rel of f, then f is inverse(rel) of c.
func (r relation) inverse() relation {
	return [...]relation{relParent, relAncestor, relChild, relDescendant, relSibling}[r]
}

func (t *trace) structural(op SpansetOperator, lhs, rhs []int) []int {
	t.tree()
	var rel relation
	switch op {
	case SpansetChild, SpansetNotChild, SpansetUnionChild:
		rel = relChild
	case SpansetDescendant, SpansetNotDescendant, SpansetUnionDescendant:
		rel = relDescendant
	case SpansetParent, SpansetNotParent, SpansetUnionParent:
		rel = relParent
	case SpansetAncestor, SpansetNotAncestor, SpansetUnionAncestor:
		rel = relAncestor
	default:
		rel = relSibling
	}
	matched := t.related(rel, lhs, rhs)
	switch {
	case op >= SpansetNotChild && op <= SpansetNotSibling:
		return difference(rhs, matched)
	case op >= SpansetUnionChild:
		return union(matched, t.related(rel.inverse(), matched, lhs))
	}
	return matched
}

// related returns the spans of cands that are rel to at least one span of
// from, in the order of cands.
func (t *trace) related(rel relation, from, cands []int) []int {
	n := len(t.spans)
	mark := make([]bool, n)
	switch rel {
	case relChild:
		for _, f := range from {
			mark[f] = true
		}
	case relParent: // mark the parents of from
		for _, f := range from {
			if p := t.spans[f].parent; p >= 0 {
				mark[p] = true
			}
		}
	case relDescendant: // mark everything below from
		children := t.childLists()
		stack := append([]int(nil), from...)
		for len(stack) > 0 {
			f := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			for _, c := range children[f] {
				if !mark[c] {
					mark[c] = true
					stack = append(stack, c)
				}
			}
		}
	case relAncestor: // mark everything above from
		for _, f := range from {
			for p := t.spans[f].parent; p >= 0 && !mark[p]; p = t.spans[p].parent {
				mark[p] = true
			}
		}
	}
	var siblings []int // relSibling: how many spans of from each parent has
	var inFrom []bool
	if rel == relSibling {
		siblings = make([]int, n)
		inFrom = make([]bool, n)
		for _, f := range from {
			inFrom[f] = true
			if p := t.spans[f].parent; p >= 0 {
				siblings[p]++
			}
		}
	}
	var out []int
	for _, c := range cands {
		ok := false
		switch rel {
		case relChild:
			p := t.spans[c].parent
			ok = p >= 0 && mark[p]
		case relSibling: // another span of from under the same parent
			p := t.spans[c].parent
			self := 0
			if inFrom[c] {
				self = 1
			}
			ok = p >= 0 && siblings[p]-self > 0
		default:
			ok = mark[c]
		}
		if ok {
			out = append(out, c)
		}
	}
	return out
}

func (t *trace) stage(st Stage, in []spanset) []spanset {
	switch st := st.(type) {
	case SpansetExpr:
		return t.spansets(st, in)
	case *ScalarFilter:
		var out []spanset
		for _, s := range in {
			if v, ok := t.aggregate(st, s); ok && compare(st.Op, v, st.Value, nil) {
				out = append(out, s)
			}
		}
		return out
	case *GroupBy:
		key := "by(" + st.Field.String() + ")"
		var out []spanset
		for _, s := range in {
			groups := map[string]int{} // value → index in out
			for _, i := range s.spans {
				v := t.eval(st.Field, i)
				k := v.groupKey()
				g, ok := groups[k]
				if !ok {
					g = len(out)
					groups[k] = g
					out = append(out, spanset{by: mergeKeyValues(s.by, []KeyValue{{Key: key, Value: v}}), sel: s.sel})
				}
				out[g].spans = append(out[g].spans, i)
			}
		}
		return out
	case *Select:
		out := make([]spanset, len(in))
		for i, s := range in {
			out[i] = spanset{spans: s.spans, by: s.by, sel: mergeAttributes(s.sel, st.Fields)}
		}
		return out
	case *Coalesce:
		return []spanset{flatten(in)}
	}
	return nil
}

// aggregate computes a ScalarFilter's function over a span set. Spans
// without a numeric value are skipped; with none at all there is no value.
func (t *trace) aggregate(sf *ScalarFilter, s spanset) (Value, bool) {
	if sf.Func == AggCount {
		return IntValue(int64(len(s.spans))), true
	}
	var (
		n         int
		sumF      float64
		sumN      int64
		exact     = true // no float seen: sum stays an integer
		durations = true
		best      Value
	)
	for _, i := range s.spans {
		v := t.eval(sf.Field, i)
		if !isNumeric(v) {
			continue
		}
		n++
		exact = exact && v.Type != TypeFloat
		durations = durations && v.Type == TypeDuration
		sumF += toFloat(v)
		sumN += v.N
		if n == 1 ||
			(sf.Func == AggMin && compare(OpLess, v, best, nil)) ||
			(sf.Func == AggMax && compare(OpGreater, v, best, nil)) {
			best = v
		}
	}
	switch {
	case n == 0:
		return Value{}, false
	case sf.Func == AggMin || sf.Func == AggMax:
		return best, true
	case sf.Func == AggAvg:
		return FloatValue(sumF / float64(n)), true
	case exact && durations:
		return Value{Type: TypeDuration, N: sumN}, true
	case exact:
		return IntValue(sumN), true
	}
	return FloatValue(sumF), true
}

// groupKey tells values apart for by(): 1 and 1.0 and "1" are three groups.
func (v Value) groupKey() string { return string(rune('a'+v.Type)) + v.String() }

func (t *trace) result(q *Query, s spanset) SpanSet {
	idx := slices.Clone(s.spans)
	slices.SortFunc(idx, func(a, b int) int {
		return cmp.Or(cmp.Compare(t.spans[a].span.StartTimeUnixNano, t.spans[b].span.StartTimeUnixNano), cmp.Compare(a, b))
	})
	fields := mergeAttributes(q.spanFields, s.sel)
	out := SpanSet{Spans: make([]Span, len(idx)), Matched: len(idx), By: s.by}
	for n, i := range idx {
		es := t.spans[i]
		sp := Span{
			SpanID:        es.span.SpanId,
			Name:          es.span.Name,
			StartUnixNano: es.span.StartTimeUnixNano,
			DurationNanos: uint64(spanDuration(es.span)),
			ServiceName:   es.service,
		}
		for f := range fields {
			a := &fields[f]
			v := t.field(a, i)
			if v.Type == TypeNil || slices.ContainsFunc(sp.Attributes, func(kv KeyValue) bool { return kv.Key == a.key() }) {
				continue
			}
			sp.Attributes = append(sp.Attributes, KeyValue{Key: a.key(), Value: v})
		}
		out.Spans[n] = sp
	}
	return out
}

// union merges two ascending index lists.
func union(a, b []int) []int {
	if len(a) == 0 {
		return b
	}
	if len(b) == 0 {
		return a
	}
	out := make([]int, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case j == len(b) || (i < len(a) && a[i] < b[j]):
			out = append(out, a[i])
			i++
		case i == len(a) || b[j] < a[i]:
			out = append(out, b[j])
			j++
		default:
			out = append(out, a[i])
			i++
			j++
		}
	}
	return out
}

// difference returns the spans of a not in b; both ascending.
func difference(a, b []int) []int {
	var out []int
	j := 0
	for _, x := range a {
		for j < len(b) && b[j] < x {
			j++
		}
		if j == len(b) || b[j] != x {
			out = append(out, x)
		}
	}
	return out
}

func mergeKeyValues(a, b []KeyValue) []KeyValue {
	out := slices.Clip(a)
	for _, kv := range b {
		if !slices.ContainsFunc(out, func(o KeyValue) bool { return o.Key == kv.Key }) {
			out = append(out, kv)
		}
	}
	return out
}

func mergeAttributes(a, b []Attribute) []Attribute {
	out := slices.Clip(a)
	for _, x := range b {
		if !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}
