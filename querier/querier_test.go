package querier_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/grafana/dskit/ring"
	"github.com/grafana/dskit/user"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"
	"go.uber.org/goleak"
	"google.golang.org/protobuf/proto"

	"github.com/vivace-dev/vivace/internal/model"
	"github.com/vivace-dev/vivace/internal/model/modeltest"
	"github.com/vivace-dev/vivace/internal/vivacepb"
	"github.com/vivace-dev/vivace/querier"
	"github.com/vivace-dev/vivace/storage"
	"github.com/vivace-dev/vivace/storage/block"
	"github.com/vivace-dev/vivace/storage/blocklist"
	"github.com/vivace-dev/vivace/storage/fs"
)

const tenant = "tenant-a"

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fakeIngesters answers as ingesters do: the encoded parts they hold,
// concatenated, per tenant and trace.
type fakeIngesters struct {
	mu     sync.Mutex
	traces map[string]map[model.TraceID][]byte
	reqs   []*vivacepb.TraceByIDRequest
	err    error
}

func newFakeIngesters() *fakeIngesters {
	return &fakeIngesters{traces: map[string]map[model.TraceID][]byte{}}
}

func (f *fakeIngesters) add(t testing.TB, tenant string, id model.TraceID, parts ...*tracev1.TracesData) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.traces[tenant] == nil {
		f.traces[tenant] = map[model.TraceID][]byte{}
	}
	for _, p := range parts {
		b, err := proto.Marshal(p)
		require.NoError(t, err)
		f.traces[tenant][id] = append(f.traces[tenant][id], b...)
	}
}

func (f *fakeIngesters) FindTraceByID(ctx context.Context, req *vivacepb.TraceByIDRequest) (*vivacepb.TraceByIDResponse, error) {
	tenant, err := user.ExtractOrgID(ctx)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reqs = append(f.reqs, req)
	if f.err != nil {
		return nil, f.err
	}
	id := model.TraceID(req.TraceId)
	b := f.traces[tenant][id]
	if len(b) == 0 && req.LowHalf {
		// As an ingester does: every trace whose low half matches.
		ids := slices.SortedFunc(maps.Keys(f.traces[tenant]), model.TraceID.Compare)
		for _, other := range ids {
			if other.Low64() == id.Low64() {
				b = append(b, f.traces[tenant][other]...)
			}
		}
	}
	return &vivacepb.TraceByIDResponse{Trace: b, Metrics: &vivacepb.TraceByIDMetrics{InspectedBytes: uint64(len(b))}}, nil
}

func (f *fakeIngesters) calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.reqs)
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newBucket(t testing.TB) *fs.Bucket {
	t.Helper()
	bkt, err := fs.New(t.TempDir())
	require.NoError(t, err)
	return bkt
}

// writeBlock writes traces (any order) as block blockID of tenant.
func writeBlock(t testing.TB, bkt storage.Bucket, tenant, blockID string, traces map[model.TraceID]*tracev1.TracesData) *block.Meta {
	t.Helper()
	w, err := block.NewWriter(block.WriterConfig{}, t.TempDir(), tenant, uuid.MustParse(blockID))
	require.NoError(t, err)
	ids := make([]model.TraceID, 0, len(traces))
	for id := range traces {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, model.TraceID.Compare)
	for _, id := range ids {
		require.NoError(t, w.Add(id, traces[id]))
	}
	meta, err := w.Finish(context.Background(), bkt)
	require.NoError(t, err)
	return meta
}

// fakeRing places every key on all its instances, with dskit's quorum: a
// majority must answer.
type fakeRing struct{ instances []ring.InstanceDesc }

func (r fakeRing) Get(uint32, ring.Operation, []ring.InstanceDesc, []string, []string) (ring.ReplicationSet, error) {
	n := len(r.instances)
	return ring.ReplicationSet{Instances: r.instances, MaxErrors: n - (n/2 + 1)}, nil
}
func (r fakeRing) ReplicationFactor() int { return len(r.instances) }
func (r fakeRing) InstancesCount() int    { return len(r.instances) }

// replicas places every trace on all of ings, as a ring with replication
// factor len(ings) would.
func replicas(ings ...querier.IngesterClient) querier.Ingesters {
	r := fakeRing{}
	byID := map[string]querier.IngesterClient{}
	for i, ing := range ings {
		id := fmt.Sprintf("ingester-%d", i)
		r.instances = append(r.instances, ring.InstanceDesc{Id: id, Addr: id, State: ring.ACTIVE, Timestamp: time.Now().Unix()})
		byID[id] = ing
	}
	return querier.Ingesters{
		Ring:    r,
		Client:  func(inst ring.InstanceDesc) (querier.IngesterClient, error) { return byID[inst.Id], nil },
		Timeout: time.Minute,
	}
}

// newQuerier makes a querier over ings (replicas of each other) and the
// blocks in bkt, polled once.
func newQuerier(t testing.TB, ing querier.IngesterClient, bkt storage.Bucket, more ...querier.IngesterClient) (*querier.Querier, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	list := blocklist.New(bkt, time.Hour, discardLogger(), reg)
	require.NoError(t, list.Poll(context.Background()))
	return querier.New(replicas(append([]querier.IngesterClient{ing}, more...)...), bkt, list, discardLogger(), reg), reg
}

func findTrace(t testing.TB, q *querier.Querier, req *vivacepb.TraceByIDRequest) (*tracev1.TracesData, *vivacepb.TraceByIDResponse) {
	t.Helper()
	resp, err := q.FindTraceByID(user.InjectOrgID(context.Background(), tenant), req)
	require.NoError(t, err)
	if len(resp.Trace) == 0 {
		return nil, resp
	}
	td := &tracev1.TracesData{}
	require.NoError(t, proto.Unmarshal(resp.Trace, td))
	return td, resp
}

func counter(t testing.TB, reg prometheus.Gatherer, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.Metric[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// counterVec is the value of the counter name with the given tenant label.
func counterVec(t testing.TB, reg prometheus.Gatherer, name, tenant string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.Metric {
			for _, l := range m.Label {
				if l.GetName() == "tenant" && l.GetValue() == tenant {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// spanKeys maps each span, with its resource and scope, to how often it occurs.
func spanKeys(t testing.TB, td *tracev1.TracesData) map[string]int {
	t.Helper()
	det := proto.MarshalOptions{Deterministic: true}
	out := map[string]int{}
	for _, rs := range td.GetResourceSpans() {
		r, err := det.Marshal(rs.Resource)
		require.NoError(t, err)
		for _, ss := range rs.ScopeSpans {
			sc, err := det.Marshal(ss.Scope)
			require.NoError(t, err)
			for _, s := range ss.Spans {
				b, err := det.Marshal(s)
				require.NoError(t, err)
				out[string(r)+"\x00"+rs.SchemaUrl+"\x00"+string(sc)+"\x00"+ss.SchemaUrl+"\x00"+string(b)]++
			}
		}
	}
	return out
}

// requireSpans checks that got holds exactly the spans of want, each once.
func requireSpans(t testing.TB, want, got *tracev1.TracesData) {
	t.Helper()
	// Span IDs first, for a readable failure; then everything about each span.
	require.ElementsMatch(t, spanIDs(want), spanIDs(got))
	gotKeys := spanKeys(t, got)
	for _, n := range gotKeys {
		require.Equal(t, 1, n, "duplicate span")
	}
	require.True(t, maps.Equal(spanKeys(t, want), gotKeys), "spans differ in content, resource or scope")
	require.Equal(t, model.SpanCount(want), model.SpanCount(got))
}

func spanIDs(td *tracev1.TracesData) []string {
	var out []string
	for _, rs := range td.GetResourceSpans() {
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				out = append(out, hex.EncodeToString(s.SpanId))
			}
		}
	}
	return out
}

// splitTrace deals the spans of td round-robin into k parts under copies of
// their resource and scope.
func splitTrace(td *tracev1.TracesData, k int) []*tracev1.TracesData {
	parts := make([]*tracev1.TracesData, k)
	for i := range parts {
		parts[i] = &tracev1.TracesData{}
	}
	n := 0
	for _, rs := range td.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				p := parts[n%k]
				n++
				var outRS *tracev1.ResourceSpans
				if l := len(p.ResourceSpans); l > 0 && p.ResourceSpans[l-1].Resource == rs.Resource {
					outRS = p.ResourceSpans[l-1]
				} else {
					outRS = &tracev1.ResourceSpans{Resource: rs.Resource, SchemaUrl: rs.SchemaUrl}
					p.ResourceSpans = append(p.ResourceSpans, outRS)
				}
				var outSS *tracev1.ScopeSpans
				if l := len(outRS.ScopeSpans); l > 0 && outRS.ScopeSpans[l-1].Scope == ss.Scope {
					outSS = outRS.ScopeSpans[l-1]
				} else {
					outSS = &tracev1.ScopeSpans{Scope: ss.Scope, SchemaUrl: ss.SchemaUrl}
					outRS.ScopeSpans = append(outRS.ScopeSpans, outSS)
				}
				outSS.Spans = append(outSS.Spans, s)
			}
		}
	}
	return parts
}

const (
	blockLow  = "10000000-0000-4000-8000-000000000000"
	blockMid  = "80000000-0000-4000-8000-000000000000"
	blockHigh = "f0000000-0000-4000-8000-000000000000"
)

// fixture: one trace of 30 spans in three parts: the ingesters hold parts 0
// and 1, block low parts 1 and 2 (overlapping the ingesters), block mid
// part 2 again, block high part 2 and, like the others, unrelated traces.
type fixture struct {
	id    model.TraceID
	whole *tracev1.TracesData
	parts []*tracev1.TracesData
	ing   *fakeIngesters
	bkt   storage.Bucket
	metas map[string]*block.Meta
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	ids, others := modeltest.Traces(rng, 4, 5)
	f := &fixture{id: ids[0], ing: newFakeIngesters(), bkt: newBucket(t), metas: map[string]*block.Meta{}}
	f.whole = modeltest.Trace(rng, f.id, 30)
	f.parts = splitTrace(f.whole, 3)
	f.ing.add(t, tenant, f.id, f.parts[0], f.parts[1])
	f.ing.add(t, tenant, ids[1], others[1])
	f.metas[blockLow] = writeBlock(t, f.bkt, tenant, blockLow, map[model.TraceID]*tracev1.TracesData{
		f.id: model.Combine(f.parts[1], f.parts[2]), ids[2]: others[2],
	})
	f.metas[blockMid] = writeBlock(t, f.bkt, tenant, blockMid, map[model.TraceID]*tracev1.TracesData{
		f.id: f.parts[2], ids[3]: others[3],
	})
	f.metas[blockHigh] = writeBlock(t, f.bkt, tenant, blockHigh, map[model.TraceID]*tracev1.TracesData{
		f.id: f.parts[2],
	})
	// Another tenant's block with the same trace ID must never be read.
	writeBlock(t, f.bkt, "tenant-b", blockMid, map[model.TraceID]*tracev1.TracesData{f.id: modeltest.Trace(rng, f.id, 3)})
	return f
}

func TestFindCombinesIngestersAndBlocks(t *testing.T) {
	f := newFixture(t)
	q, reg := newQuerier(t, f.ing, f.bkt)
	got, resp := findTrace(t, q, &vivacepb.TraceByIDRequest{TraceId: f.id[:]})
	requireSpans(t, f.whole, got)
	require.EqualValues(t, len(f.ing.traces[tenant][f.id]), resp.Metrics.InspectedBytes)
	require.EqualValues(t, 3, counter(t, reg, "vivace_querier_blocks_inspected_total"))

	// The answer is deterministic: blocks are combined in ID order.
	for range 5 {
		_, again := findTrace(t, q, &vivacepb.TraceByIDRequest{TraceId: f.id[:]})
		require.Equal(t, resp.Trace, again.Trace)
	}
	// And it is the combination, in order, of the ingesters' and the blocks' parts.
	want := model.Combine(f.parts[0], f.parts[1], model.Combine(f.parts[1], f.parts[2]), f.parts[2], f.parts[2])
	require.True(t, proto.Equal(want, got))

	// A short ID is left-padded, as everywhere.
	_, err := q.FindTraceByID(user.InjectOrgID(context.Background(), tenant), &vivacepb.TraceByIDRequest{TraceId: []byte{1}})
	require.NoError(t, err)
}

func TestFindUnknownTrace(t *testing.T) {
	f := newFixture(t)
	q, _ := newQuerier(t, f.ing, f.bkt)
	got, resp := findTrace(t, q, &vivacepb.TraceByIDRequest{TraceId: bytes.Repeat([]byte{0xee}, 16)})
	require.Nil(t, got)
	require.Empty(t, resp.Trace)
	require.NotNil(t, resp.Metrics)
}

func TestQueryModes(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		mode          string
		wantParts     []int
		ingesterCalls int
		blocksRead    float64
	}{
		{"", []int{0, 1, 2}, 1, 3},
		{querier.ModeAll, []int{0, 1, 2}, 1, 3},
		{querier.ModeIngesters, []int{0, 1}, 1, 0},
		{querier.ModeBlocks, []int{1, 2}, 0, 3},
	}
	for _, tt := range tests {
		t.Run("mode="+tt.mode, func(t *testing.T) {
			f.ing.reqs = nil
			q, reg := newQuerier(t, f.ing, f.bkt)
			got, _ := findTrace(t, q, &vivacepb.TraceByIDRequest{TraceId: f.id[:], QueryMode: tt.mode})
			var want []*tracev1.TracesData
			for _, p := range tt.wantParts {
				want = append(want, f.parts[p])
			}
			requireSpans(t, model.Combine(want...), got)
			require.Equal(t, tt.ingesterCalls, f.ing.calls())
			require.Equal(t, tt.blocksRead, counter(t, reg, "vivace_querier_blocks_inspected_total"))
		})
	}
}

func TestBlockIDRange(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	id := modeltest.IDs(rng, 1)[0]
	whole := modeltest.Trace(rng, id, 9)
	parts := splitTrace(whole, 3)
	bkt := newBucket(t)
	// Each block holds its own third of the trace, so the answer tells which were read.
	blockIDs := []string{blockLow, blockMid, blockHigh}
	for i, b := range blockIDs {
		writeBlock(t, bkt, tenant, b, map[model.TraceID]*tracev1.TracesData{id: parts[i]})
	}
	q, _ := newQuerier(t, newFakeIngesters(), bkt)

	tests := []struct {
		name       string
		start, end string
		want       []int // indexes into blockIDs
	}{
		{"no range", "", "", []int{0, 1, 2}},
		{"whole ID space", "00000000-0000-0000-0000-000000000000", "ffffffff-ffff-ffff-ffff-ffffffffffff", []int{0, 1, 2}},
		{"first half", "00000000-0000-0000-0000-000000000000", "7fffffff-ffff-ffff-ffff-ffffffffffff", []int{0}},
		{"second half", "80000000-0000-0000-0000-000000000000", "ffffffff-ffff-ffff-ffff-ffffffffffff", []int{1, 2}},
		{"bounds are inclusive", blockMid, blockMid, []int{1}},
		{"start only", blockMid, "", []int{1, 2}},
		{"end only", "", blockMid, []int{0, 1}},
		{"empty range", "20000000-0000-0000-0000-000000000000", "7fffffff-ffff-ffff-ffff-ffffffffffff", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _ := findTrace(t, q, &vivacepb.TraceByIDRequest{TraceId: id[:], QueryMode: querier.ModeBlocks, BlockStart: tt.start, BlockEnd: tt.end})
			if len(tt.want) == 0 {
				require.Nil(t, got)
				return
			}
			var want []*tracev1.TracesData
			for _, i := range tt.want {
				want = append(want, parts[i])
			}
			requireSpans(t, model.Combine(want...), got)
		})
	}
}

// shiftTrace moves every time in td by d.
func shiftTrace(td *tracev1.TracesData, d time.Duration) *tracev1.TracesData {
	td = proto.Clone(td).(*tracev1.TracesData)
	for _, rs := range td.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				s.StartTimeUnixNano = uint64(int64(s.StartTimeUnixNano) + int64(d))
				s.EndTimeUnixNano = uint64(int64(s.EndTimeUnixNano) + int64(d))
				for _, e := range s.Events {
					e.TimeUnixNano = uint64(int64(e.TimeUnixNano) + int64(d))
				}
			}
		}
	}
	return td
}

func TestTimeWindow(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	id := modeltest.IDs(rng, 1)[0]
	parts := splitTrace(modeltest.Trace(rng, id, 10), 2)
	bkt := newBucket(t)
	// Block low holds the first part, block high the second, a day later.
	early := writeBlock(t, bkt, tenant, blockLow, map[model.TraceID]*tracev1.TracesData{id: parts[0]})
	late := writeBlock(t, bkt, tenant, blockHigh, map[model.TraceID]*tracev1.TracesData{id: shiftTrace(parts[1], 24*time.Hour)})
	require.True(t, early.EndTime.Before(late.StartTime))
	// The tests below rely on times that are not whole seconds.
	require.NotZero(t, early.EndTime.Nanosecond())
	require.NotZero(t, late.StartTime.Nanosecond())
	ing := newFakeIngesters()
	q, _ := newQuerier(t, ing, bkt)

	sec := func(tm time.Time) int64 { return tm.Unix() }
	tests := []struct {
		name       string
		start, end int64
		want       []int // 0: early block, 1: late block
	}{
		{"open", 0, 0, []int{0, 1}},
		{"both", sec(early.StartTime), sec(late.EndTime) + 1, []int{0, 1}},
		{"early only", sec(early.StartTime) - 60, sec(early.EndTime) + 60, []int{0}},
		{"late only", sec(late.StartTime) - 60, sec(late.EndTime) + 60, []int{1}},
		{"between the blocks", sec(early.EndTime) + 3600, sec(late.StartTime) - 3600, nil},
		{"start only, after the early block", sec(early.EndTime) + 1, 0, []int{1}},
		{"end only, before the late block", 0, sec(late.StartTime) - 1, []int{0}},
		// Request times are whole seconds: a block that ends within the
		// start second or starts within the end second overlaps the window.
		{"start in the second the early block ends", sec(early.EndTime), sec(early.EndTime) + 60, []int{0}},
		{"end in the second the late block starts", sec(late.StartTime) - 60, sec(late.StartTime), []int{1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _ := findTrace(t, q, &vivacepb.TraceByIDRequest{TraceId: id[:], QueryMode: querier.ModeBlocks, Start: tt.start, End: tt.end})
			if len(tt.want) == 0 {
				require.Nil(t, got)
				return
			}
			want := []*tracev1.TracesData{parts[0], shiftTrace(parts[1], 24*time.Hour)}
			var sel []*tracev1.TracesData
			for _, i := range tt.want {
				sel = append(sel, want[i])
			}
			requireSpans(t, model.Combine(sel...), got)
		})
	}

	t.Run("the ingesters get the window", func(t *testing.T) {
		_, err := q.FindTraceByID(user.InjectOrgID(context.Background(), tenant), &vivacepb.TraceByIDRequest{TraceId: id[:], Start: 10, End: 20})
		require.NoError(t, err)
		last := ing.reqs[len(ing.reqs)-1]
		require.EqualValues(t, 10, last.Start)
		require.EqualValues(t, 20, last.End)
		require.Equal(t, id[:], last.TraceId)
	})
}

func TestFindErrors(t *testing.T) {
	f := newFixture(t)
	q, _ := newQuerier(t, f.ing, f.bkt)
	ctx := user.InjectOrgID(context.Background(), tenant)

	_, err := q.FindTraceByID(context.Background(), &vivacepb.TraceByIDRequest{TraceId: f.id[:]})
	require.Error(t, err, "no tenant")
	_, err = q.FindTraceByID(ctx, &vivacepb.TraceByIDRequest{TraceId: make([]byte, 16)})
	require.ErrorIs(t, err, model.ErrInvalidTraceID)
	_, err = q.FindTraceByID(ctx, &vivacepb.TraceByIDRequest{TraceId: make([]byte, 17)})
	require.ErrorIs(t, err, model.ErrInvalidTraceID)

	errDown := errors.New("ingesters down")
	f.ing.err = errDown
	_, err = q.FindTraceByID(ctx, &vivacepb.TraceByIDRequest{TraceId: f.id[:]})
	require.ErrorIs(t, err, errDown)
	// Blocks alone do not need the ingesters.
	_, err = q.FindTraceByID(ctx, &vivacepb.TraceByIDRequest{TraceId: f.id[:], QueryMode: querier.ModeBlocks})
	require.NoError(t, err)
	f.ing.err = nil

	bad := newFakeIngesters()
	bad.traces[tenant] = map[model.TraceID][]byte{f.id: {0xff, 0xff}}
	qBad, _ := newQuerier(t, bad, f.bkt)
	_, err = qBad.FindTraceByID(ctx, &vivacepb.TraceByIDRequest{TraceId: f.id[:], QueryMode: querier.ModeIngesters})
	require.ErrorContains(t, err, "combine answers: invalid trace: malformed OTLP")
}

// TestBlockDeletedAfterPoll: a block compacted away or dropped by retention
// since the last poll is skipped, not an error.
func TestBlockDeletedAfterPoll(t *testing.T) {
	f := newFixture(t)
	q, _ := newQuerier(t, f.ing, f.bkt)
	ctx := context.Background()
	keys, err := f.bkt.List(ctx, storage.BlockDir(tenant, blockMid))
	require.NoError(t, err)
	require.NotEmpty(t, keys)
	for _, k := range keys {
		require.NoError(t, f.bkt.Delete(ctx, k))
	}
	got, _ := findTrace(t, q, &vivacepb.TraceByIDRequest{TraceId: f.id[:]})
	requireSpans(t, f.whole, got)
}

// TestBlockCorruptAfterPoll: a block that turns out corrupt is skipped and
// counted; the answer holds what the other blocks and the ingesters hold,
// marked PARTIAL with the block named (see corrupt_test.go for more).
func TestBlockCorruptAfterPoll(t *testing.T) {
	f := newFixture(t)
	q, reg := newQuerier(t, f.ing, f.bkt)
	ctx := context.Background()
	keys, err := f.bkt.List(ctx, storage.BlockDir(tenant, blockMid))
	require.NoError(t, err)
	for _, k := range keys {
		if !bytes.Contains([]byte(k), []byte("bloom-")) {
			continue
		}
		require.NoError(t, f.bkt.Put(ctx, k, bytes.NewReader([]byte("junk")), 4))
	}
	got, resp := findTrace(t, q, &vivacepb.TraceByIDRequest{TraceId: f.id[:]})
	requireSpans(t, f.whole, got) // block mid's spans are in the other blocks too
	require.Equal(t, vivacepb.PartialStatus_PARTIAL, resp.Status)
	require.Contains(t, resp.Message, blockMid)
	require.EqualValues(t, 1, counterVec(t, reg, "vivace_querier_corrupt_blocks_total", tenant))
}

// TestFindMergesReplicas: with replication factor 3, each write reached some
// quorum of ingesters; a lookup tolerates one ingester down and returns every
// span once, whichever replicas answered.
func TestFindMergesReplicas(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	ids, traces := modeltest.Traces(rng, 1, 9)
	id, whole := ids[0], traces[0]
	parts := splitTrace(whole, 3)
	ctx := user.InjectOrgID(context.Background(), tenant)
	for _, down := range []int{-1, 0, 1, 2} {
		t.Run(fmt.Sprintf("down=%d", down), func(t *testing.T) {
			ings := []*fakeIngesters{newFakeIngesters(), newFakeIngesters(), newFakeIngesters()}
			// Write k went to every replica but k: each pair of replicas
			// holds every write between them.
			for k, p := range parts {
				for r, ing := range ings {
					if r != k {
						ing.add(t, tenant, id, p)
					}
				}
			}
			if down >= 0 {
				ings[down].err = errors.New("unavailable")
			}
			q, _ := newQuerier(t, ings[0], newBucket(t), ings[1], ings[2])
			resp, err := q.FindTraceByID(ctx, &vivacepb.TraceByIDRequest{TraceId: id[:], QueryMode: querier.ModeIngesters})
			require.NoError(t, err)
			got := &tracev1.TracesData{}
			require.NoError(t, proto.Unmarshal(resp.Trace, got))
			requireSpans(t, whole, got)
		})
	}
	// Two replicas down is no quorum: an error, not a partial trace.
	ings := []*fakeIngesters{newFakeIngesters(), newFakeIngesters(), newFakeIngesters()}
	ings[0].err, ings[1].err = errors.New("down"), errors.New("down")
	q, _ := newQuerier(t, ings[0], newBucket(t), ings[1], ings[2])
	_, err := q.FindTraceByID(ctx, &vivacepb.TraceByIDRequest{TraceId: id[:], QueryMode: querier.ModeIngesters})
	require.Error(t, err)
}
