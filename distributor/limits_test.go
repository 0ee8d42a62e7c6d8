package distributor_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/grafana/dskit/services"
	"github.com/grafana/dskit/user"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonv1 "go.opentelemetry.io/proto/otlp/common/v1"
	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/vivace-dev/vivace/distributor/receiver"
	"github.com/vivace-dev/vivace/internal/model"
	"github.com/vivace-dev/vivace/internal/model/modeltest"
	"github.com/vivace-dev/vivace/internal/overrides"
	"github.com/vivace-dev/vivace/internal/vivacepb"
)

// fileLimits are the default limits overridden by the runtime file content.
func fileLimits(t *testing.T, content string) *overrides.Overrides {
	t.Helper()
	var cfg overrides.Config
	cfg.Defaults = defaultLimits()
	cfg.PerTenantOverrideConfig = filepath.Join(t.TempDir(), "overrides.yaml")
	cfg.PerTenantOverridePeriod = 10e9
	require.NoError(t, os.WriteFile(cfg.PerTenantOverrideConfig, []byte(content), 0o644))
	o, err := overrides.New(cfg, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	require.NoError(t, err)
	require.NoError(t, services.StartAndAwaitRunning(context.Background(), o))
	t.Cleanup(func() { require.NoError(t, services.StopAndAwaitTerminated(context.Background(), o)) })
	return o
}

// requireLimitError checks err refuses for a limit as the receivers answer
// it: 429 with Retry-After, gRPC ResourceExhausted with a retry delay.
func requireLimitError(t *testing.T, err error, reason, msg string) {
	t.Helper()
	le, ok := errors.AsType[*receiver.LimitError](err)
	require.True(t, ok, "a *receiver.LimitError, got %v", err)
	require.Equal(t, reason, le.Reason)
	require.Contains(t, err.Error(), msg)
	require.NotErrorIs(t, err, receiver.ErrBadInput)

	require.Equal(t, http.StatusTooManyRequests, receiver.HTTPStatus(err))
	w := httptest.NewRecorder()
	receiver.WriteHTTPError(w, err)
	require.Equal(t, http.StatusTooManyRequests, w.Code)
	require.NotEmpty(t, w.Header().Get("Retry-After"))
	require.Contains(t, w.Body.String(), msg)

	st := status.Convert(receiver.GRPCStatus(err))
	require.Equal(t, codes.ResourceExhausted, st.Code())
	require.Contains(t, st.Message(), msg)
	require.Len(t, st.Details(), 1)
	require.Positive(t, st.Details()[0].(*errdetails.RetryInfo).GetRetryDelay().AsDuration())
	require.Equal(t, "limited", receiver.Outcome(err))
}

func spanCount(traces []*tracev1.TracesData) int {
	n := 0
	for _, td := range traces {
		n += model.SpanCount(td)
	}
	return n
}

func TestRateLimitLocal(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	_, traces := modeltest.Traces(rng, 3, 4)
	req := mustMarshal(t, request(rng, traces))
	spans := spanCount(traces)
	// team-a may send one such request at once, and 1 byte a second more.
	limits := fileLimits(t, fmt.Sprintf(`
overrides:
  team-a:
    ingestion: {rate_limit_bytes: 1, burst_size_bytes: %d}
`, len(req)+10))
	ing := &fakeIngester{}
	d, reg := newLimitedDistributor(t, limits, nil, ing)

	n, err := d.PushOTLP(context.Background(), "team-a", req)
	require.NoError(t, err, "the burst takes the first request")
	require.Equal(t, spans, n)

	n, err = d.PushOTLP(context.Background(), "team-a", req)
	requireLimitError(t, err, "rate_limited",
		fmt.Sprintf("ingestion rate limit (1 bytes/s, burst %d bytes) exceeded for tenant team-a while adding %d bytes; retry later", len(req)+10, len(req)))
	require.Zero(t, n)
	require.Len(t, ing.reqs, 1, "a refused request is not pushed")
	require.Equal(t, float64(spans), counter(t, reg, "vivace_discarded_spans_total", "tenant", "team-a", "reason", "rate_limited"))
	require.Equal(t, float64(spans), counter(t, reg, "vivace_distributor_spans_received_total", "tenant", "team-a"))

	// Another tenant has its own, default, limit.
	for range 3 {
		n, err = d.PushOTLP(context.Background(), "team-b", req)
		require.NoError(t, err)
		require.Equal(t, spans, n)
	}
	require.Zero(t, counter(t, reg, "vivace_discarded_spans_total", "tenant", "team-b", "reason", "rate_limited"))
}

func TestRateLimitRequestOverBurst(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 14))
	_, traces := modeltest.Traces(rng, 2, 3)
	req := mustMarshal(t, request(rng, traces))
	limits := fileLimits(t, fmt.Sprintf("overrides:\n  team-a:\n    ingestion: {burst_size_bytes: %d}\n", len(req)-1))
	d, reg := newLimitedDistributor(t, limits, nil, &fakeIngester{})

	_, err := d.PushOTLP(context.Background(), "team-a", req)
	requireLimitError(t, err, "rate_limited",
		fmt.Sprintf("request of %d bytes is larger than the ingestion burst size (%d bytes) of tenant team-a: send smaller requests", len(req), len(req)-1))
	require.Equal(t, float64(spanCount(traces)), counter(t, reg, "vivace_discarded_spans_total", "tenant", "team-a", "reason", "rate_limited"))

	_, err = d.PushOTLP(context.Background(), "team-b", req)
	require.NoError(t, err)
}

// With the global strategy the healthy distributors share the rate limit;
// the burst stays whole in each.
func TestRateLimitGlobal(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 16))
	_, traces := modeltest.Traces(rng, 2, 3)
	req := mustMarshal(t, request(rng, traces))
	limits := fileLimits(t, fmt.Sprintf(`
overrides:
  "*":
    ingestion: {rate_strategy: global, rate_limit_bytes: 4, burst_size_bytes: %d}
`, len(req)))
	d, _ := newLimitedDistributor(t, limits, func() int { return 4 }, &fakeIngester{})
	_, err := d.PushOTLP(context.Background(), "team-a", req)
	require.NoError(t, err)
	_, err = d.PushOTLP(context.Background(), "team-a", req)
	requireLimitError(t, err, "rate_limited",
		fmt.Sprintf("ingestion rate limit (1 bytes/s per distributor, 4 bytes/s globally, burst %d bytes) exceeded for tenant team-a", len(req)))
}

func TestRateLimitOff(t *testing.T) {
	rng := rand.New(rand.NewPCG(17, 18))
	_, traces := modeltest.Traces(rng, 2, 3)
	req := mustMarshal(t, request(rng, traces))
	limits := fileLimits(t, "overrides:\n  team-a:\n    ingestion: {rate_limit_bytes: 0, burst_size_bytes: 1}\n")
	d, _ := newLimitedDistributor(t, limits, nil, &fakeIngester{})
	for range 3 {
		_, err := d.PushOTLP(context.Background(), "team-a", req)
		require.NoError(t, err, "0 is no limit, whatever the burst")
	}
}

func TestMaxAttributeBytes(t *testing.T) {
	long := strings.Repeat("x", 100)
	td := &tracev1.TracesData{ResourceSpans: []*tracev1.ResourceSpans{{ScopeSpans: []*tracev1.ScopeSpans{{Spans: []*tracev1.Span{{
		TraceId: bytes.Repeat([]byte{1}, 16), SpanId: bytes.Repeat([]byte{2}, 8), Name: "query",
		Attributes: []*commonv1.KeyValue{
			{Key: "db.statement", Value: &commonv1.AnyValue{Value: &commonv1.AnyValue_StringValue{StringValue: long}}},
			{Key: "short", Value: &commonv1.AnyValue{Value: &commonv1.AnyValue_StringValue{StringValue: "kept"}}},
		},
		Events: []*tracev1.Span_Event{{Name: "exception", Attributes: []*commonv1.KeyValue{
			{Key: "exception.stacktrace", Value: &commonv1.AnyValue{Value: &commonv1.AnyValue_StringValue{StringValue: long}}},
		}}},
	}}}}}}}
	req := mustMarshal(t, &coltracepb.ExportTraceServiceRequest{ResourceSpans: td.ResourceSpans})
	limits := fileLimits(t, "overrides:\n  team-a:\n    ingestion: {max_attribute_bytes: 10}\n")
	ing := &fakeIngester{}
	d, reg := newLimitedDistributor(t, limits, nil, ing)

	n, err := d.PushOTLP(context.Background(), "team-a", req)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	var got tracev1.TracesData
	require.NoError(t, proto.Unmarshal(ing.reqs[0].Traces[0], &got))
	s := got.ResourceSpans[0].ScopeSpans[0].Spans[0]
	require.Equal(t, "xxxxxxxxxx", s.Attributes[0].Value.GetStringValue())
	require.Equal(t, "kept", s.Attributes[1].Value.GetStringValue())
	require.Equal(t, "xxxxxxxxxx", s.Events[0].Attributes[0].Value.GetStringValue())
	require.Equal(t, 2.0, counter(t, reg, "vivace_distributor_attributes_truncated_total", "tenant", "team-a"))

	// The default limit, 2048 bytes, leaves team-b's values whole.
	_, err = d.PushOTLP(context.Background(), "team-b", req)
	require.NoError(t, err)
	require.Equal(t, req[2:], ing.reqs[1].Traces[0][2:], "copied as received")
	require.Zero(t, counter(t, reg, "vivace_distributor_attributes_truncated_total", "tenant", "team-b"))
	require.Zero(t, testutil.CollectAndCount(reg, "vivace_discarded_spans_total"))
}

// refusingIngester stores every trace but those it refuses, and says so.
type refusingIngester struct {
	fakeIngester
	refuse map[model.TraceID]vivacepb.PushErrorReason
	wait   chan struct{} // if not nil, answers only once it is closed
}

func (r *refusingIngester) Push(ctx context.Context, req *vivacepb.PushRequest) (*vivacepb.PushResponse, error) {
	if r.wait != nil {
		<-r.wait
	}
	if _, err := r.fakeIngester.Push(ctx, req); err != nil {
		return nil, err
	}
	errs := make([]vivacepb.PushErrorReason, len(req.Ids))
	refused := false
	for k, id := range req.Ids {
		errs[k] = r.refuse[model.TraceID(id)]
		refused = refused || errs[k] != vivacepb.PushErrorReason_NO_ERROR
	}
	if !refused {
		return &vivacepb.PushResponse{}, nil
	}
	return &vivacepb.PushResponse{ErrorsByTrace: errs}, nil
}

// Traces an ingester refuses for a limit are refused, the others stored;
// the error names the limits, and the spans are counted by reason.
func TestIngesterLimits(t *testing.T) {
	rng := rand.New(rand.NewPCG(19, 20))
	ids, traces := modeltest.Traces(rng, 5, 4)
	req := mustMarshal(t, request(rng, traces))
	spansOf := map[model.TraceID]int{}
	for i, id := range ids {
		spansOf[id] = model.SpanCount(traces[i])
	}
	limits := fileLimits(t, `
overrides:
  team-a:
    ingestion: {max_traces_per_user: 7}
    global: {max_bytes_per_trace: 300}
`)
	ing := &refusingIngester{refuse: map[model.TraceID]vivacepb.PushErrorReason{
		ids[0]: vivacepb.PushErrorReason_MAX_LIVE_TRACES,
		ids[1]: vivacepb.PushErrorReason_MAX_LIVE_TRACES,
		ids[2]: vivacepb.PushErrorReason_TRACE_TOO_LARGE,
	}}
	d, reg := newLimitedDistributor(t, limits, nil, ing)

	n, err := d.PushOTLP(context.Background(), "team-a", req)
	requireLimitError(t, err, "live_traces_exceeded",
		"max live traces per tenant (7 per ingester) exceeded for tenant team-a: 2 new traces refused; "+
			fmt.Sprintf("max bytes per trace (300) exceeded for tenant team-a: the spans of 1 traces refused (trace %s first), their spans accepted before kept; ", ids[2])+
			"2 of 5 traces stored; retry later")
	require.Equal(t, spansOf[ids[3]]+spansOf[ids[4]], n, "the spans stored")
	require.Equal(t, float64(spansOf[ids[0]]+spansOf[ids[1]]), counter(t, reg, "vivace_discarded_spans_total", "tenant", "team-a", "reason", "live_traces_exceeded"))
	require.Equal(t, float64(spansOf[ids[2]]), counter(t, reg, "vivace_discarded_spans_total", "tenant", "team-a", "reason", "trace_too_large"))
	require.Equal(t, float64(n), counter(t, reg, "vivace_distributor_spans_received_total", "tenant", "team-a"))
	require.Zero(t, counter(t, reg, "vivace_distributor_ingester_push_failures_total"), "not a failure of the ingesters")
}

// With replication factor 3 a trace is refused when fewer than a quorum of
// ingesters stored it.
func TestIngesterLimitsQuorum(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	ids, traces := modeltest.Traces(rng, 3, 4)
	req := mustMarshal(t, request(rng, traces))
	limited := map[model.TraceID]vivacepb.PushErrorReason{ids[0]: vivacepb.PushErrorReason_TRACE_TOO_LARGE}

	t.Run("refused by two of three", func(t *testing.T) {
		ings := []*refusingIngester{{refuse: limited}, {refuse: limited}, {}}
		d, reg := newLimitedDistributor(t, overrides.NewStatic(defaultLimits()), nil, ings[0], ings[1], ings[2])
		n, err := d.PushOTLP(context.Background(), "team-a", req)
		requireLimitError(t, err, "trace_too_large", "max bytes per trace (5000000) exceeded for tenant team-a: the spans of 1 traces refused")
		require.Equal(t, spanCount(traces[1:]), n)
		require.Equal(t, float64(model.SpanCount(traces[0])), counter(t, reg, "vivace_discarded_spans_total", "reason", "trace_too_large"))
	})
	t.Run("refused by one, stored by two", func(t *testing.T) {
		// The refusing ingester answers last: the quorum is the other two.
		late := &refusingIngester{refuse: limited, wait: make(chan struct{})}
		defer close(late.wait)
		d, reg := newLimitedDistributor(t, overrides.NewStatic(defaultLimits()), nil, late, &refusingIngester{}, &refusingIngester{})
		n, err := d.PushOTLP(context.Background(), "team-a", req)
		require.NoError(t, err)
		require.Equal(t, spanCount(traces), n)
		require.Zero(t, testutil.CollectAndCount(reg, "vivace_discarded_spans_total"))
	})
	t.Run("an answer that does not fit the request", func(t *testing.T) {
		d, _ := newLimitedDistributor(t, overrides.NewStatic(defaultLimits()), nil, badAnswer{})
		_, err := d.PushOTLP(context.Background(), "team-a", req)
		require.ErrorContains(t, err, "1 trace errors for 3 traces")
		require.Equal(t, http.StatusServiceUnavailable, receiver.HTTPStatus(err))
	})
}

type badAnswer struct{}

func (badAnswer) Push(ctx context.Context, _ *vivacepb.PushRequest) (*vivacepb.PushResponse, error) {
	if _, err := user.ExtractOrgID(ctx); err != nil {
		return nil, err
	}
	return &vivacepb.PushResponse{ErrorsByTrace: []vivacepb.PushErrorReason{vivacepb.PushErrorReason_MAX_LIVE_TRACES}}, nil
}
