package opencensus

import (
	"errors"
	"fmt"
)

// Errors of messages that cannot be stored. One such span refuses its whole
// message, as the Jaeger receiver does: the stream has no way to tell the
// sender which spans of a message were kept.
var (
	errNoNode      = errors.New("protocol violation: the first Export message of a stream must have a Node")
	errZeroTraceID = errors.New("trace_id is empty or zero")
	errZeroSpanID  = errors.New("span_id is empty or zero")
)

// badRequest is a message refused as the sender's fault. It ends the
// stream with InvalidArgument (the Export response has no room for an
// error); the sender reconnects and the server keeps serving.
type badRequest struct {
	reason string // the metrics' reason label
	spans  int    // spans in the refused message, 0 when not decoded
	err    error
}

func (e *badRequest) Error() string { return e.err.Error() }
func (e *badRequest) Unwrap() error { return e.err }

func malformed(format string, args ...any) *badRequest {
	return &badRequest{reason: "malformed", err: fmt.Errorf(format, args...)}
}
