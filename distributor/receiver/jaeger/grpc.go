package jaeger

import (
	"context"
	"errors"
	"fmt"

	"github.com/jaegertracing/jaeger-idl/proto-gen/api_v2"
	"github.com/vivace-dev/vivace/distributor/receiver"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
)

// rawRequest is a request kept as the bytes received, so that the handler
// decodes it and can answer InvalidArgument (gRPC answers a codec error
// with Internal).
type rawRequest struct{ b []byte }

// rawCodec hands rawRequest the undecoded message and encodes replies with
// their own (gogo-generated) Marshal method: jaeger-idl's api_v2 types are
// gogo protobuf, which google.golang.org/protobuf cannot encode. It
// replaces the "proto" codec on the Jaeger gRPC server only.
type rawCodec struct{}

func (rawCodec) Name() string { return "proto" }

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	m, ok := v.(interface{ Marshal() ([]byte, error) })
	if !ok {
		return nil, fmt.Errorf("cannot encode %T", v)
	}
	b, err := m.Marshal()
	return mem.BufferSlice{mem.SliceBuffer(b)}, err
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	switch v := v.(type) {
	case *rawRequest:
		v.b = data.Materialize()
		return nil
	case interface{ Unmarshal([]byte) error }:
		return v.Unmarshal(data.Materialize())
	}
	return fmt.Errorf("cannot decode into %T", v)
}

var _ encoding.CodecV2 = rawCodec{}

// collectorServiceDesc is Jaeger's CollectorService (collector.proto) with a
// handler that takes raw bytes.
var collectorServiceDesc = grpc.ServiceDesc{
	ServiceName: "jaeger.api_v2.CollectorService",
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "PostSpans",
		Handler: func(srv any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			var req rawRequest
			if err := dec(&req); err != nil {
				return nil, err
			}
			return srv.(*Receiver).postSpans(ctx, req.b)
		},
	}},
	Metadata: "collector.proto",
}

func (r *Receiver) postSpans(ctx context.Context, body []byte) (*api_v2.PostSpansResponse, error) {
	tenant, err := receiver.TenantFromGRPC(ctx, r.multitenancy)
	if err != nil {
		r.refuse(protoGRPC, &badRequest{reason: "tenant", err: err})
		return nil, status.Error(codes.Unauthenticated, err.Error())
	}
	batch, err := decodePostSpans(body)
	if err != nil {
		return nil, r.refuseGRPC(err.(*badRequest))
	}
	otlp, spans, err := protoToOTLP(batch)
	if err != nil {
		return nil, r.refuseGRPC(err.(*badRequest))
	}
	if err := r.pushOTLP(ctx, protoGRPC, tenant, otlp, spans); err != nil {
		var br *badRequest
		if errors.As(err, &br) {
			return nil, r.refuseGRPC(br)
		}
		r.logger.Error("push failed", "tenant", tenant, "protocol", protoGRPC, "err", err)
		return nil, status.Error(codes.Unavailable, err.Error())
	}
	return &api_v2.PostSpansResponse{}, nil
}

func (r *Receiver) refuseGRPC(br *badRequest) error {
	r.refuse(protoGRPC, br)
	return status.Error(codes.InvalidArgument, br.Error())
}
