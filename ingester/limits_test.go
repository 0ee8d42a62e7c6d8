package ingester_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/grafana/dskit/user"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/vivace-dev/vivace/ingester"
	"github.com/vivace-dev/vivace/internal/model"
	"github.com/vivace-dev/vivace/internal/overrides"
	"github.com/vivace-dev/vivace/internal/vivacepb"
)

const (
	ok       = vivacepb.PushErrorReason_NO_ERROR
	tooMany  = vivacepb.PushErrorReason_MAX_LIVE_TRACES
	tooLarge = vivacepb.PushErrorReason_TRACE_TOO_LARGE
)

// push pushes one part of each trace for tenant and returns the answer.
func push(t testing.TB, ing *ingester.Ingester, tenant string, ids []model.TraceID, parts [][]byte) []vivacepb.PushErrorReason {
	t.Helper()
	req := &vivacepb.PushRequest{Traces: parts}
	for _, id := range ids {
		req.Ids = append(req.Ids, id[:])
	}
	resp, err := ing.Push(user.InjectOrgID(context.Background(), tenant), req)
	require.NoError(t, err, "a refusal for a limit is an answer, not an error")
	return resp.GetErrorsByTrace()
}

// refusedCount is vivace_ingester_refused_traces_total of tenant and reason.
func refusedCount(t testing.TB, reg prometheus.Gatherer, tenant, reason string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != "vivace_ingester_refused_traces_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, lp := range m.GetLabel() {
				labels[lp.GetName()] = lp.GetValue()
			}
			if labels["tenant"] == tenant && labels["reason"] == reason {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func limitsWith(change func(l *overrides.Limits)) *overrides.Overrides {
	l := defaultLimits()
	change(&l)
	return overrides.NewStatic(l)
}

func TestMaxLiveTraces(t *testing.T) {
	limits := limitsWith(func(l *overrides.Limits) { l.Ingestion.MaxTracesPerUser = 3 })
	ing, reg := startLimitedIngester(t, testConfig(t, t.TempDir()), newBucket(t), limits)
	rng := rand.New(rand.NewPCG(30, 30))
	traces := makeTraces(t, rng, []string{"a"}, 6, 4, 1)
	ids, parts := make([]model.TraceID, len(traces)), make([][]byte, len(traces))
	for i, tt := range traces {
		ids[i], parts[i] = tt.id, tt.parts[0]
	}

	require.Nil(t, push(t, ing, "a", ids[:2], parts[:2]), "under the limit: no errors")
	// Two new traces with one slot left: the second is refused. A trace of
	// the same push seen before is not new.
	require.Equal(t, []vivacepb.PushErrorReason{ok, tooMany, ok},
		push(t, ing, "a", []model.TraceID{ids[2], ids[3], ids[0]}, [][]byte{parts[2], parts[3], parts[0]}))
	require.Equal(t, []vivacepb.PushErrorReason{tooMany}, push(t, ing, "a", ids[4:5], parts[4:5]))
	require.Equal(t, 2.0, refusedCount(t, reg, "a", "live_traces_exceeded"))

	// What was stored is readable; what was refused is not there.
	require.Equal(t, append(append([]byte{}, parts[0]...), parts[0]...), find(t, ing, "a", ids[0]))
	require.Equal(t, parts[2], find(t, ing, "a", ids[2]))
	require.Empty(t, find(t, ing, "a", ids[3]))
	require.Empty(t, find(t, ing, "a", ids[4]))

	// Another tenant counts its own traces.
	other := makeTraces(t, rng, []string{"b"}, 3, 4, 1)
	for _, tt := range other {
		require.Nil(t, push(t, ing, "b", []model.TraceID{tt.id}, tt.parts))
	}
	require.Zero(t, refusedCount(t, reg, "b", "live_traces_exceeded"))

	// A cut does not change what is live.
	require.NoError(t, ing.Flush())
	require.Equal(t, []vivacepb.PushErrorReason{tooMany}, push(t, ing, "a", ids[4:5], parts[4:5]))
	require.Equal(t, 3.0, liveTraces(t, reg, "a"))
}

// A trace idle for trace_idle_period no longer counts as live.
func TestIdleTracesLeaveRoom(t *testing.T) {
	cfg := testConfig(t, t.TempDir())
	cfg.TraceIdlePeriod = 20 * time.Millisecond
	limits := limitsWith(func(l *overrides.Limits) { l.Ingestion.MaxTracesPerUser = 1 })
	ing, reg := startLimitedIngester(t, cfg, newBucket(t), limits)
	traces := makeTraces(t, rand.New(rand.NewPCG(33, 33)), []string{"a"}, 2, 3, 1)
	first, second := traces[0], traces[1]
	require.Nil(t, push(t, ing, "a", []model.TraceID{first.id}, first.parts))
	// Refused while the first is live, taken once it is idle.
	require.Eventually(t, func() bool {
		return push(t, ing, "a", []model.TraceID{second.id}, second.parts) == nil
	}, waitFor, tick)
	require.Positive(t, refusedCount(t, reg, "a", "live_traces_exceeded"))
	require.Equal(t, bytes.Join(first.parts, nil), find(t, ing, "a", first.id), "an idle trace is still stored")
	require.Equal(t, bytes.Join(second.parts, nil), find(t, ing, "a", second.id))
}

// liveTraces is vivace_ingester_live_traces of tenant, once the ingester
// has counted them.
func liveTraces(t testing.TB, reg prometheus.Gatherer, tenant string) float64 {
	t.Helper()
	var v float64
	require.Eventually(t, func() bool {
		mfs, err := reg.Gather()
		require.NoError(t, err)
		for _, mf := range mfs {
			if mf.GetName() == "vivace_ingester_live_traces" {
				for _, m := range mf.GetMetric() {
					if m.GetLabel()[0].GetValue() == tenant {
						v = m.GetGauge().GetValue()
						return true
					}
				}
			}
		}
		return false
	}, waitFor, tick)
	return v
}

func TestMaxBytesPerTrace(t *testing.T) {
	rng := rand.New(rand.NewPCG(31, 31))
	traces := makeTraces(t, rng, []string{"a"}, 2, 12, 1)
	big, small := traces[0], traces[1]
	part := big.parts[0]
	// Room for two parts of the trace, not three.
	limits := limitsWith(func(l *overrides.Limits) { l.Global.MaxBytesPerTrace = 2*len(part) + len(part)/2 })
	bkt := newBucket(t)
	ing, reg := startLimitedIngester(t, testConfig(t, t.TempDir()), bkt, limits)

	require.Nil(t, push(t, ing, "a", []model.TraceID{big.id}, [][]byte{part}))
	require.Nil(t, push(t, ing, "a", []model.TraceID{big.id}, [][]byte{part}))
	// The third part is refused, the other trace of the push stored.
	require.Equal(t, []vivacepb.PushErrorReason{tooLarge, ok},
		push(t, ing, "a", []model.TraceID{big.id, small.id}, [][]byte{part, small.parts[0]}))
	require.Equal(t, 1.0, refusedCount(t, reg, "a", "trace_too_large"))
	// What the trace held before stays readable.
	require.Equal(t, bytes.Repeat(part, 2), find(t, ing, "a", big.id))
	require.Equal(t, small.parts[0], find(t, ing, "a", small.id))

	// Two parts of one push add up.
	fresh := makeTraces(t, rng, []string{"a"}, 1, 12, 1)[0]
	fp := fresh.parts[0]
	limits2 := limitsWith(func(l *overrides.Limits) { l.Global.MaxBytesPerTrace = len(fp) + len(fp)/2 })
	ing2, _ := startLimitedIngester(t, testConfig(t, t.TempDir()), newBucket(t), limits2)
	require.Equal(t, []vivacepb.PushErrorReason{ok, tooLarge}, push(t, ing2, "a", []model.TraceID{fresh.id, fresh.id}, [][]byte{fp, fp}))

	// Another tenant's trace of the same size is its own.
	require.Nil(t, push(t, ing, "b", []model.TraceID{big.id}, [][]byte{part}))
	require.Nil(t, push(t, ing, "b", []model.TraceID{big.id}, [][]byte{part}))
	require.Zero(t, refusedCount(t, reg, "b", "trace_too_large"))

	// Once flushed to a block, the trace's earlier parts no longer count.
	require.NoError(t, ing.Flush())
	waitForBlocks(t, bkt, "a", 1)
	require.Eventually(t, func() bool {
		return metricValue(t, reg, "vivace_ingester_blocks_flushed_total") == 2
	}, waitFor, tick)
	require.Nil(t, push(t, ing, "a", []model.TraceID{big.id}, [][]byte{part}))
}

// With no limit set, nothing is refused.
func TestNoLimits(t *testing.T) {
	limits := limitsWith(func(l *overrides.Limits) {
		l.Ingestion.MaxTracesPerUser, l.Global.MaxBytesPerTrace = 0, 0
	})
	ing, _ := startLimitedIngester(t, testConfig(t, t.TempDir()), newBucket(t), limits)
	rng := rand.New(rand.NewPCG(32, 32))
	traces := makeTraces(t, rng, []string{"a"}, 20, 5, 3)
	pushAll(t, ing, traces)
	requireFound(t, ing, traces)
}

// BenchmarkPush is the ingester's write path with both limits checked: 50
// new traces of one tenant per push, appended to the WAL.
func BenchmarkPush(b *testing.B) {
	limits := limitsWith(func(l *overrides.Limits) { l.Ingestion.MaxTracesPerUser = 1 << 30 })
	ing, _ := startLimitedIngester(b, testConfig(b, b.TempDir()), newBucket(b), limits)
	rng := rand.New(rand.NewPCG(34, 34))
	traces := makeTraces(b, rng, []string{"a"}, 50, 10, 1)
	req := &vivacepb.PushRequest{}
	spans, size := 0, 0
	for _, tt := range traces {
		id := tt.id
		req.Ids = append(req.Ids, id[:])
		req.Traces = append(req.Traces, tt.parts[0])
		spans += model.SpanCount(tt.whole)
		size += len(tt.parts[0])
	}
	ctx := user.InjectOrgID(context.Background(), "a")
	b.SetBytes(int64(size))
	b.ReportAllocs()
	n := uint64(0)
	for b.Loop() {
		for _, id := range req.Ids {
			n++
			binary.BigEndian.PutUint64(id[8:], n) // a new trace
		}
		resp, err := ing.Push(ctx, req)
		if err != nil || resp.ErrorsByTrace != nil {
			b.Fatal(err, resp.GetErrorsByTrace())
		}
	}
	b.ReportMetric(float64(spans)*float64(b.N)/b.Elapsed().Seconds(), "spans/s")
}
