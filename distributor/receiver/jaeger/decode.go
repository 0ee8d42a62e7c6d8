package jaeger

import (
	"bytes"
	"context"
	"math"

	"github.com/apache/thrift/lib/go/thrift"
	model "github.com/jaegertracing/jaeger-idl/model/v1"
	"github.com/jaegertracing/jaeger-idl/proto-gen/api_v2"
	"github.com/jaegertracing/jaeger-idl/thrift-gen/agent"
	"github.com/jaegertracing/jaeger-idl/thrift-gen/jaeger"
)

// emitBatch is the Agent service's one method that carries spans.
const emitBatch = "emitBatch"

// thriftProtocol reads b. Its size limit is b's length, so no length or
// element count in b can make the decoder allocate much more than b.
func thriftProtocol(b []byte, compact bool) thrift.TProtocol {
	tr := &thrift.TMemoryBuffer{Buffer: bytes.NewBuffer(b)}
	cfg := &thrift.TConfiguration{MaxMessageSize: int32(min(max(len(b), 1), math.MaxInt32))}
	if compact {
		return thrift.NewTCompactProtocolConf(tr, cfg)
	}
	return thrift.NewTBinaryProtocolConf(tr, cfg)
}

// decodeThriftBatch decodes a thrift-binary jaeger.Batch (an HTTP body).
func decodeThriftBatch(b []byte) (*jaeger.Batch, error) {
	batch := jaeger.NewBatch()
	if err := batch.Read(context.Background(), thriftProtocol(b, false)); err != nil {
		return nil, malformed(0, "invalid thrift-binary jaeger.Batch: %v", err)
	}
	return batch, nil
}

// decodeEmitBatch decodes a UDP datagram: one Agent.emitBatch call
// (agent.thrift), in thrift compact or binary protocol.
func decodeEmitBatch(b []byte, compact bool) (*jaeger.Batch, error) {
	ctx := context.Background()
	p := thriftProtocol(b, compact)
	name, typ, _, err := p.ReadMessageBegin(ctx)
	switch {
	case err != nil:
		return nil, malformed(0, "invalid thrift message: %v", err)
	case name != emitBatch:
		return nil, malformed(0, "thrift method %q is not supported: only %s is", truncate(name), emitBatch)
	case typ != thrift.ONEWAY && typ != thrift.CALL:
		return nil, malformed(0, "thrift message type %d is not a call", typ)
	}
	args := agent.NewAgentEmitBatchArgs()
	if err := args.Read(ctx, p); err != nil {
		return nil, malformed(0, "invalid emitBatch arguments: %v", err)
	}
	if err := p.ReadMessageEnd(ctx); err != nil {
		return nil, malformed(0, "invalid thrift message end: %v", err)
	}
	if args.Batch == nil {
		return nil, malformed(0, "emitBatch without a batch")
	}
	return args.Batch, nil
}

// decodePostSpans decodes a gRPC jaeger.api_v2.PostSpansRequest.
func decodePostSpans(b []byte) (*model.Batch, error) {
	var req api_v2.PostSpansRequest
	if err := req.Unmarshal(b); err != nil {
		return nil, malformed(0, "invalid jaeger.api_v2.PostSpansRequest: %v", err)
	}
	return &req.Batch, nil
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
