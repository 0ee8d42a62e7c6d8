package distributor_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grafana/dskit/ring"
	"github.com/grafana/dskit/user"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonv1 "go.opentelemetry.io/proto/otlp/common/v1"
	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/vivace-dev/vivace/distributor"
	"github.com/vivace-dev/vivace/distributor/receiver"
	"github.com/vivace-dev/vivace/internal/model"
	"github.com/vivace-dev/vivace/internal/model/modeltest"
	"github.com/vivace-dev/vivace/internal/overrides"
	"github.com/vivace-dev/vivace/internal/vivacepb"
)

// fakeIngester records what it is pushed, and the tenant it was pushed for.
type fakeIngester struct {
	err error // returned by every Push

	mu      sync.Mutex
	tenants []string
	reqs    []*vivacepb.PushRequest
}

func (f *fakeIngester) Push(ctx context.Context, req *vivacepb.PushRequest) (*vivacepb.PushResponse, error) {
	tenant, err := user.ExtractOrgID(ctx)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tenants = append(f.tenants, tenant)
	f.reqs = append(f.reqs, req)
	if f.err != nil {
		return nil, f.err
	}
	return &vivacepb.PushResponse{}, nil
}

// noopIngester takes everything and keeps nothing.
type noopIngester struct{}

func (noopIngester) Push(context.Context, *vivacepb.PushRequest) (*vivacepb.PushResponse, error) {
	return &vivacepb.PushResponse{}, nil
}

func defaultConfig() distributor.Config {
	var cfg distributor.Config
	cfg.RegisterFlagsAndApplyDefaults("distributor", flag.NewFlagSet("test", flag.PanicOnError))
	return cfg
}

// fakeRing places every key on all its instances, with dskit's quorum: a
// majority must succeed.
type fakeRing struct{ instances []ring.InstanceDesc }

func (r fakeRing) Get(uint32, ring.Operation, []ring.InstanceDesc, []string, []string) (ring.ReplicationSet, error) {
	n := len(r.instances)
	return ring.ReplicationSet{Instances: r.instances, MaxErrors: n - (n/2 + 1)}, nil
}
func (r fakeRing) ReplicationFactor() int { return len(r.instances) }
func (r fakeRing) InstancesCount() int    { return len(r.instances) }

// replicas routes every trace to all of ings, as a ring with replication
// factor len(ings) and that many ingesters would.
func replicas(ings ...distributor.IngesterClient) distributor.Ingesters {
	r := fakeRing{}
	byID := map[string]distributor.IngesterClient{}
	for i, ing := range ings {
		id := fmt.Sprintf("ingester-%d", i)
		r.instances = append(r.instances, ring.InstanceDesc{Id: id, Addr: id, State: ring.ACTIVE})
		byID[id] = ing
	}
	return distributor.Ingesters{
		Ring:    r,
		Client:  func(inst ring.InstanceDesc) (distributor.IngesterClient, error) { return byID[inst.Id], nil },
		Timeout: time.Minute,
	}
}

func newDistributor(tb testing.TB, ings ...distributor.IngesterClient) (*distributor.Distributor, *prometheus.Registry) {
	tb.Helper()
	return newLimitedDistributor(tb, overrides.NewStatic(defaultLimits()), nil, ings...)
}

// newLimitedDistributor is newDistributor under limits, with distributors
// counting the distributors.
func newLimitedDistributor(tb testing.TB, limits *overrides.Overrides, distributors func() int, ings ...distributor.IngesterClient) (*distributor.Distributor, *prometheus.Registry) {
	tb.Helper()
	reg := prometheus.NewRegistry()
	d, err := distributor.New(defaultConfig(), replicas(ings...), limits, distributors, slog.New(slog.NewTextHandler(io.Discard, nil)), reg)
	require.NoError(tb, err)
	return d, reg
}

// defaultLimits are the limits every tenant gets by default.
func defaultLimits() overrides.Limits {
	var cfg overrides.Config
	cfg.RegisterFlagsAndApplyDefaults("overrides", flag.NewFlagSet("test", flag.PanicOnError))
	return cfg.Defaults
}

// counter is the value of the counter name with the given label pairs (0 if
// it has not been created).
func counter(tb testing.TB, g prometheus.Gatherer, name string, labelPairs ...string) float64 {
	tb.Helper()
	mfs, err := g.Gather()
	require.NoError(tb, err)
	want := map[string]string{}
	for i := 0; i+1 < len(labelPairs); i += 2 {
		want[labelPairs[i]] = labelPairs[i+1]
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if v, ok := want[lp.GetName()]; ok && v != lp.GetValue() {
					continue metrics
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

// request merges traces into one ExportTraceServiceRequest, with the
// ResourceSpans of all traces shuffled together.
func request(rng *rand.Rand, traces []*tracev1.TracesData) *coltracepb.ExportTraceServiceRequest {
	req := &coltracepb.ExportTraceServiceRequest{}
	for _, td := range traces {
		req.ResourceSpans = append(req.ResourceSpans, td.ResourceSpans...)
	}
	rng.Shuffle(len(req.ResourceSpans), func(i, j int) {
		req.ResourceSpans[i], req.ResourceSpans[j] = req.ResourceSpans[j], req.ResourceSpans[i]
	})
	return req
}

func mustMarshal(tb testing.TB, m proto.Message) []byte {
	tb.Helper()
	b, err := proto.Marshal(m)
	require.NoError(tb, err)
	return b
}

func TestPushOTLP(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct {
		name          string
		traces, spans int
	}{
		{name: "one span", traces: 1, spans: 1},
		{name: "one trace", traces: 1, spans: 30},
		{name: "many traces", traces: 25, spans: 12},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ids, traces := modeltest.Traces(rng, tc.traces, tc.spans)
			want := 0
			for _, td := range traces {
				want += model.SpanCount(td)
			}
			req := mustMarshal(t, request(rng, traces))
			ing := &fakeIngester{}
			d, reg := newDistributor(t, ing)

			n, err := d.PushOTLP(context.Background(), "team-a", req)
			require.NoError(t, err)
			require.Equal(t, want, n)

			require.Equal(t, []string{"team-a"}, ing.tenants, "one push, for the tenant, in the context")
			pr := ing.reqs[0]
			require.Len(t, pr.Ids, len(ids))
			require.Len(t, pr.Traces, len(pr.Ids))
			got := map[model.TraceID]bool{}
			spans := 0
			for i, id := range pr.Ids {
				require.Len(t, id, 16)
				got[model.TraceID(id)] = true
				var td tracev1.TracesData
				require.NoError(t, proto.Unmarshal(pr.Traces[i], &td))
				for _, rs := range td.ResourceSpans {
					for _, ss := range rs.ScopeSpans {
						for _, s := range ss.Spans {
							require.Equal(t, id, s.TraceId, "trace %d holds only its own spans", i)
							spans++
						}
					}
				}
			}
			require.Equal(t, want, spans)
			for _, id := range ids {
				require.True(t, got[id], "trace %s pushed", id)
			}

			require.Equal(t, float64(want), counter(t, reg, "vivace_distributor_spans_received_total", "tenant", "team-a"))
			require.Equal(t, float64(len(req)), counter(t, reg, "vivace_distributor_bytes_received_total", "tenant", "team-a"))
			require.Zero(t, testutil.CollectAndCount(reg, "vivace_discarded_spans_total"))
		})
	}
}

func TestPushOTLPNoSpans(t *testing.T) {
	for _, tc := range []struct {
		name string
		req  []byte
	}{
		{name: "empty body", req: nil},
		{name: "empty resource", req: mustMarshal(t, &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracev1.ResourceSpans{{}}})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ing := &fakeIngester{}
			d, reg := newDistributor(t, ing)
			n, err := d.PushOTLP(context.Background(), "team-a", tc.req)
			require.NoError(t, err)
			require.Zero(t, n)
			require.Empty(t, ing.reqs, "nothing to push")
			require.Zero(t, counter(t, reg, "vivace_distributor_spans_received_total", "tenant", "team-a"))
		})
	}
}

func TestPushOTLPMalformed(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	_, traces := modeltest.Traces(rng, 3, 5)
	valid := mustMarshal(t, request(rng, traces))
	shortID := mustMarshal(t, &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracev1.ResourceSpans{{
		ScopeSpans: []*tracev1.ScopeSpans{{Spans: []*tracev1.Span{{TraceId: []byte{1, 2, 3, 4, 5, 6, 7, 8}, Name: "zipkin"}}}},
	}}})
	noID := mustMarshal(t, &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracev1.ResourceSpans{{
		ScopeSpans: []*tracev1.ScopeSpans{{Spans: []*tracev1.Span{{Name: "orphan"}}}},
	}}})
	// Deep inside a span: nothing the split reads, but what a reader's
	// proto.Unmarshal would fail on once the span sits in a block.
	badAttr := mustMarshal(t, &coltracepb.ExportTraceServiceRequest{ResourceSpans: []*tracev1.ResourceSpans{{
		ScopeSpans: []*tracev1.ScopeSpans{{Spans: []*tracev1.Span{{TraceId: bytes.Repeat([]byte{1}, 16), Name: "op",
			Attributes: []*commonv1.KeyValue{{Key: "k", Value: &commonv1.AnyValue{Value: &commonv1.AnyValue_StringValue{StringValue: "PLACEHOLDER"}}}}}}}},
	}}})
	badAttr = bytes.Replace(badAttr, []byte("PLACEHOLDER"), []byte("bad \xff bytes"), 1)
	span := mustMarshal(t, &tracev1.Span{TraceId: bytes.Repeat([]byte{2}, 16), Name: "op"})
	span = protowire.AppendBytes(protowire.AppendTag(span, 11, protowire.BytesType), []byte{0x0a, 0x05, 'a'}) // an event whose name is cut short
	badEvent := protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType),
		protowire.AppendBytes(protowire.AppendTag(nil, 2, protowire.BytesType),
			protowire.AppendBytes(protowire.AppendTag(nil, 2, protowire.BytesType), span)))
	for _, tc := range []struct {
		name    string
		req     []byte
		wantErr string
	}{
		{name: "truncated", req: valid[:len(valid)-1], wantErr: "unexpected EOF"},
		{name: "span attribute not UTF-8", req: badAttr, wantErr: "invalid UTF-8"},
		{name: "span event truncated", req: badEvent, wantErr: "unexpected EOF"},
		{name: "not protobuf", req: []byte("{\"resourceSpans\":[]}"), wantErr: "malformed OTLP trace data"},
		{name: "8-byte trace_id", req: shortID, wantErr: "trace_id has 8 bytes"},
		{name: "no trace_id", req: noID, wantErr: "span without a trace_id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ing := &fakeIngester{}
			d, reg := newDistributor(t, ing)
			n, err := d.PushOTLP(context.Background(), "team-b", tc.req)
			require.ErrorIs(t, err, receiver.ErrBadInput)
			require.ErrorContains(t, err, tc.wantErr)
			require.Zero(t, n)
			require.Empty(t, ing.reqs, "a malformed request is refused whole")
			require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP vivace_discarded_spans_total Spans refused, by tenant and reason.
# TYPE vivace_discarded_spans_total counter
vivace_discarded_spans_total{reason="malformed",tenant="team-b"} 1
`), "vivace_discarded_spans_total"))
			require.Zero(t, counter(t, reg, "vivace_distributor_spans_received_total", "tenant", "team-b"))
		})
	}
}

func TestPushOTLPIngesterError(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	_, traces := modeltest.Traces(rng, 4, 5)
	req := mustMarshal(t, request(rng, traces))
	errDown := errors.New("ingester-2 unavailable")
	ing := &fakeIngester{err: errDown}
	d, reg := newDistributor(t, ing)

	n, err := d.PushOTLP(context.Background(), "team-c", req)
	require.ErrorIs(t, err, errDown)
	require.NotErrorIs(t, err, receiver.ErrBadInput, "the server's fault, not the sender's")
	require.Zero(t, n)
	require.Len(t, ing.reqs, 1)
	require.Equal(t, 1.0, counter(t, reg, "vivace_distributor_ingester_push_failures_total"))
	require.Zero(t, counter(t, reg, "vivace_distributor_spans_received_total", "tenant", "team-c"))
	require.Zero(t, testutil.CollectAndCount(reg, "vivace_discarded_spans_total"))
}

func TestNewRefusesInvalidConfig(t *testing.T) {
	cfg := defaultConfig()
	cfg.Receivers.OTLP.Protocols.HTTP.MaxRecvMsgSizeMiB = 0
	_, err := distributor.New(cfg, replicas(noopIngester{}), overrides.NewStatic(defaultLimits()), nil, slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())
	require.ErrorContains(t, err, "max_recv_msg_size_mib")
}

// BenchmarkPushOTLP is receive, route and push of a 1000-span batch of
// ~20-span traces to an ingester that does nothing.
func BenchmarkPushOTLP(b *testing.B) {
	rng := rand.New(rand.NewPCG(42, 42))
	var traces []*tracev1.TracesData
	spans := 0
	for _, id := range modeltest.IDs(rng, 1000) {
		if spans == 1000 {
			break
		}
		n := min(modeltest.SpanCount(rng, 20), 1000-spans)
		traces = append(traces, modeltest.Trace(rng, id, n))
		spans += n
	}
	req := mustMarshal(b, request(rng, traces))
	// The rate limiter runs, with room for every push; attributes are
	// looked at with the default max_attribute_bytes.
	limits := defaultLimits()
	limits.Ingestion.RateLimitBytes, limits.Ingestion.BurstSizeBytes = 1<<50, 1<<50
	d, _ := newLimitedDistributor(b, overrides.NewStatic(limits), nil, noopIngester{})
	ctx := context.Background()

	b.SetBytes(int64(len(req)))
	b.ReportAllocs()
	for b.Loop() {
		n, err := d.PushOTLP(ctx, "bench", req)
		if err != nil || n != spans {
			b.Fatal(n, err)
		}
	}
	b.ReportMetric(float64(spans)*float64(b.N)/b.Elapsed().Seconds(), "spans/s")
	b.ReportMetric(float64(len(req))/float64(spans), "bytes/span")
}

// With replication factor 3 a push is acknowledged once two ingesters hold
// every trace, and refused when two fail.
func TestPushOTLPWriteQuorum(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	ids, traces := modeltest.Traces(rng, 10, 5)
	req := mustMarshal(t, request(rng, traces))
	down := errors.New("ingester down")
	for _, tc := range []struct {
		name    string
		failing int
		wantErr bool
	}{
		{name: "all up", failing: 0},
		{name: "one down", failing: 1},
		{name: "two down", failing: 2, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ings := []*fakeIngester{{}, {}, {}}
			for i := range tc.failing {
				ings[i].err = down
			}
			d, reg := newDistributor(t, ings[0], ings[1], ings[2])
			n, err := d.PushOTLP(context.Background(), "team-a", req)
			if tc.wantErr {
				require.ErrorIs(t, err, down)
				require.Zero(t, n)
				require.Equal(t, 1.0, counter(t, reg, "vivace_distributor_ingester_push_failures_total"))
				return
			}
			require.NoError(t, err)
			want := 0
			for _, td := range traces {
				want += model.SpanCount(td)
			}
			require.Equal(t, want, n)
			full := 0
			for _, ing := range ings[tc.failing:] {
				ing.mu.Lock()
				got := map[model.TraceID]bool{}
				for _, pr := range ing.reqs {
					for _, id := range pr.Ids {
						got[model.TraceID(id)] = true
					}
				}
				ing.mu.Unlock()
				if len(got) == len(ids) {
					full++
				}
			}
			// The replica beyond the quorum may still be in flight.
			require.GreaterOrEqual(t, full, 2, "a quorum of replicas holds every trace")
		})
	}
}
