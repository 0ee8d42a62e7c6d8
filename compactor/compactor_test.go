package compactor

import (
	"context"
	"hash/fnv"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grafana/dskit/services"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	commonv1 "go.opentelemetry.io/proto/otlp/common/v1"
	resourcev1 "go.opentelemetry.io/proto/otlp/resource/v1"
	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"
	"golang.org/x/sync/errgroup"

	"github.com/vivace-dev/vivace/internal/model"
	"github.com/vivace-dev/vivace/internal/model/modeltest"
	"github.com/vivace-dev/vivace/storage"
	"github.com/vivace-dev/vivace/storage/block"
	"github.com/vivace-dev/vivace/storage/blocklist"
)

// testRF3Dedupe: the three blocks RF 3 ingesters write compact to one block
// holding each span once, answering every trace by ID as before; the sources
// stay readable until compacted_block_retention has passed, then are deleted.
func testRF3Dedupe(t *testing.T, newBucket newBucketFunc) {
	ctx := t.Context()
	bkt := newBucket(t)
	ids, traces := modeltest.Traces(rand.New(rand.NewPCG(1, 2)), 100, 6)
	writeReplicas(t, bkt, ids, traces)
	want := expected(t, ids, traces)

	clk := newClock(modeltest.BaseTime.Add(30 * time.Minute))
	c, list := newCompactor(t, bkt, ownsAll, clk)
	require.NoError(t, list.Poll(ctx))
	sources := list.Metas(tenant)
	require.Len(t, sources, 3)
	var spansIn, distinct int64
	for _, m := range sources {
		spansIn += m.TotalSpans
	}
	for _, s := range want {
		distinct += int64(len(s))
	}
	rs := newReaders(bkt)
	before := map[model.TraceID]map[spanKey]string{}
	for _, id := range ids {
		td, err := rs.find(ctx, sources, id)
		require.NoError(t, err)
		before[id] = spansOf(t, td)
	}
	require.Equal(t, want, before)

	require.NoError(t, c.Cycle(ctx))
	require.NoError(t, list.Poll(ctx))
	metas := list.Metas(tenant)
	require.Len(t, metas, 1)
	out := metas[0]
	require.Equal(t, 1, out.CompactionLevel)
	require.EqualValues(t, len(ids), out.TotalTraces)
	require.Equal(t, distinct, out.TotalSpans, "each span once")
	require.Greater(t, out.RowGroups, 1)
	require.Equal(t, metaIDs(sources), compactedIDs(list.CompactedMetas(tenant)))
	for _, id := range ids {
		td, err := block.NewReader(bkt, out).FindTraceByID(ctx, id)
		require.NoError(t, err)
		require.Equal(t, before[id], spansOf(t, td), "trace %s", id)
	}
	require.Equal(t, 1.0, testutil.ToFloat64(c.metrics.compactions.WithLabelValues(tenant)))
	require.Equal(t, 0.0, testutil.ToFloat64(c.metrics.compactionErrors.WithLabelValues(tenant)))
	require.Equal(t, 3.0, testutil.ToFloat64(c.metrics.blocksCompacted.WithLabelValues(tenant)))
	require.Equal(t, float64(out.Size), testutil.ToFloat64(c.metrics.bytesWritten.WithLabelValues(tenant)))
	require.Equal(t, float64(distinct), testutil.ToFloat64(c.metrics.spansWritten.WithLabelValues(tenant)))
	require.Equal(t, float64(spansIn-distinct), testutil.ToFloat64(c.metrics.spansDeduplicated.WithLabelValues(tenant)))

	// A reader that listed the sources before still finds every trace in
	// them, for the whole grace period.
	clk.add(c.cfg.CompactedBlockRetention)
	require.NoError(t, c.Cycle(ctx))
	require.NoError(t, list.Poll(ctx))
	require.Len(t, list.CompactedMetas(tenant), 3)
	for _, id := range ids {
		td, err := rs.find(ctx, sources, id)
		require.NoError(t, err)
		require.Equal(t, before[id], spansOf(t, td))
	}

	// Then they go, and only they.
	clk.add(time.Second)
	require.NoError(t, c.Cycle(ctx))
	require.NoError(t, list.Poll(ctx))
	require.Empty(t, list.CompactedMetas(tenant))
	require.Equal(t, []string{out.BlockID}, metaIDs(list.Metas(tenant)))
	for _, m := range sources {
		requireGone(t, bkt, m.BlockID)
	}
	require.Equal(t, 3.0, testutil.ToFloat64(c.metrics.compactedDeleted.WithLabelValues(tenant)))
	require.Equal(t, 1.0, testutil.ToFloat64(c.metrics.compactions.WithLabelValues(tenant)), "nothing left to compact")
	_, got := blockTraces(t, bkt, list.Metas(tenant))
	require.Equal(t, want, got)
}

// testZipkinSharedSpans: a Zipkin client and server span sharing one span ID
// are two spans, not duplicates, through compaction.
func testZipkinSharedSpans(t *testing.T, newBucket newBucketFunc) {
	ctx := t.Context()
	bkt := newBucket(t)
	id := model.TraceID{0x5a, 0x1b, 15: 1}
	start := uint64(modeltest.BaseTime.UnixNano())
	span := func(spanID, parent byte, kind tracev1.Span_SpanKind, name string) *tracev1.Span {
		return &tracev1.Span{
			TraceId: id[:], SpanId: []byte{1, 2, 3, 4, 5, 6, 7, spanID}, Kind: kind, Name: name,
			StartTimeUnixNano: start, EndTimeUnixNano: start + 1e6,
			ParentSpanId: map[bool][]byte{true: {1, 2, 3, 4, 5, 6, 7, parent}}[parent != 0],
		}
	}
	rs := func(service string, spans ...*tracev1.Span) *tracev1.ResourceSpans {
		return &tracev1.ResourceSpans{
			Resource: &resourcev1.Resource{Attributes: []*commonv1.KeyValue{{
				Key: "service.name", Value: &commonv1.AnyValue{Value: &commonv1.AnyValue_StringValue{StringValue: service}},
			}}},
			ScopeSpans: []*tracev1.ScopeSpans{{Spans: spans}},
		}
	}
	td := &tracev1.TracesData{ResourceSpans: []*tracev1.ResourceSpans{
		rs("frontend", span(1, 0, tracev1.Span_SPAN_KIND_SERVER, "GET /"), span(2, 1, tracev1.Span_SPAN_KIND_CLIENT, "get cart")),
		rs("cart", span(2, 1, tracev1.Span_SPAN_KIND_SERVER, "get cart")), // shared with the client span
	}}
	for range 3 {
		writeBlock(t, bkt, []model.TraceID{id}, []*tracev1.TracesData{td})
	}
	c, list := newCompactor(t, bkt, ownsAll, newClock(modeltest.BaseTime.Add(time.Hour)))
	require.NoError(t, list.Poll(ctx))
	require.NoError(t, c.Cycle(ctx))
	require.NoError(t, list.Poll(ctx))
	metas := list.Metas(tenant)
	require.Len(t, metas, 1)
	require.EqualValues(t, 3, metas[0].TotalSpans)
	got, err := block.NewReader(bkt, metas[0]).FindTraceByID(ctx, id)
	require.NoError(t, err)
	require.Equal(t, spansOf(t, td), spansOf(t, got))
	require.Equal(t, 6.0, testutil.ToFloat64(c.metrics.spansDeduplicated.WithLabelValues(tenant)))
}

// testRetention: blocks whose newest span is older than block_retention are
// deleted, meta.json first; nothing younger, and nothing by a compactor that
// does not own the tenant's retention.
func testRetention(t *testing.T, newBucket newBucketFunc) {
	ctx := t.Context()
	bkt := &deleteRecorder{Bucket: newBucket(t)}
	rng := rand.New(rand.NewPCG(3, 4))
	write := func(age time.Duration) *block.Meta {
		ids, traces := modeltest.Traces(rng, 20, 4)
		shift(traces, -age)
		return writeBlock(t, bkt, ids, traces)
	}
	old, mid, young := write(20*24*time.Hour), write(10*24*time.Hour), write(0)
	clk := newClock(old.EndTime.Add(336 * time.Hour)) // exactly block_retention: kept
	c, list := newCompactor(t, bkt, ownsAll, clk)
	notRetention := func(key string) bool { return !strings.HasPrefix(key, "retention/") }
	other, _ := newCompactor(t, bkt, notRetention, newClock(young.EndTime.Add(1000*time.Hour)))
	other.list = list
	all := metaIDs([]*block.Meta{old, mid, young})

	require.NoError(t, list.Poll(ctx))
	require.NoError(t, c.Cycle(ctx))
	require.NoError(t, other.Cycle(ctx), "every block past retention, but not its tenant")
	require.NoError(t, list.Poll(ctx))
	require.Equal(t, all, metaIDs(list.Metas(tenant)))
	require.Empty(t, bkt.deleted)

	clk.add(time.Nanosecond)
	require.NoError(t, c.Cycle(ctx))
	requireGone(t, bkt, old.BlockID)
	require.Equal(t, storage.MetaKey(tenant, old.BlockID), bkt.deleted[0], "meta.json first")
	require.Len(t, bkt.deleted, 3+old.BloomShards)
	require.Equal(t, 1.0, testutil.ToFloat64(c.metrics.retentionDeleted.WithLabelValues(tenant)))
	require.NoError(t, c.Cycle(ctx), "a list not polled since")
	require.Equal(t, 1.0, testutil.ToFloat64(c.metrics.retentionDeleted.WithLabelValues(tenant)))
	require.NoError(t, list.Poll(ctx))
	require.Equal(t, metaIDs([]*block.Meta{mid, young}), metaIDs(list.Metas(tenant)))

	clk.set(mid.EndTime.Add(336*time.Hour - time.Nanosecond))
	require.NoError(t, c.Cycle(ctx))
	require.NoError(t, list.Poll(ctx))
	require.Equal(t, metaIDs([]*block.Meta{mid, young}), metaIDs(list.Metas(tenant)))
}

// windowedReplicas writes, for each of windows consecutive hours, sets trace
// sets of n traces as RF 3 replicas, and returns every trace's spans.
func windowedReplicas(t testing.TB, bkt storage.Bucket, seed uint64, windows, sets, n int) map[model.TraceID]map[spanKey]string {
	rng := rand.New(rand.NewPCG(seed, seed))
	want := map[model.TraceID]map[spanKey]string{}
	for w := range windows {
		for range sets {
			ids, traces := modeltest.Traces(rng, n, 6)
			shift(traces, time.Duration(w)*time.Hour)
			writeReplicas(t, bkt, ids, traces)
			for id, s := range expected(t, ids, traces) {
				want[id] = s
			}
		}
	}
	return want
}

// requireOneCopy checks that each trace is in exactly one listed block, with
// all its spans once.
func requireOneCopy(t testing.TB, bkt storage.Bucket, want map[model.TraceID]map[spanKey]string) {
	t.Helper()
	list := blocklist.New(bkt, time.Hour, discard, prometheus.NewRegistry())
	require.NoError(t, list.Poll(context.Background()))
	where, got := blockTraces(t, bkt, list.Metas(tenant))
	require.Equal(t, want, got)
	for id, blocks := range where {
		require.Len(t, blocks, 1, "trace %s", id)
	}
}

// testTwoCompactors: two compactors running at the same time, with the
// complementary ownership the ring gives them, never merge the same blocks:
// afterwards every trace is in exactly one block.
func testTwoCompactors(t *testing.T, newBucket newBucketFunc) {
	hash := func(key string) uint32 { h := fnv.New32a(); h.Write([]byte(key)); return h.Sum32() }
	ownsA := func(key string) bool { return strings.HasPrefix(key, "retention/") || hash(key)%2 == 0 }
	ownsB := func(key string) bool { return !ownsA(key) }
	clk := newClock(modeltest.BaseTime.Add(8*time.Hour + 30*time.Minute))

	// runTogether runs a cycle of each compactor at the same time.
	runTogether := func(t *testing.T, cs ...*Compactor) {
		var g errgroup.Group
		for _, c := range cs {
			require.NoError(t, c.list.Poll(t.Context()))
			g.Go(func() error { return c.Cycle(t.Context()) })
		}
		require.NoError(t, g.Wait())
	}

	t.Run("ring", func(t *testing.T) {
		bkt := newBucket(t)
		want := windowedReplicas(t, bkt, 7, 6, 2, 12)
		a, _ := newCompactor(t, bkt, ownsA, clk)
		b, _ := newCompactor(t, bkt, ownsB, clk)
		for range 3 {
			runTogether(t, a, b)
		}
		for _, c := range []*Compactor{a, b} {
			require.Positive(t, testutil.ToFloat64(c.metrics.compactions.WithLabelValues(tenant)), "both have work")
		}
		requireOneCopy(t, bkt, want)
	})

	// Without the ring, two compactors may merge the same blocks at the same
	// time. Nothing is lost, and readers drop the duplicate spans, but the
	// traces sit in two blocks until a later cycle merges those: the ring is
	// what prevents the double work.
	t.Run("same owner", func(t *testing.T) {
		bkt := newBucket(t)
		want := windowedReplicas(t, bkt, 8, 4, 2, 12)
		a, _ := newCompactor(t, bkt, ownsAll, clk)
		b, _ := newCompactor(t, bkt, ownsAll, clk)
		runTogether(t, a, b)
		list := blocklist.New(bkt, time.Hour, discard, prometheus.NewRegistry())
		require.NoError(t, list.Poll(t.Context()))
		where, got := blockTraces(t, bkt, list.Metas(tenant))
		require.Equal(t, want, got, "no span lost")
		twice := 0
		for _, blocks := range where {
			if len(blocks) > 1 {
				twice++
			}
		}
		t.Logf("without the ring, %d of %d traces ended up in two blocks", twice, len(where))
		for range 2 {
			require.NoError(t, a.list.Poll(t.Context()))
			require.NoError(t, a.Cycle(t.Context()))
		}
		requireOneCopy(t, bkt, want)
	})
}

// testLookupsDuringCompaction: trace-by-ID lookups running all through
// compaction, over a block list polled all the while, as a querier does,
// never miss a span and never return one twice.
func testLookupsDuringCompaction(t *testing.T, newBucket newBucketFunc) {
	ctx := t.Context()
	bkt := newBucket(t)
	want := windowedReplicas(t, bkt, 9, 2, 4, 15) // 12 blocks in each of 2 windows
	ids := sortedTraceIDs(want)
	clk := newClock(modeltest.BaseTime.Add(90 * time.Minute))
	c, list := newCompactor(t, slowBucket{bkt, time.Millisecond}, ownsAll, clk)

	qlist := blocklist.New(bkt, time.Hour, discard, prometheus.NewRegistry())
	require.NoError(t, qlist.Poll(ctx))
	var (
		stop    atomic.Bool
		polls   atomic.Int64
		lookups atomic.Int64
		wg      sync.WaitGroup
		rs      = newReaders(bkt)
	)
	wg.Go(func() {
		for !stop.Load() {
			if err := qlist.Poll(ctx); err != nil {
				t.Errorf("poll: %v", err)
				stop.Store(true)
				return
			}
			polls.Add(1)
		}
	})
	for w := range 2 {
		wg.Go(func() {
			for i := w; !stop.Load(); i++ {
				id := ids[i%len(ids)]
				td, err := rs.find(ctx, qlist.Metas(tenant), id)
				if err != nil {
					t.Errorf("find %s: %v", id, err)
					stop.Store(true)
					return
				}
				got, dups := spans(td)
				if dups > 0 || len(got) != len(want[id]) {
					t.Errorf("find %s: %d spans (%d duplicates), want %d", id, len(got), dups, len(want[id]))
					stop.Store(true)
					return
				}
				lookups.Add(1)
			}
		})
	}

	// 12 level-0 blocks a window: jobs of 8 and 4 blocks, then the two
	// level-1 blocks into one.
	for _, blocks := range []int{24, 4, 2} {
		require.NoError(t, list.Poll(ctx))
		require.Len(t, list.Metas(tenant), blocks)
		before := lookups.Load()
		require.NoError(t, c.Cycle(ctx))
		t.Logf("%d lookups during the compaction of %d blocks", lookups.Load()-before, blocks)
	}
	// Let the lookups see the final list too.
	p, l := polls.Load(), lookups.Load()
	require.Eventually(t, func() bool {
		return stop.Load() || polls.Load() > p+2 && lookups.Load() > l+int64(len(ids))
	}, time.Minute, time.Millisecond)
	require.False(t, stop.Load(), "lookups failed")
	stop.Store(true)
	wg.Wait()
	require.Equal(t, 28.0, testutil.ToFloat64(c.metrics.blocksCompacted.WithLabelValues(tenant)))

	// Once the grace period is over the sources go; readers that polled
	// since do not need them.
	require.NoError(t, list.Poll(ctx))
	clk.add(c.cfg.CompactedBlockRetention + time.Second)
	require.NoError(t, c.Cycle(ctx))
	require.Equal(t, 28.0, testutil.ToFloat64(c.metrics.compactedDeleted.WithLabelValues(tenant)))
	require.NoError(t, qlist.Poll(ctx))
	require.Len(t, qlist.Metas(tenant), 2)
	for _, id := range ids {
		td, err := rs.find(ctx, qlist.Metas(tenant), id)
		require.NoError(t, err)
		require.Equal(t, want[id], spansOf(t, td))
	}
	requireOneCopy(t, bkt, want)
}

// TestService: the compactor runs cycles on its own once started.
func TestService(t *testing.T) {
	ctx := t.Context()
	bkt := fsBucket(t)
	want := windowedReplicas(t, bkt, 10, 1, 1, 10)
	reg := prometheus.NewPedanticRegistry()
	list := blocklist.New(bkt, 10*time.Millisecond, discard, reg)
	cfg := defaultConfig(t)
	cfg.Compaction.CompactionCycle = 10 * time.Millisecond
	c, err := New(cfg, bkt, list, ownsAll, nil, block.WriterConfig{}, t.TempDir(), discard, reg)
	require.NoError(t, err)
	c.now = newClock(modeltest.BaseTime.Add(time.Hour)).now
	require.NoError(t, services.StartAndAwaitRunning(ctx, list))
	require.NoError(t, services.StartAndAwaitRunning(ctx, c))
	require.Eventually(t, func() bool { return len(list.Metas(tenant)) == 1 && len(list.CompactedMetas(tenant)) == 3 }, 30*time.Second, 10*time.Millisecond)
	require.NoError(t, services.StopAndAwaitTerminated(context.Background(), c))
	require.NoError(t, services.StopAndAwaitTerminated(context.Background(), list))
	requireOneCopy(t, bkt, want)
}

// failingBucket fails every Put of a meta.json while fail is set, and
// cancels cancel at the first GetRange if set.
type failingBucket struct {
	storage.Bucket
	fail   atomic.Bool
	cancel context.CancelFunc
}

func (b *failingBucket) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	if b.fail.Load() && strings.HasSuffix(key, "/"+storage.MetaName) {
		return io.ErrClosedPipe
	}
	return b.Bucket.Put(ctx, key, r, size)
}

func (b *failingBucket) GetRange(ctx context.Context, key string, off, length int64) (io.ReadCloser, error) {
	if b.cancel != nil {
		b.cancel()
	}
	return b.Bucket.GetRange(ctx, key, off, length)
}

// TestFailedCompaction: a job that fails, or is cancelled, marks nothing
// and leaves no visible block; the next cycle does the job.
func TestFailedCompaction(t *testing.T) {
	ctx := t.Context()
	bkt := &failingBucket{Bucket: fsBucket(t)}
	want := windowedReplicas(t, bkt, 11, 1, 1, 30)
	c, list := newCompactor(t, bkt, ownsAll, newClock(modeltest.BaseTime.Add(time.Hour)))
	require.NoError(t, list.Poll(ctx))
	sources := metaIDs(list.Metas(tenant))

	bkt.fail.Store(true)
	require.ErrorIs(t, c.Cycle(ctx), io.ErrClosedPipe)
	require.Equal(t, 1.0, testutil.ToFloat64(c.metrics.compactionErrors.WithLabelValues(tenant)))

	cctx, cancel := context.WithCancel(ctx)
	bkt.fail.Store(false)
	bkt.cancel = cancel
	require.ErrorIs(t, c.Cycle(cctx), context.Canceled)
	bkt.cancel = nil

	require.NoError(t, list.Poll(ctx))
	require.Equal(t, sources, metaIDs(list.Metas(tenant)))
	require.Empty(t, list.CompactedMetas(tenant))
	require.NoError(t, c.Cycle(ctx))
	requireOneCopy(t, bkt, want)
}
