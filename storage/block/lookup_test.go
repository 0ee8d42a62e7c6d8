package block

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/vivace-dev/vivace/internal/model"
	"github.com/vivace-dev/vivace/internal/model/modeltest"
	"github.com/vivace-dev/vivace/storage"
)

// TestLookupCost checks what a lookup reads: the first one a bloom shard,
// the index, the parquet tail (footer) and one row group; later ones a bloom
// shard and one row group; an ID outside the block's range nothing; an ID the
// bloom filter rules out only its shard.
func TestLookupCost(t *testing.T) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(5, 5))
	ids, traces := modeltest.Traces(rng, 400, 20)
	mem := newMemBucket()
	meta := writeBlock(t, mem, WriterConfig{RowGroupSpans: 500, BloomShardMaxBytes: 64}, ids, traces)
	require.Greater(t, meta.RowGroups, 5)
	require.Greater(t, meta.BloomShards, 3)

	bkt := &countingBucket{Bucket: mem}
	r := NewReader(bkt, meta)
	idxBytes := mem.objects[storage.IndexKey(testTenant, meta.BlockID)]
	idx, err := decodeIndex(idxBytes, meta.Size)
	require.NoError(t, err)

	dataKey := storage.DataKey(testTenant, meta.BlockID)
	bloomCall := func(id model.TraceID) call {
		return call{op: "Get", key: storage.BloomKey(testTenant, meta.BlockID, bloomShardOf(bloomHash(id), meta.BloomShards))}
	}
	rowGroupCall := func(id model.TraceID) call {
		for _, e := range idx.RowGroups {
			if id.Compare(e.MinID) >= 0 && id.Compare(e.MaxID) <= 0 {
				return call{op: "GetRange", key: dataKey, off: e.Offset, length: e.Length}
			}
		}
		t.Fatalf("no row group holds %s", id)
		return call{}
	}

	// First lookup: bloom shard, index, tail, row group.
	td, err := r.FindTraceByID(ctx, ids[7])
	require.NoError(t, err)
	require.True(t, proto.Equal(traces[7], td))
	require.Equal(t, []call{
		bloomCall(ids[7]),
		{op: "Get", key: storage.IndexKey(testTenant, meta.BlockID)},
		{op: "GetRange", key: dataKey, off: idx.TailOffset, length: meta.Size - 8 - idx.TailOffset},
		rowGroupCall(ids[7]),
	}, bkt.take())

	// Every later lookup: its bloom shard the first time that shard is
	// needed, and its row group, nothing else.
	shardsRead := map[call]bool{bloomCall(ids[7]): true}
	for i, id := range ids {
		td, err := r.FindTraceByID(ctx, id)
		require.NoError(t, err)
		require.True(t, proto.Equal(traces[i], td))
		want := []call{rowGroupCall(id)}
		if bc := bloomCall(id); !shardsRead[bc] {
			shardsRead[bc] = true
			want = append([]call{bc}, want...)
		}
		require.Equal(t, want, bkt.take(), "trace %d", i)
	}
	require.Len(t, shardsRead, meta.BloomShards, "every shard read once")

	// Outside the ID range: nothing read.
	for _, id := range []model.TraceID{{}, {0: 0xff, 15: 0xff}} {
		if id.Compare(ids[0]) < 0 || id.Compare(ids[len(ids)-1]) > 0 {
			td, err := r.FindTraceByID(ctx, id)
			require.NoError(t, err)
			require.Nil(t, td)
			require.Empty(t, bkt.take())
		}
	}

	// Absent IDs in range: the cached bloom shard, and a row group only for
	// a false positive that falls inside a row group's range.
	present := map[model.TraceID]bool{}
	for _, id := range ids {
		present[id] = true
	}
	for _, id := range modeltest.IDs(rng, 300) {
		if present[id] || id.Compare(ids[0]) < 0 || id.Compare(ids[len(ids)-1]) > 0 {
			continue
		}
		td, err := r.FindTraceByID(ctx, id)
		require.NoError(t, err)
		require.Nil(t, td)
		calls := bkt.take()
		require.LessOrEqual(t, len(calls), 1)
		if len(calls) == 1 {
			require.Equal(t, rowGroupCall(id), calls[0], "only a bloom false positive reads data")
		}
	}

	// A second Reader loads index and footer again, once.
	r2 := NewReader(bkt, meta)
	_, err = r2.FindTraceByID(ctx, ids[1])
	require.NoError(t, err)
	require.Len(t, bkt.take(), 4)
}

// TestIndexPicksRowGroup: for every trace the index names the row group
// holding it, and find is right at and between row group boundaries.
func TestIndexPicksRowGroup(t *testing.T) {
	rng := rand.New(rand.NewPCG(6, 6))
	ids, traces := modeltest.Traces(rng, 300, 10)
	bkt := newMemBucket()
	meta := writeBlock(t, bkt, WriterConfig{RowGroupSpans: 200}, ids, traces)
	l, err := NewReader(bkt, meta).load(context.Background())
	require.NoError(t, err)
	idx := l.idx
	require.Greater(t, len(idx.RowGroups), 5)

	j := 0
	for g, e := range idx.RowGroups {
		for ; j < len(ids) && ids[j].Compare(e.MaxID) <= 0; j++ {
			require.Equal(t, g, idx.find(ids[j]), "trace %d", j)
		}
	}
	require.Equal(t, len(ids), j)

	next := func(id model.TraceID) model.TraceID { // id + 1
		for i := 15; i >= 0; i-- {
			id[i]++
			if id[i] != 0 {
				break
			}
		}
		return id
	}
	tests := []struct {
		name string
		id   model.TraceID
		want int
	}{
		{"below the first", model.TraceID{}, -1},
		{"first min", idx.RowGroups[0].MinID, 0},
		{"first max", idx.RowGroups[0].MaxID, 0},
		{"between 0 and 1", next(idx.RowGroups[0].MaxID), -1},
		{"second min", idx.RowGroups[1].MinID, 1},
		{"last max", idx.RowGroups[len(idx.RowGroups)-1].MaxID, len(idx.RowGroups) - 1},
		{"above the last", next(idx.RowGroups[len(idx.RowGroups)-1].MaxID), -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.want == -1 && next(idx.RowGroups[0].MaxID) == idx.RowGroups[1].MinID && tt.name == "between 0 and 1" {
				t.Skip("adjacent IDs")
			}
			require.Equal(t, tt.want, idx.find(tt.id))
		})
	}
}

// TestConcurrentLookups runs lookups and iterations on one Reader from many
// goroutines, from a cold start (run with -race).
func TestConcurrentLookups(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 8))
	ids, traces := modeltest.Traces(rng, 200, 10)
	bkt := newMemBucket()
	meta := writeBlock(t, bkt, WriterConfig{RowGroupSpans: 300}, ids, traces)
	r := NewReader(bkt, meta)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; i < len(ids); i += 3 {
				td, err := r.FindTraceByID(ctx, ids[i])
				if err != nil {
					errs <- err
					return
				}
				if !proto.Equal(traces[i], td) {
					errs <- fmt.Errorf("trace %d differs", i)
					return
				}
			}
			if g == 0 {
				n := 0
				if err := r.Iterate(ctx, func(model.TraceID, *tracev1.TracesData) error { n++; return nil }); err != nil {
					errs <- err
				}
				if n != len(ids) {
					errs <- fmt.Errorf("iterated %d traces", n)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
}

// TestCorruptObjects: a reader reports ErrCorrupt, never panics, for blocks
// whose objects were damaged.
func TestCorruptObjects(t *testing.T) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(9, 9))
	ids, traces := modeltest.Traces(rng, 50, 10)
	clean := newMemBucket()
	meta := writeBlock(t, clean, WriterConfig{RowGroupSpans: 100}, ids, traces)
	keys := clean.keys()
	for _, key := range keys {
		if key == storage.MetaKey(testTenant, meta.BlockID) {
			continue
		}
		for _, mode := range []string{"flip", "truncate", "empty"} {
			t.Run(key[len(testTenant)+len(meta.BlockID)+2:]+"/"+mode, func(t *testing.T) {
				bkt := newMemBucket()
				for k, v := range clean.objects {
					bkt.objects[k] = v
				}
				b := append([]byte(nil), clean.objects[key]...)
				switch mode {
				case "flip":
					for i := 0; i < 8; i++ {
						b[rng.IntN(len(b))] ^= byte(1 + rng.IntN(255))
					}
				case "truncate":
					b = b[:len(b)/2]
				case "empty":
					b = nil
				}
				bkt.objects[key] = b
				r := NewReader(bkt, meta)
				for _, id := range ids {
					_, _ = r.FindTraceByID(ctx, id) // must not panic
				}
				_ = r.Iterate(ctx, func(model.TraceID, *tracev1.TracesData) error { return nil })
			})
		}
	}
}
