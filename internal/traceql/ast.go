// Package traceql parses and evaluates TraceQL, the query language of Grafana
// Tempo, as Grafana's Tempo data source sends it to /api/search.
//
// Parse turns a query into an AST whose String is a canonical form; Eval runs
// it over one whole OTLP trace and returns the matching span sets. A Query is
// immutable after Parse and safe for concurrent use. FromTags translates the
// older tag search parameters into a Query.
//
// Where Vivace differs from Tempo, on purpose:
//   - span events and links are not searched: event:, link: and their
//     attributes are parse errors rather than queries that match nothing;
//   - an intrinsic compared with a literal of another type (status = "error",
//     name = 1) is a parse error, with a hint, rather than no match;
//   - a trace whose spans all have parents (a partial trace) takes its
//     earliest span as root for trace:rootName and trace:rootService;
//   - query hints (with (...)) are parsed and kept but change nothing;
//   - metrics functions (rate(), ..._over_time()) are parse errors: search
//     runs span queries only;
//   - trace:id = "<id>" reads the ID in every form a lookup by ID accepts
//     (model.ReadTraceID: hex of any length and case, decimal, UUID,
//     traceparent) and matches a trace whose ID is one of its readings or,
//     for a 64-bit reading, whose low 64 bits are that reading.
package traceql

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	commonv1 "go.opentelemetry.io/proto/otlp/common/v1"
	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/vivace-dev/vivace/internal/model"
)

// Query is a parsed TraceQL query.
type Query struct {
	// Root selects the span sets; the empty query is {}.
	Root SpansetExpr
	// Hints are the `with (name=value, ...)` query hints. They are kept and
	// printed but change nothing in evaluation.
	Hints []Hint

	fields     []Attribute // every field the query reads, in order of appearance
	spanFields []Attribute // fields reported on result spans (see Eval)
}

// Hint is one `with (name=value)` query hint, e.g. most_recent=true.
type Hint struct {
	Name  string
	Value Value
}

// String is the canonical form of the query: Parse(q.String()) gives back an
// equal query.
func (q *Query) String() string {
	var b strings.Builder
	writeStage(&b, q.Root, false)
	s := b.String()
	if len(q.Hints) > 0 {
		parts := make([]string, len(q.Hints))
		for i, h := range q.Hints {
			parts[i] = h.Name + "=" + h.Value.String()
		}
		s += " with (" + strings.Join(parts, ", ") + ")"
	}
	return s
}

// SpansetExpr selects span sets from a trace: *SpansetFilter, *SpansetOp or
// *Pipeline. Each is also a Stage, applied to every span set it gets.
type SpansetExpr interface {
	Stage
	spansetExpr()
}

// Stage is one step of a pipeline after "|": a spanset expression applied to
// each span set, *ScalarFilter, *GroupBy, *Select or *Coalesce.
type Stage interface {
	fmt.Stringer
	stage()
}

// SpansetFilter is `{ cond }`: the spans for which Cond is true. A nil Cond
// (`{}`) selects every span.
type SpansetFilter struct {
	Cond FieldExpr
}

// SpansetOp combines two spanset expressions: logically (&&, ||) or by the
// structure of the trace (>, >>, <, <<, ~ and their negated and union forms).
type SpansetOp struct {
	Op       SpansetOperator
	LHS, RHS SpansetExpr
}

// Pipeline feeds the span sets of Input through Stages in turn.
type Pipeline struct {
	Input  SpansetExpr
	Stages []Stage
}

// ScalarFilter keeps the span sets whose aggregate compares true with Value,
// e.g. `count() > 2` or `avg(duration) > 20ms`.
type ScalarFilter struct {
	Func  AggregateFunc
	Field FieldExpr // nil for count()
	Op    Operator
	Value Value
}

// GroupBy splits each span set into one span set per value of Field.
type GroupBy struct {
	Field FieldExpr
}

// Select adds the values of Fields to the spans of each span set.
type Select struct {
	Fields []Attribute
}

// Coalesce merges all span sets into one.
type Coalesce struct{}

func (*SpansetFilter) spansetExpr() {}
func (*SpansetOp) spansetExpr()     {}
func (*Pipeline) spansetExpr()      {}
func (*SpansetFilter) stage()       {}
func (*SpansetOp) stage()           {}
func (*Pipeline) stage()            {}
func (*ScalarFilter) stage()        {}
func (*GroupBy) stage()             {}
func (*Select) stage()              {}
func (*Coalesce) stage()            {}

// SpansetOperator is an operator between two spanset expressions.
type SpansetOperator int

// The spanset operators. Structural ones return spans of the right side; the
// negated forms (!>) those of the right side without the relation; the union
// forms (&>) also the spans of the left side that take part in the relation.
const (
	SpansetAnd             SpansetOperator = iota // &&: both sides match; their spans together
	SpansetOr                                     // ||: either side matches
	SpansetChild                                  // >: right spans whose parent is a left span
	SpansetDescendant                             // >>: right spans below a left span
	SpansetParent                                 // <: right spans that are the parent of a left span
	SpansetAncestor                               // <<: right spans above a left span
	SpansetSibling                                // ~: right spans sharing a parent with another, left span
	SpansetNotChild                               // !>
	SpansetNotDescendant                          // !>>
	SpansetNotParent                              // !<
	SpansetNotAncestor                            // !<<
	SpansetNotSibling                             // !~
	SpansetUnionChild                             // &>
	SpansetUnionDescendant                        // &>>
	SpansetUnionParent                            // &<
	SpansetUnionAncestor                          // &<<
	SpansetUnionSibling                           // &~
)

var spansetOperatorText = [...]string{"&&", "||", ">", ">>", "<", "<<", "~", "!>", "!>>", "!<", "!<<", "!~", "&>", "&>>", "&<", "&<<", "&~"}

func (o SpansetOperator) String() string { return spansetOperatorText[o] }

// Operator is an operator inside a field expression.
type Operator int

// The field expression operators.
const (
	OpEqual        Operator = iota // =
	OpNotEqual                     // !=
	OpGreater                      // >
	OpGreaterEqual                 // >=
	OpLess                         // <
	OpLessEqual                    // <=
	OpRegex                        // =~ (fully anchored RE2)
	OpNotRegex                     // !~
	OpAnd                          // &&
	OpOr                           // ||
	OpNot                          // ! (unary)
	OpAdd                          // +
	OpSub                          // - (also unary minus)
	OpMul                          // *
	OpDiv                          // /
)

var operatorText = [...]string{"=", "!=", ">", ">=", "<", "<=", "=~", "!~", "&&", "||", "!", "+", "-", "*", "/"}

func (o Operator) String() string { return operatorText[o] }

func (o Operator) isComparison() bool { return o <= OpNotRegex }

// AggregateFunc is the function of a ScalarFilter.
type AggregateFunc int

// The aggregate functions.
const (
	AggCount AggregateFunc = iota
	AggAvg
	AggMin
	AggMax
	AggSum
)

var aggregateText = [...]string{"count", "avg", "min", "max", "sum"}

func (f AggregateFunc) String() string { return aggregateText[f] }

// FieldExpr is an expression over one span: *BinaryExpr, *UnaryExpr,
// *Attribute or a literal Value.
type FieldExpr interface {
	fmt.Stringer
	fieldExpr()
}

// BinaryExpr is a comparison, a logical or an arithmetic operation.
type BinaryExpr struct {
	Op       Operator
	LHS, RHS FieldExpr

	re  *regexp.Regexp         // compiled by the parser for =~ and !~
	ids []model.TraceIDReading // set by the parser for trace:id = or != a literal it reads (normalizeID)
}

// UnaryExpr is `!x` (OpNot) or `-x` (OpSub).
type UnaryExpr struct {
	Op   Operator
	Expr FieldExpr
}

func (*BinaryExpr) fieldExpr() {}
func (*UnaryExpr) fieldExpr()  {}
func (*Attribute) fieldExpr()  {}
func (Value) fieldExpr()       {}

// Scope says where an attribute is looked up.
type Scope int

// The scopes. Intrinsics have the scope they belong to: span, trace or
// instrumentation.
const (
	ScopeNone            Scope = iota // ".x": the span's attribute, else the resource's
	ScopeSpan                         // "span.x"
	ScopeResource                     // "resource.x"
	ScopeInstrumentation              // "instrumentation.x": the instrumentation scope's attributes
	ScopeTrace                        // only intrinsics: trace:duration, ...
)

// Intrinsic is a built-in field of a span or trace.
type Intrinsic int

// The intrinsics. IntrinsicNone marks an attribute.
const (
	IntrinsicNone            Intrinsic = iota
	IntrinsicName                      // span:name
	IntrinsicStatus                    // span:status
	IntrinsicStatusMessage             // span:statusMessage
	IntrinsicDuration                  // span:duration
	IntrinsicKind                      // span:kind
	IntrinsicSpanID                    // span:id, lower-case hex
	IntrinsicParentID                  // span:parentID, lower-case hex; absent on roots
	IntrinsicChildCount                // span:childCount
	IntrinsicNestedSetLeft             // nestedSetLeft
	IntrinsicNestedSetRight            // nestedSetRight
	IntrinsicNestedSetParent           // nestedSetParent: -1 on roots
	IntrinsicTraceDuration             // trace:duration
	IntrinsicRootName                  // trace:rootName
	IntrinsicRootService               // trace:rootService
	IntrinsicTraceID                   // trace:id, lower-case hex, 32 digits
	IntrinsicScopeName                 // instrumentation:name
	IntrinsicScopeVersion              // instrumentation:version
)

type intrinsicInfo struct {
	canonical string    // how String prints it
	key       string    // its key on result spans
	scope     Scope     // span, trace or instrumentation
	typ       ValueType // what it evaluates to
}

var intrinsics = [...]intrinsicInfo{
	IntrinsicName:            {"span:name", "name", ScopeSpan, TypeString},
	IntrinsicStatus:          {"span:status", "status", ScopeSpan, TypeStatus},
	IntrinsicStatusMessage:   {"span:statusMessage", "statusMessage", ScopeSpan, TypeString},
	IntrinsicDuration:        {"span:duration", "duration", ScopeSpan, TypeDuration},
	IntrinsicKind:            {"span:kind", "kind", ScopeSpan, TypeKind},
	IntrinsicSpanID:          {"span:id", "span:id", ScopeSpan, TypeString},
	IntrinsicParentID:        {"span:parentID", "span:parentID", ScopeSpan, TypeString},
	IntrinsicChildCount:      {"span:childCount", "span:childCount", ScopeSpan, TypeInt},
	IntrinsicNestedSetLeft:   {"nestedSetLeft", "nestedSetLeft", ScopeSpan, TypeInt},
	IntrinsicNestedSetRight:  {"nestedSetRight", "nestedSetRight", ScopeSpan, TypeInt},
	IntrinsicNestedSetParent: {"nestedSetParent", "nestedSetParent", ScopeSpan, TypeInt},
	IntrinsicTraceDuration:   {"trace:duration", "traceDuration", ScopeTrace, TypeDuration},
	IntrinsicRootName:        {"trace:rootName", "rootName", ScopeTrace, TypeString},
	IntrinsicRootService:     {"trace:rootService", "rootServiceName", ScopeTrace, TypeString},
	IntrinsicTraceID:         {"trace:id", "trace:id", ScopeTrace, TypeString},
	IntrinsicScopeName:       {"instrumentation:name", "instrumentation:name", ScopeInstrumentation, TypeString},
	IntrinsicScopeVersion:    {"instrumentation:version", "instrumentation:version", ScopeInstrumentation, TypeString},
}

// intrinsicNames maps every spelling Tempo accepts, old unscoped and scoped.
var intrinsicNames = map[string]Intrinsic{
	"name": IntrinsicName, "span:name": IntrinsicName,
	"status": IntrinsicStatus, "span:status": IntrinsicStatus,
	"statusMessage": IntrinsicStatusMessage, "span:statusMessage": IntrinsicStatusMessage,
	"duration": IntrinsicDuration, "span:duration": IntrinsicDuration,
	"kind": IntrinsicKind, "span:kind": IntrinsicKind,
	"span:id":         IntrinsicSpanID,
	"span:parentID":   IntrinsicParentID,
	"span:childCount": IntrinsicChildCount,
	"nestedSetLeft":   IntrinsicNestedSetLeft,
	"nestedSetRight":  IntrinsicNestedSetRight,
	"nestedSetParent": IntrinsicNestedSetParent,
	"traceDuration":   IntrinsicTraceDuration, "trace:duration": IntrinsicTraceDuration,
	"rootName": IntrinsicRootName, "trace:rootName": IntrinsicRootName,
	"rootServiceName": IntrinsicRootService, "trace:rootService": IntrinsicRootService,
	"trace:id":                IntrinsicTraceID,
	"instrumentation:name":    IntrinsicScopeName,
	"instrumentation:version": IntrinsicScopeVersion,
}

// Attribute is a reference to an attribute (Intrinsic == IntrinsicNone) or to
// an intrinsic field.
type Attribute struct {
	Scope     Scope
	Name      string // the attribute name; for intrinsics, its canonical text
	Intrinsic Intrinsic
}

func newIntrinsic(i Intrinsic) *Attribute {
	return &Attribute{Scope: intrinsics[i].scope, Name: intrinsics[i].canonical, Intrinsic: i}
}

func (a *Attribute) String() string {
	if a.Intrinsic != IntrinsicNone {
		return intrinsics[a.Intrinsic].canonical
	}
	var prefix string
	switch a.Scope {
	case ScopeSpan:
		prefix = "span."
	case ScopeResource:
		prefix = "resource."
	case ScopeInstrumentation:
		prefix = "instrumentation."
	default:
		prefix = "."
	}
	if isBareName(a.Name) {
		return prefix + a.Name
	}
	// Only \" and \\ are escapes inside quoted attribute names.
	return prefix + `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(a.Name) + `"`
}

// key is the attribute's key on result spans: the name without its scope.
func (a *Attribute) key() string {
	if a.Intrinsic != IntrinsicNone {
		return intrinsics[a.Intrinsic].key
	}
	return a.Name
}

// isBareName reports whether name can be written without quotes.
func isBareName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); {
		r, n := utf8.DecodeRuneInString(name[i:])
		if !isAttributeRune(r) {
			return false
		}
		i += n
	}
	return true
}

// isAttributeRune: attribute names run until whitespace or a character that
// ends a token, as in Tempo, so "http.request.header.content-type" needs no
// quotes (and "a-b" is a name, not a subtraction).
func isAttributeRune(r rune) bool {
	if unicode.IsSpace(r) {
		return false
	}
	switch r {
	case '{', '}', '(', ')', '=', '~', '!', '<', '>', '&', '|', '^', ',', '"':
		return false
	}
	return true
}

// ValueType is the type of a Value.
type ValueType int

// The value types. Durations are nanoseconds; status and kind use the OTLP
// enum numbers.
const (
	TypeNil ValueType = iota
	TypeBool
	TypeInt
	TypeFloat
	TypeString
	TypeDuration
	TypeStatus
	TypeKind
	TypeArray // only from attributes, never a literal
)

// Value is a literal in a query or a value read from a span.
type Value struct {
	Type  ValueType
	B     bool
	N     int64 // int, duration (ns), status code, span kind
	F     float64
	S     string
	Array []Value
}

// Value constructors.
func NilValue() Value                               { return Value{} }
func BoolValue(b bool) Value                        { return Value{Type: TypeBool, B: b} }
func IntValue(n int64) Value                        { return Value{Type: TypeInt, N: n} }
func FloatValue(f float64) Value                    { return Value{Type: TypeFloat, F: f} }
func StringValue(s string) Value                    { return Value{Type: TypeString, S: s} }
func DurationValue(d time.Duration) Value           { return Value{Type: TypeDuration, N: int64(d)} }
func StatusValue(c tracev1.Status_StatusCode) Value { return Value{Type: TypeStatus, N: int64(c)} }
func KindValue(k tracev1.Span_SpanKind) Value       { return Value{Type: TypeKind, N: int64(k)} }

// The keywords of span statuses and kinds, indexed by their OTLP enum value.
var (
	statusKeywords = []string{"unset", "ok", "error"}
	kindKeywords   = []string{"unspecified", "internal", "server", "client", "producer", "consumer"}
)

func keyword(words []string, n int64) string {
	if n >= 0 && n < int64(len(words)) {
		return words[n]
	}
	return strconv.FormatInt(n, 10)
}

// String prints the value as a TraceQL literal (arrays, which have no literal,
// as [a, b]).
func (v Value) String() string {
	switch v.Type {
	case TypeBool:
		return strconv.FormatBool(v.B)
	case TypeInt:
		return strconv.FormatInt(v.N, 10)
	case TypeFloat:
		s := strconv.FormatFloat(v.F, 'f', -1, 64)
		if !strings.ContainsAny(s, ".NI") { // keep it a float literal
			s += ".0"
		}
		return s
	case TypeString:
		return strconv.Quote(v.S)
	case TypeDuration:
		return formatDuration(time.Duration(v.N))
	case TypeStatus:
		return keyword(statusKeywords, v.N)
	case TypeKind:
		return keyword(kindKeywords, v.N)
	case TypeArray:
		parts := make([]string, len(v.Array))
		for i, e := range v.Array {
			parts[i] = e.String()
		}
		return "[" + strings.Join(parts, ", ") + "]"
	}
	return "nil"
}

// formatDuration uses the largest unit that is exact, so 1500ms stays 1500ms
// and 2m prints as 2m, not 2m0s.
func formatDuration(d time.Duration) string {
	if d == 0 {
		return "0s"
	}
	for _, u := range []struct {
		d    time.Duration
		name string
	}{{time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}, {time.Millisecond, "ms"}, {time.Microsecond, "us"}} {
		if d%u.d == 0 {
			return strconv.FormatInt(int64(d/u.d), 10) + u.name
		}
	}
	return strconv.FormatInt(int64(d), 10) + "ns"
}

// AnyValue converts the value for a response: durations as Go duration text
// (e.g. "1.5s"), status and kind as their keyword, nil as nil.
func (v Value) AnyValue() *commonv1.AnyValue {
	switch v.Type {
	case TypeBool:
		return &commonv1.AnyValue{Value: &commonv1.AnyValue_BoolValue{BoolValue: v.B}}
	case TypeInt:
		return &commonv1.AnyValue{Value: &commonv1.AnyValue_IntValue{IntValue: v.N}}
	case TypeFloat:
		return &commonv1.AnyValue{Value: &commonv1.AnyValue_DoubleValue{DoubleValue: v.F}}
	case TypeString:
		return &commonv1.AnyValue{Value: &commonv1.AnyValue_StringValue{StringValue: v.S}}
	case TypeDuration:
		return &commonv1.AnyValue{Value: &commonv1.AnyValue_StringValue{StringValue: time.Duration(v.N).String()}}
	case TypeStatus, TypeKind:
		return &commonv1.AnyValue{Value: &commonv1.AnyValue_StringValue{StringValue: v.String()}}
	case TypeArray:
		vs := make([]*commonv1.AnyValue, len(v.Array))
		for i, e := range v.Array {
			vs[i] = e.AnyValue()
		}
		return &commonv1.AnyValue{Value: &commonv1.AnyValue_ArrayValue{ArrayValue: &commonv1.ArrayValue{Values: vs}}}
	}
	return nil
}

// Printing. Precedences decide where parentheses go, so that String, parsed
// again, gives the same tree. Nodes write into one builder: long chains of
// operators would otherwise copy their text once per level.

const (
	precPipeline = iota // only inside parentheses when nested
	precOr
	precAnd
	precStructural // also comparisons, for field expressions
	precAdd
	precMul
	precUnary
	precPrimary
)

func spansetPrec(e Stage) int {
	switch e := e.(type) {
	case *Pipeline:
		return precPipeline
	case *SpansetOp:
		switch e.Op {
		case SpansetOr:
			return precOr
		case SpansetAnd:
			return precAnd
		}
		return precStructural
	}
	return precPrimary
}

func fieldPrec(e FieldExpr) int {
	switch e := e.(type) {
	case *BinaryExpr:
		switch {
		case e.Op == OpOr:
			return precOr
		case e.Op == OpAnd:
			return precAnd
		case e.Op.isComparison():
			return precStructural
		case e.Op == OpAdd || e.Op == OpSub:
			return precAdd
		}
		return precMul
	case *UnaryExpr:
		return precUnary
	}
	return precPrimary
}

func build(write func(*strings.Builder)) string {
	var b strings.Builder
	write(&b)
	return b.String()
}

func (f *SpansetFilter) String() string {
	return build(func(b *strings.Builder) { writeStage(b, f, false) })
}
func (o *SpansetOp) String() string {
	return build(func(b *strings.Builder) { writeStage(b, o, false) })
}
func (p *Pipeline) String() string {
	return build(func(b *strings.Builder) { writeStage(b, p, false) })
}
func (s *ScalarFilter) String() string {
	return build(func(b *strings.Builder) { writeStage(b, s, false) })
}
func (g *GroupBy) String() string { return build(func(b *strings.Builder) { writeStage(b, g, false) }) }
func (s *Select) String() string  { return build(func(b *strings.Builder) { writeStage(b, s, false) }) }
func (*Coalesce) String() string  { return "coalesce()" }
func (e *BinaryExpr) String() string {
	return build(func(b *strings.Builder) { writeField(b, e, false) })
}
func (e *UnaryExpr) String() string {
	return build(func(b *strings.Builder) { writeField(b, e, false) })
}

func writeStage(b *strings.Builder, s Stage, parens bool) {
	if parens {
		b.WriteByte('(')
		defer b.WriteByte(')')
	}
	switch s := s.(type) {
	case *SpansetFilter:
		if s.Cond == nil {
			b.WriteString("{}")
			return
		}
		b.WriteString("{ ")
		writeField(b, s.Cond, false)
		b.WriteString(" }")
	case *SpansetOp:
		p := spansetPrec(s)
		writeStage(b, s.LHS, spansetPrec(s.LHS) < p)
		b.WriteString(" " + s.Op.String() + " ")
		writeStage(b, s.RHS, spansetPrec(s.RHS) <= p)
	case *Pipeline:
		writeStage(b, s.Input, spansetPrec(s.Input) == precPipeline)
		for _, st := range s.Stages {
			b.WriteString(" | ")
			writeStage(b, st, spansetPrec(st) == precPipeline)
		}
	case *ScalarFilter:
		b.WriteString(s.Func.String() + "(")
		if s.Field != nil {
			writeField(b, s.Field, false)
		}
		b.WriteString(") " + s.Op.String() + " " + s.Value.String())
	case *GroupBy:
		b.WriteString("by(")
		writeField(b, s.Field, false)
		b.WriteString(")")
	case *Select:
		b.WriteString("select(")
		for i := range s.Fields {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(s.Fields[i].String())
		}
		b.WriteString(")")
	case *Coalesce:
		b.WriteString("coalesce()")
	}
}

func writeField(b *strings.Builder, e FieldExpr, parens bool) {
	if parens {
		b.WriteByte('(')
		defer b.WriteByte(')')
	}
	switch e := e.(type) {
	case *BinaryExpr:
		p := fieldPrec(e)
		left := fieldPrec(e.LHS) < p
		if p == precStructural { // comparisons do not chain
			left = fieldPrec(e.LHS) <= p
		}
		writeField(b, e.LHS, left)
		b.WriteString(" " + e.Op.String() + " ")
		writeField(b, e.RHS, fieldPrec(e.RHS) <= p)
	case *UnaryExpr:
		b.WriteString(e.Op.String())
		// -(-x) reads better than --x, which would also parse.
		negative := false
		if v, ok := e.Expr.(Value); ok {
			negative = strings.HasPrefix(v.String(), "-")
		}
		_, nested := e.Expr.(*UnaryExpr)
		writeField(b, e.Expr, fieldPrec(e.Expr) < precUnary || negative || (nested && e.Op == OpSub))
	default:
		b.WriteString(e.String())
	}
}

// Fields returns the attributes and intrinsics the query reads, each once, in
// order of appearance, so that a caller can read only those columns. An
// attribute of ScopeNone needs both the span's and the resource's attributes.
func (q *Query) Fields() []Attribute { return q.fields }

// Condition is a comparison `field op literal` that every matching trace
// satisfies on at least one of its spans.
type Condition struct {
	Attribute Attribute
	Op        Operator
	Value     Value
}

// Conditions returns simple comparisons of a field with a literal that are
// necessary for a trace to match: those ANDed at the top of a spanset filter
// whose spans must exist (both sides of &&, both sides of a structural
// operator, the right side of a negated one, the input of a pipeline).
// Branches of || are left out. A caller may skip a block, or a trace, in
// which no span can satisfy one of them.
func (q *Query) Conditions() []Condition {
	var out []Condition
	var walk func(e SpansetExpr)
	walk = func(e SpansetExpr) {
		switch e := e.(type) {
		case *SpansetFilter:
			out = append(out, conjunctConditions(e.Cond)...)
		case *Pipeline:
			walk(e.Input)
		case *SpansetOp:
			switch {
			case e.Op == SpansetOr:
			case e.Op >= SpansetNotChild && e.Op <= SpansetNotSibling:
				walk(e.RHS)
			default:
				walk(e.LHS)
				walk(e.RHS)
			}
		}
	}
	walk(q.Root)
	return out
}

func conjunctConditions(e FieldExpr) []Condition {
	switch e := e.(type) {
	case *BinaryExpr:
		if e.Op == OpAnd {
			return append(conjunctConditions(e.LHS), conjunctConditions(e.RHS)...)
		}
		if !e.Op.isComparison() || e.ids != nil {
			// A trace:id literal matches several IDs: no simple condition.
			return nil
		}
		if a, ok := e.LHS.(*Attribute); ok {
			if v, ok := e.RHS.(Value); ok {
				return []Condition{{Attribute: *a, Op: e.Op, Value: v}}
			}
		}
		if v, ok := e.LHS.(Value); ok {
			if a, ok := e.RHS.(*Attribute); ok && e.Op != OpRegex && e.Op != OpNotRegex {
				return []Condition{{Attribute: *a, Op: flip(e.Op), Value: v}}
			}
		}
	case *Attribute: // a bare boolean attribute means "= true"
		return []Condition{{Attribute: *e, Op: OpEqual, Value: BoolValue(true)}}
	}
	return nil
}

// flip turns `lit op x` into `x op' lit`.
func flip(op Operator) Operator {
	switch op {
	case OpGreater:
		return OpLess
	case OpGreaterEqual:
		return OpLessEqual
	case OpLess:
		return OpGreater
	case OpLessEqual:
		return OpGreaterEqual
	}
	return op
}

// init fills the caches Fields and Eval use.
func (q *Query) init() {
	seen := map[Attribute]bool{}
	// selected: select() fields go only to the span sets that pass it.
	add := func(a *Attribute, selected bool) {
		if !seen[*a] {
			seen[*a] = true
			q.fields = append(q.fields, *a)
		}
		// Result spans carry name, duration and ID anyway; trace-level
		// intrinsics are the same on every span.
		switch {
		case selected, a.Scope == ScopeTrace, a.Intrinsic == IntrinsicName, a.Intrinsic == IntrinsicDuration, a.Intrinsic == IntrinsicSpanID:
		default:
			q.spanFields = mergeAttributes(q.spanFields, []Attribute{*a})
		}
	}
	var field func(e FieldExpr)
	field = func(e FieldExpr) {
		switch e := e.(type) {
		case *Attribute:
			add(e, false)
		case *BinaryExpr:
			field(e.LHS)
			field(e.RHS)
		case *UnaryExpr:
			field(e.Expr)
		}
	}
	var spanset func(e Stage)
	spanset = func(e Stage) {
		switch e := e.(type) {
		case *SpansetFilter:
			if e.Cond != nil {
				field(e.Cond)
			}
		case *SpansetOp:
			spanset(e.LHS)
			spanset(e.RHS)
		case *Pipeline:
			spanset(e.Input)
			for _, s := range e.Stages {
				spanset(s)
			}
		case *ScalarFilter:
			if e.Field != nil {
				field(e.Field)
			}
		case *GroupBy:
			field(e.Field)
		case *Select:
			for i := range e.Fields {
				add(&e.Fields[i], true)
			}
		}
	}
	spanset(q.Root)
}
