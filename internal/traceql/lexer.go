package traceql

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

type tokenKind int

const (
	tokEOF      tokenKind = iota
	tokError              // text is the message
	tokIdent              // name, span:name, count, true, error, ...
	tokAttr               // .x, span.x: scope and (unquoted) name
	tokString             // text is the decoded string
	tokNumber             // text is the source, e.g. 12 or 1.5
	tokDuration           // text is the source, e.g. 1.5s
	tokPunct              // operators and punctuation; text is the symbol
)

type token struct {
	kind     tokenKind
	pos, end int    // byte offsets in the query
	text     string // see tokenKind
	scope    string // tokAttr: "span", "resource", ... or "" for ".x"
}

// punctuation, longest first within each length so that "!>>" wins over "!>".
var punctuation = [][]string{
	{"!>>", "!<<", "&>>", "&<<"},
	{"&&", "||", "!=", "!~", "!>", "!<", "&>", "&<", "&~", ">=", "<=", ">>", "<<", "=~"},
	{"{", "}", "(", ")", ",", "|", "=", "!", ">", "<", "~", "+", "-", "*", "/"},
}

// lexer cuts a query into tokens on demand, so that a parse error before a
// lexical one is reported first.
type lexer struct {
	src string
	pos int
}

func (l *lexer) next() token {
	for l.pos < len(l.src) {
		r, n := utf8.DecodeRuneInString(l.src[l.pos:])
		if !unicode.IsSpace(r) {
			break
		}
		l.pos += n
	}
	start := l.pos
	if start >= len(l.src) {
		return token{kind: tokEOF, pos: start, end: start}
	}
	c := l.src[start]
	switch {
	case c == '"':
		return l.quoted()
	case c == '`':
		end := strings.IndexByte(l.src[start+1:], '`')
		if end < 0 {
			return l.fail(start, "unterminated string: missing closing `")
		}
		l.pos = start + 1 + end + 1
		return token{kind: tokString, pos: start, end: l.pos, text: l.src[start+1 : start+1+end]}
	case isDigit(c):
		return l.number()
	case c == '.':
		l.pos++
		return l.attribute(start, "")
	case isIdentStart(c):
		return l.ident()
	}
	for _, group := range punctuation {
		for _, p := range group {
			if strings.HasPrefix(l.src[start:], p) {
				l.pos += len(p)
				return token{kind: tokPunct, pos: start, end: l.pos, text: p}
			}
		}
	}
	r, _ := utf8.DecodeRuneInString(l.src[start:])
	return l.fail(start, fmt.Sprintf("unexpected character %q", r))
}

func (l *lexer) fail(pos int, msg string) token {
	l.pos = len(l.src) // nothing after an error is read
	return token{kind: tokError, pos: pos, end: pos, text: msg}
}

// quoted reads a double-quoted string with Go escapes.
func (l *lexer) quoted() token {
	start := l.pos
	i := start + 1
	for ; i < len(l.src); i++ {
		if l.src[i] == '\\' {
			i++
			continue
		}
		if l.src[i] == '"' {
			break
		}
	}
	if i >= len(l.src) {
		return l.fail(start, `unterminated string: missing closing "`)
	}
	s, err := strconv.Unquote(l.src[start : i+1])
	if err != nil {
		return l.fail(start, fmt.Sprintf("invalid string %s: bad escape or line break", truncate(l.src[start:i+1])))
	}
	l.pos = i + 1
	return token{kind: tokString, pos: start, end: l.pos, text: s}
}

// number reads 12, 1.5, or a duration such as 1.5s, 100us, 1h30m.
func (l *lexer) number() token {
	start := l.pos
	i := start
	for i < len(l.src) && isDigit(l.src[i]) {
		i++
	}
	if i+1 < len(l.src) && l.src[i] == '.' && isDigit(l.src[i+1]) {
		i++
		for i < len(l.src) && isDigit(l.src[i]) {
			i++
		}
	}
	kind := tokNumber
	if i < len(l.src) && (isLetter(l.src[i]) || strings.HasPrefix(l.src[i:], "µ")) {
		kind = tokDuration
		for i < len(l.src) && (isLetter(l.src[i]) || isDigit(l.src[i]) || l.src[i] == '.' || strings.HasPrefix(l.src[i:], "µ")) {
			if l.src[i] == 0xc2 { // µ is two bytes
				i++
			}
			i++
		}
	}
	l.pos = i
	return token{kind: kind, pos: start, end: i, text: l.src[start:i]}
}

// ident reads a name, a scoped intrinsic (span:name) or, when a dot follows,
// a scoped attribute (span.http.method).
func (l *lexer) ident() token {
	start := l.pos
	i := start
	for i < len(l.src) && isIdentPart(l.src[i]) {
		i++
	}
	if i+1 < len(l.src) && l.src[i] == ':' && isIdentStart(l.src[i+1]) {
		i++
		for i < len(l.src) && isIdentPart(l.src[i]) {
			i++
		}
	} else if i < len(l.src) && l.src[i] == '.' {
		l.pos = i + 1
		return l.attribute(start, l.src[start:i])
	}
	l.pos = i
	return token{kind: tokIdent, pos: start, end: i, text: l.src[start:i]}
}

// attribute reads an attribute name after "scope.": runs of name characters
// and quoted parts ("a b", with only \" and \\ as escapes), joined.
func (l *lexer) attribute(start int, scope string) token {
	var name strings.Builder
	for l.pos < len(l.src) {
		if l.src[l.pos] == '"' {
			qstart := l.pos
			l.pos++
			closed := false
			for l.pos < len(l.src) {
				c := l.src[l.pos]
				if c == '"' {
					l.pos++
					closed = true
					break
				}
				if c == '\\' {
					if l.pos+1 >= len(l.src) || (l.src[l.pos+1] != '"' && l.src[l.pos+1] != '\\') {
						return l.fail(l.pos, `invalid escape in quoted attribute name: only \" and \\ are allowed`)
					}
					l.pos++
					c = l.src[l.pos]
				}
				name.WriteByte(c)
				l.pos++
			}
			if !closed {
				return l.fail(qstart, `unterminated attribute name: missing closing "`)
			}
			continue
		}
		r, n := utf8.DecodeRuneInString(l.src[l.pos:])
		if !isAttributeRune(r) {
			break
		}
		name.WriteString(l.src[l.pos : l.pos+n])
		l.pos += n
	}
	if name.Len() == 0 {
		if l.src[l.pos-1] == '.' { // nothing after the dot
			return l.fail(l.pos, fmt.Sprintf("expected an attribute name after %q", l.src[start:l.pos]))
		}
		return l.fail(start, "empty attribute name")
	}
	return token{kind: tokAttr, pos: start, end: l.pos, text: name.String(), scope: scope}
}

func isDigit(c byte) bool      { return c >= '0' && c <= '9' }
func isLetter(c byte) bool     { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') }
func isIdentStart(c byte) bool { return isLetter(c) || c == '_' }
func isIdentPart(c byte) bool  { return isIdentStart(c) || isDigit(c) }

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
