package zipkin

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// scanner reads JSON (RFC 8259) from a string without reflection: the
// Zipkin decoders walk the document with it and keep what they know. Strings
// without escapes come back as substrings of the input, so the body is copied
// once, not once per field. Invalid UTF-8 in strings is replaced by U+FFFD, as
// encoding/json does, because OTLP strings must be valid UTF-8.
type scanner struct {
	s   string
	i   int
	buf []byte // scratch for unescaping
}

// maxDepth bounds the nesting of values the decoders skip.
const maxDepth = 64

// errSyntax marks malformed JSON, as opposed to well-formed JSON that is not
// valid Zipkin.
var errSyntax = errors.New("invalid JSON")

func (d *scanner) errorf(format string, args ...any) error {
	return fmt.Errorf("%w at offset %d: %s", errSyntax, d.i, fmt.Sprintf(format, args...))
}

func (d *scanner) ws() {
	for d.i < len(d.s) {
		switch d.s[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// peek returns the next byte after white space, 0 at the end.
func (d *scanner) peek() byte {
	d.ws()
	if d.i < len(d.s) {
		return d.s[d.i]
	}
	return 0
}

func (d *scanner) expect(c byte) error {
	if d.peek() != c {
		return d.unexpected(fmt.Sprintf("%q", c))
	}
	d.i++
	return nil
}

func (d *scanner) unexpected(want string) error {
	if d.i >= len(d.s) {
		return d.errorf("unexpected end of input, want %s", want)
	}
	return d.errorf("unexpected %q, want %s", d.s[d.i], want)
}

// end checks that only white space follows the top-level value.
func (d *scanner) end() error {
	if d.peek() != 0 || d.i < len(d.s) {
		return d.errorf("data after the top-level value")
	}
	return nil
}

// object reads an object, calling field with the cursor on each member's value.
func (d *scanner) object(field func(key string) error) error {
	if err := d.expect('{'); err != nil {
		return err
	}
	if d.peek() == '}' {
		d.i++
		return nil
	}
	for {
		if d.peek() != '"' {
			return d.unexpected("a member name")
		}
		key, err := d.str()
		if err != nil {
			return err
		}
		if err := d.expect(':'); err != nil {
			return err
		}
		d.ws()
		if err := field(key); err != nil {
			return err
		}
		switch d.peek() {
		case ',':
			d.i++
		case '}':
			d.i++
			return nil
		default:
			return d.unexpected(`"," or "}"`)
		}
	}
}

// array reads an array, calling elem with the cursor on each element.
func (d *scanner) array(elem func(i int) error) error {
	if err := d.expect('['); err != nil {
		return err
	}
	if d.peek() == ']' {
		d.i++
		return nil
	}
	for i := 0; ; i++ {
		d.ws()
		if err := elem(i); err != nil {
			return err
		}
		switch d.peek() {
		case ',':
			d.i++
		case ']':
			d.i++
			return nil
		default:
			return d.unexpected(`"," or "]"`)
		}
	}
}

// null consumes a null literal if one is next.
func (d *scanner) null() bool {
	if strings.HasPrefix(d.s[d.i:], "null") {
		d.i += 4
		return true
	}
	return false
}

// kind is the JSON type of the next value, for messages.
func (d *scanner) kind() string {
	switch d.peek() {
	case '"':
		return "a string"
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	case 0:
		return "nothing"
	}
	return "a number"
}

// str reads a string.
func (d *scanner) str() (string, error) {
	if d.peek() != '"' {
		return "", d.unexpected("a string")
	}
	d.i++
	start := d.i
	ascii := true
	for d.i < len(d.s) {
		c := d.s[d.i]
		switch {
		case c == '"':
			v := d.s[start:d.i]
			d.i++
			if !ascii && !utf8.ValidString(v) {
				v = strings.ToValidUTF8(v, "\uFFFD")
			}
			return v, nil
		case c == '\\':
			return d.strEscaped(start)
		case c < 0x20:
			return "", d.errorf("control character in a string")
		case c >= utf8.RuneSelf:
			ascii = false
		}
		d.i++
	}
	return "", d.errorf("unterminated string")
}

// strEscaped finishes a string that has escapes, from its start.
func (d *scanner) strEscaped(start int) (string, error) {
	b := append(d.buf[:0], d.s[start:d.i]...)
	for d.i < len(d.s) {
		c := d.s[d.i]
		switch {
		case c == '"':
			d.i++
			d.buf = b
			if !utf8.Valid(b) {
				return strings.ToValidUTF8(string(b), "\uFFFD"), nil
			}
			return string(b), nil
		case c < 0x20:
			return "", d.errorf("control character in a string")
		case c != '\\':
			b = append(b, c)
			d.i++
			continue
		}
		if d.i+1 >= len(d.s) {
			return "", d.errorf("unterminated string")
		}
		e := d.s[d.i+1]
		d.i += 2
		switch e {
		case '"', '\\', '/':
			b = append(b, e)
		case 'b':
			b = append(b, '\b')
		case 'f':
			b = append(b, '\f')
		case 'n':
			b = append(b, '\n')
		case 'r':
			b = append(b, '\r')
		case 't':
			b = append(b, '\t')
		case 'u':
			r, ok := d.hex4()
			if !ok {
				return "", d.errorf(`invalid \u escape`)
			}
			if utf16.IsSurrogate(r) {
				r2 := rune(utf8.RuneError)
				if strings.HasPrefix(d.s[d.i:], `\u`) {
					save := d.i
					d.i += 2
					if lo, ok := d.hex4(); ok && utf16.DecodeRune(r, lo) != utf8.RuneError {
						r2 = utf16.DecodeRune(r, lo)
					} else {
						d.i = save
					}
				}
				r = r2
			}
			b = utf8.AppendRune(b, r)
		default:
			return "", d.errorf("invalid escape %q", "\\"+string(e))
		}
	}
	return "", d.errorf("unterminated string")
}

func (d *scanner) hex4() (rune, bool) {
	if d.i+4 > len(d.s) {
		return 0, false
	}
	var r rune
	for _, c := range []byte(d.s[d.i : d.i+4]) {
		n, ok := unhex(c)
		if !ok {
			return 0, false
		}
		r = r<<4 | rune(n)
	}
	d.i += 4
	return r, true
}

// number reads a number and returns its text.
func (d *scanner) number() (string, error) {
	d.ws()
	start := d.i
	if d.i < len(d.s) && d.s[d.i] == '-' {
		d.i++
	}
	switch {
	case d.i < len(d.s) && d.s[d.i] == '0':
		d.i++
	case d.i < len(d.s) && '1' <= d.s[d.i] && d.s[d.i] <= '9':
		d.digits()
	default:
		return "", d.unexpected("a number")
	}
	if d.i < len(d.s) && d.s[d.i] == '.' {
		d.i++
		if d.digits() == 0 {
			return "", d.unexpected("a digit")
		}
	}
	if d.i < len(d.s) && (d.s[d.i] == 'e' || d.s[d.i] == 'E') {
		d.i++
		if d.i < len(d.s) && (d.s[d.i] == '+' || d.s[d.i] == '-') {
			d.i++
		}
		if d.digits() == 0 {
			return "", d.unexpected("a digit")
		}
	}
	return d.s[start:d.i], nil
}

func (d *scanner) digits() int {
	n := 0
	for d.i < len(d.s) && '0' <= d.s[d.i] && d.s[d.i] <= '9' {
		d.i++
		n++
	}
	return n
}

// errRange is returned by uint for numbers that are no unsigned integer.
var errRange = errors.New("out of range")

// uint reads a non-negative whole number. Some clients write whole numbers
// with a fraction or an exponent (1.5e15); those are accepted and truncated,
// as Zipkin's reader does.
func (d *scanner) uint() (uint64, error) {
	text, err := d.number()
	if err != nil {
		return 0, err
	}
	if n, err := strconv.ParseUint(text, 10, 64); err == nil {
		return n, nil
	}
	f, err := strconv.ParseFloat(text, 64)
	if err != nil || f < 0 || f >= math.MaxUint64 || math.IsNaN(f) {
		return 0, fmt.Errorf("%s is %w", text, errRange)
	}
	return uint64(f), nil
}

// boolean reads true or false.
func (d *scanner) boolean() (bool, error) {
	d.ws()
	switch {
	case strings.HasPrefix(d.s[d.i:], "true"):
		d.i += 4
		return true, nil
	case strings.HasPrefix(d.s[d.i:], "false"):
		d.i += 5
		return false, nil
	}
	return false, d.unexpected("true or false")
}

// scalarText reads a string, number or boolean as text: Zipkin tag and
// binary annotation values are strings, but some clients send numbers and
// booleans, which Zipkin's own reader accepts.
func (d *scanner) scalarText() (string, error) {
	switch c := d.peek(); {
	case c == '"':
		return d.str()
	case c == 't' || c == 'f':
		b, err := d.boolean()
		return strconv.FormatBool(b), err
	case c == '-' || '0' <= c && c <= '9':
		return d.number()
	}
	return "", errNotScalar
}

var errNotScalar = errors.New("not a string, number or boolean")

// skip reads any value and drops it.
func (d *scanner) skip() error { return d.skipDepth(0) }

func (d *scanner) skipDepth(depth int) error {
	if depth > maxDepth {
		return d.errorf("nested deeper than %d", maxDepth)
	}
	switch c := d.peek(); c {
	case '{':
		return d.object(func(string) error { return d.skipDepth(depth + 1) })
	case '[':
		return d.array(func(int) error { return d.skipDepth(depth + 1) })
	case '"':
		_, err := d.str()
		return err
	case 't', 'f':
		_, err := d.boolean()
		return err
	case 'n':
		if d.null() {
			return nil
		}
		return d.unexpected("a value")
	default:
		_, err := d.number()
		return err
	}
}
