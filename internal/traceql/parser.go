package traceql

import (
	"fmt"
	"math"
	"regexp"
	"regexp/syntax"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/vivace-dev/vivace/internal/model"
)

// ParseError is a syntax or type error at a position in the query.
type ParseError struct {
	Pos  int // byte offset
	Line int // 1-based
	Col  int // 1-based, in characters
	Msg  string
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("parse error at line %d, col %d: %s", e.Line, e.Col, e.Msg)
}

// Parse parses a TraceQL query. The empty and the all-whitespace query mean
// {}. Errors are *ParseError.
//
// Grammar, loosest binding first:
//
//	query     = [ pipeline [ "with" "(" hint { "," hint } ")" ] ]
//	pipeline  = spansets { "|" stage }
//	spansets  = and { "||" and }
//	and       = structure { "&&" structure }
//	structure = primary { (">" | ">>" | "<" | "<<" | "~" | "!>" ... | "&>" ...) primary }
//	primary   = "{" [ expr ] "}" | "(" pipeline ")"
//	stage     = spansets | aggregate cmp literal | "by" "(" expr ")"
//	          | "select" "(" field { "," field } ")" | "coalesce" "(" ")"
//	expr      = and-expr { "||" and-expr };  and-expr = cmp-expr { "&&" cmp-expr }
//	cmp-expr  = sum [ cmp sum ];  sum = product { ("+" | "-") product }
//	product   = unary { ("*" | "/") unary };  unary = ("!" | "-") unary | value
//	value     = literal | field | "(" expr ")"
func Parse(q string) (*Query, error) {
	p := &parser{lex: lexer{src: q}}
	if len(q) > MaxQueryBytes {
		return nil, p.errorAt(MaxQueryBytes, "query is longer than %d bytes", MaxQueryBytes)
	}
	p.advance()
	query := &Query{Root: &SpansetFilter{}}
	if p.tok.kind != tokEOF {
		root, err := p.pipeline()
		if err != nil {
			return nil, err
		}
		query.Root = root
		if p.tok.kind == tokIdent && p.tok.text == "with" {
			if query.Hints, err = p.hints(); err != nil {
				return nil, err
			}
		}
		if p.tok.kind != tokEOF {
			if _, ok := root.(*Pipeline); ok {
				if _, structural := structuralOps[p.tok.text]; p.tok.kind == tokPunct && (structural || p.tok.text == "&&" || p.tok.text == "||") {
					return nil, p.unexpected(`"|", "with" or end of query (to combine a pipeline, put it in parentheses)`)
				}
				return nil, p.unexpected(`"|", "with" or end of query`)
			}
			return nil, p.unexpected(`"&&", "||", a structural operator, "|", "with" or end of query`)
		}
	}
	query.init()
	return query, nil
}

// Limits that keep a hostile query from exhausting the stack or the CPU.
const (
	MaxQueryBytes = 128 << 10
	maxNesting    = 100 // parentheses and unary operators
)

type parser struct {
	lex   lexer
	tok   token // the next token, not yet consumed
	prev  token // the last consumed token
	depth int   // current nesting
}

// nest counts one level of nesting; the caller defers p.depth--.
func (p *parser) nest() error {
	p.depth++
	if p.depth > maxNesting {
		return p.errorAt(p.tok.pos, "query nests deeper than %d levels", maxNesting)
	}
	return nil
}

func (p *parser) advance() token {
	p.prev = p.tok
	p.tok = p.lex.next()
	return p.prev
}

func (p *parser) is(punct string) bool { return p.tok.kind == tokPunct && p.tok.text == punct }

func (p *parser) isIdent(names ...string) bool {
	if p.tok.kind != tokIdent {
		return false
	}
	for _, n := range names {
		if p.tok.text == n {
			return true
		}
	}
	return false
}

func (p *parser) errorAt(pos int, format string, args ...any) *ParseError {
	src := p.lex.src
	pos = min(max(pos, 0), len(src))
	line := 1 + strings.Count(src[:pos], "\n")
	col := 1 + utf8.RuneCountInString(src[strings.LastIndexByte(src[:pos], '\n')+1:pos])
	return &ParseError{Pos: pos, Line: line, Col: col, Msg: fmt.Sprintf(format, args...)}
}

// unexpected reports the current token where something else was expected. A
// lexical error at that point wins, since it says more.
func (p *parser) unexpected(expected string) *ParseError {
	if p.tok.kind == tokError {
		return p.errorAt(p.tok.pos, "%s", p.tok.text)
	}
	return p.errorAt(p.tok.pos, "expected %s, found %s", expected, p.describe(p.tok))
}

func (p *parser) expect(punct, expected string) error {
	if !p.is(punct) {
		return p.unexpected(expected)
	}
	p.advance()
	return nil
}

func (p *parser) describe(t token) string {
	switch t.kind {
	case tokEOF:
		return "end of query"
	case tokString:
		return "string " + strconv.Quote(truncate(t.text))
	}
	return strconv.Quote(truncate(p.lex.src[t.pos:t.end]))
}

// Spanset level.

func (p *parser) pipeline() (SpansetExpr, error) {
	input, err := p.spansets()
	if err != nil || !p.is("|") {
		return input, err
	}
	pl := &Pipeline{Input: input}
	for p.is("|") {
		p.advance()
		s, err := p.stage()
		if err != nil {
			return nil, err
		}
		pl.Stages = append(pl.Stages, s)
	}
	return pl, nil
}

func (p *parser) spansets() (SpansetExpr, error) {
	lhs, err := p.spansetAnd()
	for err == nil && p.is("||") {
		p.advance()
		var rhs SpansetExpr
		if rhs, err = p.spansetAnd(); err == nil {
			lhs = &SpansetOp{Op: SpansetOr, LHS: lhs, RHS: rhs}
		}
	}
	return lhs, err
}

func (p *parser) spansetAnd() (SpansetExpr, error) {
	lhs, err := p.structure()
	for err == nil && p.is("&&") {
		p.advance()
		var rhs SpansetExpr
		if rhs, err = p.structure(); err == nil {
			lhs = &SpansetOp{Op: SpansetAnd, LHS: lhs, RHS: rhs}
		}
	}
	return lhs, err
}

var structuralOps = map[string]SpansetOperator{
	">": SpansetChild, ">>": SpansetDescendant, "<": SpansetParent, "<<": SpansetAncestor, "~": SpansetSibling,
	"!>": SpansetNotChild, "!>>": SpansetNotDescendant, "!<": SpansetNotParent, "!<<": SpansetNotAncestor, "!~": SpansetNotSibling,
	"&>": SpansetUnionChild, "&>>": SpansetUnionDescendant, "&<": SpansetUnionParent, "&<<": SpansetUnionAncestor, "&~": SpansetUnionSibling,
}

func (p *parser) structure() (SpansetExpr, error) {
	lhs, err := p.spansetPrimary()
	for err == nil && p.tok.kind == tokPunct {
		op, ok := structuralOps[p.tok.text]
		if !ok {
			break
		}
		p.advance()
		var rhs SpansetExpr
		if rhs, err = p.spansetPrimary(); err == nil {
			lhs = &SpansetOp{Op: op, LHS: lhs, RHS: rhs}
		}
	}
	return lhs, err
}

func (p *parser) spansetPrimary() (SpansetExpr, error) {
	switch {
	case p.is("{"):
		return p.filter()
	case p.is("("):
		defer func() { p.depth-- }()
		if err := p.nest(); err != nil {
			return nil, err
		}
		p.advance()
		e, err := p.pipeline()
		if err != nil {
			return nil, err
		}
		return e, p.expect(")", `")", an operator or "|"`)
	}
	if p.prev.kind == tokEOF { // nothing consumed yet: the query's first token
		return nil, p.unexpected(`"{" to start a spanset`)
	}
	return nil, p.unexpected(fmt.Sprintf(`"{" or "(" after %q`, p.lex.src[p.prev.pos:p.prev.end]))
}

func (p *parser) filter() (SpansetExpr, error) {
	p.advance() // {
	if p.is("}") {
		p.advance()
		return &SpansetFilter{}, nil
	}
	if !p.startsValue() {
		return nil, p.unexpected(`a condition or "}" after "{"`)
	}
	start := p.tok.pos
	cond, err := p.expr()
	if err != nil {
		return nil, err
	}
	if err := p.checkCondition(start, cond); err != nil {
		return nil, err
	}
	return &SpansetFilter{Cond: cond}, p.expect("}", `"}" or an operator`)
}

func (p *parser) stage() (Stage, error) {
	switch {
	case p.is("{") || p.is("("):
		return p.spansets()
	case p.isIdent("count", "avg", "min", "max", "sum"):
		return p.scalarFilter()
	case p.isIdent("by"):
		p.advance()
		if err := p.expect("(", `"(" after "by"`); err != nil {
			return nil, err
		}
		if p.is(")") {
			return nil, p.unexpected(`a field after "by("`)
		}
		f, err := p.expr()
		if err != nil {
			return nil, err
		}
		return &GroupBy{Field: f}, p.expect(")", `")" or an operator`)
	case p.isIdent("select"):
		p.advance()
		if err := p.expect("(", `"(" after "select"`); err != nil {
			return nil, err
		}
		sel := &Select{}
		for after := "select("; ; after = "," {
			if p.tok.kind != tokAttr && p.tok.kind != tokIdent {
				return nil, p.unexpected(fmt.Sprintf("an attribute or intrinsic after %q", after))
			}
			f, err := p.value()
			if err != nil {
				return nil, err
			}
			a, ok := f.(*Attribute)
			if !ok {
				return nil, p.errorAt(p.prev.pos, "select() takes attributes and intrinsics, found %s", f)
			}
			sel.Fields = append(sel.Fields, *a)
			if !p.is(",") {
				break
			}
			p.advance()
		}
		return sel, p.expect(")", `"," or ")"`)
	case p.isIdent("coalesce"):
		p.advance()
		if err := p.expect("(", `"(" after "coalesce"`); err != nil {
			return nil, err
		}
		return &Coalesce{}, p.expect(")", `")" after "coalesce("`)
	}
	if p.tok.kind == tokIdent && isMetricsFunction(p.tok.text) {
		return nil, p.errorAt(p.tok.pos, "%s() is a TraceQL metrics function: search takes span queries only", p.tok.text)
	}
	return nil, p.unexpected(`a spanset, count(), avg(), min(), max(), sum(), by(), select() or coalesce() after "|"`)
}

func isMetricsFunction(name string) bool {
	switch name {
	case "rate", "compare", "topk", "bottomk":
		return true
	}
	return strings.HasSuffix(name, "_over_time")
}

var aggregateFuncs = map[string]AggregateFunc{"count": AggCount, "avg": AggAvg, "min": AggMin, "max": AggMax, "sum": AggSum}

func isStageName(s string) bool {
	_, agg := aggregateFuncs[s]
	return agg || s == "by" || s == "select" || s == "coalesce"
}

func (p *parser) scalarFilter() (Stage, error) {
	name := p.advance().text
	sf := &ScalarFilter{Func: aggregateFuncs[name]}
	if err := p.expect("(", fmt.Sprintf(`"(" after %q`, name)); err != nil {
		return nil, err
	}
	if sf.Func == AggCount {
		if !p.is(")") {
			return nil, p.unexpected(`")": count() takes no argument`)
		}
		p.advance()
	} else {
		if p.is(")") {
			return nil, p.unexpected(fmt.Sprintf("a field after %q", name+"("))
		}
		start := p.tok.pos
		f, err := p.expr()
		if err != nil {
			return nil, err
		}
		if t := staticType(f); t != typeAny && t != typeNumber {
			return nil, p.errorAt(start, "%s() needs a number or a duration, found %s", name, typeName(t))
		}
		if err := p.expect(")", `")" or an operator`); err != nil {
			return nil, err
		}
		sf.Field = f
	}
	fn := sf.Func.String() + "()"
	op, ok := p.comparisonOp()
	if !ok || op == OpRegex || op == OpNotRegex {
		return nil, p.unexpected(fmt.Sprintf("a comparison (=, !=, >, >=, <, <=) after %q", fn))
	}
	p.advance()
	sf.Op = op
	start := p.tok.pos
	v, err := p.unary()
	if err != nil {
		return nil, err
	}
	lit, ok := v.(Value)
	if !ok || staticType(lit) != typeNumber {
		return nil, p.errorAt(start, "expected a number or a duration after %q, found %s", fn+" "+sf.Op.String(), v)
	}
	if sf.Func == AggCount && lit.Type == TypeDuration {
		return nil, p.errorAt(start, "count() compares with a number, found the duration %s", lit)
	}
	sf.Value = lit
	return sf, nil
}

func (p *parser) hints() ([]Hint, error) {
	p.advance() // with
	if err := p.expect("(", `"(" after "with"`); err != nil {
		return nil, err
	}
	var hints []Hint
	for {
		if p.tok.kind != tokIdent {
			return nil, p.unexpected("a hint name")
		}
		name := p.advance().text
		if err := p.expect("=", fmt.Sprintf(`"=" after %q`, name)); err != nil {
			return nil, err
		}
		start := p.tok.pos
		v, err := p.unary()
		if err != nil {
			return nil, err
		}
		lit, ok := v.(Value)
		if !ok {
			return nil, p.errorAt(start, "expected a literal value for hint %q, found %s", name, v)
		}
		hints = append(hints, Hint{Name: name, Value: lit})
		if !p.is(",") {
			break
		}
		p.advance()
	}
	return hints, p.expect(")", `"," or ")"`)
}

// Field expression level.

var comparisonOps = map[string]Operator{
	"=": OpEqual, "!=": OpNotEqual, ">": OpGreater, ">=": OpGreaterEqual,
	"<": OpLess, "<=": OpLessEqual, "=~": OpRegex, "!~": OpNotRegex,
}

// comparisonOp reports whether the next token is a comparison operator.
func (p *parser) comparisonOp() (Operator, bool) {
	if p.tok.kind != tokPunct {
		return 0, false
	}
	op, ok := comparisonOps[p.tok.text]
	return op, ok
}

func (p *parser) expr() (FieldExpr, error) { return p.logical("||", OpOr, p.andExpr) }

func (p *parser) andExpr() (FieldExpr, error) { return p.logical("&&", OpAnd, p.comparison) }

func (p *parser) logical(punct string, op Operator, next func() (FieldExpr, error)) (FieldExpr, error) {
	lhs, err := next()
	for err == nil && p.is(punct) {
		opTok := p.advance()
		var rhs FieldExpr
		if rhs, err = next(); err != nil {
			break
		}
		for _, e := range []FieldExpr{lhs, rhs} {
			if t := staticType(e); t != typeBool && !isAttribute(e) {
				return nil, p.errorAt(opTok.pos, "%q needs conditions on both sides, found %s", punct, typeName(t))
			}
		}
		lhs = &BinaryExpr{Op: op, LHS: lhs, RHS: rhs}
	}
	return lhs, err
}

func (p *parser) comparison() (FieldExpr, error) {
	lhs, err := p.sum()
	op, isComparison := p.comparisonOp()
	if err != nil || !isComparison {
		return lhs, err
	}
	opTok := p.advance()
	rhsStart := p.tok.pos
	rhs, err := p.sum()
	if err != nil {
		return nil, err
	}
	b := &BinaryExpr{Op: op, LHS: lhs, RHS: rhs}
	if err := p.checkComparison(opTok, rhsStart, b); err != nil {
		return nil, err
	}
	if _, chained := p.comparisonOp(); chained {
		return nil, p.errorAt(p.tok.pos, `comparisons cannot be chained: join them with "&&"`)
	}
	return b, nil
}

var (
	sumOps     = map[string]Operator{"+": OpAdd, "-": OpSub}
	productOps = map[string]Operator{"*": OpMul, "/": OpDiv}
	scopes     = map[string]Scope{"": ScopeNone, "span": ScopeSpan, "resource": ScopeResource, "instrumentation": ScopeInstrumentation}
)

func (p *parser) sum() (FieldExpr, error) { return p.arithmetic(sumOps, p.product) }

func (p *parser) product() (FieldExpr, error) { return p.arithmetic(productOps, p.unary) }

func (p *parser) arithmetic(ops map[string]Operator, next func() (FieldExpr, error)) (FieldExpr, error) {
	lhs, err := next()
	for err == nil && p.tok.kind == tokPunct {
		op, ok := ops[p.tok.text]
		if !ok {
			break
		}
		opTok := p.advance()
		var rhs FieldExpr
		if rhs, err = next(); err != nil {
			break
		}
		for _, e := range []FieldExpr{lhs, rhs} {
			if t := staticType(e); t != typeNumber && t != typeAny {
				return nil, p.errorAt(opTok.pos, "%q needs numbers or durations, found %s", opTok.text, typeName(t))
			}
		}
		lhs = &BinaryExpr{Op: op, LHS: lhs, RHS: rhs}
	}
	return lhs, err
}

func (p *parser) unary() (FieldExpr, error) {
	if p.is("!") || p.is("-") {
		defer func() { p.depth-- }()
		if err := p.nest(); err != nil {
			return nil, err
		}
	}
	switch {
	case p.is("!"):
		opTok := p.advance()
		e, err := p.unary()
		if err != nil {
			return nil, err
		}
		if t := staticType(e); t != typeBool && !isAttribute(e) {
			return nil, p.errorAt(opTok.pos, `"!" needs a condition, found %s`, typeName(t))
		}
		return &UnaryExpr{Op: OpNot, Expr: e}, nil
	case p.is("-"):
		opTok := p.advance()
		if p.tok.kind == tokNumber || p.tok.kind == tokDuration {
			// The sign belongs to the literal, so that minInt can be written.
			return p.literal(opTok.pos, "-")
		}
		e, err := p.unary()
		if err != nil {
			return nil, err
		}
		if v, ok := e.(Value); ok {
			switch {
			case v.Type == TypeFloat:
				return FloatValue(-v.F), nil
			case (v.Type == TypeInt || v.Type == TypeDuration) && v.N != math.MinInt64:
				v.N = -v.N
				return v, nil
			}
		}
		if t := staticType(e); t != typeNumber && t != typeAny {
			return nil, p.errorAt(opTok.pos, `"-" needs a number or a duration, found %s`, typeName(t))
		}
		return &UnaryExpr{Op: OpSub, Expr: e}, nil
	}
	return p.value()
}

// value reads a literal, a field or a parenthesized expression.
func (p *parser) value() (FieldExpr, error) {
	t := p.tok
	switch t.kind {
	case tokString:
		p.advance()
		return StringValue(t.text), nil
	case tokNumber, tokDuration:
		return p.literal(t.pos, "")
	case tokAttr:
		p.advance()
		return p.attribute(t)
	case tokIdent:
		p.advance()
		return p.identifier(t)
	case tokPunct:
		if t.text == "(" {
			defer func() { p.depth-- }()
			if err := p.nest(); err != nil {
				return nil, err
			}
			p.advance()
			e, err := p.expr()
			if err != nil {
				return nil, err
			}
			return e, p.expect(")", `")" or an operator`)
		}
	}
	return nil, p.unexpected(fmt.Sprintf("a value after %q", p.lex.src[p.prev.pos:p.prev.end]))
}

// literal reads a number or a duration, with the sign read before it.
func (p *parser) literal(start int, sign string) (FieldExpr, error) {
	t := p.advance()
	text := sign + t.text
	switch {
	case t.kind == tokDuration:
		d, err := time.ParseDuration(text)
		if err != nil {
			return nil, p.errorAt(start, "invalid duration %q: use a number and ns, us, µs, ms, s, m or h", text)
		}
		return DurationValue(d), nil
	case strings.Contains(text, "."):
		f, err := strconv.ParseFloat(text, 64)
		if err != nil {
			return nil, p.errorAt(start, "number %s is out of range", truncate(text))
		}
		return FloatValue(f), nil
	}
	n, err := strconv.ParseInt(text, 10, 64)
	if err != nil {
		return nil, p.errorAt(start, "integer %s is out of range (use a float, or minInt/maxInt)", truncate(text))
	}
	return IntValue(n), nil
}

func (p *parser) identifier(t token) (FieldExpr, error) {
	switch t.text {
	case "true", "false":
		return BoolValue(t.text == "true"), nil
	case "nil":
		return NilValue(), nil
	case "minInt":
		return IntValue(math.MinInt64), nil
	case "maxInt":
		return IntValue(math.MaxInt64), nil
	}
	if i := slices.Index(statusKeywords, t.text); i >= 0 {
		return Value{Type: TypeStatus, N: int64(i)}, nil
	}
	if i := slices.Index(kindKeywords, t.text); i >= 0 {
		return Value{Type: TypeKind, N: int64(i)}, nil
	}
	if i, ok := intrinsicNames[t.text]; ok {
		return newIntrinsic(i), nil
	}
	scope, _, scoped := strings.Cut(t.text, ":")
	switch {
	case scope == "event" || scope == "link":
		return nil, p.errorAt(t.pos, "%q is not supported: span events and links cannot be searched", t.text)
	case scoped:
		return nil, p.errorAt(t.pos, "unknown intrinsic %q", t.text)
	case isStageName(t.text):
		return nil, p.errorAt(t.pos, "%s() can only follow \"|\" in a pipeline", t.text)
	}
	return nil, p.errorAt(t.pos, "unknown identifier %q: attributes need a scope, as in .%[1]s, span.%[1]s or resource.%[1]s", t.text)
}

func (p *parser) attribute(t token) (FieldExpr, error) {
	scope, ok := scopes[t.scope]
	switch {
	case ok:
		return &Attribute{Scope: scope, Name: t.text}, nil
	case t.scope == "event" || t.scope == "link":
		return nil, p.errorAt(t.pos, "%s attributes are not supported: span events and links cannot be searched", t.scope)
	case t.scope == "trace":
		return nil, p.errorAt(t.pos, "the trace scope has no attributes, only the intrinsics trace:duration, trace:rootName, trace:rootService and trace:id")
	}
	return nil, p.errorAt(t.pos, "unknown attribute scope %q: use span., resource., instrumentation. or . before the name", t.scope)
}

// startsValue reports whether the next token can begin a field expression.
func (p *parser) startsValue() bool {
	switch p.tok.kind {
	case tokString, tokNumber, tokDuration, tokAttr, tokIdent:
		return true
	case tokPunct:
		return p.tok.text == "(" || p.tok.text == "!" || p.tok.text == "-"
	}
	return false
}

// Type checks. Attributes may hold any type, so only what is known from
// literals and intrinsics is checked; the rest is decided per span.

type staticTyp int

const (
	typeAny staticTyp = iota // an attribute: decided per span
	typeNil
	typeBool
	typeNumber // int, float and duration compare with each other
	typeString
	typeStatus
	typeKind
)

func typeName(t staticTyp) string {
	return [...]string{"an attribute", "nil", "a boolean", "a number", "a string", "a status", "a kind"}[t]
}

func typeOf(vt ValueType) staticTyp {
	switch vt {
	case TypeBool:
		return typeBool
	case TypeInt, TypeFloat, TypeDuration:
		return typeNumber
	case TypeString:
		return typeString
	case TypeStatus:
		return typeStatus
	case TypeKind:
		return typeKind
	case TypeNil:
		return typeNil
	}
	return typeAny
}

func staticType(e FieldExpr) staticTyp {
	switch e := e.(type) {
	case Value:
		return typeOf(e.Type)
	case *Attribute:
		if e.Intrinsic != IntrinsicNone {
			return typeOf(intrinsics[e.Intrinsic].typ)
		}
		return typeAny
	case *UnaryExpr:
		if e.Op == OpNot {
			return typeBool
		}
		return typeNumber
	case *BinaryExpr:
		if e.Op.isComparison() || e.Op == OpAnd || e.Op == OpOr {
			return typeBool
		}
		return typeNumber
	}
	return typeAny
}

func isAttribute(e FieldExpr) bool {
	a, ok := e.(*Attribute)
	return ok && a.Intrinsic == IntrinsicNone
}

// checkCondition: what is inside { } must be true or false for a span; a bare
// attribute means "= true", as in Tempo.
func (p *parser) checkCondition(start int, e FieldExpr) error {
	if t := staticType(e); t != typeBool && !isAttribute(e) {
		return p.errorAt(start, "expected a condition such as name = \"x\", found %s", typeName(t))
	}
	return nil
}

func (p *parser) checkComparison(opTok token, rhsStart int, b *BinaryExpr) error {
	lt, rt := staticType(b.LHS), staticType(b.RHS)
	op := b.Op
	if op == OpRegex || op == OpNotRegex {
		lit, ok := b.RHS.(Value)
		if !ok || lit.Type != TypeString {
			return p.errorAt(rhsStart, "expected a string (a regular expression) after %q, found %s", op, typeName(rt))
		}
		if lt != typeString && lt != typeAny {
			return p.errorAt(opTok.pos, "%q matches strings, found %s on the left", op, typeName(lt))
		}
		re, err := anchoredRegexp(lit.S)
		if err != nil {
			return p.errorAt(rhsStart, "invalid regular expression %s: %v", truncate(strconv.Quote(lit.S)), strings.TrimPrefix(err.Error(), "error parsing regexp: "))
		}
		b.re = re
		return nil
	}
	ordering := op != OpEqual && op != OpNotEqual
	for _, t := range []staticTyp{lt, rt} {
		if ordering && (t == typeNil || t == typeBool || t == typeStatus || t == typeKind) {
			return p.errorAt(opTok.pos, "%q cannot order %s: use = or !=", op, typeName(t))
		}
	}
	if lt != rt && lt != typeAny && rt != typeAny && lt != typeNil && rt != typeNil {
		if hint := keywordHint(b); hint != "" {
			return p.errorAt(opTok.pos, "cannot compare %s with %s: write %s, without quotes", typeName(lt), typeName(rt), hint)
		}
		return p.errorAt(opTok.pos, "cannot compare %s with %s", typeName(lt), typeName(rt))
	}
	normalizeID(b)
	return nil
}

// keywordHint suggests the keyword for `status = "error"` and the like.
func keywordHint(b *BinaryExpr) string {
	a, ok := b.LHS.(*Attribute)
	lit, isLit := b.RHS.(Value)
	if !ok || !isLit || lit.Type != TypeString {
		return ""
	}
	if (a.Intrinsic == IntrinsicStatus && slices.Contains(statusKeywords, lit.S)) ||
		(a.Intrinsic == IntrinsicKind && slices.Contains(kindKeywords, lit.S)) {
		return a.String() + " " + b.Op.String() + " " + lit.S
	}
	return ""
}

// anchoredRegexp compiles a pattern that must match the whole string, as in
// Tempo and Prometheus.
func anchoredRegexp(pattern string) (*regexp.Regexp, error) {
	// Check the pattern alone: wrapped, "a)|(b" would pass.
	parsed, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return nil, err
	}
	re, err := regexp.Compile("^(?:" + pattern + ")$")
	if err != nil { // a trailing \Q quotes our ")$" too: anchor the parsed pattern
		re, err = regexp.Compile("^(?:" + parsed.String() + ")$")
	}
	return re, err
}

// normalizeID lets `trace:id = "AF7651"` match: IDs compare as lower-case
// hex, left-padded with zeros like trace IDs elsewhere in Vivace. A trace:id
// literal is moreover read as lookups by ID read what users paste
// (model.ReadTraceID); one that does not read as an ID compares as a string
// and matches no trace.
func normalizeID(b *BinaryExpr) {
	if b.Op == OpEqual || b.Op == OpNotEqual {
		b.LHS, b.RHS = paddedID(b.LHS, b.RHS), paddedID(b.RHS, b.LHS)
		if b.ids = traceIDReadings(b.LHS, b.RHS); b.ids == nil {
			b.ids = traceIDReadings(b.RHS, b.LHS)
		}
	}
}

// traceIDReadings returns the readings of e when it is a string literal
// compared with trace:id and reads as a trace ID.
func traceIDReadings(e, other FieldExpr) []model.TraceIDReading {
	lit, isLit := e.(Value)
	a, isAttr := other.(*Attribute)
	if !isLit || !isAttr || lit.Type != TypeString || a.Intrinsic != IntrinsicTraceID {
		return nil
	}
	readings, err := model.ReadTraceID(lit.S)
	if err != nil {
		return nil
	}
	return readings
}

// paddedID returns e, or the full-width ID it spells when compared with an
// ID intrinsic.
func paddedID(e, other FieldExpr) FieldExpr {
	lit, isLit := e.(Value)
	a, isAttr := other.(*Attribute)
	if !isLit || !isAttr || lit.Type != TypeString {
		return e
	}
	width := map[Intrinsic]int{IntrinsicTraceID: 32, IntrinsicSpanID: 16, IntrinsicParentID: 16}[a.Intrinsic]
	hexID := strings.ToLower(lit.S)
	if width == 0 || hexID == "" || len(hexID) > width || strings.Trim(hexID, "0123456789abcdef") != "" {
		return e
	}
	return StringValue(strings.Repeat("0", width-len(hexID)) + hexID)
}
