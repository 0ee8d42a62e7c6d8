package compactor

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"
	"go.uber.org/goleak"
	"google.golang.org/protobuf/proto"

	"github.com/vivace-dev/vivace/internal/model"
	"github.com/vivace-dev/vivace/storage"
	"github.com/vivace-dev/vivace/storage/block"
	"github.com/vivace-dev/vivace/storage/blocklist"
	"github.com/vivace-dev/vivace/storage/fs"
	"github.com/vivace-dev/vivace/storage/s3"
	"github.com/vivace-dev/vivace/storage/storagetest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	removeBenchInputs()
	if code == 0 {
		// minio-go keeps idle connections of its transport open.
		err := goleak.Find(
			goleak.IgnoreTopFunction("net/http.(*persistConn).readLoop"),
			goleak.IgnoreTopFunction("net/http.(*persistConn).writeLoop"),
		)
		if err != nil {
			fmt.Fprintf(os.Stderr, "goleak: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

const tenant = "tenant-1"

var discard = slog.New(slog.DiscardHandler)

type newBucketFunc func(testing.TB) storage.Bucket

// TestBackends runs the compactor's tests against the local-directory bucket
// and against a real MinIO (one server for all of them).
func TestBackends(t *testing.T) {
	tests := map[string]func(*testing.T, newBucketFunc){
		"RF3Dedupe":               testRF3Dedupe,
		"ZipkinSharedSpans":       testZipkinSharedSpans,
		"Retention":               testRetention,
		"TwoCompactors":           testTwoCompactors,
		"LookupsDuringCompaction": testLookupsDuringCompaction,
	}
	run := func(t *testing.T, newBucket newBucketFunc) {
		for _, name := range slices.Sorted(maps.Keys(tests)) {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				tests[name](t, newBucket)
			})
		}
	}
	t.Run("fs", func(t *testing.T) { run(t, fsBucket) })
	t.Run("s3", func(t *testing.T) {
		m := storagetest.StartMinIO(t)
		run(t, func(tb testing.TB) storage.Bucket {
			var cfg s3.Config
			cfg.RegisterFlagsAndApplyDefaults("s3", flag.NewFlagSet("", flag.PanicOnError))
			cfg.Bucket = m.NewBucket(tb)
			cfg.Endpoint, cfg.Region, cfg.Insecure = m.Endpoint, m.Region, true
			cfg.AccessKey = m.AccessKey
			require.NoError(tb, cfg.SecretKey.Set(m.SecretKey))
			b, err := s3.New(cfg, discard)
			require.NoError(tb, err)
			return b
		})
	})
}

func fsBucket(t testing.TB) storage.Bucket {
	t.Helper()
	b, err := fs.New(t.TempDir())
	require.NoError(t, err)
	return b
}

// clock is the compactors' clock in tests: it moves only when told.
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

func (c *clock) add(d time.Duration) { c.set(c.now().Add(d)) }

func ownsAll(string) bool { return true }

// newCompactor makes a compactor over bkt with the default config, small row
// groups (so merges cross row groups) and its own block list, not polled yet.
func newCompactor(t testing.TB, bkt storage.Bucket, owns func(string) bool, clk *clock) (*Compactor, *blocklist.List) {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	list := blocklist.New(bkt, time.Hour, discard, reg)
	c, err := New(defaultConfig(t), bkt, list, owns, nil, block.WriterConfig{RowGroupSpans: 100}, t.TempDir(), discard, reg)
	require.NoError(t, err)
	c.now = clk.now
	return c, list
}

// writeBlock writes the traces as one level-0 block, as an ingester does.
func writeBlock(t testing.TB, bkt storage.Bucket, ids []model.TraceID, traces []*tracev1.TracesData) *block.Meta {
	t.Helper()
	w, err := block.NewWriter(block.WriterConfig{RowGroupSpans: 100}, t.TempDir(), tenant, uuid.New())
	require.NoError(t, err)
	for i, id := range ids {
		require.NoError(t, w.Add(id, traces[i]))
	}
	meta, err := w.Finish(context.Background(), bkt)
	require.NoError(t, err)
	return meta
}

// writeReplicas writes what three ingesters of an RF 3 ring write: two
// complete copies of the traces, and one that missed the second half of each
// trace's spans (a push that never reached it).
func writeReplicas(t testing.TB, bkt storage.Bucket, ids []model.TraceID, traces []*tracev1.TracesData) {
	t.Helper()
	writeBlock(t, bkt, ids, traces)
	writeBlock(t, bkt, ids, traces)
	partial := make([]*tracev1.TracesData, len(traces))
	for i, td := range traces {
		partial[i] = firstSpans(td, (model.SpanCount(td)+1)/2)
	}
	writeBlock(t, bkt, ids, partial)
}

// firstSpans returns a copy of td with only its first n spans.
func firstSpans(td *tracev1.TracesData, n int) *tracev1.TracesData {
	out := proto.Clone(td).(*tracev1.TracesData)
	for _, rs := range out.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			k := min(len(ss.Spans), n)
			ss.Spans, n = ss.Spans[:k], n-k
		}
		rs.ScopeSpans = slices.DeleteFunc(rs.ScopeSpans, func(ss *tracev1.ScopeSpans) bool { return len(ss.Spans) == 0 })
	}
	out.ResourceSpans = slices.DeleteFunc(out.ResourceSpans, func(rs *tracev1.ResourceSpans) bool { return len(rs.ScopeSpans) == 0 })
	return out
}

// shift moves every span of the traces by d.
func shift(traces []*tracev1.TracesData, d time.Duration) {
	for _, td := range traces {
		for _, rs := range td.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					s.StartTimeUnixNano = uint64(int64(s.StartTimeUnixNano) + int64(d))
					s.EndTimeUnixNano = uint64(int64(s.EndTimeUnixNano) + int64(d))
				}
			}
		}
	}
}

type spanKey struct {
	id   string
	kind tracev1.Span_SpanKind
}

// spans returns a trace's spans by (span ID, kind), each with its resource
// and scope, and how many spans had a key already seen.
func spans(td *tracev1.TracesData) (map[spanKey]string, int) {
	out, dups := map[spanKey]string{}, 0
	for _, rs := range td.GetResourceSpans() {
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				k := spanKey{string(s.SpanId), s.Kind}
				if _, ok := out[k]; ok {
					dups++
				}
				b, err := proto.MarshalOptions{Deterministic: true}.Marshal(&tracev1.ResourceSpans{
					Resource: rs.Resource, SchemaUrl: rs.SchemaUrl,
					ScopeSpans: []*tracev1.ScopeSpans{{Scope: ss.Scope, SchemaUrl: ss.SchemaUrl, Spans: []*tracev1.Span{s}}},
				})
				if err != nil {
					panic(err)
				}
				out[k] = string(b)
			}
		}
	}
	return out, dups
}

func spansOf(t testing.TB, td *tracev1.TracesData) map[spanKey]string {
	t.Helper()
	s, dups := spans(td)
	require.Zero(t, dups, "duplicate spans")
	return s
}

// readers caches a block.Reader per block, as the querier does.
type readers struct {
	bkt storage.Bucket
	mu  sync.Mutex
	m   map[string]*block.Reader
}

func newReaders(bkt storage.Bucket) *readers {
	return &readers{bkt: bkt, m: map[string]*block.Reader{}}
}

func (r *readers) get(m *block.Meta) *block.Reader {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m[m.BlockID] == nil {
		r.m[m.BlockID] = block.NewReader(r.bkt, m)
	}
	return r.m[m.BlockID]
}

// find looks id up in every listed block and combines what they hold, as the
// querier does: a block deleted since it was listed holds nothing.
func (r *readers) find(ctx context.Context, metas []*block.Meta, id model.TraceID) (*tracev1.TracesData, error) {
	var parts []*tracev1.TracesData
	for _, m := range metas {
		td, err := r.get(m).FindTraceByID(ctx, id)
		if errors.Is(err, storage.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		parts = append(parts, td)
	}
	return model.Combine(parts...), nil
}

// blockTraces reads every trace of every block: trace → the IDs of the blocks
// holding it, and the spans of each trace combined over the blocks.
func blockTraces(t testing.TB, bkt storage.Bucket, metas []*block.Meta) (map[model.TraceID][]string, map[model.TraceID]map[spanKey]string) {
	t.Helper()
	where := map[model.TraceID][]string{}
	parts := map[model.TraceID][]*tracev1.TracesData{}
	for _, m := range metas {
		err := block.NewReader(bkt, m).Iterate(context.Background(), func(id model.TraceID, td *tracev1.TracesData) error {
			where[id] = append(where[id], m.BlockID)
			parts[id] = append(parts[id], td)
			return nil
		})
		require.NoError(t, err)
	}
	out := map[model.TraceID]map[spanKey]string{}
	for id, p := range parts {
		out[id] = spansOf(t, model.Combine(p...))
	}
	return where, out
}

// expected is each trace's spans.
func expected(t testing.TB, ids []model.TraceID, traces []*tracev1.TracesData) map[model.TraceID]map[spanKey]string {
	out := map[model.TraceID]map[spanKey]string{}
	for i, id := range ids {
		out[id] = spansOf(t, traces[i])
	}
	return out
}

func metaIDs(metas []*block.Meta) []string {
	out := make([]string, 0, len(metas))
	for _, m := range metas {
		out = append(out, m.BlockID)
	}
	slices.Sort(out)
	return out
}

func compactedIDs(cms []*block.CompactedMeta) []string {
	out := make([]string, 0, len(cms))
	for _, cm := range cms {
		out = append(out, cm.BlockID)
	}
	slices.Sort(out)
	return out
}

// requireGone checks that nothing of the block is left.
func requireGone(t testing.TB, bkt storage.Bucket, id string) {
	t.Helper()
	keys, err := bkt.List(context.Background(), storage.BlockDir(tenant, id))
	require.NoError(t, err)
	require.Empty(t, keys, "block %s", id)
}

// deleteRecorder records the keys deleted, in order.
type deleteRecorder struct {
	storage.Bucket
	mu      sync.Mutex
	deleted []string
}

func (b *deleteRecorder) Delete(ctx context.Context, key string) error {
	b.mu.Lock()
	b.deleted = append(b.deleted, key)
	b.mu.Unlock()
	return b.Bucket.Delete(ctx, key)
}

// slowBucket adds latency to reads and writes, so that a compaction takes
// long enough for lookups to run during it.
type slowBucket struct {
	storage.Bucket
	delay time.Duration
}

func (b slowBucket) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	time.Sleep(b.delay)
	return b.Bucket.Put(ctx, key, r, size)
}

func (b slowBucket) GetRange(ctx context.Context, key string, off, length int64) (io.ReadCloser, error) {
	time.Sleep(b.delay)
	return b.Bucket.GetRange(ctx, key, off, length)
}

func sortedTraceIDs[V any](m map[model.TraceID]V) []model.TraceID {
	return slices.SortedFunc(maps.Keys(m), model.TraceID.Compare)
}
