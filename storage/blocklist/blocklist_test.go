package blocklist_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/grafana/dskit/services"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"
	"go.uber.org/goleak"

	"github.com/vivace-dev/vivace/internal/model"
	"github.com/vivace-dev/vivace/internal/model/modeltest"
	"github.com/vivace-dev/vivace/storage"
	"github.com/vivace-dev/vivace/storage/block"
	"github.com/vivace-dev/vivace/storage/blocklist"
	"github.com/vivace-dev/vivace/storage/fs"
)

func TestMain(m *testing.M) {
	// minio-go keeps idle connections of its transport open.
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
	)
}

func newBucket(t testing.TB) *fs.Bucket {
	t.Helper()
	bkt, err := fs.New(t.TempDir())
	require.NoError(t, err)
	return bkt
}

func newList(t testing.TB, bkt storage.Bucket, period time.Duration) (*blocklist.List, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	return blocklist.New(bkt, period, slog.New(slog.NewTextHandler(io.Discard, nil)), reg), reg
}

var (
	rngMu sync.Mutex // tests run in parallel
	rng   = rand.New(rand.NewPCG(1, 1))
)

// writeBlock writes a small complete block and returns its ID.
func writeBlock(t testing.TB, bkt storage.Bucket, tenant string) string {
	t.Helper()
	id := uuid.New()
	w, err := block.NewWriter(block.WriterConfig{}, t.TempDir(), tenant, id)
	require.NoError(t, err)
	rngMu.Lock()
	ids, traces := modeltest.Traces(rng, 3, 2)
	rngMu.Unlock()
	for i := range ids {
		require.NoError(t, w.Add(ids[i], traces[i]))
	}
	_, err = w.Finish(context.Background(), bkt)
	require.NoError(t, err)
	return id.String()
}

func deleteBlock(t testing.TB, bkt storage.Bucket, tenant, id string) {
	t.Helper()
	ctx := context.Background()
	keys, err := bkt.List(ctx, storage.BlockDir(tenant, id))
	require.NoError(t, err)
	require.NotEmpty(t, keys)
	for _, k := range keys {
		require.NoError(t, bkt.Delete(ctx, k))
	}
}

func ids(metas []*block.Meta) []string {
	out := make([]string, 0, len(metas))
	for _, m := range metas {
		out = append(out, m.BlockID)
	}
	slices.Sort(out)
	return out
}

func sorted(s ...string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

func TestPoll(t *testing.T) {
	ctx := context.Background()
	bkt := newBucket(t)
	l, reg := newList(t, bkt, time.Hour)
	require.Empty(t, l.Metas("a"), "nothing before the first poll")

	a1, a2 := writeBlock(t, bkt, "a"), writeBlock(t, bkt, "a")
	b1 := writeBlock(t, bkt, "b")
	require.Empty(t, l.Metas("a"), "nothing until polled")
	require.NoError(t, l.Poll(ctx))
	require.Equal(t, sorted(a1, a2), ids(l.Metas("a")))
	require.Equal(t, []string{b1}, ids(l.Metas("b")))
	require.Empty(t, l.Metas("c"))
	for _, m := range l.Metas("a") {
		require.Equal(t, "a", m.TenantID)
		require.EqualValues(t, 3, m.TotalTraces)
	}
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP vivace_blocklist_blocks Blocks in the polled block list, by tenant.
# TYPE vivace_blocklist_blocks gauge
vivace_blocklist_blocks{tenant="a"} 2
vivace_blocklist_blocks{tenant="b"} 1
`), "vivace_blocklist_blocks"))

	// A block being written has no meta.json yet (it comes last): invisible.
	partial := uuid.NewString()
	require.NoError(t, bkt.Put(ctx, storage.DataKey("a", partial), bytes.NewReader([]byte("PAR1")), 4))
	require.NoError(t, bkt.Put(ctx, storage.BloomKey("a", partial, 0), bytes.NewReader([]byte("x")), 1))
	// Not blocks at all: a file at the tenant level, and a stray file at the top.
	require.NoError(t, bkt.Put(ctx, "a/README", bytes.NewReader([]byte("x")), 1))
	require.NoError(t, bkt.Put(ctx, "index.json", bytes.NewReader([]byte("x")), 1))
	require.NoError(t, l.Poll(ctx))
	require.Equal(t, sorted(a1, a2), ids(l.Metas("a")))

	// Once its meta.json is there, it is a block like the others.
	a3 := writeBlock(t, bkt, "a")
	require.NoError(t, l.Poll(ctx))
	require.Equal(t, sorted(a1, a2, a3), ids(l.Metas("a")))

	// Deleted blocks disappear, and so does a tenant left without blocks.
	deleteBlock(t, bkt, "a", a1)
	deleteBlock(t, bkt, "b", b1)
	require.NoError(t, l.Poll(ctx))
	require.Equal(t, sorted(a2, a3), ids(l.Metas("a")))
	require.Empty(t, l.Metas("b"))
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP vivace_blocklist_blocks Blocks in the polled block list, by tenant.
# TYPE vivace_blocklist_blocks gauge
vivace_blocklist_blocks{tenant="a"} 2
`), "vivace_blocklist_blocks"))
}

// TestBadMeta: a block whose meta.json does not decode, or names another
// block, is skipped; the others stay visible.
func TestBadMeta(t *testing.T) {
	ctx := context.Background()
	bkt := newBucket(t)
	good := writeBlock(t, bkt, "a")
	garbage := uuid.NewString()
	require.NoError(t, bkt.Put(ctx, storage.MetaKey("a", garbage), bytes.NewReader([]byte("{not json")), 9))
	// A copy of a good meta.json under another block ID.
	rc, err := bkt.Get(ctx, storage.MetaKey("a", good))
	require.NoError(t, err)
	meta, err := io.ReadAll(rc)
	require.NoError(t, err)
	require.NoError(t, rc.Close())
	require.NoError(t, bkt.Put(ctx, storage.MetaKey("a", uuid.NewString()), bytes.NewReader(meta), int64(len(meta))))
	// And one under another tenant.
	require.NoError(t, bkt.Put(ctx, storage.MetaKey("b", good), bytes.NewReader(meta), int64(len(meta))))

	l, _ := newList(t, bkt, time.Hour)
	require.NoError(t, l.Poll(ctx))
	require.Equal(t, []string{good}, ids(l.Metas("a")))
	require.Empty(t, l.Metas("b"))
}

// TestMetasIsACopy: callers may keep or change what Metas returns.
func TestMetasIsACopy(t *testing.T) {
	ctx := context.Background()
	bkt := newBucket(t)
	id := writeBlock(t, bkt, "a")
	l, _ := newList(t, bkt, time.Hour)
	require.NoError(t, l.Poll(ctx))
	got := l.Metas("a")
	got[0] = nil
	require.Equal(t, []string{id}, ids(l.Metas("a")))
}

// failingBucket fails every List while fail is set.
type failingBucket struct {
	storage.Bucket
	fail atomic.Bool
}

func (b *failingBucket) List(ctx context.Context, dir string) ([]string, error) {
	if b.fail.Load() {
		return nil, io.ErrUnexpectedEOF
	}
	return b.Bucket.List(ctx, dir)
}

// TestService: the first poll happens before the service runs; later polls
// run every period; a failed poll keeps the last list.
func TestService(t *testing.T) {
	ctx := context.Background()
	inner := newBucket(t)
	bkt := &failingBucket{Bucket: inner}
	first := writeBlock(t, inner, "a")
	l, reg := newList(t, bkt, 10*time.Millisecond)
	require.NoError(t, services.StartAndAwaitRunning(ctx, l))
	defer func() { require.NoError(t, services.StopAndAwaitTerminated(ctx, l)) }()
	require.Equal(t, []string{first}, ids(l.Metas("a")), "polled in starting")

	second := writeBlock(t, inner, "a")
	require.Eventually(t, func() bool {
		return slices.Equal(sorted(first, second), ids(l.Metas("a")))
	}, 10*time.Second, 5*time.Millisecond)

	bkt.fail.Store(true)
	require.Eventually(t, func() bool {
		return counterValue(t, reg, "vivace_blocklist_poll_failures_total") >= 2
	}, 10*time.Second, 5*time.Millisecond)
	require.Equal(t, sorted(first, second), ids(l.Metas("a")), "the last list is kept")
	require.Equal(t, services.Running, l.State(), "a failed poll does not stop the service")
}

// Until the store answers, the list keeps trying and stays starting (the
// process is unready, not crash-looping); it runs once a poll succeeds, and
// gives up only when told to stop.
func TestFirstPollRetriesUntilTheStoreAnswers(t *testing.T) {
	bkt := &failingBucket{Bucket: newBucket(t)}
	bkt.fail.Store(true)
	l, reg := newList(t, bkt, time.Hour)
	require.NoError(t, l.StartAsync(context.Background()))
	require.Eventually(t, func() bool {
		return counterValue(t, reg, "vivace_blocklist_poll_failures_total") >= 2
	}, 10*time.Second, 5*time.Millisecond)
	require.Equal(t, services.Starting, l.State())
	bkt.fail.Store(false)
	require.NoError(t, l.AwaitRunning(context.Background()))
	require.NoError(t, services.StopAndAwaitTerminated(context.Background(), l))

	bkt2 := &failingBucket{Bucket: newBucket(t)}
	bkt2.fail.Store(true)
	l2, _ := newList(t, bkt2, time.Hour)
	require.NoError(t, l2.StartAsync(context.Background()))
	l2.StopAsync()
	_ = l2.AwaitTerminated(context.Background()) // returns, rather than retrying forever
	require.Contains(t, []services.State{services.Failed, services.Terminated}, l2.State())
}

func counterValue(t testing.TB, reg prometheus.Gatherer, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.Metric[0].GetCounter().GetValue()
		}
	}
	return 0
}

func markCompacted(t testing.TB, bkt storage.Bucket, tenant, id string, at time.Time) {
	t.Helper()
	m, err := block.ReadMeta(context.Background(), bkt, tenant, id)
	require.NoError(t, err)
	require.NoError(t, block.WriteCompacted(context.Background(), bkt, m, at))
}

func compactedIDs(cms []*block.CompactedMeta) []string {
	out := make([]string, 0, len(cms))
	for _, cm := range cms {
		out = append(out, cm.BlockID)
	}
	slices.Sort(out)
	return out
}

// TestCompacted: a block marked compacted leaves Metas for CompactedMetas
// (its objects still readable) until it is deleted; a compacted block whose
// meta.json is already gone (an interrupted deletion) is still known.
func TestCompacted(t *testing.T) {
	ctx := context.Background()
	bkt := newBucket(t)
	l, reg := newList(t, bkt, time.Hour)
	a1, a2 := writeBlock(t, bkt, "a"), writeBlock(t, bkt, "a")
	b1 := writeBlock(t, bkt, "b")
	require.NoError(t, l.Poll(ctx))
	require.Equal(t, []string{"a", "b"}, l.Tenants())

	at := time.Date(2026, 3, 14, 16, 0, 0, 0, time.UTC)
	a3 := writeBlock(t, bkt, "a") // the replacement: written first
	markCompacted(t, bkt, "a", a1, at)
	markCompacted(t, bkt, "a", a2, at)
	markCompacted(t, bkt, "b", b1, at)
	require.NoError(t, l.Poll(ctx))
	require.Equal(t, []string{a3}, ids(l.Metas("a")))
	require.Equal(t, sorted(a1, a2), compactedIDs(l.CompactedMetas("a")))
	require.Empty(t, l.Metas("b"))
	require.Equal(t, []string{"a", "b"}, l.Tenants(), "b still has a compacted block to delete")
	for _, cm := range l.CompactedMetas("a") {
		require.True(t, cm.CompactedTime.Equal(at))
		require.Equal(t, "a", cm.TenantID)
		// Still readable by a reader that listed it before.
		it := 0
		require.NoError(t, block.NewReader(bkt, &cm.Meta).Iterate(ctx, func(model.TraceID, *tracev1.TracesData) error { it++; return nil }))
		require.Equal(t, 3, it)
	}
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP vivace_blocklist_blocks Blocks in the polled block list, by tenant.
# TYPE vivace_blocklist_blocks gauge
vivace_blocklist_blocks{tenant="a"} 1
vivace_blocklist_blocks{tenant="b"} 0
# HELP vivace_blocklist_compacted_blocks Blocks marked compacted and not yet deleted, by tenant.
# TYPE vivace_blocklist_compacted_blocks gauge
vivace_blocklist_compacted_blocks{tenant="a"} 2
vivace_blocklist_compacted_blocks{tenant="b"} 1
`), "vivace_blocklist_blocks", "vivace_blocklist_compacted_blocks"))

	// A deletion interrupted after meta.json: still compacted, even for a
	// new List that never saw the block.
	require.NoError(t, bkt.Delete(ctx, storage.MetaKey("a", a1)))
	deleteBlock(t, bkt, "a", a2)
	deleteBlock(t, bkt, "b", b1)
	fresh, _ := newList(t, bkt, time.Hour)
	for _, l := range []*blocklist.List{l, fresh} {
		require.NoError(t, l.Poll(ctx))
		require.Equal(t, []string{a3}, ids(l.Metas("a")))
		require.Equal(t, []string{a1}, compactedIDs(l.CompactedMetas("a")))
		require.Equal(t, []string{"a"}, l.Tenants())
	}
}

// hookBucket runs hook once, after the first listing of dir.
type hookBucket struct {
	storage.Bucket
	dir  string
	once sync.Once
	hook func()
}

func (b *hookBucket) List(ctx context.Context, dir string) ([]string, error) {
	out, err := b.Bucket.List(ctx, dir)
	if dir == b.dir {
		b.once.Do(b.hook)
	}
	return out, err
}

// TestReplacementInSamePoll: a poll that lists a tenant's blocks just before
// the compactor writes a replacement and marks the sources still lists the
// replacement, so no trace is missing from the list for a poll period.
func TestReplacementInSamePoll(t *testing.T) {
	ctx := context.Background()
	inner := newBucket(t)
	src := writeBlock(t, inner, "a")
	var replacement string
	bkt := &hookBucket{Bucket: inner, dir: "a/", hook: func() {
		replacement = writeBlock(t, inner, "a")
		markCompacted(t, inner, "a", src, time.Now())
	}}
	l, _ := newList(t, bkt, time.Hour)
	require.NoError(t, l.Poll(ctx))
	require.NotEmpty(t, replacement)
	require.Equal(t, []string{replacement}, ids(l.Metas("a")))
	require.Equal(t, []string{src}, compactedIDs(l.CompactedMetas("a")))
}

// lateMetaBucket answers the first Get of one key with ErrNotFound, as if
// the object were written just after.
type lateMetaBucket struct {
	storage.Bucket
	key  string
	once sync.Once
}

func (b *lateMetaBucket) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	late := false
	if key == b.key {
		b.once.Do(func() { late = true })
	}
	if late {
		return nil, storage.ErrNotFound
	}
	return b.Bucket.Get(ctx, key)
}

// TestIncompleteReplacementInSamePoll: the replacement is listed but not yet
// complete when the poll reads it, and its sources are marked by the time
// the poll reads their markers: it is read again.
func TestIncompleteReplacementInSamePoll(t *testing.T) {
	ctx := context.Background()
	inner := newBucket(t)
	src := writeBlock(t, inner, "a")
	replacement := writeBlock(t, inner, "a")
	markCompacted(t, inner, "a", src, time.Now())

	bkt := &lateMetaBucket{Bucket: inner, key: storage.MetaKey("a", replacement)}
	l, _ := newList(t, bkt, time.Hour)
	require.NoError(t, l.Poll(ctx))
	require.Equal(t, []string{replacement}, ids(l.Metas("a")))
	require.Equal(t, []string{src}, compactedIDs(l.CompactedMetas("a")))
}
