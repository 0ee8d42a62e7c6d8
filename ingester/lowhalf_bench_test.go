package ingester

import (
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/vivace-dev/vivace/ingester/wal"
	"github.com/vivace-dev/vivace/internal/model"
)

// BenchmarkLowHalf measures the two ways an ingester can find live traces by
// the low half of their ID, with 1M live traces of one tenant: scanning the
// live index (what lowHalfParts does), and the alternative, a second map by
// low half that every push would have to maintain.
func BenchmarkLowHalf(b *testing.B) {
	const n = 1_000_000
	rng := rand.New(rand.NewPCG(1, 1))
	ids := make([]model.TraceID, n)
	g := &generation{traces: map[string]map[model.TraceID][]wal.Ref{}}
	for i := range ids {
		for j := range ids[i] {
			ids[i][j] = byte(rng.Uint32())
		}
		g.add("t", ids[i], wal.Ref{Offset: int64(i), Len: 100})
	}
	target := ids[n/2].Low64()

	b.Run("scan", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if len(g.lowHalf("t", target)) != 1 {
				b.Fatal("not found")
			}
		}
		b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "ids/s")
		b.ReportMetric(b.Elapsed().Seconds()*1e3/float64(b.N), "ms/lookup")
	})

	b.Run("second-index", func(b *testing.B) {
		var index map[uint64][]model.TraceID
		var bytesPerTrace float64
		for b.Loop() {
			b.StopTimer()
			var before, after runtime.MemStats
			index = nil
			runtime.GC()
			runtime.ReadMemStats(&before)
			b.StartTimer()
			index = map[uint64][]model.TraceID{}
			for _, id := range ids {
				index[id.Low64()] = append(index[id.Low64()], id)
			}
			b.StopTimer()
			runtime.GC()
			runtime.ReadMemStats(&after)
			bytesPerTrace = float64(after.HeapAlloc-before.HeapAlloc) / n
			b.StartTimer()
		}
		if len(index[target]) != 1 {
			b.Fatal("not found")
		}
		b.ReportMetric(b.Elapsed().Seconds()*1e9/float64(b.N)/n, "ns/push")
		b.ReportMetric(bytesPerTrace, "bytes/trace")
	})
}
