package querier_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/grafana/dskit/ring"
	"github.com/grafana/dskit/user"
	"github.com/stretchr/testify/require"
	commonv1 "go.opentelemetry.io/proto/otlp/common/v1"
	resourcev1 "go.opentelemetry.io/proto/otlp/resource/v1"
	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/vivace-dev/vivace/internal/model"
	"github.com/vivace-dev/vivace/internal/search"
	"github.com/vivace-dev/vivace/internal/vivacepb"
)

func (r fakeRing) GetReplicationSetForOperation(ring.Operation) (ring.ReplicationSet, error) {
	return ring.ReplicationSet{Instances: r.instances}, nil
}

// Search and SearchTags run the shared search code over the fake's traces,
// as an ingester does over its WAL.
func (f *fakeIngesters) Search(ctx context.Context, job *vivacepb.SearchJob) (*vivacepb.SearchResponse, error) {
	m, err := search.NewMatcher(job)
	if err != nil {
		return nil, err
	}
	res := search.NewResults(int(job.Limit), int(job.SpansPerSpanSet))
	err = f.each(ctx, func(td *tracev1.TracesData) {
		if md := m.Match(td); md != nil {
			res.AddTrace(md)
		}
	})
	return res.Response(), err
}

func (f *fakeIngesters) SearchTags(ctx context.Context, job *vivacepb.TagsJob) (*vivacepb.TagsResult, error) {
	tags, err := search.NewTags(job)
	if err != nil {
		return nil, err
	}
	err = f.each(ctx, tags.Add)
	return tags.Result(), err
}

func (f *fakeIngesters) each(ctx context.Context, fn func(*tracev1.TracesData)) error {
	tenant, err := user.ExtractOrgID(ctx)
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	for _, b := range f.traces[tenant] {
		td := &tracev1.TracesData{}
		if err := proto.Unmarshal(b, td); err != nil {
			return err
		}
		fn(td)
	}
	return nil
}

// searchBase is the start of every test trace.
var searchBase = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

// oneSpanTrace is a trace of one root span of service svc, starting at
// searchBase+offset.
func oneSpanTrace(id model.TraceID, svc, name string, offset time.Duration, attrs map[string]string) *tracev1.TracesData {
	start := uint64(searchBase.Add(offset).UnixNano())
	s := &tracev1.Span{TraceId: id[:], SpanId: []byte{1, 2, 3, 4, 5, 6, 7, id[15]}, Name: name,
		StartTimeUnixNano: start, EndTimeUnixNano: start + uint64(100*time.Millisecond), Kind: tracev1.Span_SPAN_KIND_SERVER}
	for k, v := range attrs {
		s.Attributes = append(s.Attributes, str(k, v))
	}
	return &tracev1.TracesData{ResourceSpans: []*tracev1.ResourceSpans{{
		Resource:   &resourcev1.Resource{Attributes: []*commonv1.KeyValue{str("service.name", svc)}},
		ScopeSpans: []*tracev1.ScopeSpans{{Spans: []*tracev1.Span{s}}},
	}}}
}

func str(k, v string) *commonv1.KeyValue {
	return &commonv1.KeyValue{Key: k, Value: &commonv1.AnyValue{Value: &commonv1.AnyValue_StringValue{StringValue: v}}}
}

func traceID(n byte) model.TraceID { return model.TraceID{15: n} }

// searchFixture: trace 1 (cart) live on both ingesters, trace 2 (shop) live
// on the second only; trace 3 (cart) in block A, trace 4 (shop) in block B.
func searchFixture(t *testing.T) *fixtureSearch {
	t.Helper()
	ing1, ing2 := newFakeIngesters(), newFakeIngesters()
	live := oneSpanTrace(traceID(1), "cart", "GET /cart", time.Minute, map[string]string{"http.method": "GET"})
	ing1.add(t, tenant, traceID(1), live)
	ing2.add(t, tenant, traceID(1), live)
	ing2.add(t, tenant, traceID(2), oneSpanTrace(traceID(2), "shop", "POST /buy", 2*time.Minute, map[string]string{"http.method": "POST"}))
	bkt := newBucket(t)
	writeBlock(t, bkt, tenant, blockA, map[model.TraceID]*tracev1.TracesData{
		traceID(3): oneSpanTrace(traceID(3), "cart", "GET /cart", 3*time.Minute, map[string]string{"http.method": "PUT"}),
	})
	writeBlock(t, bkt, tenant, blockB, map[model.TraceID]*tracev1.TracesData{
		traceID(4): oneSpanTrace(traceID(4), "shop", "GET /", 4*time.Minute, nil),
	})
	q, _ := newQuerier(t, ing1, bkt, ing2)
	return &fixtureSearch{q: q}
}

const (
	blockA = "10000000-0000-0000-0000-000000000000"
	blockB = "c0000000-0000-0000-0000-000000000000"
)

type fixtureSearch struct {
	q interface {
		Search(context.Context, *vivacepb.SearchJob) (*vivacepb.SearchResponse, error)
		SearchTags(context.Context, *vivacepb.TagsJob) (*vivacepb.TagsResult, error)
	}
}

func ids(resp *vivacepb.SearchResponse) []string {
	var out []string
	for _, t := range resp.Traces {
		out = append(out, t.TraceID)
	}
	slices.Sort(out)
	return out
}

func hexID(n byte) string { return traceID(n).String() }

func TestSearch(t *testing.T) {
	f := searchFixture(t)
	unix := func(d time.Duration) int64 { return searchBase.Add(d).Unix() }
	for _, tc := range []struct {
		name string
		job  *vivacepb.SearchJob
		want []string
	}{
		{"everything", &vivacepb.SearchJob{Query: "{}"}, []string{hexID(1), hexID(2), hexID(3), hexID(4)}},
		{"service, live and blocks", &vivacepb.SearchJob{Query: `{ resource.service.name = "cart" }`}, []string{hexID(1), hexID(3)}},
		{"span attribute", &vivacepb.SearchJob{Query: `{ span.http.method = "POST" }`}, []string{hexID(2)}},
		{"ingesters only", &vivacepb.SearchJob{Query: `{ resource.service.name = "cart" }`, QueryMode: "ingesters"}, []string{hexID(1)}},
		{"blocks only", &vivacepb.SearchJob{Query: `{ resource.service.name = "cart" }`, QueryMode: "blocks"}, []string{hexID(3)}},
		{"block range", &vivacepb.SearchJob{Query: "{}", QueryMode: "blocks", BlockStart: "80000000-0000-0000-0000-000000000000", BlockEnd: "ffffffff-ffff-ffff-ffff-ffffffffffff"}, []string{hexID(4)}},
		{"time range", &vivacepb.SearchJob{Query: "{}", Start: unix(100 * time.Second), End: unix(210 * time.Second)}, []string{hexID(2), hexID(3)}},
		{"no match", &vivacepb.SearchJob{Query: `{ name = "nothing" }`}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := f.q.Search(user.InjectOrgID(context.Background(), tenant), tc.job)
			require.NoError(t, err)
			require.Equal(t, tc.want, ids(resp))
		})
	}
}

func TestSearchResultShape(t *testing.T) {
	f := searchFixture(t)
	resp, err := f.q.Search(user.InjectOrgID(context.Background(), tenant), &vivacepb.SearchJob{Query: `{ span.http.method = "GET" }`})
	require.NoError(t, err)
	require.Len(t, resp.Traces, 1, "the replicas' copies are merged")
	tr := resp.Traces[0]
	require.Equal(t, hexID(1), tr.TraceID)
	require.Equal(t, "cart", tr.RootServiceName)
	require.Equal(t, "GET /cart", tr.RootTraceName)
	require.Equal(t, uint64(searchBase.Add(time.Minute).UnixNano()), tr.StartTimeUnixNano)
	require.Equal(t, uint32(100), tr.DurationMs)
	require.Len(t, tr.SpanSets, 1)
	require.Same(t, tr.SpanSets[0], tr.SpanSet)
	set := tr.SpanSets[0]
	require.Equal(t, uint32(1), set.Matched)
	require.Len(t, set.Spans, 1)
	require.Equal(t, "0102030405060701", set.Spans[0].SpanID)
	require.Equal(t, uint64(100*time.Millisecond), set.Spans[0].DurationNanos)
	require.Equal(t, "http.method", set.Spans[0].Attributes[0].Key)
	require.Equal(t, "GET", set.Spans[0].Attributes[0].Value.GetStringValue())
	require.Equal(t, uint32(2), resp.Metrics.TotalBlocks)
	require.Positive(t, resp.Metrics.InspectedBytes)
}

func TestSearchLimit(t *testing.T) {
	f := searchFixture(t)
	for _, mode := range []string{"all", "blocks"} {
		resp, err := f.q.Search(user.InjectOrgID(context.Background(), tenant), &vivacepb.SearchJob{Query: "{}", Limit: 1, QueryMode: mode})
		require.NoError(t, err)
		require.Len(t, resp.Traces, 1, mode)
	}
}

func TestSearchBadQuery(t *testing.T) {
	f := searchFixture(t)
	_, err := f.q.Search(user.InjectOrgID(context.Background(), tenant), &vivacepb.SearchJob{Query: `{ name = }`})
	require.ErrorContains(t, err, "line 1, col")
}

func TestSearchTags(t *testing.T) {
	f := searchFixture(t)
	ctx := user.InjectOrgID(context.Background(), tenant)
	res, err := f.q.SearchTags(ctx, &vivacepb.TagsJob{})
	require.NoError(t, err)
	byScope := map[string][]string{}
	for _, s := range res.Scopes {
		byScope[s.Name] = s.Tags
	}
	require.Equal(t, []string{"service.name"}, byScope["resource"])
	require.Equal(t, []string{"http.method"}, byScope["span"])
	require.Contains(t, byScope["intrinsic"], "name")

	res, err = f.q.SearchTags(ctx, &vivacepb.TagsJob{Tag: "span.http.method"})
	require.NoError(t, err)
	require.Equal(t, []*vivacepb.TagValue{{Type: "string", Value: "GET"}, {Type: "string", Value: "POST"}, {Type: "string", Value: "PUT"}}, res.Values)

	res, err = f.q.SearchTags(ctx, &vivacepb.TagsJob{Tag: "span.http.method", Query: `{ resource.service.name = "cart" }`})
	require.NoError(t, err)
	require.Equal(t, []*vivacepb.TagValue{{Type: "string", Value: "GET"}, {Type: "string", Value: "PUT"}}, res.Values)

	res, err = f.q.SearchTags(ctx, &vivacepb.TagsJob{Tag: "resource.service.name", Limit: 1})
	require.NoError(t, err)
	require.Len(t, res.Values, 1)

	res, err = f.q.SearchTags(ctx, &vivacepb.TagsJob{Scope: "resource"})
	require.NoError(t, err)
	require.Len(t, res.Scopes, 1)

	_, err = f.q.SearchTags(ctx, &vivacepb.TagsJob{Scope: "bogus"})
	require.Error(t, err)
}
