package jaeger

import (
	"errors"
	"fmt"
)

// Errors of spans that cannot be stored. One such span refuses its whole
// request: Jaeger clients send a batch as one unit and resend (or drop) it
// as one unit, and a partial success cannot be told to any of them.
var (
	errZeroTraceID = errors.New("trace ID is zero")
	errZeroSpanID  = errors.New("span ID is zero")
)

// badRequest is a request refused as the sender's fault.
type badRequest struct {
	reason string // the metrics' reason label
	spans  int    // spans in the refused request, 0 when not decoded
	err    error
}

func (e *badRequest) Error() string { return e.err.Error() }
func (e *badRequest) Unwrap() error { return e.err }

func malformed(spans int, format string, args ...any) *badRequest {
	return &badRequest{reason: "malformed", spans: spans, err: fmt.Errorf(format, args...)}
}
