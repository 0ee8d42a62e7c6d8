package blocklist_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"flag"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/vivace-dev/vivace/storage"
	"github.com/vivace-dev/vivace/storage/block"
	"github.com/vivace-dev/vivace/storage/blocklist"
	"github.com/vivace-dev/vivace/storage/s3"
	"github.com/vivace-dev/vivace/storage/storagetest"
)

type newBucketFunc func(testing.TB) storage.Bucket

// TestTenantIndex runs the tenant index tests against the local-directory
// bucket and against a real MinIO (one server for all of them).
func TestTenantIndex(t *testing.T) {
	tests := map[string]func(*testing.T, newBucketFunc){
		"ReaderMatchesBuilder": testReaderMatchesBuilder,
		"Fallback":             testFallback,
		"Compacted":            testCompactedThroughIndex,
		"OwnershipMoves":       testOwnershipMoves,
		"EmptyTenant":          testEmptyTenant,
	}
	run := func(t *testing.T, newBucket newBucketFunc) {
		for _, name := range slices.Sorted(maps.Keys(tests)) {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				tests[name](t, newBucket)
			})
		}
	}
	t.Run("fs", func(t *testing.T) { run(t, func(tb testing.TB) storage.Bucket { return newBucket(tb) }) })
	t.Run("s3", func(t *testing.T) {
		m := storagetest.StartMinIO(t)
		run(t, func(tb testing.TB) storage.Bucket {
			var cfg s3.Config
			cfg.RegisterFlagsAndApplyDefaults("s3", flag.NewFlagSet("", flag.PanicOnError))
			cfg.Bucket = m.NewBucket(tb)
			cfg.Endpoint, cfg.Region, cfg.Insecure = m.Endpoint, m.Region, true
			cfg.AccessKey = m.AccessKey
			require.NoError(tb, cfg.SecretKey.Set(m.SecretKey))
			b, err := s3.New(cfg, slog.New(slog.DiscardHandler))
			require.NoError(tb, err)
			return b
		})
	})
}

// t0 is when the tests' clocks start.
var t0 = time.Date(2026, 3, 14, 16, 0, 0, 0, time.UTC)

// clock is a List's clock in tests: it moves only when told.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock(t time.Time) *clock { return &clock{t: t} }

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// newIndexed makes a List that builds the indexes of the tenants build
// says, polled by hand: its poll interval is an hour, so an index is stale
// after two.
func newIndexed(t testing.TB, bkt storage.Bucket, build func(string) bool, clk *clock) (*blocklist.List, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	cfg := blocklist.Config{PollInterval: time.Hour, BuildIndex: build}
	l, err := blocklist.NewWithConfig(cfg, bkt, slog.New(slog.DiscardHandler), reg)
	require.NoError(t, err)
	blocklist.SetNow(l, clk.now)
	return l, reg
}

func ownsAll(string) bool { return true }

func owns(tenants ...string) func(string) bool {
	return func(tenant string) bool { return slices.Contains(tenants, tenant) }
}

// countingBucket records the keys and folders it is asked for.
type countingBucket struct {
	storage.Bucket
	mu                sync.Mutex
	lists, gets, puts []string
}

func (b *countingBucket) List(ctx context.Context, dir string) ([]string, error) {
	b.record(&b.lists, dir)
	return b.Bucket.List(ctx, dir)
}

func (b *countingBucket) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	b.record(&b.gets, key)
	return b.Bucket.Get(ctx, key)
}

func (b *countingBucket) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	b.record(&b.puts, key)
	return b.Bucket.Put(ctx, key, r, size)
}

func (b *countingBucket) record(to *[]string, s string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	*to = append(*to, s)
}

// reset returns what was asked since the last reset, each sorted.
func (b *countingBucket) reset() (lists, gets, puts []string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	lists, gets, puts = sorted(b.lists...), sorted(b.gets...), sorted(b.puts...)
	b.lists, b.gets, b.puts = nil, nil, nil
	return lists, gets, puts
}

func byID(metas []*block.Meta) []*block.Meta {
	return slices.SortedFunc(slices.Values(metas), func(a, b *block.Meta) int { return strings.Compare(a.BlockID, b.BlockID) })
}

func compactedByID(cms []*block.CompactedMeta) []*block.CompactedMeta {
	return slices.SortedFunc(slices.Values(cms), func(a, b *block.CompactedMeta) int { return strings.Compare(a.BlockID, b.BlockID) })
}

func gzipped(t testing.TB, s string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, err := zw.Write([]byte(s))
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	return buf.Bytes()
}

func getObject(t testing.TB, bkt storage.Bucket, key string) []byte {
	t.Helper()
	rc, err := bkt.Get(context.Background(), key)
	require.NoError(t, err)
	defer rc.Close()
	b, err := io.ReadAll(rc)
	require.NoError(t, err)
	return b
}

func putObject(t testing.TB, bkt storage.Bucket, key string, b []byte) {
	t.Helper()
	require.NoError(t, bkt.Put(context.Background(), key, bytes.NewReader(b), int64(len(b))))
}

// testReaderMatchesBuilder: a reader gets from the index exactly the list
// the builder listed, compacted blocks included, with one GET per tenant
// and no listing of any tenant's folder.
func testReaderMatchesBuilder(t *testing.T, newBucket newBucketFunc) {
	ctx := t.Context()
	inner := newBucket(t)
	a1, a2, a3 := writeBlock(t, inner, "a"), writeBlock(t, inner, "a"), writeBlock(t, inner, "a")
	b1 := writeBlock(t, inner, "b")
	at := t0.Add(-time.Minute)
	markCompacted(t, inner, "a", a1, at)
	markCompacted(t, inner, "a", a2, at)
	// A deletion interrupted after meta.json: still compacted.
	require.NoError(t, inner.Delete(ctx, storage.MetaKey("a", a2)))

	bkt := &countingBucket{Bucket: inner}
	clk := newClock(t0)
	builder, breg := newIndexed(t, bkt, ownsAll, clk)
	require.NoError(t, builder.Poll(ctx))
	lists, _, puts := bkt.reset()
	require.Contains(t, lists, "a/", "the builder lists")
	indexes := []string{storage.TenantIndexKey("a"), storage.TenantIndexKey("b")}
	require.Equal(t, indexes, puts, "one Put per index: readers see the old index or the new one, whole")
	require.Equal(t, []string{a3}, ids(builder.Metas("a")))
	require.Equal(t, sorted(a1, a2), compactedIDs(builder.CompactedMetas("a")))
	require.Equal(t, []string{b1}, ids(builder.Metas("b")))

	clk.set(t0.Add(90 * time.Second))
	reader, rreg := newIndexed(t, bkt, nil, clk)
	require.NoError(t, reader.Poll(ctx))
	lists, gets, puts := bkt.reset()
	require.Equal(t, []string{""}, lists, "a reader lists only the tenants")
	require.Equal(t, indexes, gets, "and reads one index per tenant")
	require.Empty(t, puts)

	require.Equal(t, builder.Tenants(), reader.Tenants())
	for _, tenant := range []string{"a", "b"} {
		require.Equal(t, byID(builder.Metas(tenant)), byID(reader.Metas(tenant)))
		require.Equal(t, compactedByID(builder.CompactedMetas(tenant)), compactedByID(reader.CompactedMetas(tenant)))
	}
	for _, cm := range reader.CompactedMetas("a") {
		require.True(t, cm.CompactedTime.Equal(at))
	}

	require.NoError(t, testutil.GatherAndCompare(breg, strings.NewReader(`
# HELP vivace_blocklist_tenant_index_builds_total Tenant indexes written by this poller, by tenant.
# TYPE vivace_blocklist_tenant_index_builds_total counter
vivace_blocklist_tenant_index_builds_total{tenant="a"} 1
vivace_blocklist_tenant_index_builds_total{tenant="b"} 1
`), "vivace_blocklist_tenant_index_builds_total", "vivace_blocklist_tenant_index_age_seconds", "vivace_blocklist_tenant_index_errors_total"))
	require.NoError(t, testutil.GatherAndCompare(rreg, strings.NewReader(`
# HELP vivace_blocklist_blocks Blocks in the polled block list, by tenant.
# TYPE vivace_blocklist_blocks gauge
vivace_blocklist_blocks{tenant="a"} 1
vivace_blocklist_blocks{tenant="b"} 1
# HELP vivace_blocklist_compacted_blocks Blocks marked compacted and not yet deleted, by tenant.
# TYPE vivace_blocklist_compacted_blocks gauge
vivace_blocklist_compacted_blocks{tenant="a"} 2
vivace_blocklist_compacted_blocks{tenant="b"} 0
# HELP vivace_blocklist_tenant_index_age_seconds Age of the tenant index read at the last poll, used or found stale, by tenant.
# TYPE vivace_blocklist_tenant_index_age_seconds gauge
vivace_blocklist_tenant_index_age_seconds{tenant="a"} 90
vivace_blocklist_tenant_index_age_seconds{tenant="b"} 90
`), "vivace_blocklist_blocks", "vivace_blocklist_compacted_blocks", "vivace_blocklist_tenant_index_age_seconds",
		"vivace_blocklist_tenant_index_builds_total", "vivace_blocklist_tenant_index_errors_total"))
}

// testFallback: a reader lists a tenant whose index is missing, does not
// decode, is not the tenant's or is stale, and gets what a listing gets;
// the other tenants it still reads from their index.
func testFallback(t *testing.T, newBucket newBucketFunc) {
	ctx := t.Context()
	inner := newBucket(t)
	writeBlock(t, inner, "a")
	writeBlock(t, inner, "b")
	builder, _ := newIndexed(t, inner, ownsAll, newClock(t0))

	tests := []struct {
		name   string
		spoil  func(t *testing.T) // a's good index
		reason string
	}{
		{"missing", func(t *testing.T) {
			require.NoError(t, inner.Delete(ctx, storage.TenantIndexKey("a")))
		}, "missing"},
		{"not gzip", func(t *testing.T) {
			putObject(t, inner, storage.TenantIndexKey("a"), []byte(`{"version":1}`))
		}, "unreadable"},
		{"truncated", func(t *testing.T) {
			b := getObject(t, inner, storage.TenantIndexKey("a"))
			putObject(t, inner, storage.TenantIndexKey("a"), b[:len(b)-8]) // without the gzip checksum
		}, "unreadable"},
		{"not json", func(t *testing.T) {
			putObject(t, inner, storage.TenantIndexKey("a"), gzipped(t, `{"version":1,"meta":[`))
		}, "unreadable"},
		{"unknown version", func(t *testing.T) {
			putObject(t, inner, storage.TenantIndexKey("a"), gzipped(t, `{"version":2,"created_at":"2026-03-14T16:00:00Z","meta":[],"compacted":[]}`))
		}, "unreadable"},
		{"another tenant's", func(t *testing.T) {
			putObject(t, inner, storage.TenantIndexKey("a"), getObject(t, inner, storage.TenantIndexKey("b")))
		}, "unreadable"},
		{"stale", func(t *testing.T) {
			// Written three hours ago by a builder that stopped since.
			old, _ := newIndexed(t, inner, owns("a"), newClock(t0.Add(-3*time.Hour)))
			require.NoError(t, old.Poll(ctx))
		}, "stale"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.NoError(t, builder.Poll(ctx))
			tc.spoil(t)
			newer := writeBlock(t, inner, "a") // only a listing finds it

			bkt := &countingBucket{Bucket: inner}
			reader, reg := newIndexed(t, bkt, nil, newClock(t0))
			require.NoError(t, reader.Poll(ctx))
			lists, _, _ := bkt.reset()
			require.Contains(t, lists, "a/", "a is listed")
			require.NotContains(t, lists, "b/", "b's index is used")
			require.Contains(t, ids(reader.Metas("a")), newer)

			require.NoError(t, builder.Poll(ctx))
			require.Equal(t, byID(builder.Metas("a")), byID(reader.Metas("a")))
			require.Equal(t, byID(builder.Metas("b")), byID(reader.Metas("b")))
			require.Equal(t, 1.0, indexErrors(t, reg, "a", tc.reason))
		})
	}
}

// indexErrors is a List's vivace_blocklist_tenant_index_errors_total for
// tenant and reason.
func indexErrors(t testing.TB, reg prometheus.Gatherer, tenant, reason string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != "vivace_blocklist_tenant_index_errors_total" {
			continue
		}
		for _, m := range mf.Metric {
			labels := map[string]string{}
			for _, lp := range m.Label {
				labels[lp.GetName()] = lp.GetValue()
			}
			if labels["tenant"] == tenant && labels["reason"] == reason {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// testCompactedThroughIndex: blocks marked compacted reach readers through
// the index at the builder's next poll, with their compaction time, and
// leave it when deleted.
func testCompactedThroughIndex(t *testing.T, newBucket newBucketFunc) {
	ctx := t.Context()
	bkt := newBucket(t)
	clk := newClock(t0)
	builder, _ := newIndexed(t, bkt, ownsAll, clk)
	reader, _ := newIndexed(t, bkt, nil, clk)
	src1, src2 := writeBlock(t, bkt, "a"), writeBlock(t, bkt, "a")
	require.NoError(t, builder.Poll(ctx))
	require.NoError(t, reader.Poll(ctx))
	require.Equal(t, sorted(src1, src2), ids(reader.Metas("a")))

	at := t0.Add(time.Minute)
	replacement := writeBlock(t, bkt, "a")
	markCompacted(t, bkt, "a", src1, at)
	markCompacted(t, bkt, "a", src2, at)
	require.NoError(t, reader.Poll(ctx))
	require.Equal(t, sorted(src1, src2), ids(reader.Metas("a")),
		"until the builder polls, readers keep the sources, whose objects are still there")
	require.Empty(t, reader.CompactedMetas("a"))

	require.NoError(t, builder.Poll(ctx))
	require.NoError(t, reader.Poll(ctx))
	require.Equal(t, []string{replacement}, ids(reader.Metas("a")))
	require.Equal(t, sorted(src1, src2), compactedIDs(reader.CompactedMetas("a")))
	for _, cm := range reader.CompactedMetas("a") {
		require.True(t, cm.CompactedTime.Equal(at))
		require.Equal(t, "a", cm.TenantID)
		require.EqualValues(t, 3, cm.TotalTraces, "the whole meta is carried")
	}

	// One deleted, one deletion interrupted after meta.json.
	deleteBlock(t, bkt, "a", src1)
	require.NoError(t, bkt.Delete(ctx, storage.MetaKey("a", src2)))
	require.NoError(t, builder.Poll(ctx))
	require.NoError(t, reader.Poll(ctx))
	require.Equal(t, []string{replacement}, ids(reader.Metas("a")))
	require.Equal(t, []string{src2}, compactedIDs(reader.CompactedMetas("a")))
}

// testOwnershipMoves: when another poller becomes a tenant's builder, the
// old one reads the index like any reader, and both keep a full list, even
// while both think they build.
func testOwnershipMoves(t *testing.T, newBucket newBucketFunc) {
	ctx := t.Context()
	inner := newBucket(t)
	var (
		mu    sync.Mutex
		owner string // the ring's answer: "x", "y" or "both"
	)
	setOwner := func(o string) { mu.Lock(); owner = o; mu.Unlock() }
	builds := func(name string) func(string) bool {
		return func(string) bool { mu.Lock(); defer mu.Unlock(); return owner == name || owner == "both" }
	}
	clk := newClock(t0)
	xb, yb := &countingBucket{Bucket: inner}, &countingBucket{Bucket: inner}
	x, xreg := newIndexed(t, xb, builds("x"), clk)
	y, yreg := newIndexed(t, yb, builds("y"), clk)
	listed := func(b *countingBucket) bool {
		lists, _, _ := b.reset()
		return slices.Contains(lists, "a/")
	}

	setOwner("x")
	b1 := writeBlock(t, inner, "a")
	require.NoError(t, x.Poll(ctx))
	require.NoError(t, y.Poll(ctx))
	require.True(t, listed(xb))
	require.False(t, listed(yb))
	require.Equal(t, []string{b1}, ids(y.Metas("a")))

	setOwner("y")
	b2 := writeBlock(t, inner, "a")
	require.NoError(t, x.Poll(ctx))
	require.False(t, listed(xb), "x reads the index now")
	require.Equal(t, []string{b1}, ids(x.Metas("a")), "the one x wrote: the new builder has not polled yet")
	require.NoError(t, y.Poll(ctx))
	require.True(t, listed(yb))
	require.Equal(t, sorted(b1, b2), ids(y.Metas("a")))
	require.NoError(t, x.Poll(ctx))
	require.False(t, listed(xb))
	require.Equal(t, sorted(b1, b2), ids(x.Metas("a")), "from y's index")

	// A ring change seen at different times: both build. Each writes a
	// whole index, and the last one written is a full list.
	setOwner("both")
	b3 := writeBlock(t, inner, "a")
	require.NoError(t, x.Poll(ctx))
	require.NoError(t, y.Poll(ctx))
	reader, _ := newIndexed(t, inner, nil, clk)
	require.NoError(t, reader.Poll(ctx))
	require.Equal(t, sorted(b1, b2, b3), ids(reader.Metas("a")))

	require.Equal(t, 2.0, counterValue(t, xreg, "vivace_blocklist_tenant_index_builds_total"))
	require.Equal(t, 2.0, counterValue(t, yreg, "vivace_blocklist_tenant_index_builds_total"))
}

// testEmptyTenant: the builder deletes the index of a tenant left without
// blocks, so its folder goes and no one polls it any more.
func testEmptyTenant(t *testing.T, newBucket newBucketFunc) {
	ctx := t.Context()
	bkt := newBucket(t)
	clk := newClock(t0)
	builder, _ := newIndexed(t, bkt, ownsAll, clk)
	reader, reg := newIndexed(t, bkt, nil, clk)
	writeBlock(t, bkt, "a")
	b1 := writeBlock(t, bkt, "b")
	require.NoError(t, builder.Poll(ctx))
	require.NoError(t, reader.Poll(ctx))
	require.Equal(t, []string{"a", "b"}, reader.Tenants())

	deleteBlock(t, bkt, "b", b1)
	require.NoError(t, builder.Poll(ctx))
	_, err := bkt.Get(ctx, storage.TenantIndexKey("b"))
	require.ErrorIs(t, err, storage.ErrNotFound)
	top, err := bkt.List(ctx, "")
	require.NoError(t, err)
	require.Equal(t, []string{"a/"}, top)

	require.NoError(t, reader.Poll(ctx))
	require.Equal(t, []string{"a"}, reader.Tenants())
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP vivace_blocklist_tenant_index_age_seconds Age of the tenant index read at the last poll, used or found stale, by tenant.
# TYPE vivace_blocklist_tenant_index_age_seconds gauge
vivace_blocklist_tenant_index_age_seconds{tenant="a"} 0
`), "vivace_blocklist_tenant_index_age_seconds"))
}

// TestReplacementThroughIndex: a builder poll that lists a tenant just
// before the compactor writes a replacement and marks the sources writes
// the replacement into the index, so readers of the index miss no trace.
func TestReplacementThroughIndex(t *testing.T) {
	ctx := t.Context()
	inner := newBucket(t)
	src := writeBlock(t, inner, "a")
	var replacement string
	bkt := &hookBucket{Bucket: inner, dir: "a/", hook: func() {
		replacement = writeBlock(t, inner, "a")
		markCompacted(t, inner, "a", src, t0)
	}}
	clk := newClock(t0)
	builder, _ := newIndexed(t, bkt, ownsAll, clk)
	require.NoError(t, builder.Poll(ctx))
	reader, _ := newIndexed(t, inner, nil, clk)
	require.NoError(t, reader.Poll(ctx))
	require.NotEmpty(t, replacement)
	require.Equal(t, []string{replacement}, ids(reader.Metas("a")))
	require.Equal(t, []string{src}, compactedIDs(reader.CompactedMetas("a")))
}
