package modeltest

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
	commonv1 "go.opentelemetry.io/proto/otlp/common/v1"
	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/vivace-dev/vivace/internal/model"
)

func TestTraceDeterministic(t *testing.T) {
	id := model.TraceID{1, 2, 3}
	a := Trace(rand.New(rand.NewPCG(1, 2)), id, 40)
	b := Trace(rand.New(rand.NewPCG(1, 2)), id, 40)
	require.True(t, proto.Equal(a, b))
	c := Trace(rand.New(rand.NewPCG(1, 3)), id, 40)
	require.False(t, proto.Equal(a, c))
}

func TestTraceShape(t *testing.T) {
	tests := []struct {
		name  string
		spans int
	}{
		{"one span", 1},
		{"small", 5},
		{"typical", 20},
		{"large", 1200},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(i), 9))
			id := IDs(rng, 1)[0]
			td := Trace(rng, id, tt.spans)
			require.NotEmpty(t, td.ResourceSpans)
			require.LessOrEqual(t, len(td.ResourceSpans), 3)

			spanIDs := map[string]bool{}
			var spans []*tracev1.Span
			seenPairs := map[string]bool{}
			for _, rs := range td.ResourceSpans {
				require.Equal(t, schemaURL, rs.SchemaUrl)
				n := len(rs.Resource.Attributes)
				require.True(t, n >= 15 && n <= 19, "%d resource attributes", n)
				require.Equal(t, "service.name", rs.Resource.Attributes[0].Key)
				for _, ss := range rs.ScopeSpans {
					require.NotEmpty(t, ss.Spans)
					require.NotEmpty(t, ss.Scope.Name)
					require.NotEmpty(t, ss.Scope.Version)
					pair := string(mustMarshal(t, rs.Resource)) + "|" + string(mustMarshal(t, ss.Scope))
					require.False(t, seenPairs[pair], "a (resource, scope) pair appears twice")
					seenPairs[pair] = true
					for _, s := range ss.Spans {
						require.Equal(t, id[:], s.TraceId)
						require.Len(t, s.SpanId, 8)
						require.False(t, spanIDs[string(s.SpanId)], "duplicate span ID")
						spanIDs[string(s.SpanId)] = true
						require.GreaterOrEqual(t, s.EndTimeUnixNano, s.StartTimeUnixNano)
						require.True(t, len(s.Attributes) >= 5 && len(s.Attributes) <= 15, "%d attributes", len(s.Attributes))
						spans = append(spans, s)
					}
				}
			}
			require.Len(t, spans, tt.spans)

			// The spans form one tree.
			roots := 0
			for _, s := range spans {
				if len(s.ParentSpanId) == 0 {
					roots++
					continue
				}
				require.True(t, spanIDs[string(s.ParentSpanId)], "parent of %x missing", s.SpanId)
			}
			require.Equal(t, 1, roots)
		})
	}
}

// TestTraceCoversOTLP: a large trace holds every value type and every
// optional part of a span.
func TestTraceCoversOTLP(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 4))
	td := Trace(rng, IDs(rng, 1)[0], 300)
	kinds := map[string]bool{}
	var visit func(v *commonv1.AnyValue, depth int)
	visit = func(v *commonv1.AnyValue, depth int) {
		switch x := v.GetValue().(type) {
		case *commonv1.AnyValue_StringValue:
			kinds["string"] = true
		case *commonv1.AnyValue_BoolValue:
			kinds["bool"] = true
		case *commonv1.AnyValue_IntValue:
			kinds["int"] = true
		case *commonv1.AnyValue_DoubleValue:
			kinds["double"] = true
		case *commonv1.AnyValue_BytesValue:
			kinds["bytes"] = true
		case *commonv1.AnyValue_ArrayValue:
			kinds["array"] = true
			if depth > 0 {
				kinds["nested"] = true
			}
			for _, e := range x.ArrayValue.Values {
				visit(e, depth+1)
			}
		case *commonv1.AnyValue_KvlistValue:
			kinds["kvlist"] = true
			if depth > 0 {
				kinds["nested"] = true
			}
			for _, kv := range x.KvlistValue.Values {
				visit(kv.Value, depth+1)
			}
		case nil:
			kinds["empty"] = true
		}
	}
	parts := map[string]bool{}
	for _, rs := range td.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			if len(ss.Scope.Attributes) > 0 {
				parts["scope attributes"] = true
			}
			for _, s := range ss.Spans {
				for _, kv := range s.Attributes {
					visit(kv.Value, 0)
				}
				parts["kind "+s.Kind.String()] = true
				if s.Status.GetCode() == tracev1.Status_STATUS_CODE_ERROR && s.Status.Message != "" {
					parts["error with message"] = true
				}
				if len(s.Events) > 0 && len(s.Events[0].Attributes) > 0 {
					parts["event attributes"] = true
				}
				for _, l := range s.Links {
					if l.TraceState != "" && len(l.Attributes) > 0 && len(l.TraceId) == 16 {
						parts["link"] = true
					}
				}
				if s.DroppedAttributesCount > 0 || s.DroppedEventsCount > 0 || s.DroppedLinksCount > 0 {
					parts["dropped counts"] = true
				}
				if s.TraceState != "" {
					parts["trace state"] = true
				}
				if s.Flags != 0 {
					parts["flags"] = true
				}
			}
		}
	}
	for _, k := range []string{"string", "bool", "int", "double", "bytes", "array", "kvlist", "nested", "empty"} {
		require.True(t, kinds[k], "no %s value", k)
	}
	for _, p := range []string{"scope attributes", "error with message", "event attributes", "link", "dropped counts", "trace state", "flags",
		"kind SPAN_KIND_SERVER", "kind SPAN_KIND_CLIENT", "kind SPAN_KIND_INTERNAL"} {
		require.True(t, parts[p], "no %s", p)
	}
}

func TestTraces(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	ids, traces := Traces(rng, 500, 20)
	require.Len(t, ids, 500)
	require.Len(t, traces, 500)
	require.True(t, slices.IsSortedFunc(ids, model.TraceID.Compare))
	total := 0
	for i, td := range traces {
		for _, rs := range td.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					require.Equal(t, ids[i][:], s.TraceId)
					total++
				}
			}
		}
	}
	mean := float64(total) / 500
	require.InDelta(t, 20, mean, 3, "mean spans per trace")
	for i := 1; i < len(ids); i++ {
		require.NotEqual(t, ids[i-1], ids[i])
	}
}

func mustMarshal(t *testing.T, m proto.Message) []byte {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	require.NoError(t, err)
	return b
}
