package ingester_test

import (
	"context"
	"encoding/binary"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/grafana/dskit/user"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/vivace-dev/vivace/ingester"
	"github.com/vivace-dev/vivace/internal/model"
	"github.com/vivace-dev/vivace/internal/model/modeltest"
	"github.com/vivace-dev/vivace/internal/vivacepb"
)

// idWithHalves is the ID whose upper and lower 64 bits are hi and lo.
func idWithHalves(hi, lo uint64) model.TraceID {
	var id model.TraceID
	binary.BigEndian.PutUint64(id[:8], hi)
	binary.BigEndian.PutUint64(id[8:], lo)
	return id
}

// lowTrace is a trace of id, pushed in two parts.
func lowTrace(t testing.TB, rng *rand.Rand, tenant string, id model.TraceID) *tenantTrace {
	t.Helper()
	tt := &tenantTrace{tenant: tenant, id: id, whole: modeltest.Trace(rng, id, 6)}
	for _, p := range splitTrace(tt.whole, 2) {
		b, err := proto.Marshal(p)
		require.NoError(t, err)
		tt.parts = append(tt.parts, b)
	}
	return tt
}

func findLow(t testing.TB, ing *ingester.Ingester, tenant string, id model.TraceID) []model.TraceID {
	t.Helper()
	resp, err := ing.FindTraceByID(user.InjectOrgID(context.Background(), tenant), &vivacepb.TraceByIDRequest{TraceId: id[:], LowHalf: true})
	require.NoError(t, err)
	if len(resp.Trace) == 0 {
		return nil
	}
	split, err := model.SplitByTrace(resp.Trace)
	require.NoError(t, err)
	ids := split.IDs
	slices.SortFunc(ids, model.TraceID.Compare)
	return ids
}

// TestFindByLowHalf: a 64-bit ID with low_half finds the tenant's live
// 128-bit traces whose low half it is, in the head and in cut generations,
// but only when no trace has exactly that ID.
func TestFindByLowHalf(t *testing.T) {
	ing, _ := startIngester(t, testConfig(t, t.TempDir()), newBucket(t))
	rng := rand.New(rand.NewPCG(3, 3))
	const lowA, lowB = 0xa3ce929d0e0e4736, 0x1122334455667788
	older := lowTrace(t, rng, "a", idWithHalves(0x4bf92f3577b34da6, lowA))
	exact := lowTrace(t, rng, "a", idWithHalves(0, lowB))
	shadowed := lowTrace(t, rng, "a", idWithHalves(0x77, lowB))
	otherTenant := lowTrace(t, rng, "b", idWithHalves(0x99, lowA))
	pushAll(t, ing, []*tenantTrace{older, exact, shadowed, otherTenant})
	require.NoError(t, ing.Flush()) // those are in a cut generation now
	inHead := lowTrace(t, rng, "a", idWithHalves(0x01, lowA))
	unrelated := lowTrace(t, rng, "a", idWithHalves(0x02, lowA+1))
	pushAll(t, ing, []*tenantTrace{inHead, unrelated})

	short := idWithHalves(0, lowA)
	require.Empty(t, find(t, ing, "a", short), "without low_half only the exact ID")
	require.Equal(t, []model.TraceID{inHead.id, older.id}, findLow(t, ing, "a", short))
	require.Equal(t, []model.TraceID{otherTenant.id}, findLow(t, ing, "b", short))
	require.Equal(t, []model.TraceID{exact.id}, findLow(t, ing, "a", exact.id), "an exact match hides the low-half matches")
	require.Empty(t, findLow(t, ing, "a", idWithHalves(0, 0x5555)))

	// The answer holds the traces' parts as pushed.
	resp, err := ing.FindTraceByID(user.InjectOrgID(context.Background(), "b"), &vivacepb.TraceByIDRequest{TraceId: short[:], LowHalf: true})
	require.NoError(t, err)
	require.Equal(t, otherTenant.parts[0], resp.Trace[:len(otherTenant.parts[0])])
	require.EqualValues(t, len(resp.Trace), resp.Metrics.InspectedBytes)

	_, err = ing.FindTraceByID(user.InjectOrgID(context.Background(), "a"), &vivacepb.TraceByIDRequest{TraceId: older.id[:], LowHalf: true})
	require.Equal(t, codes.InvalidArgument, status.Code(err), "low_half takes a 64-bit ID")
}
