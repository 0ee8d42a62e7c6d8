package ingester_test

import (
	"context"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/grafana/dskit/user"
	"github.com/stretchr/testify/require"
	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/vivace-dev/vivace/ingester"
	"github.com/vivace-dev/vivace/internal/model/modeltest"
	"github.com/vivace-dev/vivace/internal/search"
	"github.com/vivace-dev/vivace/internal/vivacepb"
)

// wantSearch is what a search job over traces should answer: each trace
// matched whole, combined as the querier does.
func wantSearch(t testing.TB, job *vivacepb.SearchJob, traces []*tenantTrace) []*vivacepb.TraceSearchMetadata {
	t.Helper()
	m, err := search.NewMatcher(job)
	require.NoError(t, err)
	res := search.NewResults(int(job.Limit), int(job.SpansPerSpanSet))
	for _, tt := range traces {
		if md := m.Match(tt.whole); md != nil {
			res.AddTrace(md)
		}
	}
	return res.Response().Traces
}

func searchIngester(t testing.TB, ing *ingester.Ingester, tenant string, job *vivacepb.SearchJob) *vivacepb.SearchResponse {
	t.Helper()
	resp, err := ing.Search(user.InjectOrgID(context.Background(), tenant), job)
	require.NoError(t, err)
	return resp
}

func requireSameResults(t testing.TB, want, got []*vivacepb.TraceSearchMetadata) {
	t.Helper()
	require.Len(t, got, len(want))
	for i := range want {
		require.True(t, proto.Equal(want[i], got[i]), "result %d:\nwant %v\ngot  %v", i, want[i], got[i])
	}
}

// TestSearchLiveTraces: a search sees every live trace of the tenant, its
// parts from every push put together, and answers as a search of the whole
// traces would.
func TestSearchLiveTraces(t *testing.T) {
	ing, _ := startIngester(t, testConfig(t, t.TempDir()), newBucket(t))
	traces := makeTraces(t, rand.New(rand.NewPCG(21, 21)), []string{"a"}, 40, 10, 3)
	pushAll(t, ing, traces)

	var size uint64
	for _, tt := range traces {
		for _, p := range tt.parts {
			size += uint64(len(p))
		}
	}
	for _, q := range []string{
		`{}`,
		`{ resource.service.name = "payment" }`,
		`{ status = error } | select(span:statusMessage)`,
		`{ span.http.route = "/api/ads" } >> { kind = client }`,
		`{ name = "nothing like this" }`,
	} {
		t.Run(q, func(t *testing.T) {
			job := &vivacepb.SearchJob{Query: q, SpansPerSpanSet: 2}
			resp := searchIngester(t, ing, "a", job)
			requireSameResults(t, wantSearch(t, job, traces), resp.Traces)
			require.EqualValues(t, len(traces), resp.Metrics.InspectedTraces)
			require.Equal(t, size, resp.Metrics.InspectedBytes)
		})
	}
}

// TestSearchAcrossGenerations: a trace whose parts are in the head and in a
// cut generation not yet dropped is found whole.
func TestSearchAcrossGenerations(t *testing.T) {
	ing, _ := startIngester(t, testConfig(t, t.TempDir()), newBucket(t))
	traces := makeTraces(t, rand.New(rand.NewPCG(22, 22)), []string{"a"}, 10, 12, 1)
	// Every trace in two parts: one before the cut, one after.
	for _, tt := range traces {
		tt.parts = splitTraceInTwo(t, tt.whole)
	}
	first, second := make([]*tenantTrace, len(traces)), make([]*tenantTrace, len(traces))
	for i, tt := range traces {
		first[i] = &tenantTrace{tenant: tt.tenant, id: tt.id, parts: tt.parts[:1]}
		second[i] = &tenantTrace{tenant: tt.tenant, id: tt.id, parts: tt.parts[1:]}
	}
	pushAll(t, ing, first)
	require.NoError(t, ing.Flush())
	pushAll(t, ing, second)

	job := &vivacepb.SearchJob{Query: `{}`, SpansPerSpanSet: 100}
	resp := searchIngester(t, ing, "a", job)
	requireSameResults(t, wantSearch(t, job, traces), resp.Traces)
	require.EqualValues(t, len(traces), resp.Metrics.InspectedTraces, "one trace, not two halves")
}

// splitTraceInTwo encodes td as two parts, its first span apart.
func splitTraceInTwo(t testing.TB, td *tracev1.TracesData) [][]byte {
	t.Helper()
	parts := splitTrace(td, 2)
	require.Len(t, parts, 2)
	var out [][]byte
	for _, p := range parts {
		b, err := proto.Marshal(p)
		require.NoError(t, err)
		out = append(out, b)
	}
	return out
}

// TestSearchLimit: a search stops once it found limit traces.
func TestSearchLimit(t *testing.T) {
	ing, _ := startIngester(t, testConfig(t, t.TempDir()), newBucket(t))
	traces := makeTraces(t, rand.New(rand.NewPCG(23, 23)), []string{"a"}, 30, 5, 1)
	pushAll(t, ing, traces)
	resp := searchIngester(t, ing, "a", &vivacepb.SearchJob{Query: `{}`, Limit: 4})
	require.Len(t, resp.Traces, 4)
	require.EqualValues(t, 4, resp.Metrics.InspectedTraces, "stops at the limit")
	for _, md := range resp.Traces {
		require.True(t, slices.ContainsFunc(traces, func(tt *tenantTrace) bool { return tt.id.String() == md.TraceID }))
	}
}

// TestSearchTimeRange: a job's time range leaves out the traces outside it.
func TestSearchTimeRange(t *testing.T) {
	ing, _ := startIngester(t, testConfig(t, t.TempDir()), newBucket(t))
	traces := makeTraces(t, rand.New(rand.NewPCG(24, 24)), []string{"a"}, 30, 5, 1)
	pushAll(t, ing, traces)
	base := modeltest.BaseTime.Unix() // every trace starts in the 10 minutes after
	for _, job := range []*vivacepb.SearchJob{
		{Query: `{}`, Start: base, End: base + 600},
		{Query: `{}`, Start: base + 300, End: base + 600},
		{Query: `{}`, End: base + 120},
		{Query: `{}`, Start: base + 3600},
		{Query: `{}`, End: base - 3600},
	} {
		resp := searchIngester(t, ing, "a", job)
		requireSameResults(t, wantSearch(t, job, traces), resp.Traces)
	}
	require.Empty(t, searchIngester(t, ing, "a", &vivacepb.SearchJob{Query: `{}`, Start: base + 3600}).Traces)
	require.Len(t, searchIngester(t, ing, "a", &vivacepb.SearchJob{Query: `{}`, Start: base - 60, End: base + 3600}).Traces, len(traces))
}

// TestSearchTenantsIsolated: a tenant's search sees only its own traces,
// even one with the ID of another tenant's trace.
func TestSearchTenantsIsolated(t *testing.T) {
	ing, _ := startIngester(t, testConfig(t, t.TempDir()), newBucket(t))
	rng := rand.New(rand.NewPCG(25, 25))
	a := makeTraces(t, rng, []string{"a"}, 5, 5, 2)
	b := makeTraces(t, rng, []string{"b"}, 3, 5, 1)
	shared := &tenantTrace{tenant: "b", id: a[0].id, whole: modeltest.Trace(rng, a[0].id, 4)}
	enc, err := proto.Marshal(shared.whole)
	require.NoError(t, err)
	shared.parts = [][]byte{enc}
	b = append(b, shared)
	pushAll(t, ing, append(slices.Clone(a), b...))

	job := &vivacepb.SearchJob{Query: `{}`}
	requireSameResults(t, wantSearch(t, job, a), searchIngester(t, ing, "a", job).Traces)
	requireSameResults(t, wantSearch(t, job, b), searchIngester(t, ing, "b", job).Traces)
	resp := searchIngester(t, ing, "c", job)
	require.Empty(t, resp.Traces)
	require.Zero(t, resp.Metrics.InspectedTraces)
}

// TestSearchErrors: a bad query or a missing tenant is InvalidArgument.
func TestSearchErrors(t *testing.T) {
	ing, _ := startIngester(t, testConfig(t, t.TempDir()), newBucket(t))
	_, err := ing.Search(user.InjectOrgID(context.Background(), "a"), &vivacepb.SearchJob{Query: `{ name = `})
	require.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)
	_, err = ing.Search(context.Background(), &vivacepb.SearchJob{Query: `{}`})
	require.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)
	_, err = ing.SearchTags(user.InjectOrgID(context.Background(), "a"), &vivacepb.TagsJob{Scope: "nope"})
	require.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)
	_, err = ing.SearchTags(context.Background(), &vivacepb.TagsJob{})
	require.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)
}

// wantTags is what a tags job over traces should answer.
func wantTags(t testing.TB, job *vivacepb.TagsJob, traces []*tenantTrace) *vivacepb.TagsResult {
	t.Helper()
	tags, err := search.NewTags(job)
	require.NoError(t, err)
	for _, tt := range traces {
		tags.Add(tt.whole)
	}
	return tags.Result()
}

// TestSearchTags: tag names and one tag's values come from the tenant's live
// traces only, within the job's time range and filter.
func TestSearchTags(t *testing.T) {
	ing, _ := startIngester(t, testConfig(t, t.TempDir()), newBucket(t))
	rng := rand.New(rand.NewPCG(26, 26))
	a := makeTraces(t, rng, []string{"a"}, 20, 8, 2)
	b := makeTraces(t, rng, []string{"b"}, 2, 3, 1)
	pushAll(t, ing, append(slices.Clone(a), b...))
	ctx := user.InjectOrgID(context.Background(), "a")
	for _, job := range []*vivacepb.TagsJob{
		{},
		{Scope: search.ScopeResource},
		{Scope: search.ScopeSpan, Query: `{ resource.service.name = "cart" }`},
		{Tag: "resource.service.name"},
		{Tag: "span.http.response.status_code"},
		{Tag: "name", Query: `{ kind = server }`},
	} {
		got, err := ing.SearchTags(ctx, job)
		require.NoError(t, err)
		want := wantTags(t, job, a)
		require.True(t, proto.Equal(want, &vivacepb.TagsResult{Scopes: got.Scopes, Values: got.Values}), "%v\nwant %v\ngot  %v", job, want, got)
		require.NotZero(t, got.InspectedBytes)
	}

	// A limit cuts the values.
	got, err := ing.SearchTags(ctx, &vivacepb.TagsJob{Tag: "resource.service.name", Limit: 2})
	require.NoError(t, err)
	require.Len(t, got.Values, 2)

	// Outside the traces' time: nothing.
	later := modeltest.BaseTime.Unix() + 3600
	got, err = ing.SearchTags(ctx, &vivacepb.TagsJob{Tag: "resource.service.name", Start: later})
	require.NoError(t, err)
	require.Empty(t, got.Values)

	// Tenant c has nothing; tenant b only its own.
	got, err = ing.SearchTags(user.InjectOrgID(context.Background(), "c"), &vivacepb.TagsJob{Tag: "resource.service.name"})
	require.NoError(t, err)
	require.Empty(t, got.Values)
	got, err = ing.SearchTags(user.InjectOrgID(context.Background(), "b"), &vivacepb.TagsJob{Tag: "name"})
	require.NoError(t, err)
	want := wantTags(t, &vivacepb.TagsJob{Tag: "name"}, b)
	require.True(t, proto.Equal(want, &vivacepb.TagsResult{Values: got.Values}), "want %v\ngot  %v", want, got)
}
