package model

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
)

// TraceIDForm is a way of writing a trace ID that lookups accept.
type TraceIDForm uint8

// The forms ReadTraceID reads.
const (
	// FormHex is 1 to 32 hex digits of either case, left-padded with zeros.
	FormHex TraceIDForm = iota + 1
	// FormDecimal is an unsigned 64-bit number in decimal, as Datadog tracers
	// and the logs of proxies that use them write trace IDs.
	FormDecimal
	// FormUUID is 32 hex digits in groups of 8-4-4-4-12.
	FormUUID
	// FormTraceparent is a W3C traceparent value, version-traceid-parentid-flags.
	FormTraceparent
)

func (f TraceIDForm) String() string {
	switch f {
	case FormHex:
		return "hex"
	case FormDecimal:
		return "decimal"
	case FormUUID:
		return "UUID"
	case FormTraceparent:
		return "traceparent"
	}
	return "form(" + strconv.Itoa(int(f)) + ")"
}

// TraceIDReading is one way to read a pasted trace ID.
type TraceIDReading struct {
	ID   TraceID
	Form TraceIDForm
}

// MaxPastedTraceID is the longest input ReadTraceID reads, in bytes: a
// traceparent has 55 characters, and later versions may append fields.
const MaxPastedTraceID = 128

// ReadTraceID reads a trace ID in any form users paste: 1 to 32 hex digits
// (left-padded), a decimal 64-bit ID, a UUID with dashes, or a traceparent
// value. Surrounding white space is ignored. A string of decimal digits is
// also valid hex: it has both readings, the hex one first (they coincide for
// 1 to 9). Every other input has exactly one reading. Errors wrap
// ErrInvalidTraceID and say what is wrong where.
func ReadTraceID(s string) ([]TraceIDReading, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return nil, fmt.Errorf("%w: empty", ErrInvalidTraceID)
	case len(s) > MaxPastedTraceID:
		return nil, fmt.Errorf("%w: %q has %d characters, at most %d are allowed", ErrInvalidTraceID, truncate(s), len(s), MaxPastedTraceID)
	case strings.Contains(s, "-"):
		r, err := readDashed(s)
		if err != nil {
			return nil, err
		}
		return []TraceIDReading{r}, nil
	}
	// Without dashes only hex digits are allowed (decimal digits are hex
	// digits too), so ParseTraceID's errors say it precisely.
	var out []TraceIDReading
	id, hexErr := ParseTraceID(s)
	if hexErr == nil {
		out = append(out, TraceIDReading{id, FormHex})
	}
	if n, err := strconv.ParseUint(s, 10, 64); err == nil && n != 0 {
		var dec TraceID
		binary.BigEndian.PutUint64(dec[8:], n)
		if hexErr != nil || dec != id {
			out = append(out, TraceIDReading{dec, FormDecimal})
		}
	}
	if len(out) == 0 {
		return nil, hexErr
	}
	return out, nil
}

// Shapes of the dashed forms, for error messages.
const (
	uuidShape        = "8-4-4-4-12 hex digits"
	traceparentShape = "00-<32 hex digits>-<16 hex digits>-<2 hex digits>"
)

// readDashed reads a UUID or a traceparent.
func readDashed(s string) (TraceIDReading, error) {
	parts := strings.Split(s, "-")
	switch {
	case len(parts) == 5 && len(parts[0]) == 8:
		return readUUID(s, parts)
	case len(parts) >= 4 && len(parts[0]) == 2:
		return readTraceparent(s, parts)
	}
	return TraceIDReading{}, fmt.Errorf("%w: %q has dashes but is neither a UUID (%s) nor a traceparent (%s)",
		ErrInvalidTraceID, truncate(s), uuidShape, traceparentShape)
}

func readUUID(s string, parts []string) (TraceIDReading, error) {
	lens := make([]string, len(parts))
	for i, p := range parts {
		lens[i] = strconv.Itoa(len(p))
	}
	if got := strings.Join(lens, "-"); got != "8-4-4-4-12" {
		return TraceIDReading{}, fmt.Errorf("%w: %q is not a UUID: its groups have %s characters, want %s", ErrInvalidTraceID, truncate(s), got, uuidShape)
	}
	if i := firstNonHex(s, true); i >= 0 {
		return TraceIDReading{}, fmt.Errorf("%w: %q is not a UUID: %q at position %d is not a hex digit", ErrInvalidTraceID, truncate(s), s[i], i+1)
	}
	return decodeDashed(s, strings.Join(parts, ""), FormUUID)
}

// readTraceparent reads the trace-id field of a W3C traceparent
// (https://www.w3.org/TR/trace-context/#traceparent-header). It is lenient
// about what a lookup does not need (case, the values of parent-id and
// flags) and strict about the shape.
func readTraceparent(s string, parts []string) (TraceIDReading, error) {
	fail := func(format string, args ...any) (TraceIDReading, error) {
		return TraceIDReading{}, fmt.Errorf("%w: %q is not a traceparent (%s): %s", ErrInvalidTraceID, truncate(s), traceparentShape, fmt.Sprintf(format, args...))
	}
	version := strings.ToLower(parts[0])
	switch {
	case firstNonHex(version, false) >= 0:
		return fail("version %q is not 2 hex digits", parts[0])
	case version == "ff":
		return fail("version ff is invalid")
	case version == "00" && len(parts) != 4:
		return fail("version 00 has 4 fields, this has %d", len(parts))
	}
	for i, f := range []struct {
		name string
		len  int
	}{{"trace-id", 32}, {"parent-id", 16}, {"trace-flags", 2}} {
		p := parts[i+1]
		if len(p) != f.len || firstNonHex(p, false) >= 0 {
			return fail("%s %q is not %d hex digits", f.name, truncate(p), f.len)
		}
	}
	return decodeDashed(s, parts[1], FormTraceparent)
}

func decodeDashed(s, hexID string, form TraceIDForm) (TraceIDReading, error) {
	var id TraceID
	if _, err := hex.Decode(id[:], []byte(hexID)); err != nil {
		return TraceIDReading{}, fmt.Errorf("%w: %q: %v", ErrInvalidTraceID, truncate(s), err)
	}
	if id.IsZero() {
		return TraceIDReading{}, fmt.Errorf("%w: %q: the trace ID is all zeros", ErrInvalidTraceID, truncate(s))
	}
	return TraceIDReading{id, form}, nil
}

// firstNonHex is the index of the first byte of s that is not a hex digit
// (nor, with dashes, a '-'), or -1.
func firstNonHex(s string, dashes bool) int {
	for i := 0; i < len(s); i++ {
		if !isHex(s[i]) && !(dashes && s[i] == '-') {
			return i
		}
	}
	return -1
}

// Is64Bit reports whether the upper 8 bytes of the ID are zero: the whole ID
// of a 64-bit tracer (Zipkin/B3, Jaeger with high=0, Datadog), or the low
// half of a 128-bit ID that such a tracer or its logs kept.
func (id TraceID) Is64Bit() bool { return binary.BigEndian.Uint64(id[:8]) == 0 }

// Low64 is the low 64 bits of the ID.
func (id TraceID) Low64() uint64 { return binary.BigEndian.Uint64(id[8:]) }
