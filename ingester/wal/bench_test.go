package wal_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/vivace-dev/vivace/ingester/wal"
	"github.com/vivace-dev/vivace/internal/model"
	"github.com/vivace-dev/vivace/internal/model/modeltest"
)

// push is one PushRequest's worth of WAL input.
type push struct {
	ids    []model.TraceID
	traces [][]byte
	bytes  int
}

// makePushes makes n pushes of spans spans each, spread over traces traces
// of realistic OTLP (modeltest), encoded as the distributor sends them.
func makePushes(tb testing.TB, n, spans, traces int) []push {
	tb.Helper()
	rng := rand.New(rand.NewPCG(11, 13))
	out := make([]push, n)
	for i := range out {
		ids := modeltest.IDs(rng, traces)
		p := push{ids: ids}
		for k, id := range ids {
			per := spans / traces
			if k < spans%traces {
				per++
			}
			b, err := proto.Marshal(modeltest.Trace(rng, id, per))
			if err != nil {
				tb.Fatal(err)
			}
			p.traces = append(p.traces, b)
			p.bytes += len(b)
		}
		out[i] = p
	}
	return out
}

// BenchmarkAppend measures the ingester's write path: one Append per push
// of 1000 spans. The segment is rolled every 256 MiB, as the ingester cuts
// blocks (max_block_bytes), outside the timer.
func BenchmarkAppend(b *testing.B) {
	const spans = 1000
	for _, traces := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("spans=%d/traces=%d", spans, traces), func(b *testing.B) {
			pushes := makePushes(b, 16, spans, traces)
			total := 0
			for _, p := range pushes {
				total += p.bytes
			}
			perPush := total / len(pushes)
			dir := b.TempDir()
			seq := 0
			seg, err := wal.Create(dir, seq)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(perPush))
			b.ReportAllocs()
			b.ResetTimer()
			written := 0
			for i := 0; b.Loop(); i++ {
				p := pushes[i%len(pushes)]
				if _, err := seg.Append("tenant", p.ids, p.traces); err != nil {
					b.Fatal(err)
				}
				written += p.bytes
				if seg.Size() >= 256<<20 {
					b.StopTimer()
					if err := seg.Remove(); err != nil {
						b.Fatal(err)
					}
					seq++
					if seg, err = wal.Create(dir, seq); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)*spans/b.Elapsed().Seconds(), "spans/s")
			b.ReportMetric(float64(written)/float64(b.N*spans), "bytes/span")
			seg.Remove()
		})
	}
}
