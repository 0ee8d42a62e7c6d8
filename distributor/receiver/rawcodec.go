package receiver

import (
	"fmt"

	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
)

// RawRequest is a gRPC request kept as the bytes received: the handler
// decodes (or, for OTLP, routes) it itself, and can answer InvalidArgument
// for bad bytes, where a codec error would become Internal.
type RawRequest struct{ B []byte }

// RawCodec is a receiver's gRPC server codec (grpc.ForceServerCodecV2): it
// hands RawRequest the undecoded message and encodes replies that are
// google.golang.org/protobuf messages or gogo-generated ones (jaeger-idl's,
// which have their own Marshal method).
type RawCodec struct{}

var _ encoding.CodecV2 = RawCodec{}

// Name is "proto": clients need not know the server decodes differently.
func (RawCodec) Name() string { return "proto" }

// Marshal encodes a reply.
func (RawCodec) Marshal(v any) (mem.BufferSlice, error) {
	var b []byte
	var err error
	switch m := v.(type) {
	case proto.Message:
		b, err = proto.Marshal(m)
	case interface{ Marshal() ([]byte, error) }:
		b, err = m.Marshal()
	default:
		return nil, fmt.Errorf("cannot encode %T", v)
	}
	return mem.BufferSlice{mem.SliceBuffer(b)}, err
}

// Unmarshal keeps the bytes for a RawRequest, and decodes anything else.
func (RawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	switch v := v.(type) {
	case *RawRequest:
		v.B = data.Materialize()
		return nil
	case proto.Message:
		return proto.Unmarshal(data.Materialize(), v)
	case interface{ Unmarshal([]byte) error }:
		return v.Unmarshal(data.Materialize())
	}
	return fmt.Errorf("cannot decode into %T", v)
}
