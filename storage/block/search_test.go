package block

import (
	"context"
	"math/rand/v2"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/vivace-dev/vivace/internal/model"
	"github.com/vivace-dev/vivace/internal/model/modeltest"
	"github.com/vivace-dev/vivace/internal/traceql"
)

// searchQueries cover every column Search pre-filters on, every operator on
// them, and queries it must not prune at all.
var searchQueries = []string{
	`{}`,
	`{ resource.service.name = "payment" }`,
	`{ resource.service.name != "payment" }`,
	`{ resource.service.name = "nobody" }`,
	`{ resource.service.name > "frontend" && name < "c" }`,
	`{ name = "validate card" }`,
	`{ name =~ "oteldemo.*" }`,
	`{ name = "HGET" } && { resource.service.name = "frontend" }`,
	`{ name = "HGET" } || { name = "charge" }`,
	`{ kind = client }`,
	`{ kind = server && status = error }`,
	`{ status != unset }`,
	`{ duration > 1s }`,
	`{ duration <= 1ms }`,
	`{ duration >= 500ms } >> { name = "HGET" }`,
	`{ !(name = "HGET") }`,
	`{ span.http.request.method = "GET" }`,
	`{ .service.name = "cart" }`,
	`{ name = "HGET" } | count() > 2`,
}

// TestSearchMatchesIterate: Search with a query's conditions hands over every
// trace the query matches (the same as evaluating every trace), and, for
// selective queries, rebuilds fewer traces.
func TestSearchMatchesIterate(t *testing.T) {
	ctx := context.Background()
	ids, traces := modeltest.Traces(rand.New(rand.NewPCG(7, 7)), 200, 12)
	w, err := NewWriter(WriterConfig{RowGroupSpans: 200}, t.TempDir(), testTenant, uuid.New())
	require.NoError(t, err)
	for i, id := range ids {
		require.NoError(t, w.Add(id, traces[i]))
	}
	bkt := newMemBucket()
	meta, err := w.Finish(ctx, bkt)
	require.NoError(t, err)
	require.Greater(t, meta.RowGroups, 5)
	r := NewReader(bkt, meta)

	for _, text := range searchQueries {
		t.Run(text, func(t *testing.T) {
			q, err := traceql.Parse(text)
			require.NoError(t, err)
			var want []model.TraceID
			require.NoError(t, r.Iterate(ctx, func(id model.TraceID, td *tracev1.TracesData) error {
				if len(q.Eval(td)) > 0 {
					want = append(want, id)
				}
				return nil
			}))
			var got []model.TraceID
			st, err := r.Search(ctx, q.Conditions(), func(id model.TraceID, td *tracev1.TracesData) error {
				if len(q.Eval(td)) > 0 {
					got = append(got, id)
				}
				return nil
			})
			require.NoError(t, err)
			require.Equal(t, want, got)
			require.GreaterOrEqual(t, st.InspectedTraces, uint64(len(want)))
			if len(want) < len(ids)/4 && len(q.Conditions()) > 0 && text != `{ !(name = "HGET") }` {
				if _, ok := conditionColumn(q.Conditions()[0]); ok {
					require.Less(t, st.InspectedTraces, uint64(len(ids)), "the dedicated columns rule traces out")
				}
			}
		})
	}
}

// TestSearchSkipsRowGroups: a condition outside a row group's statistics
// skips it without fetching it.
func TestSearchSkipsRowGroups(t *testing.T) {
	ctx := context.Background()
	ids, traces := modeltest.Traces(rand.New(rand.NewPCG(8, 8)), 100, 10)
	w, err := NewWriter(WriterConfig{RowGroupSpans: 200}, t.TempDir(), testTenant, uuid.New())
	require.NoError(t, err)
	for i, id := range ids {
		require.NoError(t, w.Add(id, traces[i]))
	}
	bkt := newMemBucket()
	meta, err := w.Finish(ctx, bkt)
	require.NoError(t, err)
	q, err := traceql.Parse(`{ resource.service.name = "zzz-not-there" }`)
	require.NoError(t, err)
	st, err := NewReader(bkt, meta).Search(ctx, q.Conditions(), func(model.TraceID, *tracev1.TracesData) error {
		t.Fatal("no trace may be handed over")
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, meta.RowGroups, st.SkippedRowGroups)
	require.Zero(t, st.InspectedBytes)
}

// BenchmarkSearch scans the benchmark block (VIVACE_BENCH_BLOCK_MIB, 64 MiB
// by default) without a limit, the worst case of a search: MB/s is of
// data.parquet, ns/op the latency of one whole-block search.
func BenchmarkSearch(b *testing.B) {
	bkt, meta, _ := loadBenchBlock(b)
	ctx := context.Background()
	r := NewReader(bkt, meta)
	for _, bc := range []struct{ name, query string }{
		{"selective", `{ resource.service.name = "accounting" && name = "SELECT accounting.ledger" && status = error }`},
		{"selective-attribute", `{ span.http.route = "/api/ads" && span.http.response.status_code = 503 }`},
		{"unselective", `{ duration > 1ms }`},
		{"all", `{}`},
	} {
		b.Run(bc.name, func(b *testing.B) {
			q, err := traceql.Parse(bc.query)
			require.NoError(b, err)
			b.SetBytes(meta.Size)
			b.ReportAllocs()
			var matched, inspected uint64
			for b.Loop() {
				matched = 0
				st, err := r.Search(ctx, q.Conditions(), func(_ model.TraceID, td *tracev1.TracesData) error {
					if len(q.Eval(td)) > 0 {
						matched++
					}
					return nil
				})
				require.NoError(b, err)
				inspected = st.InspectedTraces
			}
			b.ReportMetric(float64(matched), "matched")
			b.ReportMetric(float64(inspected), "rebuilt")
		})
	}
}
