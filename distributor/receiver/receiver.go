// Package receiver holds what every wire-format receiver shares: the one
// method it pushes through and the error that marks the client's fault.
package receiver

import (
	"context"
	"errors"
)

// ErrBadInput is wrapped by Pusher errors that are the sender's fault
// (answered 400 / InvalidArgument); any other error is the server's.
var ErrBadInput = errors.New("bad input")

// Pusher takes an encoded OTLP ExportTraceServiceRequest for a tenant and
// returns once it is durable on a quorum of ingesters.
type Pusher interface {
	PushOTLP(ctx context.Context, tenant string, req []byte) (spans int, err error)
}
