// Package model holds what every part of Vivace agrees on about traces:
// the trace ID and helpers over OTLP traces.
package model

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// TraceID is a 16-byte trace ID. Shorter IDs (Zipkin/B3 64-bit, Jaeger with
// high=0) are left-padded with zeros.
type TraceID [16]byte

// ErrInvalidTraceID is wrapped by every trace ID parse error.
var ErrInvalidTraceID = errors.New("invalid trace ID")

// ParseTraceID parses 1 to 32 hex digits, left-padding shorter IDs with zeros.
func ParseTraceID(s string) (TraceID, error) {
	var id TraceID
	switch {
	case s == "":
		return id, fmt.Errorf("%w: empty", ErrInvalidTraceID)
	case len(s) > 32:
		return id, fmt.Errorf("%w: %q has %d characters, at most 32 hex digits are allowed", ErrInvalidTraceID, truncate(s), len(s))
	}
	for i := 0; i < len(s); i++ {
		if !isHex(s[i]) {
			return id, fmt.Errorf("%w: %q has %q at position %d, only hex digits are allowed", ErrInvalidTraceID, truncate(s), s[i], i+1)
		}
	}
	padded := strings.Repeat("0", 32-len(s)) + s
	if _, err := hex.Decode(id[:], []byte(padded)); err != nil {
		return id, fmt.Errorf("%w: %v", ErrInvalidTraceID, err)
	}
	if id.IsZero() {
		return id, fmt.Errorf("%w: all zeros", ErrInvalidTraceID)
	}
	return id, nil
}

// TraceIDFromBytes converts a wire trace ID of 1 to 16 bytes, left-padding it.
func TraceIDFromBytes(b []byte) (TraceID, error) {
	var id TraceID
	if len(b) == 0 || len(b) > 16 {
		return id, fmt.Errorf("%w: %d bytes, want 1 to 16", ErrInvalidTraceID, len(b))
	}
	copy(id[16-len(b):], b)
	if id.IsZero() {
		return id, fmt.Errorf("%w: all zeros", ErrInvalidTraceID)
	}
	return id, nil
}

// IsZero reports whether every byte of the ID is zero (the invalid ID).
func (id TraceID) IsZero() bool { return id == TraceID{} }

// String is the 32-digit lower-case hex form.
func (id TraceID) String() string { return hex.EncodeToString(id[:]) }

// Compare orders IDs as unsigned big-endian numbers, as blocks are sorted.
func (id TraceID) Compare(o TraceID) int { return bytes.Compare(id[:], o[:]) }

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
