package ingester_test

import (
	"context"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/grafana/dskit/services"
	"github.com/grafana/dskit/user"
	"github.com/stretchr/testify/require"
	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"
	"go.uber.org/goleak"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/vivace-dev/vivace/ingester"
	"github.com/vivace-dev/vivace/ingester/wal"
	"github.com/vivace-dev/vivace/internal/model"
	"github.com/vivace-dev/vivace/internal/model/modeltest"
	"github.com/vivace-dev/vivace/internal/overrides"
	"github.com/vivace-dev/vivace/internal/vivacepb"
	"github.com/vivace-dev/vivace/storage"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestPushFind(t *testing.T) {
	tests := []struct {
		name      string
		tenants   []string
		traces    int
		meanSpans int
		parts     int
	}{
		{"one trace in one push", []string{"a"}, 1, 5, 1},
		{"many traces, each in one push", []string{"a"}, 50, 10, 1},
		{"traces split over pushes", []string{"a"}, 30, 20, 4},
		{"several tenants", []string{"a", "b", "tenant-c"}, 20, 10, 3},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(i), 1))
			ing, reg := startIngester(t, testConfig(t, t.TempDir()), newBucket(t))
			traces := makeTraces(t, rng, tt.tenants, tt.traces, tt.meanSpans, tt.parts)
			pushAll(t, ing, traces)
			requireFound(t, ing, traces)

			parts := 0
			for _, tr := range traces {
				parts += len(tr.parts)
			}
			require.EqualValues(t, parts, metricValue(t, reg, "vivace_ingester_pushed_traces_total"))

			// Unknown traces are an empty answer, not an error.
			for _, tenant := range tt.tenants {
				require.Empty(t, find(t, ing, tenant, model.TraceID{0: 0xff, 15: 0xff}))
			}
		})
	}
}

func TestTenantsIsolated(t *testing.T) {
	ing, _ := startIngester(t, testConfig(t, t.TempDir()), newBucket(t))
	rng := rand.New(rand.NewPCG(2, 2))
	id := modeltest.IDs(rng, 1)[0]
	other := modeltest.IDs(rng, 1)[0]
	traceOf := func(tenant string, id model.TraceID) *tenantTrace {
		td := modeltest.Trace(rng, id, 5)
		b, err := proto.Marshal(td)
		require.NoError(t, err)
		return &tenantTrace{tenant: tenant, id: id, whole: td, parts: [][]byte{b}}
	}
	// The same trace ID under two tenants, and a trace only B has.
	a, b, bOnly := traceOf("a", id), traceOf("b", id), traceOf("b", other)
	pushAll(t, ing, []*tenantTrace{a, b, bOnly})

	require.Equal(t, a.parts[0], find(t, ing, "a", id))
	require.Equal(t, b.parts[0], find(t, ing, "b", id))
	require.Empty(t, find(t, ing, "a", other), "tenant a sees b's trace")
	require.Empty(t, find(t, ing, "c", id), "tenant c sees a's or b's trace")

	// And the blocks keep them apart too.
	bkt := newBucket(t)
	ing2, _ := startIngester(t, testConfig(t, t.TempDir()), bkt)
	pushAll(t, ing2, []*tenantTrace{a, b, bOnly})
	require.NoError(t, ing2.Flush())
	metaA := waitForBlocks(t, bkt, "a", 1)[0]
	metaB := waitForBlocks(t, bkt, "b", 1)[0]
	requireInBlock(t, bkt, metaA, "a", []*tenantTrace{a})
	requireInBlock(t, bkt, metaB, "b", []*tenantTrace{b, bOnly})
}

func TestRequestErrors(t *testing.T) {
	ing, _ := startIngester(t, testConfig(t, t.TempDir()), newBucket(t))
	ctx := user.InjectOrgID(context.Background(), "a")
	id := model.TraceID{15: 1}
	td, err := proto.Marshal(modeltest.Trace(rand.New(rand.NewPCG(1, 1)), id, 1))
	require.NoError(t, err)

	pushes := []struct {
		name string
		ctx  context.Context
		req  *vivacepb.PushRequest
		msg  string
	}{
		{"no tenant", context.Background(), &vivacepb.PushRequest{Ids: [][]byte{id[:]}, Traces: [][]byte{td}}, "no org id"},
		{"more IDs than traces", ctx, &vivacepb.PushRequest{Ids: [][]byte{id[:], id[:]}, Traces: [][]byte{td}}, "2 trace IDs for 1 traces"},
		{"more traces than IDs", ctx, &vivacepb.PushRequest{Ids: [][]byte{id[:]}, Traces: [][]byte{td, td}}, "1 trace IDs for 2 traces"},
		{"short trace ID", ctx, &vivacepb.PushRequest{Ids: [][]byte{id[1:]}, Traces: [][]byte{td}}, "trace ID 0 has 15 bytes, want 16"},
	}
	for _, tt := range pushes {
		t.Run("push/"+tt.name, func(t *testing.T) {
			_, err := ing.Push(tt.ctx, tt.req)
			require.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)
			require.ErrorContains(t, err, tt.msg)
		})
	}
	require.Empty(t, find(t, ing, "a", id), "a rejected push stores nothing")

	finds := []struct {
		name string
		ctx  context.Context
		id   []byte
	}{
		{"no tenant", context.Background(), id[:]},
		{"empty ID", ctx, nil},
		{"ID too long", ctx, make([]byte, 17)},
		{"all-zero ID", ctx, make([]byte, 16)},
	}
	for _, tt := range finds {
		t.Run("find/"+tt.name, func(t *testing.T) {
			_, err := ing.FindTraceByID(tt.ctx, &vivacepb.TraceByIDRequest{TraceId: tt.id})
			require.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)
		})
	}

	t.Run("find/short ID is left-padded", func(t *testing.T) {
		short := model.TraceID{14: 0xab, 15: 0xcd}
		b, err := proto.Marshal(modeltest.Trace(rand.New(rand.NewPCG(1, 1)), short, 1))
		require.NoError(t, err)
		_, err = ing.Push(ctx, &vivacepb.PushRequest{Ids: [][]byte{short[:]}, Traces: [][]byte{b}})
		require.NoError(t, err)
		resp, err := ing.FindTraceByID(ctx, &vivacepb.TraceByIDRequest{TraceId: []byte{0xab, 0xcd}})
		require.NoError(t, err)
		require.Equal(t, b, resp.Trace)
	})
}

func TestFlushWritesBlock(t *testing.T) {
	bkt := newBucket(t)
	dir := t.TempDir()
	ing, reg := startIngester(t, testConfig(t, dir), bkt)
	rng := rand.New(rand.NewPCG(3, 3))
	traces := makeTraces(t, rng, []string{"a", "b"}, 40, 15, 3)
	pushAll(t, ing, traces)
	require.NoError(t, ing.Flush())

	for _, tenant := range []string{"a", "b"} {
		meta := waitForBlocks(t, bkt, tenant, 1)[0]
		requireInBlock(t, bkt, meta, tenant, traces)
	}
	require.Eventually(t, func() bool {
		return metricValue(t, reg, "vivace_ingester_blocks_flushed_total") == 2
	}, waitFor, tick)

	// The WAL keeps serving the traces until complete_block_timeout.
	requireFound(t, ing, traces)
	// Flushing an empty head writes nothing.
	require.NoError(t, ing.Flush())
	stopIngester(t, ing)
	require.Len(t, blockMetas(t, bkt, "a"), 1)
	require.Len(t, blockMetas(t, bkt, "b"), 1)
	require.EqualValues(t, 2, metricValue(t, reg, "vivace_ingester_blocks_flushed_total"))
	require.Zero(t, metricValue(t, reg, "vivace_ingester_flush_failures_total"))
}

// TestFlushAfterFlush: traces pushed after a cut go to a second block, and
// a trace with parts on both sides of the cut is in both, each with its parts.
func TestFlushAfterFlush(t *testing.T) {
	bkt := newBucket(t)
	ing, _ := startIngester(t, testConfig(t, t.TempDir()), bkt)
	rng := rand.New(rand.NewPCG(4, 4))
	first := makeTraces(t, rng, []string{"a"}, 10, 10, 1)
	pushAll(t, ing, first)
	require.NoError(t, ing.Flush())
	waitForBlocks(t, bkt, "a", 1)

	second := makeTraces(t, rng, []string{"a"}, 10, 10, 1)
	straddling := first[0]
	extra := modeltest.Trace(rng, straddling.id, 3)
	extraBytes, err := proto.Marshal(extra)
	require.NoError(t, err)
	pushAll(t, ing, append(second, &tenantTrace{tenant: "a", id: straddling.id, parts: [][]byte{extraBytes}}))
	require.NoError(t, ing.Flush())
	metas := waitForBlocks(t, bkt, "a", 2)

	// From the WAL, the trace comes back whole: both generations' parts.
	got := find(t, ing, "a", straddling.id)
	require.Equal(t, append(append([]byte(nil), straddling.parts[0]...), extraBytes...), got)

	total := 0
	for _, m := range metas {
		total += int(m.TotalTraces)
	}
	require.Equal(t, 21, total)
}

func TestHeadCut(t *testing.T) {
	tests := []struct {
		name string
		cfg  func(*ingester.Config)
	}{
		{"by age", func(c *ingester.Config) { c.MaxBlockDuration = 50 * time.Millisecond }},
		{"by size", func(c *ingester.Config) { c.MaxBlockBytes = 1 }},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bkt := newBucket(t)
			cfg := testConfig(t, t.TempDir())
			tt.cfg(&cfg)
			ing, _ := startIngester(t, cfg, bkt)
			traces := makeTraces(t, rand.New(rand.NewPCG(uint64(i), 5)), []string{"a"}, 5, 5, 1)
			pushAll(t, ing, traces)
			meta := waitForBlocks(t, bkt, "a", 1)[0]
			requireInBlock(t, bkt, meta, "a", traces)
		})
	}

	t.Run("an empty head is not cut", func(t *testing.T) {
		bkt := newBucket(t)
		cfg := testConfig(t, t.TempDir())
		cfg.MaxBlockDuration = time.Millisecond
		cfg.MaxBlockBytes = 1
		ing, _ := startIngester(t, cfg, bkt)
		time.Sleep(50 * time.Millisecond)
		segs, err := wal.Segments(cfg.WALPath)
		require.NoError(t, err)
		require.Len(t, segs, 1, "only the head")
		stopIngester(t, ing)
		tenants, err := bkt.List(context.Background(), "")
		require.NoError(t, err)
		require.Empty(t, tenants)
	})
}

func TestStopFlushes(t *testing.T) {
	bkt := newBucket(t)
	ing, _ := startIngester(t, testConfig(t, t.TempDir()), bkt)
	traces := makeTraces(t, rand.New(rand.NewPCG(6, 6)), []string{"a", "b"}, 10, 10, 2)
	pushAll(t, ing, traces)
	stopIngester(t, ing)
	// No waiting: the blocks are there when the ingester has stopped.
	for _, tenant := range []string{"a", "b"} {
		metas := blockMetas(t, bkt, tenant)
		require.Len(t, metas, 1)
		requireInBlock(t, bkt, metas[0], tenant, traces)
	}
}

// TestRestartAfterKill: the WAL of an ingester that died without stopping
// (copied while it ran) is replayed by the next one: every acknowledged trace
// is served as soon as it runs, and flushed.
func TestRestartAfterKill(t *testing.T) {
	tests := []struct {
		name   string
		damage func(t *testing.T, dir string)
	}{
		{"clean tail", func(*testing.T, string) {}},
		{"torn write at the tail", func(t *testing.T, dir string) {
			// A record whose write was cut short: a length, a CRC and part of a payload.
			f, err := os.OpenFile(filepath.Join(dir, "00000000.wal"), os.O_APPEND|os.O_WRONLY, 0)
			require.NoError(t, err)
			_, err = f.Write([]byte{200, 0, 0, 0, 1, 2, 3, 4, 1, 0, 'a'})
			require.NoError(t, err)
			require.NoError(t, f.Close())
		}},
		{"zero-filled tail", func(t *testing.T, dir string) {
			f, err := os.OpenFile(filepath.Join(dir, "00000000.wal"), os.O_APPEND|os.O_WRONLY, 0)
			require.NoError(t, err)
			_, err = f.Write(make([]byte, 4096))
			require.NoError(t, err)
			require.NoError(t, f.Close())
		}},
		{"a segment with a torn header", func(t *testing.T, dir string) {
			require.NoError(t, os.WriteFile(filepath.Join(dir, "00000001.wal"), []byte("VVWAL"), 0o644))
		}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			ing1, _ := startIngester(t, testConfig(t, dir), newBucket(t))
			traces := makeTraces(t, rand.New(rand.NewPCG(uint64(i), 7)), []string{"a", "b"}, 20, 10, 3)
			pushAll(t, ing1, traces)
			killed := copyDir(t, dir)
			stopIngester(t, ing1) // its own bucket; only the copy matters from here
			tt.damage(t, killed)

			bkt := newBucket(t)
			ing2, reg := startIngester(t, testConfig(t, killed), bkt)
			requireFound(t, ing2, traces)
			parts := 0
			for _, tr := range traces {
				parts += len(tr.parts)
			}
			require.EqualValues(t, parts, metricValue(t, reg, "vivace_ingester_wal_replayed_traces_total"))

			for _, tenant := range []string{"a", "b"} {
				meta := waitForBlocks(t, bkt, tenant, 1)[0]
				requireInBlock(t, bkt, meta, tenant, traces)
			}
			// New pushes go to a new head, after the replayed segments.
			more := makeTraces(t, rand.New(rand.NewPCG(uint64(i), 8)), []string{"a"}, 3, 3, 1)
			pushAll(t, ing2, more)
			requireFound(t, ing2, more)
		})
	}
}

// TestReplayAlreadyFlushed: a segment flushed before a restart (its
// complete_block_timeout not yet over) is replayed, and flushing it again
// finds its blocks rather than writing second ones.
func TestReplayAlreadyFlushed(t *testing.T) {
	bkt := newBucket(t)
	dir := t.TempDir()
	ing1, reg1 := startIngester(t, testConfig(t, dir), bkt)
	traces := makeTraces(t, rand.New(rand.NewPCG(9, 9)), []string{"a", "b", "c"}, 10, 10, 2)
	pushAll(t, ing1, traces)
	require.NoError(t, ing1.Flush())
	before := map[string]string{}
	for _, tenant := range tenantsOf(traces) {
		before[tenant] = waitForBlocks(t, bkt, tenant, 1)[0].BlockID
	}
	require.Eventually(t, func() bool {
		return metricValue(t, reg1, "vivace_ingester_blocks_flushed_total") == 3
	}, waitFor, tick)
	stopIngester(t, ing1)

	ing2, reg2 := startIngester(t, testConfig(t, dir), bkt)
	requireFound(t, ing2, traces)
	require.Eventually(t, func() bool {
		return metricValue(t, reg2, "vivace_ingester_blocks_already_flushed_total") == 3
	}, waitFor, tick)
	require.Zero(t, metricValue(t, reg2, "vivace_ingester_blocks_flushed_total"))
	for _, tenant := range tenantsOf(traces) {
		metas := blockMetas(t, bkt, tenant)
		require.Len(t, metas, 1, "tenant %s", tenant)
		require.Equal(t, before[tenant], metas[0].BlockID)
	}
}

// TestPartlyFlushedReplay: a crash between two tenants' blocks of one
// generation leaves one written; the replay writes only the other.
func TestPartlyFlushedReplay(t *testing.T) {
	bkt := newBucket(t)
	dir := t.TempDir()
	ing1, _ := startIngester(t, testConfig(t, dir), bkt)
	traces := makeTraces(t, rand.New(rand.NewPCG(10, 10)), []string{"a", "b"}, 5, 5, 1)
	pushAll(t, ing1, traces)
	require.NoError(t, ing1.Flush())
	metaA := waitForBlocks(t, bkt, "a", 1)[0]
	waitForBlocks(t, bkt, "b", 1)
	stopIngester(t, ing1)
	// Remove b's block as if the process had died before writing it.
	for _, m := range blockMetas(t, bkt, "b") {
		keys, err := bkt.List(context.Background(), "b/"+m.BlockID+"/")
		require.NoError(t, err)
		for _, k := range keys {
			require.NoError(t, bkt.Delete(context.Background(), k))
		}
	}
	require.Empty(t, blockMetas(t, bkt, "b"))

	_, reg := startIngester(t, testConfig(t, dir), bkt)
	metaB := waitForBlocks(t, bkt, "b", 1)[0]
	requireInBlock(t, bkt, metaB, "b", traces)
	require.Eventually(t, func() bool {
		return metricValue(t, reg, "vivace_ingester_blocks_already_flushed_total") == 1
	}, waitFor, tick)
	require.EqualValues(t, 1, metricValue(t, reg, "vivace_ingester_blocks_flushed_total"))
	require.Equal(t, []string{metaA.BlockID}, []string{blockMetas(t, bkt, "a")[0].BlockID})
}

func TestCompleteBlockTimeout(t *testing.T) {
	bkt := newBucket(t)
	dir := t.TempDir()
	cfg := testConfig(t, dir)
	cfg.CompleteBlockTimeout = 100 * time.Millisecond
	ing, reg := startIngester(t, cfg, bkt)
	traces := makeTraces(t, rand.New(rand.NewPCG(11, 11)), []string{"a"}, 5, 5, 1)
	pushAll(t, ing, traces)
	require.FileExists(t, filepath.Join(dir, "00000000.wal"))
	require.NoError(t, ing.Flush())
	meta := waitForBlocks(t, bkt, "a", 1)[0]

	require.Eventually(t, func() bool {
		_, err := os.Stat(filepath.Join(dir, "00000000.wal"))
		return os.IsNotExist(err)
	}, waitFor, tick, "the flushed segment is deleted")
	segs, err := wal.Segments(dir)
	require.NoError(t, err)
	require.Equal(t, []int{1}, segs, "only the head is left")
	require.EqualValues(t, 1, metricValue(t, reg, "vivace_ingester_wal_segments"))

	// The blocks answer for the traces now; the ingester has none of them.
	for _, tt := range traces {
		require.Empty(t, find(t, ing, "a", tt.id))
	}
	requireInBlock(t, bkt, meta, "a", traces)
}

// TestBadTracesDoNotBlockFlushing: traces the block writer cannot take
// (undecodable, no spans, spans of another trace, zero ID) are skipped, and
// the blocks of other tenants and of later generations are still written.
func TestBadTracesDoNotBlockFlushing(t *testing.T) {
	rng := rand.New(rand.NewPCG(12, 12))
	id := model.TraceID{15: 7}
	otherSpans, err := proto.Marshal(modeltest.Trace(rng, model.TraceID{15: 8}, 2))
	require.NoError(t, err)
	validForZero, err := proto.Marshal(&tracev1.TracesData{ResourceSpans: []*tracev1.ResourceSpans{{ScopeSpans: []*tracev1.ScopeSpans{{Spans: []*tracev1.Span{{TraceId: make([]byte, 16), SpanId: []byte{1, 2, 3, 4, 5, 6, 7, 8}}}}}}}})
	require.NoError(t, err)
	bad := []struct {
		name  string
		id    model.TraceID
		trace []byte
	}{
		{"undecodable", id, []byte{0xff, 0xff, 0xff}},
		{"no spans", id, nil},
		{"spans of another trace", id, otherSpans},
		{"zero trace ID", model.TraceID{}, validForZero},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			bkt := newBucket(t)
			ing, _ := startIngester(t, testConfig(t, t.TempDir()), bkt)
			good := makeTraces(t, rng, []string{"z"}, 3, 3, 1)
			// Tenant "a" has only the bad trace; "m" has it among good ones.
			_, err := ing.Push(user.InjectOrgID(context.Background(), "a"), &vivacepb.PushRequest{Ids: [][]byte{tt.id[:]}, Traces: [][]byte{tt.trace}})
			require.NoError(t, err)
			mixed := makeTraces(t, rng, []string{"m"}, 2, 3, 1)
			pushAll(t, ing, mixed)
			_, err = ing.Push(user.InjectOrgID(context.Background(), "m"), &vivacepb.PushRequest{Ids: [][]byte{tt.id[:]}, Traces: [][]byte{tt.trace}})
			require.NoError(t, err)
			pushAll(t, ing, good)
			require.NoError(t, ing.Flush())

			requireInBlock(t, bkt, waitForBlocks(t, bkt, "z", 1)[0], "z", good)
			requireInBlock(t, bkt, waitForBlocks(t, bkt, "m", 1)[0], "m", mixed)
			require.Empty(t, blockMetas(t, bkt, "a"), "no block of only bad traces")

			// The next generation flushes too.
			later := makeTraces(t, rng, []string{"z"}, 2, 2, 1)
			pushAll(t, ing, later)
			require.NoError(t, ing.Flush())
			waitForBlocks(t, bkt, "z", 2)
		})
	}
}

// TestServeWhileStarting: requests that arrive while the WAL is replayed
// (the servers run before the ingester does) are answered or refused, and
// never crash or race with the replay.
func TestServeWhileStarting(t *testing.T) {
	dir := t.TempDir()
	ing1, _ := startIngester(t, testConfig(t, dir), newBucket(t))
	traces := makeTraces(t, rand.New(rand.NewPCG(13, 13)), []string{"a"}, 40, 5, 1)
	for _, tt := range traces {
		pushAll(t, ing1, []*tenantTrace{tt})
		require.NoError(t, ing1.Flush()) // a segment per trace: a longer replay
	}
	killed := copyDir(t, dir)
	stopIngester(t, ing1)

	ing, err := ingester.New(testConfig(t, killed), newBucket(t), overrides.NewStatic(defaultLimits()), discardLogger(), nil)
	require.NoError(t, err)
	require.NoError(t, ing.Flush(), "flush before start")

	ctx := user.InjectOrgID(context.Background(), "a")
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			_ = ing.Flush()
			_, _ = ing.FindTraceByID(ctx, &vivacepb.TraceByIDRequest{TraceId: traces[0].id[:]})
			_, err := ing.Push(ctx, &vivacepb.PushRequest{Ids: [][]byte{traces[1].id[:]}, Traces: [][]byte{traces[1].parts[0]}})
			if err != nil {
				require.Equal(t, codes.Unavailable, status.Code(err), "%v", err)
			}
		}
	})
	require.NoError(t, services.StartAndAwaitRunning(context.Background(), ing))
	close(stop)
	wg.Wait()
	require.Equal(t, traces[0].parts[0], find(t, ing, "a", traces[0].id))
	stopIngester(t, ing)
}

// TestConcurrentFlushes: with two flush workers, two cut generations are
// written into blocks at the same time; both blocks hold their traces.
func TestConcurrentFlushes(t *testing.T) {
	bkt := &gatedBucket{Bucket: newBucket(t), release: make(chan struct{})}
	cfg := testConfig(t, t.TempDir())
	cfg.ConcurrentFlushes = 2
	ing, _ := startIngester(t, cfg, bkt)
	t.Cleanup(bkt.open) // before the ingester stops, should the test fail
	rng := rand.New(rand.NewPCG(9, 9))
	var all []*tenantTrace
	for range 2 {
		traces := makeTraces(t, rng, []string{"a"}, 10, 5, 1)
		pushAll(t, ing, traces)
		require.NoError(t, ing.Flush())
		all = append(all, traces...)
	}
	// Each worker stops at its block's first upload until released.
	require.Eventually(t, func() bool { return bkt.max() == 2 }, waitFor, tick,
		"two blocks are written at once")
	bkt.open()
	metas := waitForBlocks(t, bkt.Bucket, "a", 2)
	for _, m := range metas {
		require.EqualValues(t, 10, m.TotalTraces)
	}
	requireFound(t, ing, all)
}

// gatedBucket holds every Put until release is closed, counting the Puts
// waiting at once.
type gatedBucket struct {
	storage.Bucket
	release chan struct{}
	once    sync.Once

	mu                    sync.Mutex
	inFlight, maxInFlight int
}

func (b *gatedBucket) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	b.mu.Lock()
	b.inFlight++
	b.maxInFlight = max(b.maxInFlight, b.inFlight)
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		b.inFlight--
		b.mu.Unlock()
	}()
	select {
	case <-b.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	return b.Bucket.Put(ctx, key, r, size)
}

func (b *gatedBucket) open() { b.once.Do(func() { close(b.release) }) }

func (b *gatedBucket) max() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.maxInFlight
}
