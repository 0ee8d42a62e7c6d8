package model

import (
	"testing"

	"github.com/stretchr/testify/require"
	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// TestWireSchemaCoversOTLP: the wire schema knows every field of every OTLP
// message a TracesData holds, and check agrees with proto.Unmarshal on them.
func TestWireSchemaCoversOTLP(t *testing.T) {
	seen := map[protoreflect.FullName]bool{}
	var walk func(md protoreflect.MessageDescriptor, s *wireSchema)
	walk = func(md protoreflect.MessageDescriptor, s *wireSchema) {
		if seen[md.FullName()] {
			return
		}
		seen[md.FullName()] = true
		fds := md.Fields()
		for i := 0; i < fds.Len(); i++ {
			fd := fds.Get(i)
			require.NotEqual(t, protoreflect.GroupKind, fd.Kind(), "%s: groups are not checked", fd.FullName())
			require.False(t, fd.IsMap(), "%s", fd.FullName())
			f := s.fields[fd.Number()]
			require.True(t, f.known, "%s", fd.FullName())
			require.Equal(t, fd.Kind() == protoreflect.StringKind, f.utf8, "%s", fd.FullName())
			if fd.Message() != nil {
				walk(fd.Message(), f.msg)
			}
		}
	}
	walk((&tracev1.TracesData{}).ProtoReflect().Descriptor(), tracesDataSchema)
	require.Len(t, seen, 14)
}
