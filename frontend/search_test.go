package frontend_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grafana/dskit/user"
	"github.com/stretchr/testify/require"
	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/vivace-dev/vivace/frontend"
	"github.com/vivace-dev/vivace/internal/search"
	"github.com/vivace-dev/vivace/internal/vivacepb"
)

// Search and SearchTags of the trace-by-ID fake find nothing.
func (f *fakeQuerier) Search(context.Context, *vivacepb.SearchJob) (*vivacepb.SearchResponse, error) {
	return &vivacepb.SearchResponse{Metrics: &vivacepb.SearchMetrics{}}, nil
}

func (f *fakeQuerier) SearchTags(context.Context, *vivacepb.TagsJob) (*vivacepb.TagsResult, error) {
	return &vivacepb.TagsResult{}, nil
}

// searchQuerier runs the shared search code: live traces for ingester jobs,
// and block traces for the block job whose range holds the zero block ID.
type searchQuerier struct {
	fakeQuerier
	live, blocks []*tracev1.TracesData

	mu   sync.Mutex
	jobs []*vivacepb.SearchJob
}

func (s *searchQuerier) traces(mode, blockStart string) []*tracev1.TracesData {
	if mode == "ingesters" {
		return s.live
	}
	if blockStart == "00000000-0000-0000-0000-000000000000" {
		return s.blocks
	}
	return nil
}

func (s *searchQuerier) Search(ctx context.Context, job *vivacepb.SearchJob) (*vivacepb.SearchResponse, error) {
	if _, err := user.ExtractOrgID(ctx); err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.jobs = append(s.jobs, job)
	s.mu.Unlock()
	m, err := search.NewMatcher(job)
	if err != nil {
		return nil, err
	}
	res := search.NewResults(int(job.Limit), int(job.SpansPerSpanSet))
	tds := s.traces(job.QueryMode, job.BlockStart)
	for _, td := range tds {
		if md := m.Match(td); md != nil {
			res.AddTrace(md)
		}
	}
	resp := res.Response()
	resp.Metrics = &vivacepb.SearchMetrics{InspectedTraces: uint32(len(tds)), InspectedBytes: 100 * uint64(len(tds))}
	return resp, nil
}

func (s *searchQuerier) SearchTags(_ context.Context, job *vivacepb.TagsJob) (*vivacepb.TagsResult, error) {
	tags, err := search.NewTags(job)
	if err != nil {
		return nil, err
	}
	for _, td := range s.traces(job.QueryMode, job.BlockStart) {
		tags.Add(td)
	}
	return tags.Result(), nil
}

// searchFixture: the fixed trace live, and in a block a copy of it (after a
// flush) and a second trace of one of its services.
func searchFixture() *searchQuerier {
	_, td := fixedTrace()
	other := proto.CloneOf(td)
	other.ResourceSpans = other.ResourceSpans[:1]
	for _, ss := range other.ResourceSpans[0].ScopeSpans {
		for _, s := range ss.Spans {
			s.TraceId[0] = 0xff
			s.StartTimeUnixNano -= 1e9
			s.EndTimeUnixNano -= 1e9
		}
	}
	return &searchQuerier{live: []*tracev1.TracesData{td}, blocks: []*tracev1.TracesData{proto.CloneOf(td), other}}
}

// grafanaSearch mirrors what Grafana's Tempo data source reads from a search
// response; decoding with DisallowUnknownFields fails on any other field.
type grafanaSearch struct {
	Traces []struct {
		TraceID           string           `json:"traceID"`
		RootServiceName   string           `json:"rootServiceName"`
		RootTraceName     string           `json:"rootTraceName"`
		StartTimeUnixNano string           `json:"startTimeUnixNano"`
		DurationMs        int              `json:"durationMs"`
		SpanSet           *grafanaSpanSet  `json:"spanSet"`
		SpanSets          []grafanaSpanSet `json:"spanSets"`
	} `json:"traces"`
	Metrics struct {
		InspectedTraces int    `json:"inspectedTraces"`
		InspectedBytes  string `json:"inspectedBytes"`
		InspectedSpans  string `json:"inspectedSpans"`
		TotalBlocks     int    `json:"totalBlocks"`
		CompletedJobs   int    `json:"completedJobs"`
		TotalJobs       int    `json:"totalJobs"`
		TotalBlockBytes string `json:"totalBlockBytes"`
	} `json:"metrics"`
}

type grafanaSpanSet struct {
	Spans []struct {
		SpanID            string            `json:"spanID"`
		Name              string            `json:"name"`
		StartTimeUnixNano string            `json:"startTimeUnixNano"`
		DurationNanos     string            `json:"durationNanos"`
		Attributes        []json.RawMessage `json:"attributes"`
	} `json:"spans"`
	Matched    int               `json:"matched"`
	Attributes []json.RawMessage `json:"attributes"`
}

func decodeStrict(t *testing.T, b []byte, v any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(v), "%s", b)
}

func TestSearchAPI(t *testing.T) {
	q := searchFixture()
	h, _ := newServer(t, q, setup{})
	run := func(params url.Values) (*grafanaSearch, []byte) {
		t.Helper()
		rec := get(t, h, "/api/search?"+params.Encode(), nil)
		require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
		require.Equal(t, "application/json", rec.Header().Get("Content-Type"))
		var got grafanaSearch
		decodeStrict(t, rec.Body.Bytes(), &got)
		return &got, rec.Body.Bytes()
	}

	// What Grafana sends; the live and flushed copies of a trace are one
	// result, the other trace of the service another.
	got, body := run(url.Values{"q": {`{ resource.service.name = "checkout" }`}, "limit": {"20"}, "spss": {"3"}, "start": {"1773500000"}, "end": {"1773510000"}})
	requireGolden(t, "search.json", body)
	require.Len(t, got.Traces, 2)
	require.Equal(t, 9, got.Metrics.TotalJobs, "one ingester job and 8 block shards")
	require.Equal(t, 9, got.Metrics.CompletedJobs)
	for _, j := range q.jobs {
		require.Equal(t, uint32(20), j.Limit)
		require.Equal(t, uint32(3), j.SpansPerSpanSet)
		require.Equal(t, int64(1773500000), j.Start)
		require.Equal(t, int64(1773510000), j.End)
	}

	got, _ = run(url.Values{"q": {"{}"}})
	require.Len(t, got.Traces, 2)
	require.Equal(t, "ff02030405060708090a0b0c0d0e0f10", got.Traces[1].TraceID, "most recent first")

	got, _ = run(url.Values{"q": {"{}"}, "limit": {"1"}})
	require.Len(t, got.Traces, 1)

	got, _ = run(url.Values{"q": {"{}"}, "spss": {"1"}})
	for _, tr := range got.Traces {
		require.Len(t, tr.SpanSets[0].Spans, 1)
		require.Greater(t, tr.SpanSets[0].Matched, 1)
	}

	// The older tag search.
	got, _ = run(url.Values{"tags": {"http.request.method=POST"}, "minDuration": {"100ms"}})
	require.Len(t, got.Traces, 2)
	got, _ = run(url.Values{"tags": {"http.request.method=POST"}, "minDuration": {"10s"}})
	require.Empty(t, got.Traces)

	// No match: an empty list, not a missing one.
	rec := get(t, h, "/api/search?q="+url.QueryEscape(`{ name = "nothing" }`), nil)
	require.Equal(t, http.StatusOK, rec.Code)
	require.Contains(t, string(normalizeJSON(t, rec.Body.Bytes())), `"traces": []`)

	// Protobuf when asked.
	rec = get(t, h, "/api/search?q={}", map[string]string{"Accept": "application/protobuf"})
	require.Equal(t, http.StatusOK, rec.Code)
	var pb vivacepb.SearchResponse
	require.NoError(t, proto.Unmarshal(rec.Body.Bytes(), &pb))
	require.Len(t, pb.Traces, 2)
}

func TestSearchAPIBadRequests(t *testing.T) {
	h, _ := newServer(t, searchFixture(), setup{})
	for _, tc := range []struct{ query, want string }{
		{"q=" + url.QueryEscape(`{ .a = }`), "line 1, col 8"},
		{"q=" + url.QueryEscape("{ .a = 1 }\n&& {"), "line 2"},
		{"limit=x", "limit"},
		{"spss=0", "spss"},
		{"start=10&end=5", "before start"},
		{"start=abc", "start"},
		{"tags=" + url.QueryEscape("a"), "no value"},
		{"minDuration=fast", "minDuration"},
		{"minDuration=1s&maxDuration=10ms", "maxDuration"},
		// Every parameter is bounded, and the error names it and the bound.
		{"q=" + strings.Repeat("%20", frontend.MaxParamBytes+1), "q is 65537 bytes long, over the limit of 65536 bytes"},
		{"tags=" + strings.Repeat("a", frontend.MaxParamBytes) + "=b", "tags is 65538 bytes long, over the limit of 65536 bytes"},
		{"limit=" + strings.Repeat("1", frontend.MaxParamBytes+1), "limit is 65537 bytes long"},
		{"q={}&start=" + strings.Repeat("1", frontend.MaxParamBytes+1), "start is 65537 bytes long"},
	} {
		rec := get(t, h, "/api/search?"+tc.query, nil)
		require.Equal(t, http.StatusBadRequest, rec.Code, tc.query)
		require.Contains(t, rec.Body.String(), tc.want, tc.query)
	}
}

// TestMaxSearchDuration: a tenant's max_search_duration refuses a longer
// range, bounds a search without one to the latest stretch, and leaves other
// tenants alone.
func TestMaxSearchDuration(t *testing.T) {
	q := searchFixture()
	h, reg := newServer(t, q, setup{multitenancy: true, maxSearch: map[string]time.Duration{"small": time.Hour}})
	search := func(tenant, params string) *httptest.ResponseRecorder {
		return get(t, h, "/api/search?q={}&"+params, map[string]string{"X-Scope-OrgID": tenant})
	}

	rec := search("small", "start=1773500000&end=1773503601")
	require.Equal(t, http.StatusBadRequest, rec.Code)
	require.Contains(t, rec.Body.String(), "range from start to end (1h0m1s) exceeds the max search duration of tenant small (1h0m0s)")
	require.Equal(t, 1.0, requestCounts(t, reg)["search 400"])

	rec = search("small", "start=1773500000&end=1773503600")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())

	q.jobs = nil
	before := time.Now().Unix()
	rec = search("small", "")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	for _, j := range q.jobs {
		require.GreaterOrEqual(t, j.End, before)
		require.Equal(t, int64(3600), j.End-j.Start, "no range: the last hour")
	}

	rec = search("large", "start=1700000000&end=1773503601")
	require.Equal(t, http.StatusOK, rec.Code, "another tenant has no limit")
}

func TestTagsAPI(t *testing.T) {
	h, _ := newServer(t, searchFixture(), setup{})
	getJSON := func(path string, v any) []byte {
		t.Helper()
		rec := get(t, h, path, nil)
		require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
		decodeStrict(t, rec.Body.Bytes(), v)
		return rec.Body.Bytes()
	}
	var v1 struct {
		TagNames []string `json:"tagNames"`
	}
	getJSON("/api/search/tags", &v1)
	require.Contains(t, v1.TagNames, "service.name")
	require.Contains(t, v1.TagNames, "http.request.method")

	var v2 struct {
		Scopes []struct {
			Name string   `json:"name"`
			Tags []string `json:"tags"`
		} `json:"scopes"`
	}
	requireGolden(t, "search_tags_v2.json", getJSON("/api/v2/search/tags?limit=5000", &v2))
	getJSON("/api/v2/search/tags?scope=resource", &v2)
	require.Len(t, v2.Scopes, 1)
	require.Equal(t, "resource", v2.Scopes[0].Name)

	var values struct {
		TagValues []string `json:"tagValues"`
	}
	getJSON("/api/search/tag/service.name/values", &values)
	require.NotEmpty(t, values.TagValues)

	var typed struct {
		TagValues []struct {
			Type  string `json:"type"`
			Value string `json:"value"`
		} `json:"tagValues"`
	}
	requireGolden(t, "search_tag_values_v2.json", getJSON("/api/v2/search/tag/resource.service.name/values?limit=10&q="+url.QueryEscape("{}"), &typed))
	getJSON("/api/v2/search/tag/span.http.response.status_code/values", &typed)
	require.Equal(t, "int", typed.TagValues[0].Type)
	getJSON("/api/v2/search/tag/resource.service.name/values?limit=1", &typed)
	require.Len(t, typed.TagValues, 1)

	rec := get(t, h, "/api/v2/search/tags?scope=bogus", nil)
	require.Equal(t, http.StatusBadRequest, rec.Code)
	rec = get(t, h, "/api/v2/search/tag/resource.service.name/values?q="+url.QueryEscape("{ ."), nil)
	require.Equal(t, http.StatusBadRequest, rec.Code)
	require.Contains(t, rec.Body.String(), "line 1")
	rec = get(t, h, "/api/v2/search/tags?start=10&end=5", nil)
	require.Equal(t, http.StatusBadRequest, rec.Code)
	require.Contains(t, rec.Body.String(), "before start")
	rec = get(t, h, "/api/v2/search/tag/resource.service.name/values?q="+strings.Repeat("%20", frontend.MaxParamBytes+1), nil)
	require.Equal(t, http.StatusBadRequest, rec.Code)
	require.Contains(t, rec.Body.String(), "q is 65537 bytes long, over the limit of 65536 bytes")
	rec = get(t, h, "/api/v2/search/tag/"+strings.Repeat("a", frontend.MaxParamBytes+1)+"/values", nil)
	require.Equal(t, http.StatusBadRequest, rec.Code)
	require.Contains(t, rec.Body.String(), "tag is 65537 bytes long")
}
