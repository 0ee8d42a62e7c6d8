package traceql

import (
	"fmt"

	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"
)

// Helpers for search engines that read columns or walk traces themselves.

// Holds tells whether a value read from one span satisfies the condition. It
// errs towards true: regular expressions and comparisons with nil always
// hold, so a caller that skips a trace on false never skips a match.
func (c Condition) Holds(v Value) bool {
	if c.Op == OpRegex || c.Op == OpNotRegex || c.Value.Type == TypeNil {
		return true
	}
	return compare(c.Op, v, c.Value, nil)
}

// ParseAttribute reads an attribute or intrinsic as written in a query
// (resource.service.name, span.http.method, .foo, name, status). A name
// without scope that is no intrinsic is taken as unscoped: service.name is
// .service.name, as Tempo's v1 tag API means it.
func ParseAttribute(name string) (Attribute, error) {
	for _, text := range []string{name, "." + name} {
		q, err := Parse("{} | select(" + text + ")")
		if err == nil && len(q.Fields()) == 1 {
			return q.Fields()[0], nil
		}
	}
	return Attribute{}, fmt.Errorf("%q is not an attribute or intrinsic", name)
}

// SpanValues calls fn with the value of a on every span of td for which keep
// (when not nil) is true; spans without the attribute are left out.
func SpanValues(td *tracev1.TracesData, a Attribute, keep func(s *tracev1.Span) bool, fn func(Value)) {
	t := newTrace(td)
	for i := range t.spans {
		if keep != nil && !keep(t.spans[i].span) {
			continue
		}
		if v := t.field(&a, i); v.Type != TypeNil {
			fn(v)
		}
	}
}

// TypeName is the type of a value as Tempo's tag values API names it.
func (v Value) TypeName() string {
	switch v.Type {
	case TypeBool:
		return "bool"
	case TypeInt:
		return "int"
	case TypeFloat:
		return "float"
	case TypeString:
		return "string"
	case TypeDuration:
		return "duration"
	case TypeStatus, TypeKind:
		return "keyword"
	}
	return ""
}
