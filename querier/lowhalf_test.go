package querier_test

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/grafana/dskit/user"
	"github.com/stretchr/testify/require"
	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/vivace-dev/vivace/internal/model"
	"github.com/vivace-dev/vivace/internal/vivacepb"
	"github.com/vivace-dev/vivace/querier"
	"github.com/vivace-dev/vivace/storage"
)

func halves(hi, lo uint64) model.TraceID {
	var id model.TraceID
	binary.BigEndian.PutUint64(id[:8], hi)
	binary.BigEndian.PutUint64(id[8:], lo)
	return id
}

// byTrace splits an answer by trace ID.
func byTrace(t testing.TB, td *tracev1.TracesData) map[model.TraceID]int {
	t.Helper()
	out := map[model.TraceID]int{}
	for _, rs := range td.GetResourceSpans() {
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				out[model.TraceID(s.TraceId)]++
			}
		}
	}
	return out
}

// TestFindLowHalf: with low_half, a 64-bit ID that no trace has finds the
// 128-bit traces whose low half it is, in the ingesters (all of them) and in
// blocks; an exact match hides them; without low_half nothing is scanned.
func TestFindLowHalf(t *testing.T) {
	const lowA, lowB = 0xa3ce929d0e0e4736, 0x0102030405060708
	inBlock := halves(0x4bf92f3577b34da6, lowA)
	live := halves(0x11, lowA)
	exact := halves(0, lowB)
	shadowed := halves(0x22, lowB)
	other := halves(0x33, lowA+1)
	trace := func(id model.TraceID, name string) *tracev1.TracesData {
		// The same span ID in every trace: each is combined on its own.
		return oneSpanTrace(id, "svc", name, time.Minute, nil)
	}
	ing1, ing2 := newFakeIngesters(), newFakeIngesters()
	ing2.add(t, tenant, live, trace(live, "live"))
	ing1.add(t, tenant, exact, trace(exact, "exact"))
	bkt := newBucket(t)
	writeBlock(t, bkt, tenant, blockLow, map[model.TraceID]*tracev1.TracesData{inBlock: trace(inBlock, "block"), other: trace(other, "other")})
	writeBlock(t, bkt, tenant, blockHigh, map[model.TraceID]*tracev1.TracesData{shadowed: trace(shadowed, "shadowed")})
	q, reg := newQuerier(t, ing1, bkt, ing2)

	short, absent := halves(0, lowA), halves(0, 99)
	got, _ := findTrace(t, q, &vivacepb.TraceByIDRequest{TraceId: short[:]})
	require.Nil(t, got, "without low_half, the exact ID only")
	require.Zero(t, counter(t, reg, "vivace_querier_low_half_lookups_total"))

	for _, tc := range []struct {
		name string
		req  *vivacepb.TraceByIDRequest
		want map[model.TraceID]int
	}{
		{"everywhere", &vivacepb.TraceByIDRequest{TraceId: short[:], LowHalf: true}, map[model.TraceID]int{inBlock: 1, live: 1}},
		{"8-byte ID", &vivacepb.TraceByIDRequest{TraceId: short[8:], LowHalf: true}, map[model.TraceID]int{inBlock: 1, live: 1}},
		{"ingesters", &vivacepb.TraceByIDRequest{TraceId: short[:], LowHalf: true, QueryMode: querier.ModeIngesters}, map[model.TraceID]int{live: 1}},
		{"blocks", &vivacepb.TraceByIDRequest{TraceId: short[:], LowHalf: true, QueryMode: querier.ModeBlocks}, map[model.TraceID]int{inBlock: 1}},
		{"block range", &vivacepb.TraceByIDRequest{TraceId: short[:], LowHalf: true, QueryMode: querier.ModeBlocks, BlockStart: blockMid}, map[model.TraceID]int{}},
		{"exact match wins", &vivacepb.TraceByIDRequest{TraceId: exact[:], LowHalf: true}, map[model.TraceID]int{exact: 1}},
		{"exact only in the other part", &vivacepb.TraceByIDRequest{TraceId: exact[:], LowHalf: true, QueryMode: querier.ModeBlocks}, map[model.TraceID]int{shadowed: 1}},
		{"nothing", &vivacepb.TraceByIDRequest{TraceId: absent[:], LowHalf: true}, map[model.TraceID]int{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, resp := findTrace(t, q, tc.req)
			require.Equal(t, tc.want, byTrace(t, got))
			require.Equal(t, vivacepb.PartialStatus_COMPLETE, resp.Status)
		})
	}
	require.EqualValues(t, 7, counter(t, reg, "vivace_querier_low_half_lookups_total"), "not run when the exact ID was found")

	ctx := user.InjectOrgID(context.Background(), tenant)
	_, err := q.FindTraceByID(ctx, &vivacepb.TraceByIDRequest{TraceId: inBlock[:], LowHalf: true})
	require.ErrorContains(t, err, "low_half asks for a 64-bit ID")

	// Every ingester must answer: the one holding the trace may be any.
	ing1.err = errors.New("down")
	_, err = q.FindTraceByID(ctx, &vivacepb.TraceByIDRequest{TraceId: short[:], LowHalf: true})
	require.ErrorContains(t, err, "down")
}

// panicBucket panics on every ranged read of one block.
type panicBucket struct {
	storage.Bucket
	blockID string
}

func (b panicBucket) GetRange(ctx context.Context, key string, off, length int64) (io.ReadCloser, error) {
	if strings.Contains(key, b.blockID) {
		panic("boom")
	}
	return b.Bucket.GetRange(ctx, key, off, length)
}

// TestBlockPanicSkipped: a panic while reading a block is caught, counted
// as a corrupt block, and the other blocks answer.
func TestBlockPanicSkipped(t *testing.T) {
	f := newCorruptFixture(t)
	q, reg := newQuerier(t, newFakeIngesters(), panicBucket{f.bkt, blockMid})
	id := f.in[blockMid][0]
	got, resp := findTrace(t, q, &vivacepb.TraceByIDRequest{TraceId: id[:]})
	require.Nil(t, got)
	require.Equal(t, vivacepb.PartialStatus_PARTIAL, resp.Status)
	res, err := q.Search(user.InjectOrgID(context.Background(), tenant), &vivacepb.SearchJob{Query: "{}"})
	require.NoError(t, err)
	require.Len(t, res.Traces, 8)
	require.EqualValues(t, 2, counterVec(t, reg, "vivace_querier_corrupt_blocks_total", tenant))
}
