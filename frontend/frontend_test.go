package frontend_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"
	"go.uber.org/goleak"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/vivace-dev/vivace/internal/model"
	"github.com/vivace-dev/vivace/internal/vivacepb"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fixture: the fixed trace, all of it in the ingesters and parts of it
// (duplicates, as after a flush) in blocks at the edges of the ID space.
func fixture() *fakeQuerier {
	id, td := fixedTrace()
	first := &tracev1.TracesData{ResourceSpans: []*tracev1.ResourceSpans{td.ResourceSpans[0]}}
	second := &tracev1.TracesData{ResourceSpans: []*tracev1.ResourceSpans{td.ResourceSpans[1]}}
	return &fakeQuerier{id: id, ingester: td, blocks: map[string]*tracev1.TracesData{
		"00000000-0000-0000-0000-000000000000": first,
		"ffffffff-ffff-ffff-ffff-ffffffffffff": second,
	}}
}

func requireGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	got = normalizeJSON(t, got)
	if *update {
		require.NoError(t, os.WriteFile(path, got, 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test ./frontend -run %s -update to create it", t.Name())
	require.Equal(t, string(want), string(got))
}

func TestGoldenJSON(t *testing.T) {
	id, td := fixedTrace()
	tests := []struct {
		name   string
		path   string
		limit  int
		golden string
	}{
		{"v1", "/api/traces/" + id.String(), 0, "trace_by_id_v1.json"},
		{"v2", "/api/v2/traces/" + id.String(), 0, "trace_by_id_v2.json"},
		{"v2 partial", "/api/v2/traces/" + id.String(), proto.Size(prefixTrace(td, 2)) + 20, "trace_by_id_v2_partial.json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, _ := newServer(t, fixture(), setup{limits: limits{"single-tenant": tt.limit}})
			rec := get(t, h, tt.path, nil)
			require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
			require.Equal(t, "application/json", rec.Header().Get("Content-Type"))
			requireGolden(t, tt.golden, rec.Body.Bytes())
		})
	}
}

// TestV1JSON decodes the v1 JSON strictly: only "batches", each a
// ResourceSpans in protobuf JSON without unknown fields.
func TestV1JSON(t *testing.T) {
	id, td := fixedTrace()
	h, _ := newServer(t, fixture(), setup{})
	rec := get(t, h, "/api/traces/"+id.String(), nil)
	require.Equal(t, http.StatusOK, rec.Code)

	var top map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &top))
	require.Equal(t, []string{"batches"}, slices.Sorted(mapsKeys(top)))
	var batches []json.RawMessage
	require.NoError(t, json.Unmarshal(top["batches"], &batches))
	got := &tracev1.TracesData{}
	for _, b := range batches {
		rs := &tracev1.ResourceSpans{}
		require.NoError(t, protojson.Unmarshal(b, rs))
		got.ResourceSpans = append(got.ResourceSpans, rs)
	}
	require.True(t, proto.Equal(td, got), "got %v", got)

	// Tempo's JSON conventions: base64 IDs, enum names, 64-bit integers as strings.
	body := rec.Body.String()
	require.Contains(t, body, `"traceId":"AQIDBAUGBwgJCgsMDQ4PEA=="`)
	require.Contains(t, body, `"kind":"SPAN_KIND_SERVER"`)
	require.Contains(t, body, `"startTimeUnixNano":"1773500966000000000"`)
}

// v2Envelope is the v2 JSON answer; decoding it with unknown fields
// disallowed pins the top-level keys.
type v2Envelope struct {
	Trace   json.RawMessage `json:"trace"`
	Metrics json.RawMessage `json:"metrics"`
	Status  *string         `json:"status"`
	Message *string         `json:"message"`
}

func decodeV2JSON(t testing.TB, body []byte) (v2Envelope, *tracev1.TracesData, *vivacepb.TraceByIDMetrics) {
	t.Helper()
	var env v2Envelope
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(&env))
	require.False(t, dec.More(), "trailing data")
	td := &tracev1.TracesData{}
	require.NotNil(t, env.Trace)
	require.NoError(t, protojson.Unmarshal(env.Trace, td))
	m := &vivacepb.TraceByIDMetrics{}
	require.NotNil(t, env.Metrics)
	require.NoError(t, protojson.Unmarshal(env.Metrics, m))
	return env, td, m
}

func TestV2JSON(t *testing.T) {
	id, td := fixedTrace()
	q := fixture()
	h, _ := newServer(t, q, setup{})
	rec := get(t, h, "/api/v2/traces/"+id.String(), nil)
	require.Equal(t, http.StatusOK, rec.Code)
	env, got, m := decodeV2JSON(t, rec.Body.Bytes())
	require.True(t, proto.Equal(td, got))
	require.Nil(t, env.Status, "a complete trace has no status")
	require.Nil(t, env.Message)

	// Inspected bytes add up the querier's answers: the ingesters' trace and both blocks'.
	first, _ := proto.Marshal(q.blocks["00000000-0000-0000-0000-000000000000"])
	second, _ := proto.Marshal(q.blocks["ffffffff-ffff-ffff-ffff-ffffffffffff"])
	require.EqualValues(t, proto.Size(td)+len(first)+len(second), m.InspectedBytes)

	var top map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &top))
	require.Equal(t, []string{"metrics", "trace"}, slices.Sorted(mapsKeys(top)))
}

func TestProtobuf(t *testing.T) {
	id, td := fixedTrace()
	for _, accept := range []string{"application/protobuf", "application/x-protobuf"} {
		t.Run("v1/"+accept, func(t *testing.T) {
			h, _ := newServer(t, fixture(), setup{})
			rec := get(t, h, "/api/traces/"+id.String(), map[string]string{"Accept": accept})
			require.Equal(t, http.StatusOK, rec.Code)
			require.Equal(t, "application/protobuf", rec.Header().Get("Content-Type"))
			got := &tracev1.TracesData{}
			require.NoError(t, proto.Unmarshal(rec.Body.Bytes(), got))
			require.True(t, proto.Equal(td, got))
		})
		t.Run("v2/"+accept, func(t *testing.T) {
			h, _ := newServer(t, fixture(), setup{})
			rec := get(t, h, "/api/v2/traces/"+id.String(), map[string]string{"Accept": accept})
			require.Equal(t, http.StatusOK, rec.Code)
			require.Equal(t, "application/protobuf", rec.Header().Get("Content-Type"))
			resp := &vivacepb.TraceByIDResponse{}
			require.NoError(t, proto.Unmarshal(rec.Body.Bytes(), resp))
			require.Equal(t, vivacepb.PartialStatus_COMPLETE, resp.Status)
			require.Empty(t, resp.Message)
			require.NotZero(t, resp.GetMetrics().GetInspectedBytes())
			got := &tracev1.TracesData{}
			require.NoError(t, proto.Unmarshal(resp.Trace, got))
			require.True(t, proto.Equal(td, got))
		})
	}
}

func TestAcceptHeader(t *testing.T) {
	id, _ := fixedTrace()
	tests := []struct {
		accept string
		proto  bool
	}{
		{"", false},
		{"application/json", false},
		{"*/*", false},
		{"text/html, application/xhtml+xml", false},
		{"application/protobufs", false},
		{"application/x-protobuf-text", false},
		{"application/protobuf", true},
		{"application/x-protobuf", true},
		{"application/json, application/protobuf", true},
		{"application/protobuf;q=0.9, application/json;q=0.8", true},
		{" application/protobuf ; charset=utf-8 ", true},
		{"Application/Protobuf", true}, // media types are case-insensitive (RFC 9110 8.3.1)
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q", tt.accept), func(t *testing.T) {
			h, _ := newServer(t, fixture(), setup{})
			for _, path := range []string{"/api/traces/", "/api/v2/traces/"} {
				rec := get(t, h, path+id.String(), map[string]string{"Accept": tt.accept})
				require.Equal(t, http.StatusOK, rec.Code)
				want := "application/json"
				if tt.proto {
					want = "application/protobuf"
				}
				require.Equal(t, want, rec.Header().Get("Content-Type"), path)
			}
		})
	}

	t.Run("several Accept lines", func(t *testing.T) {
		h, _ := newServer(t, fixture(), setup{})
		req, err := http.NewRequest(http.MethodGet, "/api/traces/"+id.String(), nil)
		require.NoError(t, err)
		req.Header.Add("Accept", "application/json")
		req.Header.Add("Accept", "application/protobuf")
		rec := serve(h, req)
		require.Equal(t, http.StatusOK, rec.Code)
		require.Equal(t, "application/protobuf", rec.Header().Get("Content-Type"))
	})
}

// TestV2Truncation: over max_bytes_per_trace, v2 answers the longest prefix
// of whole spans that fits, marked PARTIAL; v1 answers 422.
func TestV2Truncation(t *testing.T) {
	id, td := fixedTrace()
	size := proto.Size(td)
	var order []string // span IDs in answer order
	for _, rs := range td.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				order = append(order, string(s.SpanId))
			}
		}
	}
	tests := []struct {
		name    string
		limit   int
		partial bool
	}{
		{"no limit", 0, false},
		{"limit far above", size * 10, false},
		{"limit exactly the size", size, false},
		{"one byte short", size - 1, true},
		{"half", size / 2, true},
		{"room for two spans", proto.Size(prefixTrace(td, 2)) + 20, true},
		{"smaller than any span", 10, true},
		{"one byte", 1, true},
	}
	for _, tt := range tests {
		for _, asProto := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/proto=%v", tt.name, asProto), func(t *testing.T) {
				h, _ := newServer(t, fixture(), setup{limits: limits{"single-tenant": tt.limit}})
				headers := map[string]string{}
				if asProto {
					headers["Accept"] = "application/protobuf"
				}
				rec := get(t, h, "/api/v2/traces/"+id.String(), headers)
				require.Equal(t, http.StatusOK, rec.Code)

				var got *tracev1.TracesData
				var status, message string
				if asProto {
					resp := &vivacepb.TraceByIDResponse{}
					require.NoError(t, proto.Unmarshal(rec.Body.Bytes(), resp))
					got = &tracev1.TracesData{}
					require.NoError(t, proto.Unmarshal(resp.Trace, got))
					if resp.Status == vivacepb.PartialStatus_PARTIAL {
						status = "PARTIAL"
					}
					message = resp.Message
					if tt.limit > 0 {
						require.LessOrEqual(t, len(resp.Trace), tt.limit, "the trace's encoding fits")
					}
				} else {
					env, td, _ := decodeV2JSON(t, rec.Body.Bytes())
					got = td
					if env.Status != nil {
						status = *env.Status
					}
					if env.Message != nil {
						message = *env.Message
					}
				}
				if tt.limit > 0 {
					require.LessOrEqual(t, proto.Size(got), tt.limit, "the trace's encoding fits")
				}
				if !tt.partial {
					require.Empty(t, status)
					require.Empty(t, message)
					require.True(t, proto.Equal(td, got))
					return
				}
				require.Equal(t, "PARTIAL", status)
				require.Equal(t, fmt.Sprintf("Trace exceeds maximum size of %d bytes, a partial trace is returned", tt.limit), message)
				var gotOrder []string
				for _, rs := range got.ResourceSpans {
					for _, ss := range rs.ScopeSpans {
						for _, s := range ss.Spans {
							gotOrder = append(gotOrder, string(s.SpanId))
						}
					}
				}
				require.Less(t, len(gotOrder), len(order))
				require.True(t, slices.Equal(order[:len(gotOrder)], gotOrder), "not a prefix of the spans")
			})
		}
	}

	t.Run("largest prefix", func(t *testing.T) {
		// With the limit at the size of the first k spans' own trace, at least k spans come back.
		for k := 1; k < len(order); k++ {
			prefix := prefixTrace(td, k)
			limit := proto.Size(prefix)
			h, _ := newServer(t, fixture(), setup{limits: limits{"single-tenant": limit}})
			rec := get(t, h, "/api/v2/traces/"+id.String(), map[string]string{"Accept": "application/protobuf"})
			resp := &vivacepb.TraceByIDResponse{}
			require.NoError(t, proto.Unmarshal(rec.Body.Bytes(), resp))
			got := &tracev1.TracesData{}
			require.NoError(t, proto.Unmarshal(resp.Trace, got))
			require.LessOrEqual(t, proto.Size(got), limit)
			require.GreaterOrEqual(t, model.SpanCount(got), k-1, "limit %d", limit)
		}
	})
}

// prefixTrace is td with only its first k spans.
func prefixTrace(td *tracev1.TracesData, k int) *tracev1.TracesData {
	out := &tracev1.TracesData{}
	for _, rs := range td.ResourceSpans {
		ors := &tracev1.ResourceSpans{Resource: rs.Resource, SchemaUrl: rs.SchemaUrl}
		for _, ss := range rs.ScopeSpans {
			oss := &tracev1.ScopeSpans{Scope: ss.Scope, SchemaUrl: ss.SchemaUrl}
			for _, s := range ss.Spans {
				if k == 0 {
					break
				}
				oss.Spans = append(oss.Spans, s)
				k--
			}
			if len(oss.Spans) > 0 {
				ors.ScopeSpans = append(ors.ScopeSpans, oss)
			}
		}
		if len(ors.ScopeSpans) > 0 {
			out.ResourceSpans = append(out.ResourceSpans, ors)
		}
	}
	return out
}

func TestErrors(t *testing.T) {
	id, td := fixedTrace()
	size := proto.Size(td)
	hexID := id.String()
	long := strings.Repeat("a", 33)
	tests := []struct {
		name    string
		setup   setup
		q       func(*fakeQuerier)
		path    string
		headers map[string]string
		code    int
		body    string
		v1Only  bool
	}{
		{name: "unknown trace", path: "/api/traces/ff", code: 404, body: "trace not found\n"},
		{name: "bad hex", path: "/api/traces/zz", code: 400, body: `invalid trace ID: "zz" has 'z' at position 1, only hex digits are allowed` + "\n"},
		{name: "hex and garbage", path: "/api/traces/" + hexID[:31] + "g", code: 400, body: `invalid trace ID: "` + hexID[:31] + `g" has 'g' at position 32, only hex digits are allowed` + "\n"},
		{name: "too long", path: "/api/traces/" + long, code: 400, body: `invalid trace ID: "` + long + `" has 33 characters, at most 32 hex digits are allowed` + "\n"},
		{name: "all zeros", path: "/api/traces/0000", code: 400, body: "invalid trace ID: all zeros\n"},
		{
			name: "no tenant under multitenancy", setup: setup{multitenancy: true},
			path: "/api/traces/" + hexID, code: 401,
			body: "no tenant: the X-Scope-OrgID header is required when multitenancy is enabled\n",
		},
		{
			name: "invalid tenant", setup: setup{multitenancy: true}, headers: map[string]string{"X-Scope-OrgID": "a/b"},
			path: "/api/traces/" + hexID, code: 401,
			body: `tenant "a/b": tenant ID 'a/b' contains unsupported character '/'` + "\n",
		},
		{
			name: "over max bytes per trace", setup: setup{limits: limits{"single-tenant": size - 1}},
			path: "/api/traces/" + hexID, code: 422,
			body: fmt.Sprintf("trace exceeds max size (max bytes: %d)\n", size-1), v1Only: true,
		},
		{
			name: "over max bytes per trace, protobuf", setup: setup{limits: limits{"single-tenant": 100}},
			path: "/api/traces/" + hexID, headers: map[string]string{"Accept": "application/protobuf"}, code: 422,
			body: "trace exceeds max size (max bytes: 100)\n", v1Only: true,
		},
		{
			name: "limit of another tenant", setup: setup{multitenancy: true, limits: limits{"other": 100}},
			headers: map[string]string{"X-Scope-OrgID": "team-1"}, path: "/api/traces/" + hexID, code: 200,
		},
		{name: "bad start", path: "/api/traces/" + hexID + "?start=abc", code: 400, body: `start="abc" is not a time in unix seconds` + "\n"},
		{name: "negative start", path: "/api/traces/" + hexID + "?start=-1", code: 400, body: `start="-1" is not a time in unix seconds` + "\n"},
		{name: "bad end", path: "/api/traces/" + hexID + "?end=1.5", code: 400, body: `end="1.5" is not a time in unix seconds` + "\n"},
		{name: "start in milliseconds overflow", path: "/api/traces/" + hexID + "?start=99999999999999999999", code: 400, body: `start="99999999999999999999" is not a time in unix seconds` + "\n"},
		{name: "end before start", path: "/api/traces/" + hexID + "?start=10&end=5", code: 400, body: "end (5) is before start (10)\n"},
		{name: "end equal to start", path: "/api/traces/" + hexID + "?start=10&end=10", code: 200},
		{name: "start only", path: "/api/traces/" + hexID + "?start=10", code: 200},
		{name: "end only", path: "/api/traces/" + hexID + "?end=10", code: 200},
		{name: "empty start and end", path: "/api/traces/" + hexID + "?start=&end=", code: 200},
		{
			name: "querier error", q: func(q *fakeQuerier) { q.err = errors.New("boom") },
			path: "/api/traces/" + hexID, code: 500, body: "find trace " + hexID + ": boom\n",
		},
		{
			name: "undecodable querier answer", q: func(q *fakeQuerier) { q.raw = []byte{0xff, 0xff} },
			// Every job answers it: the answers are combined, which checks them.
			path: "/api/traces/" + hexID, code: 500, body: "combine querier answers: invalid trace: malformed OTLP trace data:*",
		},
	}
	for _, tt := range tests {
		for _, v := range []string{"v1", "v2"} {
			if v == "v2" && tt.v1Only {
				continue
			}
			t.Run(v+"/"+tt.name, func(t *testing.T) {
				q := fixture()
				if tt.q != nil {
					tt.q(q)
				}
				h, _ := newServer(t, q, tt.setup)
				path := tt.path
				if v == "v2" {
					path = strings.Replace(path, "/api/traces/", "/api/v2/traces/", 1)
				}
				rec := get(t, h, path, tt.headers)
				require.Equal(t, tt.code, rec.Code, rec.Body.String())
				if tt.code == http.StatusOK {
					return
				}
				if prefix, ok := strings.CutSuffix(tt.body, "*"); ok {
					require.True(t, strings.HasPrefix(rec.Body.String(), prefix), rec.Body.String())
				} else {
					require.Equal(t, tt.body, rec.Body.String())
				}
				require.Equal(t, "text/plain; charset=utf-8", rec.Header().Get("Content-Type"))
				if tt.code == http.StatusBadRequest || tt.code == http.StatusUnauthorized {
					require.Empty(t, q.takeJobs(), "a bad request reaches no querier")
				}
			})
		}
	}
}

func TestRoutes(t *testing.T) {
	id, _ := fixedTrace()
	h, _ := newServer(t, fixture(), setup{})

	rec := get(t, h, "/api/echo", nil)
	require.Equal(t, http.StatusOK, rec.Code)
	require.Equal(t, "echo\n", rec.Body.String())

	for _, path := range []string{"/api/traces/" + id.String(), "/api/v2/traces/" + id.String()} {
		req, err := http.NewRequest(http.MethodPost, path, nil)
		require.NoError(t, err)
		require.Equal(t, http.StatusMethodNotAllowed, serve(h, req).Code, path)
	}
	require.Equal(t, http.StatusNotFound, get(t, h, "/api/traces/", nil).Code)
	require.Equal(t, http.StatusNotFound, get(t, h, "/api/v3/traces/"+id.String(), nil).Code)
}

// TestJobs: a lookup is one ingester job and query_shards block jobs whose
// block-ID ranges cover the ID space without overlap, each with the
// tenant and the time range.
func TestJobs(t *testing.T) {
	id, _ := fixedTrace()
	for _, shards := range []int{1, 2, 3, 4, 7, 16, 256} {
		t.Run(fmt.Sprint(shards), func(t *testing.T) {
			q := fixture()
			// A block at each end of the ID space and on each side of every shard boundary.
			q.blocks = map[string]*tracev1.TracesData{}
			for i := range shards + 1 {
				b := uint64(i) << 32 / uint64(shards)
				if b > 0 {
					q.blocks[fmt.Sprintf("%08x-ffff-ffff-ffff-ffffffffffff", b-1)] = nil
				}
				if b < 1<<32 {
					q.blocks[fmt.Sprintf("%08x-0000-0000-0000-000000000000", b)] = nil
				}
			}
			h, _ := newServer(t, q, setup{shards: shards, multitenancy: true})
			rec := get(t, h, "/api/traces/"+id.String()+"?start=100&end=200", map[string]string{"X-Scope-OrgID": "team-1"})
			require.Equal(t, http.StatusOK, rec.Code) // from the ingesters; the blocks hold no spans

			jobs := q.takeJobs()
			require.Len(t, jobs, shards+1)
			seen := map[string]int{}
			ingesterJobs := 0
			for _, j := range jobs {
				require.Equal(t, "team-1", j.tenant)
				require.Equal(t, id[:], j.req.TraceId)
				require.EqualValues(t, 100, j.req.Start)
				require.EqualValues(t, 200, j.req.End)
				switch j.req.QueryMode {
				case "ingesters":
					ingesterJobs++
					require.Empty(t, j.req.BlockStart)
					require.Empty(t, j.req.BlockEnd)
				case "blocks":
					require.LessOrEqual(t, j.req.BlockStart, j.req.BlockEnd)
					for _, b := range q.blockIDs(j.req) {
						seen[b]++
					}
				default:
					t.Fatalf("query mode %q", j.req.QueryMode)
				}
			}
			require.Equal(t, 1, ingesterJobs)
			for b := range q.blocks {
				require.Equal(t, 1, seen[b], "block %s in %d jobs", b, seen[b])
			}
		})
	}

	t.Run("single tenant ignores the header", func(t *testing.T) {
		q := fixture()
		h, _ := newServer(t, q, setup{})
		rec := get(t, h, "/api/traces/"+id.String(), map[string]string{"X-Scope-OrgID": "team-1"})
		require.Equal(t, http.StatusOK, rec.Code)
		for _, j := range q.takeJobs() {
			require.Equal(t, "single-tenant", j.tenant)
		}
	})
}

func TestRequestMetrics(t *testing.T) {
	id, _ := fixedTrace()
	h, reg := newServer(t, fixture(), setup{})
	get(t, h, "/api/traces/"+id.String(), nil)
	get(t, h, "/api/traces/ff", nil)
	get(t, h, "/api/v2/traces/zz", nil)
	got := requestCounts(t, reg)
	require.Equal(t, map[string]float64{
		"trace_by_id_v1 200": 1,
		"trace_by_id_v1 404": 1,
		"trace_by_id_v2 400": 1,
	}, got)
}

// requestCounts is vivace_query_frontend_requests_total by "endpoint code".
func requestCounts(t testing.TB, reg prometheus.Gatherer) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	got := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "vivace_query_frontend_requests_total" {
			continue
		}
		for _, m := range mf.Metric {
			var endpoint, code string
			for _, l := range m.Label {
				switch l.GetName() {
				case "endpoint":
					endpoint = l.GetValue()
				case "code":
					code = l.GetValue()
				}
			}
			got[endpoint+" "+code] = m.GetCounter().GetValue()
		}
	}
	return got
}
