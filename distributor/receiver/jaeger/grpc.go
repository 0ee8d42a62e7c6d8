package jaeger

import (
	"context"
	"errors"

	"github.com/jaegertracing/jaeger-idl/proto-gen/api_v2"
	"github.com/vivace-dev/vivace/distributor/receiver"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// collectorServiceDesc is Jaeger's CollectorService (collector.proto) with a
// handler that takes raw bytes.
var collectorServiceDesc = grpc.ServiceDesc{
	ServiceName: "jaeger.api_v2.CollectorService",
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "PostSpans",
		Handler: func(srv any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			var req receiver.RawRequest
			if err := dec(&req); err != nil {
				return nil, err
			}
			return srv.(*Receiver).postSpans(ctx, req.B)
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
		receiver.LogPushFailure(r.logger, err, "tenant", tenant, "protocol", protoGRPC)
		return nil, receiver.GRPCStatus(err)
	}
	return &api_v2.PostSpansResponse{}, nil
}

func (r *Receiver) refuseGRPC(br *badRequest) error {
	r.refuse(protoGRPC, br)
	return status.Error(codes.InvalidArgument, br.Error())
}
