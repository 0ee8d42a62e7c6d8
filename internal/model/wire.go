package model

import (
	"errors"
	"fmt"
	"io"
	"unicode/utf8"

	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Checking an encoded TracesData without decoding it: span bytes travel from
// the receiver to the WAL and into blocks as they were received, and a reader
// decodes them with proto.Unmarshal, so what is accepted must be exactly the
// encodings proto.Unmarshal accepts. wireSchema.check repeats the checks of
// google.golang.org/protobuf's decoder (internal/impl/decode.go,
// unmarshalPointerEager) without building any message.

// CheckTracesData returns an error wrapping ErrMalformed exactly when
// proto.Unmarshal would fail to decode b as an OTLP TracesData (or
// ExportTraceServiceRequest, the same wire form).
func CheckTracesData(b []byte) error {
	if err := tracesDataSchema.check(b, protowire.DefaultRecursionLimit); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return nil
}

// wireSchema is what the decoder checks of one message type.
type wireSchema struct {
	fields []wireField // by field number; numbers past the end are unknown fields
}

// wireField is one known field of a wireSchema. A record of a known number
// with another wire type is an unknown field to the decoder.
type wireField struct {
	known  bool
	typ    protowire.Type // the wire type the field decodes from
	utf8   bool           // a proto3 string: invalid UTF-8 fails the decode
	msg    *wireSchema    // a message field, checked recursively
	packed bool           // a repeated scalar: also decodes from one BytesType record of packed values
}

// tracesDataSchema is the wire schema of OTLP's TracesData, from the
// descriptors compiled into the generated code.
var tracesDataSchema = newWireSchema((&tracev1.TracesData{}).ProtoReflect().Descriptor(), map[protoreflect.FullName]*wireSchema{})

func newWireSchema(md protoreflect.MessageDescriptor, seen map[protoreflect.FullName]*wireSchema) *wireSchema {
	if s := seen[md.FullName()]; s != nil {
		return s // recursive types: AnyValue, ArrayValue, KeyValueList, KeyValue
	}
	s := &wireSchema{}
	seen[md.FullName()] = s
	fds := md.Fields()
	maxNum := protowire.Number(0)
	for i := 0; i < fds.Len(); i++ {
		maxNum = max(maxNum, fds.Get(i).Number())
	}
	s.fields = make([]wireField, maxNum+1)
	for i := 0; i < fds.Len(); i++ {
		fd := fds.Get(i)
		f := wireField{known: true}
		switch fd.Kind() {
		case protoreflect.BoolKind, protoreflect.EnumKind,
			protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Uint32Kind,
			protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Uint64Kind:
			f.typ = protowire.VarintType
		case protoreflect.Fixed32Kind, protoreflect.Sfixed32Kind, protoreflect.FloatKind:
			f.typ = protowire.Fixed32Type
		case protoreflect.Fixed64Kind, protoreflect.Sfixed64Kind, protoreflect.DoubleKind:
			f.typ = protowire.Fixed64Type
		case protoreflect.StringKind:
			// OTLP is proto3, whose strings must be valid UTF-8.
			f.typ, f.utf8 = protowire.BytesType, true
		case protoreflect.BytesKind:
			f.typ = protowire.BytesType
		case protoreflect.MessageKind:
			f.typ, f.msg = protowire.BytesType, newWireSchema(fd.Message(), seen)
		default:
			// Groups: OTLP has none (TestWireSchemaCoversOTLP); their
			// records are only checked to be well formed.
			f.known = false
		}
		f.packed = fd.IsList() && (f.typ == protowire.VarintType || f.typ == protowire.Fixed32Type || f.typ == protowire.Fixed64Type)
		s.fields[fd.Number()] = f
	}
	return s
}

var errNestingDepth = errors.New("messages nested too deeply")

// check returns an error if proto.Unmarshal would fail to decode b as this
// message type when nested depth levels from the recursion limit (start
// with protowire.DefaultRecursionLimit for the outermost message). Errors do
// not wrap one another level by level: a deep message would make them huge.
func (s *wireSchema) check(b []byte, depth int) error {
	if depth--; depth < 0 {
		return errNestingDepth
	}
	for len(b) > 0 {
		// The decoder reads the tag as a varint and rejects numbers outside
		// [1, MaxValidNumber]; protowire.ConsumeTag would let numbers up to
		// 2^31-1 through. Every OTLP field's tag is one byte.
		tag, n := uint64(b[0]), 1
		if tag >= 0x80 {
			if tag, n = protowire.ConsumeVarint(b); n < 0 {
				return fmt.Errorf("tag: %w", protowire.ParseError(n))
			}
		}
		b = b[n:]
		num, typ := tag>>3, protowire.Type(tag&7)
		if num < uint64(protowire.MinValidNumber) || num > uint64(protowire.MaxValidNumber) {
			return fmt.Errorf("invalid field number %d", num)
		}
		var f *wireField
		if num < uint64(len(s.fields)) && s.fields[num].known {
			f = &s.fields[num]
		}
		switch {
		case f != nil && typ == f.typ && typ == protowire.BytesType:
			v, m, err := consumeBytes(b)
			if err != nil {
				return fmt.Errorf("field %d: %w", num, err)
			}
			if f.utf8 && !utf8.Valid(v) {
				return fmt.Errorf("field %d: invalid UTF-8", num)
			}
			if f.msg != nil {
				if err := f.msg.check(v, depth); err != nil {
					return err
				}
			}
			n = m
		case f != nil && typ == f.typ && typ == protowire.VarintType && len(b) > 0 && b[0] < 0x80:
			n = 1 // the common small varint; longer ones take the default path
		case f != nil && f.packed && typ == protowire.BytesType:
			v, m, err := consumeBytes(b)
			if err != nil {
				return fmt.Errorf("field %d: %w", num, err)
			}
			for len(v) > 0 {
				k := protowire.ConsumeFieldValue(protowire.Number(num), f.typ, v)
				if k < 0 {
					return fmt.Errorf("field %d: packed: %w", num, protowire.ParseError(k))
				}
				v = v[k:]
			}
			n = m
		default:
			// Other scalars of the expected wire type and unknown fields
			// (groups included, and end-group tags, which fail here).
			n = protowire.ConsumeFieldValue(protowire.Number(num), typ, b)
			if n < 0 {
				return fmt.Errorf("field %d: %w", num, protowire.ParseError(n))
			}
		}
		b = b[n:]
	}
	return nil
}

// consumeBytes is protowire.ConsumeBytes with the one-byte length, the
// common case, read inline.
func consumeBytes(b []byte) (v []byte, n int, err error) {
	l, m := uint64(0), 1
	if len(b) > 0 && b[0] < 0x80 {
		l = uint64(b[0])
	} else if l, m = protowire.ConsumeVarint(b); m < 0 {
		return nil, 0, protowire.ParseError(m)
	}
	if l > uint64(len(b)-m) {
		return nil, 0, io.ErrUnexpectedEOF
	}
	return b[m : m+int(l)], m + int(l), nil
}
