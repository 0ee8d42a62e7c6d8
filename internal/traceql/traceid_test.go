package traceql_test

import (
	"testing"

	"github.com/stretchr/testify/require"
	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/vivace-dev/vivace/internal/model"
	"github.com/vivace-dev/vivace/internal/traceql"
)

// TestTraceIDForms: trace:id = "<id>" reads the literal in every form a
// lookup by ID accepts, and a 64-bit reading also matches the 128-bit trace
// whose low half it is.
func TestTraceIDForms(t *testing.T) {
	traceOf := func(hexID string) *tracev1.TracesData {
		id, err := model.ParseTraceID(hexID)
		require.NoError(t, err)
		return &tracev1.TracesData{ResourceSpans: []*tracev1.ResourceSpans{{ScopeSpans: []*tracev1.ScopeSpans{{Spans: []*tracev1.Span{{
			TraceId: id[:], SpanId: []byte{1, 2, 3, 4, 5, 6, 7, 8}, Name: hexID, StartTimeUnixNano: 1, EndTimeUnixNano: 2,
		}}}}}}}
	}
	traces := map[string]*tracev1.TracesData{
		"w3c":      traceOf("4bf92f3577b34da6a3ce929d0e0e4736"), // low half 11803532876627986230
		"datadog":  traceOf("0000000000000000a3ce929d0e0e4736"), // the same low half, 64-bit
		"hex-read": traceOf("00000000000011803532876627986230"), // the hex reading of the decimal
		"other":    traceOf("00000000000000000000000000abcdef"),
	}
	for _, tc := range []struct {
		query string
		want  []string
	}{
		{`{ trace:id = "4bf92f3577b34da6a3ce929d0e0e4736" }`, []string{"w3c"}},
		{`{ trace:id = "4BF92F3577B34DA6A3CE929D0E0E4736" }`, []string{"w3c"}},
		{`{ trace:id = "4bf92f35-77b3-4da6-a3ce-929d0e0e4736" }`, []string{"w3c"}},
		{`{ trace:id = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" }`, []string{"w3c"}},
		{`{ trace:id = "abcdef" }`, []string{"other"}},
		// 64 bits: the exact trace and the 128-bit one with that low half.
		{`{ trace:id = "a3ce929d0e0e4736" }`, []string{"datadog", "w3c"}},
		// Decimal: its hex reading and its decimal reading (with low half).
		{`{ trace:id = "11803532876627986230" }`, []string{"datadog", "hex-read", "w3c"}},
		{`{ "11803532876627986230" = trace:id }`, []string{"datadog", "hex-read", "w3c"}},
		{`{ trace:id != "11803532876627986230" }`, []string{"other"}},
		{`{ trace:id = "not an id" }`, nil},
		{`{ trace:id != "not an id" }`, []string{"datadog", "hex-read", "other", "w3c"}},
		{`{ trace:id =~ "4bf9.*" }`, []string{"w3c"}},
	} {
		t.Run(tc.query, func(t *testing.T) {
			q, err := traceql.Parse(tc.query)
			require.NoError(t, err)
			var got []string
			for _, name := range []string{"datadog", "hex-read", "other", "w3c"} {
				if len(q.Eval(traces[name])) > 0 {
					got = append(got, name)
				}
			}
			require.Equal(t, tc.want, got)
			// The canonical form reads the same way.
			again, err := traceql.Parse(q.String())
			require.NoError(t, err)
			for name, td := range traces {
				require.Equal(t, len(q.Eval(td)) > 0, len(again.Eval(td)) > 0, "%s on %s", q, name)
			}
			// A literal read as an ID gives no condition a search could
			// prune on (as a string it would rule out the other readings).
			for _, c := range q.Conditions() {
				if c.Attribute.Intrinsic == traceql.IntrinsicTraceID && c.Op != traceql.OpRegex {
					_, err := model.ReadTraceID(c.Value.S)
					require.Error(t, err, "condition %v", c)
				}
			}
		})
	}
}
