package frontend_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grafana/dskit/user"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/vivace-dev/vivace/frontend"
	"github.com/vivace-dev/vivace/internal/vivacepb"
)

// gatedQuerier is the search fixture whose block jobs wait for the gate,
// so that a test sees the ingester job's partial answer first. It records
// the tenant of every search job.
type gatedQuerier struct {
	*searchQuerier
	gate chan struct{}

	mu      sync.Mutex
	tenants []string
}

func (g *gatedQuerier) Search(ctx context.Context, job *vivacepb.SearchJob) (*vivacepb.SearchResponse, error) {
	tenant, err := user.ExtractOrgID(ctx)
	if err != nil {
		return nil, err
	}
	g.mu.Lock()
	g.tenants = append(g.tenants, tenant)
	g.mu.Unlock()
	if job.QueryMode == "blocks" {
		select {
		case <-g.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return g.searchQuerier.Search(ctx, job)
}

func openGate() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}

// streamingServer serves the read API and the StreamingQuerier on one
// cleartext port, as the HTTP port does.
type streamingServer struct {
	client vivacepb.StreamingQuerierClient
	conn   *grpc.ClientConn
	http   *httptest.Server
	reg    *prometheus.Registry
}

// newStreamingServer runs local workers on q, if any; configure, if any,
// changes the HTTP server before it starts.
func newStreamingServer(t *testing.T, q frontend.Querier, s setup, configure func(*http.Server)) *streamingServer {
	t.Helper()
	f, h, reg := newFrontend(t, s)
	if q != nil {
		f.RunLocalWorkers(q, 4)
	}
	start(t, f)
	gs := grpc.NewServer()
	f.RegisterStreaming(gs)
	t.Cleanup(gs.Stop)
	hs := httptest.NewUnstartedServer(h)
	if configure != nil {
		configure(hs.Config)
	}
	frontend.ServeGRPC(hs.Config, gs)
	hs.Start()
	t.Cleanup(hs.Close)
	conn, err := grpc.NewClient(hs.Listener.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, conn.Close()) })
	return &streamingServer{client: vivacepb.NewStreamingQuerierClient(conn), conn: conn, http: hs, reg: reg}
}

// getHTTP asks over HTTP/1.1 for the protobuf answer of path.
func (s *streamingServer) getHTTP(t *testing.T, path string, into proto.Message) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.http.URL+path, nil)
	require.NoError(t, err)
	req.Header.Set("Accept", "application/protobuf")
	resp, err := s.http.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
	require.Equal(t, 1, resp.ProtoMajor)
	require.NoError(t, proto.Unmarshal(body, into))
}

// recvAll reads a stream to its end.
func recvAll[T any](t *testing.T, stream grpc.ServerStreamingClient[T]) ([]*T, error) {
	t.Helper()
	var msgs []*T
	for {
		m, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return msgs, nil
		}
		if err != nil {
			return msgs, err
		}
		msgs = append(msgs, m)
	}
}

func withTenant(tenant string) context.Context {
	return metadata.AppendToOutgoingContext(context.Background(), "X-Scope-OrgID", tenant)
}

func TestStreamingSearch(t *testing.T) {
	q := &gatedQuerier{searchQuerier: searchFixture(), gate: make(chan struct{})}
	s := newStreamingServer(t, q, setup{}, nil)

	req := &vivacepb.SearchRequest{Query: `{ resource.service.name = "checkout" }`, Limit: 20, SpansPerSpanSet: 3, Start: 1773500000, End: 1773510000}
	stream, err := s.client.Search(context.Background(), req)
	require.NoError(t, err)

	// The ingester job answers first, and at once: the live trace.
	first, err := stream.Recv()
	require.NoError(t, err)
	require.Equal(t, uint32(1), first.Metrics.CompletedJobs)
	require.Equal(t, uint32(9), first.Metrics.TotalJobs, "one ingester job and 8 block shards")
	require.Len(t, first.Traces, 1)
	require.Equal(t, "0102030405060708090a0b0c0d0e0f10", first.Traces[0].TraceID)

	close(q.gate)
	rest, err := recvAll(t, stream)
	require.NoError(t, err)
	require.NotEmpty(t, rest)
	msgs := append([]*vivacepb.SearchResponse{first}, rest...)
	for i := 1; i < len(msgs); i++ {
		require.GreaterOrEqual(t, msgs[i].Metrics.CompletedJobs, msgs[i-1].Metrics.CompletedJobs)
		require.Equal(t, uint32(9), msgs[i].Metrics.TotalJobs)
	}
	final := msgs[len(msgs)-1]
	require.Equal(t, uint32(9), final.Metrics.CompletedJobs)
	require.Len(t, final.Traces, 2)

	// The final answer is the HTTP one, and the jobs got the parameters.
	var httpResp vivacepb.SearchResponse
	s.getHTTP(t, "/api/search?"+url.Values{"q": {req.Query}, "limit": {"20"}, "spss": {"3"}, "start": {"1773500000"}, "end": {"1773510000"}}.Encode(), &httpResp)
	require.True(t, proto.Equal(&httpResp, final), "HTTP %v\ngRPC %v", &httpResp, final)
	for _, j := range q.jobs {
		require.Equal(t, uint32(20), j.Limit)
		require.Equal(t, uint32(3), j.SpansPerSpanSet)
		require.Equal(t, int64(1773500000), j.Start)
		require.Equal(t, int64(1773510000), j.End)
	}
	require.EqualValues(t, 1, metricValue(t, s.reg, "vivace_query_frontend_requests_total", map[string]string{"endpoint": "stream_search", "code": "200"}))
}

// A stream outlives the server's write timeout, which is meant for one
// HTTP answer: dskit's default of 30s would cut long searches off.
func TestStreamingOutlivesWriteTimeout(t *testing.T) {
	q := &gatedQuerier{searchQuerier: searchFixture(), gate: make(chan struct{})}
	const writeTimeout = 250 * time.Millisecond
	s := newStreamingServer(t, q, setup{}, func(hs *http.Server) { hs.WriteTimeout = writeTimeout })
	stream, err := s.client.Search(context.Background(), &vivacepb.SearchRequest{Query: "{}"})
	require.NoError(t, err)
	_, err = stream.Recv()
	require.NoError(t, err)
	time.Sleep(2 * writeTimeout)
	close(q.gate)
	msgs, err := recvAll(t, stream)
	require.NoError(t, err)
	final := msgs[len(msgs)-1]
	require.Equal(t, final.Metrics.TotalJobs, final.Metrics.CompletedJobs)
	require.Len(t, final.Traces, 2)
}

func TestStreamingSearchParameters(t *testing.T) {
	q := &gatedQuerier{searchQuerier: searchFixture(), gate: openGate()}
	s := newStreamingServer(t, q, setup{}, nil)
	run := func(req *vivacepb.SearchRequest) *vivacepb.SearchResponse {
		t.Helper()
		stream, err := s.client.Search(context.Background(), req)
		require.NoError(t, err)
		msgs, err := recvAll(t, stream)
		require.NoError(t, err)
		require.NotEmpty(t, msgs)
		final := msgs[len(msgs)-1]
		require.Equal(t, final.Metrics.TotalJobs, final.Metrics.CompletedJobs)
		return final
	}

	// Unset limit and spss are the defaults, as on HTTP.
	q.jobs = nil
	require.Len(t, run(&vivacepb.SearchRequest{Query: "{}"}).Traces, 2)
	for _, j := range q.jobs {
		require.Equal(t, uint32(20), j.Limit)
		require.Equal(t, uint32(3), j.SpansPerSpanSet)
	}
	// A search that stops at its limit still ends with every job counted.
	require.Len(t, run(&vivacepb.SearchRequest{Query: "{}", Limit: 1}).Traces, 1)

	// The older tag search, as the HTTP tags, minDuration and maxDuration.
	got := run(&vivacepb.SearchRequest{Tags: map[string]string{"http.request.method": "POST", "service.name": "checkout"}, MinDurationMs: 100})
	require.Len(t, got.Traces, 2)
	var httpResp vivacepb.SearchResponse
	s.getHTTP(t, "/api/search?"+url.Values{"tags": {`http.request.method=POST service.name="checkout"`}, "minDuration": {"100ms"}}.Encode(), &httpResp)
	require.True(t, proto.Equal(&httpResp, got))
	require.Empty(t, run(&vivacepb.SearchRequest{Tags: map[string]string{"http.request.method": "POST"}, MinDurationMs: 10_000}).Traces)
	require.Empty(t, run(&vivacepb.SearchRequest{Tags: map[string]string{"http.request.method": "a \"quoted\" value"}}).Traces)
}

func TestStreamingErrors(t *testing.T) {
	q := &gatedQuerier{searchQuerier: searchFixture(), gate: openGate()}
	s := newStreamingServer(t, q, setup{multitenancy: true}, nil)
	ctx := withTenant("team-1")

	searchErr := func(ctx context.Context, req *vivacepb.SearchRequest) error {
		t.Helper()
		stream, err := s.client.Search(ctx, req)
		require.NoError(t, err)
		msgs, err := recvAll(t, stream)
		require.Empty(t, msgs)
		return err
	}
	requireCode := func(err error, code codes.Code, contains string) {
		t.Helper()
		require.Equal(t, code, status.Code(err), "%v", err)
		require.Contains(t, status.Convert(err).Message(), contains)
	}

	requireCode(searchErr(context.Background(), &vivacepb.SearchRequest{Query: "{}"}), codes.Unauthenticated, "X-Scope-OrgID")
	requireCode(searchErr(withTenant("a/b"), &vivacepb.SearchRequest{Query: "{}"}), codes.Unauthenticated, "a/b")
	requireCode(searchErr(ctx, &vivacepb.SearchRequest{Query: `{ .a = }`}), codes.InvalidArgument, "line 1, col 8")
	requireCode(searchErr(ctx, &vivacepb.SearchRequest{Query: "{}", Start: 10, End: 5}), codes.InvalidArgument, "before start")
	requireCode(searchErr(ctx, &vivacepb.SearchRequest{Query: strings.Repeat(" ", frontend.MaxParamBytes+1)}), codes.InvalidArgument, "limit of 65536 bytes")
	requireCode(searchErr(ctx, &vivacepb.SearchRequest{Tags: map[string]string{"a b": "c"}}), codes.InvalidArgument, `"a b"`)
	requireCode(searchErr(ctx, &vivacepb.SearchRequest{Tags: map[string]string{"a": strings.Repeat("x", frontend.MaxParamBytes)}}), codes.InvalidArgument, "limit of 65536 bytes")
	requireCode(searchErr(ctx, &vivacepb.SearchRequest{MinDurationMs: 10, MaxDurationMs: 5}), codes.InvalidArgument, "maxDuration")
	require.Empty(t, q.tenants, "no job ran for a bad request")

	// The tenant reaches the jobs.
	stream, err := s.client.Search(ctx, &vivacepb.SearchRequest{Query: "{}"})
	require.NoError(t, err)
	_, err = recvAll(t, stream)
	require.NoError(t, err)
	require.NotEmpty(t, q.tenants)
	for _, tenant := range q.tenants {
		require.Equal(t, "team-1", tenant)
	}

	tagsErr := func(ctx context.Context, req *vivacepb.SearchTagValuesRequest) error {
		t.Helper()
		stream, err := s.client.SearchTagValuesV2(ctx, req)
		require.NoError(t, err)
		msgs, err := recvAll(t, stream)
		require.Empty(t, msgs)
		return err
	}
	requireCode(tagsErr(context.Background(), &vivacepb.SearchTagValuesRequest{TagName: "resource.service.name"}), codes.Unauthenticated, "X-Scope-OrgID")
	requireCode(tagsErr(ctx, &vivacepb.SearchTagValuesRequest{}), codes.InvalidArgument, "tagName")
	requireCode(tagsErr(ctx, &vivacepb.SearchTagValuesRequest{TagName: "resource.service.name", Query: "{ ."}), codes.InvalidArgument, "line 1")
	requireCode(tagsErr(ctx, &vivacepb.SearchTagValuesRequest{TagName: strings.Repeat("a", frontend.MaxParamBytes+1)}), codes.InvalidArgument, "limit of 65536 bytes")
	tagsStream, err := s.client.SearchTagsV2(ctx, &vivacepb.SearchTagsRequest{Scope: "bogus"})
	require.NoError(t, err)
	_, err = recvAll(t, tagsStream)
	requireCode(err, codes.InvalidArgument, "bogus")

	// Tempo's metrics RPCs are not served.
	raw, err := s.conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, "/tempopb.StreamingQuerier/MetricsQueryRange")
	require.NoError(t, err)
	require.NoError(t, raw.SendMsg(&vivacepb.SearchRequest{}))
	require.NoError(t, raw.CloseSend())
	requireCode(raw.RecvMsg(&vivacepb.SearchResponse{}), codes.Unimplemented, "MetricsQueryRange")

	require.EqualValues(t, 2, metricValue(t, s.reg, "vivace_query_frontend_requests_total", map[string]string{"endpoint": "stream_search", "code": "401"}))
	require.EqualValues(t, 6, metricValue(t, s.reg, "vivace_query_frontend_requests_total", map[string]string{"endpoint": "stream_search", "code": "400"}))
}

// A search that does not fit in its tenant's queue is refused, as HTTP's 429.
func TestStreamingQueueFull(t *testing.T) {
	s := newStreamingServer(t, nil, setup{shards: 1, maxOutstanding: 3}, nil) // no workers: jobs stay queued
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	waiting, err := s.client.Search(ctx, &vivacepb.SearchRequest{Query: "{}"})
	require.NoError(t, err)
	requireMetric(t, s.reg, "vivace_query_frontend_queue_length", map[string]string{"tenant": "single-tenant"}, 2)

	stream, err := s.client.Search(context.Background(), &vivacepb.SearchRequest{Query: "{}"})
	require.NoError(t, err)
	_, err = recvAll(t, stream)
	require.Equal(t, codes.ResourceExhausted, status.Code(err), "%v", err)
	require.Contains(t, status.Convert(err).Message(), "max_outstanding_per_tenant is 3")

	cancel()
	_, err = recvAll(t, waiting)
	require.Equal(t, codes.Canceled, status.Code(err), "%v", err)
	requireMetric(t, s.reg, "vivace_query_frontend_requests_total", map[string]string{"endpoint": "stream_search", "code": "499"}, 1)
}

// The tag RPCs answer, in one message, what the HTTP tag endpoints answer.
func TestStreamingTags(t *testing.T) {
	s := newStreamingServer(t, searchFixture(), setup{}, nil)
	ctx := context.Background()
	one := func(t *testing.T, msgs []proto.Message, err error, httpPath string, httpResp proto.Message) {
		t.Helper()
		require.NoError(t, err)
		require.Len(t, msgs, 1)
		s.getHTTP(t, httpPath, httpResp)
		require.True(t, proto.Equal(httpResp, msgs[0]), "HTTP %v\ngRPC %v", httpResp, msgs[0])
	}
	t.Run("v1 names", func(t *testing.T) {
		stream, err := s.client.SearchTags(ctx, &vivacepb.SearchTagsRequest{})
		require.NoError(t, err)
		msgs, err := recvAll(t, stream)
		one(t, protos(msgs), err, "/api/search/tags", &vivacepb.SearchTagsResponse{})
		require.Contains(t, msgs[0].TagNames, "service.name")
	})
	for _, tc := range []struct {
		req  *vivacepb.SearchTagsRequest
		path string
	}{
		{&vivacepb.SearchTagsRequest{MaxTagsPerScope: 5000}, "/api/v2/search/tags?limit=5000"},
		{&vivacepb.SearchTagsRequest{Scope: "resource"}, "/api/v2/search/tags?scope=resource"},
		{&vivacepb.SearchTagsRequest{Scope: "span", MaxTagsPerScope: 1}, "/api/v2/search/tags?scope=span&limit=1"},
		{&vivacepb.SearchTagsRequest{Query: `{ resource.service.name = "payment" }`}, "/api/v2/search/tags?q=" + url.QueryEscape(`{ resource.service.name = "payment" }`)},
	} {
		t.Run("v2 names "+tc.path, func(t *testing.T) {
			stream, err := s.client.SearchTagsV2(ctx, tc.req)
			require.NoError(t, err)
			msgs, err := recvAll(t, stream)
			one(t, protos(msgs), err, tc.path, &vivacepb.SearchTagsV2Response{})
			require.NotEmpty(t, msgs[0].Scopes)
		})
	}
	t.Run("v1 values", func(t *testing.T) {
		stream, err := s.client.SearchTagValues(ctx, &vivacepb.SearchTagValuesRequest{TagName: "service.name"})
		require.NoError(t, err)
		msgs, err := recvAll(t, stream)
		one(t, protos(msgs), err, "/api/search/tag/service.name/values", &vivacepb.SearchTagValuesResponse{})
		require.Contains(t, msgs[0].TagValues, "checkout")
	})
	for _, tc := range []struct {
		req  *vivacepb.SearchTagValuesRequest
		path string
	}{
		{&vivacepb.SearchTagValuesRequest{TagName: "resource.service.name", Query: "{}", MaxTagValues: 10}, "/api/v2/search/tag/resource.service.name/values?limit=10&q=" + url.QueryEscape("{}")},
		{&vivacepb.SearchTagValuesRequest{TagName: "resource.service.name", MaxTagValues: 1}, "/api/v2/search/tag/resource.service.name/values?limit=1"},
		{&vivacepb.SearchTagValuesRequest{TagName: "span.http.response.status_code"}, "/api/v2/search/tag/span.http.response.status_code/values"},
	} {
		t.Run("v2 values "+tc.path, func(t *testing.T) {
			stream, err := s.client.SearchTagValuesV2(ctx, tc.req)
			require.NoError(t, err)
			msgs, err := recvAll(t, stream)
			one(t, protos(msgs), err, tc.path, &vivacepb.SearchTagValuesV2Response{})
			require.NotEmpty(t, msgs[0].TagValues)
		})
	}
}

func protos[T any, P interface {
	*T
	proto.Message
}](msgs []P) []proto.Message {
	out := make([]proto.Message, len(msgs))
	for i, m := range msgs {
		out[i] = m
	}
	return out
}

// The port still serves plain HTTP: HTTP/1.1, and HTTP/2 requests that are
// not gRPC go to the router.
func TestStreamingPortServesHTTP(t *testing.T) {
	s := newStreamingServer(t, searchFixture(), setup{}, nil)
	var h2c http.Protocols
	h2c.SetUnencryptedHTTP2(true)
	h2cClient := &http.Client{Transport: &http.Transport{Protocols: &h2c}}
	defer h2cClient.CloseIdleConnections()
	for _, tc := range []struct {
		client *http.Client
		proto  int
	}{{s.http.Client(), 1}, {h2cClient, 2}} {
		resp, err := tc.client.Get(s.http.URL + "/api/search/tags")
		require.NoError(t, err)
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
		require.Equal(t, tc.proto, resp.ProtoMajor)
		require.Contains(t, string(body), `"tagNames"`)
	}
	// A gRPC content type over HTTP/1.1 is not gRPC: the router has no such path.
	resp, err := s.http.Client().Post(s.http.URL+"/tempopb.StreamingQuerier/Search", "application/grpc", strings.NewReader(""))
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
}
