// Package receiver holds what every wire-format receiver shares: the one
// method it pushes through, the errors that mark the client's fault or a
// tenant over a limit, and how each becomes an HTTP or gRPC status.
package receiver

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

// ErrBadInput is wrapped by Pusher errors that are the sender's fault
// (answered 400 / InvalidArgument); any other error is the server's.
var ErrBadInput = errors.New("bad input")

// LimitError is a Pusher error refusing spans because their tenant is over
// one of its limits: answered 429 with a Retry-After header, or gRPC
// ResourceExhausted with a RetryInfo detail. Its message names the limit
// and the tenant.
type LimitError struct {
	// Reason is the reason label of vivace_discarded_spans_total:
	// rate_limited, live_traces_exceeded or trace_too_large.
	Reason string
	Msg    string
	// RetryAfter is when a retry may succeed; at least a second is advised.
	RetryAfter time.Duration
}

func (e *LimitError) Error() string { return e.Msg }

// Pusher takes an encoded OTLP ExportTraceServiceRequest for a tenant and
// returns once it is durable on a quorum of ingesters. It keeps no reference
// to req once it returns, so a receiver may reuse req's memory.
type Pusher interface {
	PushOTLP(ctx context.Context, tenant string, req []byte) (spans int, err error)
}

// Outcome is the outcome label of the requests metric for a push that
// failed other than as bad input: "limited" (a *LimitError) or "error".
func Outcome(err error) string {
	if isLimit(err) {
		return "limited"
	}
	return "error"
}

// LogPushFailure logs a push that failed other than as bad input: at debug
// level for a tenant over a limit (the client is told, and retries), at
// error level for a failure of the server.
func LogPushFailure(logger *slog.Logger, err error, args ...any) {
	if isLimit(err) {
		logger.Debug("push refused: tenant over a limit", append(args, "err", err)...)
		return
	}
	logger.Error("push failed", append(args, "err", err)...)
}

// HTTPStatus is the status code answering a failed push: 400 for bad
// input, 429 for a tenant over a limit, 503 for a failure of the server.
func HTTPStatus(err error) int {
	switch {
	case errors.Is(err, ErrBadInput):
		return http.StatusBadRequest
	case isLimit(err):
		return http.StatusTooManyRequests
	}
	return http.StatusServiceUnavailable
}

// GRPCCode is the gRPC code answering a failed push: InvalidArgument,
// ResourceExhausted or Unavailable, as HTTPStatus.
func GRPCCode(err error) codes.Code {
	switch {
	case errors.Is(err, ErrBadInput):
		return codes.InvalidArgument
	case isLimit(err):
		return codes.ResourceExhausted
	}
	return codes.Unavailable
}

// GRPCStatus is the gRPC error answering a failed push, with a RetryInfo
// detail when the tenant is over a limit.
func GRPCStatus(err error) error {
	st := status.New(GRPCCode(err), err.Error())
	if d := retryAfter(err); d > 0 {
		if withInfo, e := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(d)}); e == nil {
			st = withInfo
		}
	}
	return st.Err()
}

// SetRetryAfter sets the Retry-After header, in whole seconds, when err is
// a tenant over a limit.
func SetRetryAfter(h http.Header, err error) {
	if d := retryAfter(err); d > 0 {
		h.Set("Retry-After", strconv.Itoa(int((d+time.Second-1)/time.Second)))
	}
}

// WriteHTTPError answers a failed push in plain text, with the status of
// HTTPStatus and a Retry-After header when the tenant is over a limit.
func WriteHTTPError(w http.ResponseWriter, err error) {
	SetRetryAfter(w.Header(), err)
	http.Error(w, err.Error(), HTTPStatus(err))
}

func isLimit(err error) bool {
	_, ok := errors.AsType[*LimitError](err)
	return ok
}

// retryAfter is the retry hint of a limit error, at least a second; 0 for
// any other error.
func retryAfter(err error) time.Duration {
	le, ok := errors.AsType[*LimitError](err)
	if !ok {
		return 0
	}
	return max(le.RetryAfter, time.Second)
}
