package frontend_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/mux"
	"github.com/grafana/dskit/services"
	"github.com/grafana/dskit/user"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	commonv1 "go.opentelemetry.io/proto/otlp/common/v1"
	resourcev1 "go.opentelemetry.io/proto/otlp/resource/v1"
	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/vivace-dev/vivace/frontend"
	"github.com/vivace-dev/vivace/internal/model"
	"github.com/vivace-dev/vivace/internal/vivacepb"
)

// job is one request the frontend sent to the querier.
type job struct {
	tenant string
	req    *vivacepb.TraceByIDRequest
}

// fakeQuerier answers ingester jobs with ingester and block jobs with the
// parts of the blocks whose IDs are in the job's range, like a querier over
// those blocks. Every answer reports its length as inspected bytes.
type fakeQuerier struct {
	id       model.TraceID
	ingester *tracev1.TracesData
	blocks   map[string]*tracev1.TracesData // block ID → the part it holds
	raw      []byte                         // when set, every answer is these bytes
	err      error

	mu   sync.Mutex
	jobs []job
}

func (f *fakeQuerier) FindTraceByID(ctx context.Context, req *vivacepb.TraceByIDRequest) (*vivacepb.TraceByIDResponse, error) {
	tenant, err := user.ExtractOrgID(ctx)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.jobs = append(f.jobs, job{tenant, req})
	f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	if f.raw != nil {
		return &vivacepb.TraceByIDResponse{Trace: f.raw, Metrics: &vivacepb.TraceByIDMetrics{InspectedBytes: uint64(len(f.raw))}}, nil
	}
	if model.TraceID(req.TraceId) != f.id {
		return &vivacepb.TraceByIDResponse{Metrics: &vivacepb.TraceByIDMetrics{}}, nil
	}
	var parts []*tracev1.TracesData
	switch req.QueryMode {
	case "ingesters":
		parts = append(parts, f.ingester)
	case "blocks":
		for _, id := range f.blockIDs(req) {
			parts = append(parts, f.blocks[id])
		}
	default:
		return nil, &unexpectedMode{req.QueryMode}
	}
	combined := model.Combine(parts...)
	resp := &vivacepb.TraceByIDResponse{Metrics: &vivacepb.TraceByIDMetrics{}}
	if combined != nil {
		if resp.Trace, err = proto.Marshal(combined); err != nil {
			return nil, err
		}
	}
	resp.Metrics.InspectedBytes = uint64(len(resp.Trace))
	return resp, nil
}

// blockIDs are the blocks in the range of a block job, in ID order.
func (f *fakeQuerier) blockIDs(req *vivacepb.TraceByIDRequest) []string {
	var out []string
	for id := range f.blocks {
		if id >= req.BlockStart && id <= req.BlockEnd {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

type unexpectedMode struct{ mode string }

func (e *unexpectedMode) Error() string { return "unexpected query mode " + e.mode }

func (f *fakeQuerier) takeJobs() []job {
	f.mu.Lock()
	defer f.mu.Unlock()
	j := f.jobs
	f.jobs = nil
	return j
}

// limits is a fixed max_bytes_per_trace per tenant.
type limits map[string]int

// testLimits are a setup's limits.
type testLimits struct {
	bytes     limits
	maxSearch map[string]time.Duration
}

func (l testLimits) MaxBytesPerTrace(tenant string) int { return l.bytes[tenant] }

func (l testLimits) MaxSearchDuration(tenant string) time.Duration { return l.maxSearch[tenant] }

type setup struct {
	shards         int
	multitenancy   bool
	limits         limits
	maxSearch      map[string]time.Duration // max_search_duration per tenant
	maxOutstanding int                      // default when 0
}

// newServer serves the read API of a running frontend whose local workers
// run the jobs on q.
func newServer(t testing.TB, q frontend.Querier, s setup) (http.Handler, *prometheus.Registry) {
	t.Helper()
	f, h, reg := newFrontend(t, s)
	f.RunLocalWorkers(q, 4)
	start(t, f)
	return h, reg
}

// newFrontend makes a frontend with the default config changed by s; it is
// not started and has no workers.
func newFrontend(t testing.TB, s setup) (*frontend.Frontend, http.Handler, *prometheus.Registry) {
	t.Helper()
	var cfg frontend.Config
	cfg.RegisterFlagsAndApplyDefaults("query-frontend", flag.NewFlagSet("", flag.PanicOnError))
	if s.shards > 0 {
		cfg.TraceByID.QueryShards = s.shards
	}
	if s.maxOutstanding > 0 {
		cfg.MaxOutstandingPerTenant = s.maxOutstanding
		cfg.Search.QueryShards = 1
	}
	reg := prometheus.NewPedanticRegistry()
	f, err := frontend.New(cfg, testLimits{s.limits, s.maxSearch}, s.multitenancy, slog.New(slog.NewTextHandler(io.Discard, nil)), reg)
	require.NoError(t, err)
	r := mux.NewRouter()
	f.RegisterRoutes(r)
	return f, r, reg
}

// start runs the frontend until the test ends.
func start(t testing.TB, f *frontend.Frontend) {
	t.Helper()
	require.NoError(t, services.StartAndAwaitRunning(context.Background(), f))
	t.Cleanup(func() {
		require.NoError(t, services.StopAndAwaitTerminated(context.Background(), f))
	})
}

// get serves GET path with the given headers.
func get(t testing.TB, h http.Handler, path string, headers map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code == http.StatusOK && strings.Contains(path, "/traces/") {
		require.Equal(t, strconv.Itoa(rec.Body.Len()), rec.Header().Get("Content-Length"))
	}
	return rec
}

// normalizeJSON removes protojson's randomized whitespace and indents.
func normalizeJSON(t testing.TB, b []byte) []byte {
	t.Helper()
	var compact bytes.Buffer
	require.NoError(t, json.Compact(&compact, b), "invalid JSON: %s", b)
	var out bytes.Buffer
	require.NoError(t, json.Indent(&out, compact.Bytes(), "", "  "))
	out.WriteByte('\n')
	return out.Bytes()
}

// fixedTrace is a small trace that does not change: two services, every
// OTLP value type, every span field Tempo shows, events, links, statuses.
func fixedTrace() (model.TraceID, *tracev1.TracesData) {
	id := model.TraceID{0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f, 0x10}
	base := uint64(time.Date(2026, time.March, 14, 15, 9, 26, 0, time.UTC).UnixNano())
	str := func(k, v string) *commonv1.KeyValue {
		return &commonv1.KeyValue{Key: k, Value: &commonv1.AnyValue{Value: &commonv1.AnyValue_StringValue{StringValue: v}}}
	}
	span := func(sid, parent byte, name string, kind tracev1.Span_SpanKind, start, end uint64) *tracev1.Span {
		s := &tracev1.Span{
			TraceId: id[:], SpanId: []byte{0, 0, 0, 0, 0, 0, 0, sid}, Name: name, Kind: kind,
			StartTimeUnixNano: base + start, EndTimeUnixNano: base + end,
		}
		if parent != 0 {
			s.ParentSpanId = []byte{0, 0, 0, 0, 0, 0, 0, parent}
		}
		return s
	}
	root := span(1, 0, "POST /api/checkout", tracev1.Span_SPAN_KIND_SERVER, 0, 250_000_000)
	root.TraceState = "congo=t61rcWkgMzE"
	root.Flags = 0x101
	root.Status = &tracev1.Status{Code: tracev1.Status_STATUS_CODE_OK}
	root.Attributes = []*commonv1.KeyValue{
		str("http.request.method", "POST"),
		{Key: "http.response.status_code", Value: &commonv1.AnyValue{Value: &commonv1.AnyValue_IntValue{IntValue: 200}}},
		{Key: "app.cache.hit", Value: &commonv1.AnyValue{Value: &commonv1.AnyValue_BoolValue{BoolValue: true}}},
		{Key: "app.order.amount", Value: &commonv1.AnyValue{Value: &commonv1.AnyValue_DoubleValue{DoubleValue: 123.45}}},
		{Key: "app.request.digest", Value: &commonv1.AnyValue{Value: &commonv1.AnyValue_BytesValue{BytesValue: []byte{0xde, 0xad, 0xbe, 0xef}}}},
		{Key: "app.product.ids", Value: &commonv1.AnyValue{Value: &commonv1.AnyValue_ArrayValue{ArrayValue: &commonv1.ArrayValue{Values: []*commonv1.AnyValue{
			{Value: &commonv1.AnyValue_StringValue{StringValue: "OLJCESPC7Z"}},
			{Value: &commonv1.AnyValue_IntValue{IntValue: 3}},
		}}}}},
		{Key: "app.user", Value: &commonv1.AnyValue{Value: &commonv1.AnyValue_KvlistValue{KvlistValue: &commonv1.KeyValueList{Values: []*commonv1.KeyValue{
			str("id", "u-42"),
			{Key: "roles", Value: &commonv1.AnyValue{Value: &commonv1.AnyValue_ArrayValue{ArrayValue: &commonv1.ArrayValue{Values: []*commonv1.AnyValue{
				{Value: &commonv1.AnyValue_StringValue{StringValue: "customer"}},
			}}}}},
		}}}}},
		{Key: "app.empty", Value: &commonv1.AnyValue{}},
	}
	root.Events = []*tracev1.Span_Event{{TimeUnixNano: base + 1_000_000, Name: "message", Attributes: []*commonv1.KeyValue{str("message.type", "RECEIVED")}, DroppedAttributesCount: 1}}
	charge := span(2, 1, "chargeCard", tracev1.Span_SPAN_KIND_CLIENT, 10_000_000, 200_000_000)
	charge.Status = &tracev1.Status{Code: tracev1.Status_STATUS_CODE_ERROR, Message: "payment declined"}
	charge.Events = []*tracev1.Span_Event{{TimeUnixNano: base + 190_000_000, Name: "exception", Attributes: []*commonv1.KeyValue{str("exception.type", "Error")}}}
	charge.Links = []*tracev1.Span_Link{{TraceId: bytes.Repeat([]byte{0xab}, 16), SpanId: bytes.Repeat([]byte{0xcd}, 8), TraceState: "rojo=00f067aa0ba902b7", Attributes: []*commonv1.KeyValue{str("link.kind", "follows_from")}, Flags: 0x101}}
	charge.DroppedAttributesCount = 2
	prepare := span(3, 1, "prepareOrder", tracev1.Span_SPAN_KIND_INTERNAL, 5_000_000, 9_000_000)
	pay := span(4, 2, "oteldemo.PaymentService/Charge", tracev1.Span_SPAN_KIND_SERVER, 20_000_000, 180_000_000)
	pay.Flags = 0x301

	td := &tracev1.TracesData{ResourceSpans: []*tracev1.ResourceSpans{
		{
			Resource: &resourcev1.Resource{Attributes: []*commonv1.KeyValue{
				str("service.name", "checkout"),
				{Key: "process.pid", Value: &commonv1.AnyValue{Value: &commonv1.AnyValue_IntValue{IntValue: 1234}}},
			}},
			ScopeSpans: []*tracev1.ScopeSpans{{
				Scope:     &commonv1.InstrumentationScope{Name: "github.com/shop/checkout", Version: "2.3.1"},
				Spans:     []*tracev1.Span{root, charge, prepare},
				SchemaUrl: "https://opentelemetry.io/schemas/1.26.0",
			}},
			SchemaUrl: "https://opentelemetry.io/schemas/1.26.0",
		},
		{
			Resource:   &resourcev1.Resource{Attributes: []*commonv1.KeyValue{str("service.name", "payment")}, DroppedAttributesCount: 1},
			ScopeSpans: []*tracev1.ScopeSpans{{Scope: &commonv1.InstrumentationScope{Name: "payment"}, Spans: []*tracev1.Span{pay}}},
		},
	}}
	return id, td
}

func serve(h http.Handler, req *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func mapsKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}
