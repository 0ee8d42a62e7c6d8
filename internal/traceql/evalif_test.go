package traceql_test

import (
	"testing"

	"github.com/stretchr/testify/require"
	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/vivace-dev/vivace/internal/traceql"
)

// TestEvalIf: EvalIf gives Summarize and Eval of a trace, or no span sets
// when keep refuses the summary.
func TestEvalIf(t *testing.T) {
	for _, text := range []string{`{}`, `{ kind = server }`, `{ status = error } >> { name =~ ".*" }`, `{ trace:rootService != "" } | count() > 1`} {
		q, err := traceql.Parse(text)
		require.NoError(t, err)
		for _, c := range corpus() {
			sum, sets := q.EvalIf(c.td, nil)
			require.Equal(t, traceql.Summarize(c.td), sum, "%s on %s", text, c.name)
			require.Equal(t, q.Eval(c.td), sets, "%s on %s", text, c.name)

			var seen traceql.TraceSummary
			sum, sets = q.EvalIf(c.td, func(s traceql.TraceSummary) bool { seen = s; return false })
			require.Equal(t, traceql.Summarize(c.td), sum)
			require.Equal(t, sum, seen)
			require.Nil(t, sets)
		}
		sum, sets := q.EvalIf(&tracev1.TracesData{}, func(traceql.TraceSummary) bool { t.Fatal("keep called without spans"); return true })
		require.Zero(t, sum)
		require.Nil(t, sets)
	}
}
