package opencensus

import (
	"context"
	"errors"
	"io"

	agenttracepb "github.com/census-instrumentation/opencensus-proto/gen-go/agent/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/vivace-dev/vivace/distributor/receiver"
)

// traceServiceDesc is the OpenCensus agent's TraceService
// (trace_service.proto) with handlers that take raw bytes.
var traceServiceDesc = grpc.ServiceDesc{
	ServiceName: "opencensus.proto.agent.trace.v1.TraceService",
	HandlerType: (*any)(nil),
	Streams: []grpc.StreamDesc{
		{
			StreamName:    "Config",
			Handler:       func(srv any, s grpc.ServerStream) error { return srv.(*Receiver).discard(s, "trace_config") },
			ServerStreams: true,
			ClientStreams: true,
		},
		{
			StreamName:    "Export",
			Handler:       func(srv any, s grpc.ServerStream) error { return srv.(*Receiver).export(s) },
			ServerStreams: true,
			ClientStreams: true,
		},
	},
	Metadata: "opencensus/proto/agent/trace/v1/trace_service.proto",
}

// metricsServiceDesc is the OpenCensus agent's MetricsService
// (metrics_service.proto), whose messages are discarded.
var metricsServiceDesc = grpc.ServiceDesc{
	ServiceName: "opencensus.proto.agent.metrics.v1.MetricsService",
	HandlerType: (*any)(nil),
	Streams: []grpc.StreamDesc{{
		StreamName:    "Export",
		Handler:       func(srv any, s grpc.ServerStream) error { return srv.(*Receiver).discard(s, "metrics") },
		ServerStreams: true,
		ClientStreams: true,
	}},
	Metadata: "opencensus/proto/agent/metrics/v1/metrics_service.proto",
}

// errStopping ends the streams open when the receiver stops.
var errStopping = status.Error(codes.Unavailable, "the OpenCensus receiver is stopping; reconnect")

// export serves one Export stream.
func (r *Receiver) export(s grpc.ServerStream) error {
	ctx := s.Context()
	tenant, err := receiver.TenantFromGRPC(ctx, r.multitenancy)
	if err != nil {
		r.refuse(&badRequest{reason: "tenant", err: err})
		return status.Error(codes.Unauthenticated, err.Error())
	}
	var st stream
	return r.serve(s, func(b []byte) error { return r.exportMessage(ctx, &st, tenant, b) })
}

// exportMessage decodes, translates and pushes one Export message. Its
// error, a gRPC status, ends the stream.
func (r *Receiver) exportMessage(ctx context.Context, st *stream, tenant string, b []byte) error {
	var msg agenttracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(b, &msg); err != nil {
		return r.refuseGRPC(malformed("invalid opencensus.proto.agent.trace.v1.ExportTraceServiceRequest: %v", err))
	}
	req, spans, err := st.next(&msg)
	if err != nil {
		return r.refuseGRPC(err.(*badRequest))
	}
	if spans > 0 {
		enc, err := proto.Marshal(req)
		if err != nil { // a translation bug, not the sender's fault
			r.m.Requests.WithLabelValues(protoGRPC, "error").Inc()
			r.logger.Error("encode OTLP", "tenant", tenant, "err", err)
			return status.Error(codes.Internal, "encode OTLP: "+err.Error())
		}
		if _, err := r.pusher.PushOTLP(ctx, tenant, enc); err != nil {
			if errors.Is(err, receiver.ErrBadInput) {
				return r.refuseGRPC(&badRequest{reason: "rejected", spans: spans, err: err})
			}
			// Unavailable, or ResourceExhausted for a tenant over a limit:
			// the exporter reconnects after its reconnection period.
			r.m.Requests.WithLabelValues(protoGRPC, receiver.Outcome(err)).Inc()
			receiver.LogPushFailure(r.logger, err, "tenant", tenant, "protocol", protoGRPC)
			return receiver.GRPCStatus(err)
		}
	}
	r.m.Requests.WithLabelValues(protoGRPC, "ok").Inc()
	return nil
}

// discard serves a stream whose messages Vivace does not use: it reads and
// counts them, sends nothing, and ends when the sender does.
func (r *Receiver) discard(s grpc.ServerStream, name string) error {
	c := r.m.discarded.WithLabelValues(name)
	return r.serve(s, func([]byte) error { c.Inc(); return nil })
}

// serve hands each message of s to handle until the sender ends the stream
// (nil), handle fails (its error) or the receiver stops (Unavailable, once
// the message in hand is handled). Messages are read by a goroutine of
// their own: a handler blocked reading a long-lived stream could not see
// the stop, and GracefulStop would wait for the sender to hang up.
func (r *Receiver) serve(s grpc.ServerStream, handle func([]byte) error) error {
	type received struct {
		b   []byte
		err error
	}
	in := make(chan received)
	done := make(chan struct{})
	defer close(done) // ends the stream, which ends a RecvMsg in progress
	go func() {
		for {
			var m receiver.RawRequest
			err := s.RecvMsg(&m)
			select {
			case in <- received{m.B, err}:
			case <-done:
				return
			}
			if err != nil {
				return
			}
		}
	}()
	for {
		select {
		case <-r.quit:
			return errStopping
		case m := <-in:
			switch {
			case m.err == io.EOF:
				return nil
			case m.err != nil:
				if status.Code(m.err) == codes.ResourceExhausted {
					r.refuse(&badRequest{reason: "too_large", err: m.err})
				}
				return m.err
			}
			if err := handle(m.b); err != nil {
				return err
			}
		}
	}
}

func (r *Receiver) refuseGRPC(br *badRequest) error {
	r.refuse(br)
	r.logger.Debug("refused message", "protocol", protoGRPC, "reason", br.reason, "err", br.err)
	return status.Error(codes.InvalidArgument, br.Error())
}

// refuse counts a message refused as the sender's fault.
func (r *Receiver) refuse(br *badRequest) {
	r.m.Refused.WithLabelValues(protoGRPC, br.reason).Inc()
	if br.spans > 0 {
		r.m.RefusedSpans.WithLabelValues(br.reason).Add(float64(br.spans))
	}
}
