package integration

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/vivace-dev/vivace/internal/vivacepb"
)

// streamingClient dials Tempo's StreamingQuerier at addr the way Grafana's
// Tempo data source does: cleartext HTTP/2, no TLS.
func streamingClient(t testing.TB, addr string) vivacepb.StreamingQuerierClient {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	return vivacepb.NewStreamingQuerierClient(conn)
}

// orgCtx carries the tenant as Grafana sends it: x-scope-orgid metadata.
func orgCtx(t testing.TB, tenant string) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	if tenant != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "X-Scope-OrgID", tenant)
	}
	return ctx
}

// receive reads a stream to its end.
func receive[T any](stream grpc.ServerStreamingClient[T]) ([]*T, error) {
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

// TestStreamingSearch: Grafana's streaming search and the tag RPCs, on the
// HTTP port, find traces while they are live and, after a flush, from the
// blocks alone; the same port keeps serving plain HTTP/1.1.
func TestStreamingSearch(t *testing.T) {
	v := startVivace(t, "multitenancy_enabled: true\n", nil)
	const tenant = "team-a"
	sendSDK(t, v, "grpc", tenant, 5)
	sendSDK(t, v, "http", tenant, 3)
	start, end := uint32(time.Now().Add(-time.Hour).Unix()), uint32(time.Now().Add(time.Hour).Unix())
	window := url.Values{"start": {strconv.Itoa(int(start))}, "end": {strconv.Itoa(int(end))}}

	// httpProto is the protobuf answer of the HTTP endpoint, over HTTP/1.1.
	httpProto := func(t *testing.T, path string, into proto.Message) {
		t.Helper()
		code, body, _ := v.get(path, "Accept", "application/protobuf", "X-Scope-OrgID", tenant)
		require.Equal(t, http.StatusOK, code, "%s", body)
		require.NoError(t, proto.Unmarshal(body, into))
	}

	check := func(phase string) {
		t.Run(phase, func(t *testing.T) {
			for _, addr := range []string{v.HTTP, v.GRPC} {
				client := streamingClient(t, addr)
				ctx := orgCtx(t, tenant)

				req := &vivacepb.SearchRequest{Query: `{ resource.service.name = "checkout-grpc" }`, Limit: 20, SpansPerSpanSet: 3, Start: start, End: end}
				stream, err := client.Search(ctx, req)
				require.NoError(t, err)
				msgs, err := receive(stream)
				require.NoError(t, err, addr)
				require.NotEmpty(t, msgs)
				for _, m := range msgs {
					require.LessOrEqual(t, m.Metrics.CompletedJobs, m.Metrics.TotalJobs)
				}
				final := msgs[len(msgs)-1]
				require.Equal(t, final.Metrics.TotalJobs, final.Metrics.CompletedJobs)
				require.Greater(t, final.Metrics.TotalJobs, uint32(1))
				require.Len(t, final.Traces, 5)
				for _, tr := range final.Traces {
					require.Len(t, tr.TraceID, 32)
					require.Equal(t, "checkout-grpc", tr.RootServiceName)
					require.Len(t, tr.SpanSets, 1)
					require.EqualValues(t, 4, tr.SpanSets[0].Matched)
					require.Len(t, tr.SpanSets[0].Spans, 3, "spss")
				}
				var httpSearch vivacepb.SearchResponse
				httpProto(t, "/api/search?"+url.Values{"q": {req.Query}, "limit": {"20"}, "spss": {"3"}, "start": window["start"], "end": window["end"]}.Encode(), &httpSearch)
				require.Equal(t, traceIDs(httpSearch.Traces), traceIDs(final.Traces))

				// The older tag search.
				stream, err = client.Search(ctx, &vivacepb.SearchRequest{Tags: map[string]string{"service.name": "checkout-http"}, Start: start, End: end})
				require.NoError(t, err)
				msgs, err = receive(stream)
				require.NoError(t, err)
				require.Len(t, msgs[len(msgs)-1].Traces, 3)

				// The tag RPCs answer what the HTTP endpoints answer.
				names, err := client.SearchTags(ctx, &vivacepb.SearchTagsRequest{Start: start, End: end})
				require.NoError(t, err)
				namesMsgs, err := receive(names)
				require.NoError(t, err)
				require.Len(t, namesMsgs, 1)
				require.Subset(t, namesMsgs[0].TagNames, []string{"service.name", "http.request.method"})
				var httpNames vivacepb.SearchTagsResponse
				httpProto(t, "/api/search/tags?"+window.Encode(), &httpNames)
				require.True(t, proto.Equal(&httpNames, namesMsgs[0]))

				scoped, err := client.SearchTagsV2(ctx, &vivacepb.SearchTagsRequest{MaxTagsPerScope: 5000})
				require.NoError(t, err)
				scopedMsgs, err := receive(scoped)
				require.NoError(t, err)
				require.Len(t, scopedMsgs, 1)
				var httpScoped vivacepb.SearchTagsV2Response
				httpProto(t, "/api/v2/search/tags?limit=5000", &httpScoped)
				require.True(t, proto.Equal(&httpScoped, scopedMsgs[0]))
				byScope := map[string][]string{}
				for _, s := range scopedMsgs[0].Scopes {
					byScope[s.Name] = s.Tags
				}
				require.Subset(t, byScope["resource"], []string{"service.name", "k8s.namespace.name"})
				require.Contains(t, byScope["intrinsic"], "status")

				values, err := client.SearchTagValues(ctx, &vivacepb.SearchTagValuesRequest{TagName: "service.name"})
				require.NoError(t, err)
				valuesMsgs, err := receive(values)
				require.NoError(t, err)
				require.Len(t, valuesMsgs, 1)
				require.Equal(t, []string{"checkout-grpc", "checkout-http"}, valuesMsgs[0].TagValues)

				typed, err := client.SearchTagValuesV2(ctx, &vivacepb.SearchTagValuesRequest{TagName: "resource.service.name", Query: "{}", Start: start, End: end})
				require.NoError(t, err)
				typedMsgs, err := receive(typed)
				require.NoError(t, err)
				require.Len(t, typedMsgs, 1)
				var httpTyped vivacepb.SearchTagValuesV2Response
				httpProto(t, "/api/v2/search/tag/resource.service.name/values?q="+url.QueryEscape("{}")+"&"+window.Encode(), &httpTyped)
				require.True(t, proto.Equal(&httpTyped, typedMsgs[0]))
				require.Len(t, typedMsgs[0].TagValues, 2)
				require.Equal(t, "string", typedMsgs[0].TagValues[0].Type)

				// Tenancy and validation, as on HTTP.
				stream, err = client.Search(orgCtx(t, ""), &vivacepb.SearchRequest{Query: "{}"})
				require.NoError(t, err)
				_, err = receive(stream)
				require.Equal(t, codes.Unauthenticated, status.Code(err), "%v", err)
				stream, err = client.Search(orgCtx(t, "team-b"), &vivacepb.SearchRequest{Query: "{}", Start: start, End: end})
				require.NoError(t, err)
				msgs, err = receive(stream)
				require.NoError(t, err)
				require.Empty(t, msgs[len(msgs)-1].Traces, "another tenant's traces")
				stream, err = client.Search(ctx, &vivacepb.SearchRequest{Query: `{ .a = }`})
				require.NoError(t, err)
				_, err = receive(stream)
				require.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)
				require.Contains(t, status.Convert(err).Message(), "line 1, col 8")
			}

			// Plain HTTP/1.1 on the same port, after the streams.
			resp, err := http.Get("http://" + v.HTTP + "/api/echo")
			require.NoError(t, err)
			body, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			require.NoError(t, resp.Body.Close())
			require.Equal(t, http.StatusOK, resp.StatusCode)
			require.Equal(t, 1, resp.ProtoMajor)
			require.Equal(t, "echo\n", string(body))
			code, body, _ := v.get("/api/search?q="+url.QueryEscape("{}")+"&"+window.Encode(), "X-Scope-OrgID", tenant)
			require.Equal(t, http.StatusOK, code, "%s", body)
			var resp2 searchResponse
			decodeStrict(t, body, &resp2)
			require.Len(t, resp2.Traces, 8)
			require.Positive(t, v.metric("vivace_query_frontend_requests_total"))
		})
	}
	check("live")

	v.flushAndWait(1)
	v.stop()
	require.NoError(t, os.RemoveAll(filepath.Join(v.dataDir, "wal")))
	v.start()
	check("blocks")
}

// TestStreamingQueryFrontendTarget: a query-frontend of its own serves the
// StreamingQuerier on its HTTP port too. Without queriers a valid search
// waits in the queue; validation answers at once.
func TestStreamingQueryFrontendTarget(t *testing.T) {
	v := startVivace(t, "", nil, "-target=query-frontend")
	client := streamingClient(t, v.HTTP)

	stream, err := client.Search(orgCtx(t, ""), &vivacepb.SearchRequest{Query: `{ .a = }`})
	require.NoError(t, err)
	_, err = receive(stream)
	require.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)
	require.Contains(t, status.Convert(err).Message(), "line 1, col 8")

	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	tags, err := client.SearchTagsV2(ctx, &vivacepb.SearchTagsRequest{})
	require.NoError(t, err)
	_, err = receive(tags)
	require.Equal(t, codes.DeadlineExceeded, status.Code(err), "%v", err)

	code, body, _ := v.get("/api/echo")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "echo\n", string(body))
}

func traceIDs(traces []*vivacepb.TraceSearchMetadata) []string {
	ids := make([]string, len(traces))
	for i, tr := range traces {
		ids[i] = tr.TraceID
	}
	slices.Sort(ids)
	return ids
}
