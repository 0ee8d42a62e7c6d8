package integration

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/vivace-dev/vivace/internal/model"
	"github.com/vivace-dev/vivace/internal/model/modeltest"
	"github.com/vivace-dev/vivace/internal/vivacepb"
)

// recorder keeps every export request the server acknowledged, so tests
// compare what comes back with exactly what went over the wire.
type recorder struct {
	mu   sync.Mutex
	reqs []*coltracepb.ExportTraceServiceRequest
}

func (r *recorder) add(req *coltracepb.ExportTraceServiceRequest) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reqs = append(r.reqs, req)
}

// traces is what the recorded requests hold, by trace ID.
func (r *recorder) traces(t testing.TB) map[model.TraceID]*tracev1.TracesData {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	parts := map[model.TraceID][]*tracev1.TracesData{}
	for _, req := range r.reqs {
		b, err := proto.Marshal(req)
		require.NoError(t, err)
		split, err := model.SplitByTrace(b)
		require.NoError(t, err)
		for i, id := range split.IDs {
			td := &tracev1.TracesData{}
			require.NoError(t, proto.Unmarshal(split.Traces[i], td))
			parts[id] = append(parts[id], td)
		}
	}
	out := map[model.TraceID]*tracev1.TracesData{}
	for id, p := range parts {
		out[id] = model.Combine(p...)
	}
	return out
}

// sendSDK emits n traces through the OpenTelemetry Go SDK with its OTLP
// exporter over protocol "grpc" or "http", using every attribute type the
// SDK has, events, links, statuses and kinds.
func sendSDK(t testing.TB, v *vivace, protocol, tenant string, n int) *recorder {
	t.Helper()
	ctx := context.Background()
	rec := &recorder{}
	headers := map[string]string{}
	if tenant != "" {
		headers["X-Scope-OrgID"] = tenant
	}
	var exp *otlptrace.Exporter
	var err error
	switch protocol {
	case "grpc":
		exp, err = otlptracegrpc.New(ctx,
			otlptracegrpc.WithEndpoint(v.OTLPGRPC), otlptracegrpc.WithInsecure(), otlptracegrpc.WithHeaders(headers),
			otlptracegrpc.WithDialOption(grpc.WithUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
				err := invoker(ctx, method, req, reply, cc, opts...)
				if err == nil {
					rec.add(proto.Clone(req.(proto.Message)).(*coltracepb.ExportTraceServiceRequest))
				}
				return err
			})))
	case "http":
		exp, err = otlptracehttp.New(ctx,
			otlptracehttp.WithEndpoint(v.OTLPHTTP), otlptracehttp.WithInsecure(), otlptracehttp.WithHeaders(headers),
			otlptracehttp.WithCompression(otlptracehttp.GzipCompression),
			otlptracehttp.WithHTTPClient(&http.Client{Transport: recordingTransport{rec}}))
	default:
		t.Fatalf("unknown protocol %q", protocol)
	}
	require.NoError(t, err)
	res, err := resource.New(ctx, resource.WithAttributes(
		attribute.String("service.name", "checkout-"+protocol),
		attribute.String("k8s.namespace.name", "shop"),
		attribute.Int64("host.cpus", 8),
	))
	require.NoError(t, err)
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp, sdktrace.WithMaxExportBatchSize(64)), sdktrace.WithResource(res))
	tracer := tp.Tracer("vivace.integration", trace.WithInstrumentationVersion("1.2.3"),
		trace.WithInstrumentationAttributes(attribute.String("scope.attr", "x")))
	var prev trace.SpanContext
	for i := range n {
		rctx, root := tracer.Start(ctx, fmt.Sprintf("GET /orders/%d", i), trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(
				attribute.String("http.request.method", "GET"),
				attribute.Int64("http.response.status_code", 200),
				attribute.Float64("app.ratio", 0.25+float64(i)),
				attribute.Bool("app.cached", i%2 == 0),
				attribute.StringSlice("app.tags", []string{"a", "b", fmt.Sprint(i)}),
				attribute.Int64Slice("app.sizes", []int64{1, 2, int64(i)}),
				attribute.Float64Slice("app.weights", []float64{0.5, 1.5}),
				attribute.BoolSlice("app.flags", []bool{true, false}),
			))
		if prev.IsValid() {
			root.AddLink(trace.Link{SpanContext: prev, Attributes: []attribute.KeyValue{attribute.String("link.kind", "previous")}})
		}
		prev = root.SpanContext()
		for j := range 3 {
			kind := []trace.SpanKind{trace.SpanKindClient, trace.SpanKindInternal, trace.SpanKindProducer}[j]
			_, child := tracer.Start(rctx, fmt.Sprintf("child-%d", j), trace.WithSpanKind(kind))
			child.AddEvent("cache miss", trace.WithAttributes(attribute.Int64("attempt", int64(j))))
			if j == 2 {
				child.RecordError(fmt.Errorf("boom %d", i))
				child.SetStatus(codes.Error, "queue full")
			}
			child.End()
		}
		root.SetStatus(codes.Ok, "")
		root.End()
	}
	require.NoError(t, tp.ForceFlush(ctx))
	require.NoError(t, tp.Shutdown(ctx))
	got := rec.traces(t)
	require.Len(t, got, n, "every trace must have been acknowledged")
	return rec
}

type recordingTransport struct{ rec *recorder }

func (rt recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return nil, err
	}
	req.Body = io.NopCloser(bytes.NewReader(body))
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		return resp, err
	}
	raw := body
	if req.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		if raw, err = io.ReadAll(zr); err != nil {
			return nil, err
		}
	}
	m := &coltracepb.ExportTraceServiceRequest{}
	if err := proto.Unmarshal(raw, m); err != nil {
		return nil, err
	}
	rt.rec.add(m)
	return resp, nil
}

// sendRaw exports generated traces holding every OTLP value type (maps and
// bytes included, which the SDK cannot make) over OTLP gRPC.
func sendRaw(t testing.TB, v *vivace, tenant string, seed uint64, n int) *recorder {
	t.Helper()
	conn, err := grpc.NewClient(v.OTLPGRPC, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	client := coltracepb.NewTraceServiceClient(conn)
	ctx := context.Background()
	if tenant != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "x-scope-orgid", tenant)
	}
	rng := rand.New(rand.NewPCG(seed, seed))
	_, traces := modeltest.Traces(rng, n, 20)
	rec := &recorder{}
	for _, td := range traces {
		req := &coltracepb.ExportTraceServiceRequest{ResourceSpans: td.ResourceSpans}
		_, err := client.Export(ctx, req)
		require.NoError(t, err)
		rec.add(req)
	}
	return rec
}

// fetch reads a trace through the API: api "v1" or "v2", as JSON or protobuf.
// It returns the HTTP status and, on 200, the trace.
func fetch(t testing.TB, v *vivace, id model.TraceID, api string, asProto bool, tenant string) (int, *tracev1.TracesData) {
	t.Helper()
	path := "/api/traces/" + id.String()
	if api == "v2" {
		path = "/api/v2/traces/" + id.String()
	}
	var headers []string
	if asProto {
		headers = append(headers, "Accept", "application/protobuf")
	}
	if tenant != "" {
		headers = append(headers, "X-Scope-OrgID", tenant)
	}
	code, body, _ := v.get(path, headers...)
	if code != http.StatusOK {
		return code, nil
	}
	td := &tracev1.TracesData{}
	switch {
	case asProto && api == "v1":
		require.NoError(t, proto.Unmarshal(body, td))
	case asProto:
		resp := &vivacepb.TraceByIDResponse{}
		require.NoError(t, proto.Unmarshal(body, resp))
		require.Equal(t, vivacepb.PartialStatus_COMPLETE, resp.Status)
		require.NoError(t, proto.Unmarshal(resp.Trace, td))
	case api == "v1":
		var doc struct {
			Batches []json.RawMessage `json:"batches"`
		}
		require.NoError(t, json.Unmarshal(body, &doc))
		for _, b := range doc.Batches {
			rs := &tracev1.ResourceSpans{}
			require.NoError(t, protojson.Unmarshal(b, rs))
			td.ResourceSpans = append(td.ResourceSpans, rs)
		}
	default:
		var doc struct {
			Trace json.RawMessage `json:"trace"`
		}
		require.NoError(t, json.Unmarshal(body, &doc))
		require.NoError(t, protojson.Unmarshal(doc.Trace, td))
	}
	return code, td
}

// flatten turns a trace into one line per span holding the span with its
// resource and scope, sorted: two traces are the same when these are.
func flatten(t testing.TB, td *tracev1.TracesData) []string {
	t.Helper()
	var out []string
	for _, rs := range td.GetResourceSpans() {
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				one := &tracev1.ResourceSpans{Resource: rs.Resource, SchemaUrl: rs.SchemaUrl,
					ScopeSpans: []*tracev1.ScopeSpans{{Scope: ss.Scope, SchemaUrl: ss.SchemaUrl, Spans: []*tracev1.Span{s}}}}
				b, err := proto.MarshalOptions{Deterministic: true}.Marshal(one)
				require.NoError(t, err)
				out = append(out, base64.StdEncoding.EncodeToString(b))
			}
		}
	}
	slices.Sort(out)
	return out
}

// requireAllFound checks that every recorded trace comes back exactly,
// through every API shape.
func requireAllFound(t testing.TB, v *vivace, want map[model.TraceID]*tracev1.TracesData, tenant string) {
	t.Helper()
	shapes := []struct {
		api   string
		proto bool
	}{{"v1", false}, {"v2", false}, {"v1", true}, {"v2", true}}
	for id, td := range want {
		for _, s := range shapes {
			code, got := fetch(t, v, id, s.api, s.proto, tenant)
			require.Equal(t, http.StatusOK, code, "trace %s via %s proto=%v", id, s.api, s.proto)
			require.Equal(t, flatten(t, td), flatten(t, got), "trace %s via %s proto=%v", id, s.api, s.proto)
		}
	}
}

func merge(ms ...map[model.TraceID]*tracev1.TracesData) map[model.TraceID]*tracev1.TracesData {
	out := map[model.TraceID]*tracev1.TracesData{}
	for _, m := range ms {
		for id, td := range m {
			out[id] = model.Combine(out[id], td)
		}
	}
	return out
}

var _ = time.Second
