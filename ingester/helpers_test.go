package ingester_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/grafana/dskit/kv/consul"
	"github.com/grafana/dskit/ring"
	"github.com/grafana/dskit/services"
	"github.com/grafana/dskit/user"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/vivace-dev/vivace/ingester"
	"github.com/vivace-dev/vivace/internal/model"
	"github.com/vivace-dev/vivace/internal/model/modeltest"
	"github.com/vivace-dev/vivace/internal/overrides"
	"github.com/vivace-dev/vivace/internal/vivacepb"
	"github.com/vivace-dev/vivace/storage"
	"github.com/vivace-dev/vivace/storage/block"
	"github.com/vivace-dev/vivace/storage/fs"
)

const (
	waitFor = 10 * time.Second
	tick    = 5 * time.Millisecond
)

// testConfig never cuts or drops anything by itself: tests flush explicitly
// or change the field they are about.
func testConfig(t testing.TB, walDir string) ingester.Config {
	cfg := ingester.Config{}
	cfg.RegisterFlagsAndApplyDefaults("ingester", flag.NewFlagSet("test", flag.PanicOnError))
	cfg.MaxBlockDuration = time.Hour
	cfg.MaxBlockBytes = 1 << 40
	cfg.CompleteBlockTimeout = time.Hour
	cfg.FlushCheckPeriod = 5 * time.Millisecond
	cfg.TraceIdlePeriod = time.Hour
	cfg.WALPath = walDir
	// Each ingester alone in a ring of its own, in memory.
	kvClient, closer := consul.NewInMemoryClient(ring.GetCodec(), log.NewNopLogger(), nil)
	t.Cleanup(func() { closer.Close() })
	lc := &cfg.Lifecycler
	lc.RingConfig.KVStore.Mock = kvClient
	lc.RingConfig.ReplicationFactor = 1
	lc.Addr, lc.ID, lc.MinReadyDuration = "127.0.0.1", "ingester-test", 0
	return cfg
}

func newBucket(t testing.TB) *fs.Bucket {
	t.Helper()
	bkt, err := fs.New(t.TempDir())
	require.NoError(t, err)
	return bkt
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// startIngester starts an ingester and stops it at the end of the test if
// the test has not.
func startIngester(t testing.TB, cfg ingester.Config, bkt storage.Bucket) (*ingester.Ingester, *prometheus.Registry) {
	t.Helper()
	return startLimitedIngester(t, cfg, bkt, overrides.NewStatic(defaultLimits()))
}

// startLimitedIngester is startIngester under limits.
func startLimitedIngester(t testing.TB, cfg ingester.Config, bkt storage.Bucket, limits *overrides.Overrides) (*ingester.Ingester, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	ing, err := ingester.New(cfg, bkt, limits, discardLogger(), reg)
	require.NoError(t, err)
	require.NoError(t, services.StartAndAwaitRunning(context.Background(), ing))
	t.Cleanup(func() {
		if ing.State() == services.Running {
			require.NoError(t, services.StopAndAwaitTerminated(context.Background(), ing))
		}
	})
	return ing, reg
}

// defaultLimits are the limits every tenant gets by default.
func defaultLimits() overrides.Limits {
	var cfg overrides.Config
	cfg.RegisterFlagsAndApplyDefaults("overrides", flag.NewFlagSet("test", flag.PanicOnError))
	return cfg.Defaults
}

func stopIngester(t testing.TB, ing *ingester.Ingester) {
	t.Helper()
	require.NoError(t, services.StopAndAwaitTerminated(context.Background(), ing))
}

// metricValue is the value of the unlabelled counter or gauge name.
func metricValue(t testing.TB, reg prometheus.Gatherer, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		require.Len(t, mf.Metric, 1, name)
		m := mf.Metric[0]
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		}
		t.Fatalf("%s is neither a counter nor a gauge", name)
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// tenantTrace is one trace of one tenant, pushed in parts.
type tenantTrace struct {
	tenant string
	id     model.TraceID
	whole  *tracev1.TracesData
	parts  [][]byte // encoded, in push order
}

// combined is what the pushed parts add up to.
func (tt *tenantTrace) combined(t testing.TB) *tracev1.TracesData {
	t.Helper()
	return model.Combine(decodeParts(t, tt.parts)...)
}

func decodeParts(t testing.TB, parts [][]byte) []*tracev1.TracesData {
	t.Helper()
	out := make([]*tracev1.TracesData, len(parts))
	for i, p := range parts {
		out[i] = &tracev1.TracesData{}
		require.NoError(t, proto.Unmarshal(p, out[i]))
	}
	return out
}

// splitTrace deals the spans of td round-robin into k parts, each under
// copies of its resource and scope, as a trace arrives over several pushes.
func splitTrace(td *tracev1.TracesData, k int) []*tracev1.TracesData {
	parts := make([]*tracev1.TracesData, k)
	rsOf := make([]map[*tracev1.ResourceSpans]*tracev1.ResourceSpans, k)
	ssOf := make([]map[*tracev1.ScopeSpans]*tracev1.ScopeSpans, k)
	for p := range parts {
		parts[p] = &tracev1.TracesData{}
		rsOf[p] = map[*tracev1.ResourceSpans]*tracev1.ResourceSpans{}
		ssOf[p] = map[*tracev1.ScopeSpans]*tracev1.ScopeSpans{}
	}
	n := 0
	for _, rs := range td.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				p := n % k
				n++
				outRS := rsOf[p][rs]
				if outRS == nil {
					outRS = &tracev1.ResourceSpans{Resource: rs.Resource, SchemaUrl: rs.SchemaUrl}
					rsOf[p][rs] = outRS
					parts[p].ResourceSpans = append(parts[p].ResourceSpans, outRS)
				}
				outSS := ssOf[p][ss]
				if outSS == nil {
					outSS = &tracev1.ScopeSpans{Scope: ss.Scope, SchemaUrl: ss.SchemaUrl}
					ssOf[p][ss] = outSS
					outRS.ScopeSpans = append(outRS.ScopeSpans, outSS)
				}
				outSS.Spans = append(outSS.Spans, s)
			}
		}
	}
	var out []*tracev1.TracesData
	for _, p := range parts {
		if len(p.ResourceSpans) > 0 {
			out = append(out, p)
		}
	}
	return out
}

// makeTraces makes n traces per tenant, each split into up to parts parts.
func makeTraces(t testing.TB, rng *rand.Rand, tenants []string, n, meanSpans, parts int) []*tenantTrace {
	t.Helper()
	var out []*tenantTrace
	for _, tenant := range tenants {
		ids, tds := modeltest.Traces(rng, n, meanSpans)
		for i, id := range ids {
			tt := &tenantTrace{tenant: tenant, id: id, whole: tds[i]}
			for _, p := range splitTrace(tds[i], 1+rng.IntN(parts)) {
				b, err := proto.Marshal(p)
				require.NoError(t, err)
				tt.parts = append(tt.parts, b)
			}
			out = append(out, tt)
		}
	}
	return out
}

// pushAll pushes every part of traces, several traces of a tenant per push
// and the parts of one trace in different pushes, in order.
func pushAll(t testing.TB, ing *ingester.Ingester, traces []*tenantTrace) {
	t.Helper()
	for round := 0; ; round++ {
		reqs := map[string]*vivacepb.PushRequest{}
		var order []string
		for _, tt := range traces {
			if round >= len(tt.parts) {
				continue
			}
			req := reqs[tt.tenant]
			if req == nil {
				req = &vivacepb.PushRequest{}
				reqs[tt.tenant] = req
				order = append(order, tt.tenant)
			}
			req.Ids = append(req.Ids, tt.id[:])
			req.Traces = append(req.Traces, tt.parts[round])
		}
		if len(order) == 0 {
			return
		}
		for _, tenant := range order {
			_, err := ing.Push(user.InjectOrgID(context.Background(), tenant), reqs[tenant])
			require.NoError(t, err)
		}
	}
}

// find looks a trace up in the ingester.
func find(t testing.TB, ing *ingester.Ingester, tenant string, id model.TraceID) []byte {
	t.Helper()
	resp, err := ing.FindTraceByID(user.InjectOrgID(context.Background(), tenant), &vivacepb.TraceByIDRequest{TraceId: id[:]})
	require.NoError(t, err)
	require.EqualValues(t, len(resp.Trace), resp.GetMetrics().GetInspectedBytes())
	return resp.Trace
}

// requireFound checks that the ingester answers every trace with exactly
// the bytes pushed, concatenated in push order.
func requireFound(t testing.TB, ing *ingester.Ingester, traces []*tenantTrace) {
	t.Helper()
	for _, tt := range traces {
		got := find(t, ing, tt.tenant, tt.id)
		require.Equal(t, bytes.Join(tt.parts, nil), got, "tenant %s trace %s", tt.tenant, tt.id)
		td := &tracev1.TracesData{}
		require.NoError(t, proto.Unmarshal(got, td))
		require.True(t, proto.Equal(tt.combined(t), model.Combine(td)), "tenant %s trace %s", tt.tenant, tt.id)
		require.Equal(t, model.SpanCount(tt.whole), model.SpanCount(td))
	}
}

// blockMetas lists the complete blocks of tenant.
func blockMetas(t testing.TB, bkt storage.Bucket, tenant string) []*block.Meta {
	t.Helper()
	ctx := context.Background()
	dirs, err := bkt.List(ctx, tenant+"/")
	require.NoError(t, err)
	var out []*block.Meta
	for _, d := range dirs {
		id, ok := strings.CutSuffix(strings.TrimPrefix(d, tenant+"/"), "/")
		if !ok {
			continue
		}
		m, err := block.ReadMeta(ctx, bkt, tenant, id)
		if errors.Is(err, storage.ErrNotFound) {
			continue
		}
		require.NoError(t, err)
		out = append(out, m)
	}
	return out
}

// waitForBlocks waits until tenant has n complete blocks and returns them.
func waitForBlocks(t testing.TB, bkt storage.Bucket, tenant string, n int) []*block.Meta {
	t.Helper()
	var metas []*block.Meta
	require.Eventually(t, func() bool {
		metas = blockMetas(t, bkt, tenant)
		return len(metas) >= n
	}, waitFor, tick, "waiting for %d blocks of %s", n, tenant)
	require.Len(t, metas, n)
	return metas
}

// requireInBlock checks that the block holds every trace of tenant in
// traces, exactly as pushed, and nothing else.
func requireInBlock(t testing.TB, bkt storage.Bucket, meta *block.Meta, tenant string, traces []*tenantTrace) {
	t.Helper()
	r := block.NewReader(bkt, meta)
	n, spans := 0, 0
	for _, tt := range traces {
		if tt.tenant != tenant {
			continue
		}
		got, err := r.FindTraceByID(context.Background(), tt.id)
		require.NoError(t, err)
		require.NotNil(t, got, "trace %s missing from block %s", tt.id, meta.BlockID)
		require.True(t, proto.Equal(tt.combined(t), got), "trace %s differs in block %s", tt.id, meta.BlockID)
		n++
		spans += model.SpanCount(tt.whole)
	}
	require.EqualValues(t, n, meta.TotalTraces)
	require.EqualValues(t, spans, meta.TotalSpans)
	require.Equal(t, tenant, meta.TenantID)
}

func tenantsOf(traces []*tenantTrace) []string {
	var out []string
	seen := map[string]bool{}
	for _, tt := range traces {
		if !seen[tt.tenant] {
			seen[tt.tenant] = true
			out = append(out, tt.tenant)
		}
	}
	return out
}

// copyDir copies the files of src into a new directory, as a WAL is found
// on disk after the process that wrote it was killed.
func copyDir(t testing.TB, src string) string {
	t.Helper()
	dst := t.TempDir()
	entries, err := os.ReadDir(src)
	require.NoError(t, err)
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644))
	}
	return dst
}
