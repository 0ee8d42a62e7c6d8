package block

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/cespare/xxhash/v2"
	"github.com/stretchr/testify/require"

	"github.com/vivace-dev/vivace/internal/model"
	"github.com/vivace-dev/vivace/internal/model/modeltest"
	"github.com/vivace-dev/vivace/storage"
)

func TestBloomShape(t *testing.T) {
	tests := []struct {
		n        int
		p        float64
		maxBytes int
		want     bloomShape
	}{
		{n: 1, p: 0.01, maxBytes: 16 << 10, want: bloomShape{shards: 1, words: 1, k: 7}},
		{n: 1000, p: 0.01, maxBytes: 16 << 10, want: bloomShape{shards: 1, words: 150, k: 7}},
		{n: 100_000, p: 0.01, maxBytes: 16 << 10, want: bloomShape{shards: 8, words: 1873, k: 7}},
		{n: 100_000, p: 0.001, maxBytes: 16 << 10, want: bloomShape{shards: 11, words: 2043, k: 10}},
		{n: 1_000_000, p: 0.01, maxBytes: 64, want: bloomShape{shards: 18721, words: 8, k: 7}},
		{n: 10_000_000, p: 0.01, maxBytes: 64, want: bloomShape{shards: maxBloomShards, words: 23, k: 7}}, // capped
	}
	for _, tt := range tests {
		got := bloomShapeFor(tt.n, tt.p, tt.maxBytes)
		require.Equal(t, tt.want, got, "n=%d p=%v max=%d", tt.n, tt.p, tt.maxBytes)
		require.LessOrEqual(t, got.shards, maxBloomShards)
		if got.shards < maxBloomShards {
			require.LessOrEqual(t, got.words*8, max(tt.maxBytes, 8))
		}
		bits := -float64(tt.n) * math.Log(tt.p) / (math.Ln2 * math.Ln2)
		require.GreaterOrEqual(t, float64(got.shards*got.words*64), bits)
	}
}

// TestBloomHashStable pins the hash, shard and probe functions: they are part
// of the on-disk format (FORMAT.md) and must never change.
func TestBloomHashStable(t *testing.T) {
	id := model.TraceID{0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32, 0x10}
	// Standard XXH64 (seed 0) test vectors, then the pinned ID. The values
	// below were cross-checked with an independent implementation of the
	// FORMAT.md formulas.
	require.Equal(t, uint64(0xef46db3751d8e999), xxhash.Sum64(nil))
	require.Equal(t, uint64(0x44bc2cf5ad770999), xxhash.Sum64String("abc"))
	h := bloomHash(id)
	require.Equal(t, uint64(0xb5cb2cb49784abff), h, "got %#x", h)
	h1, h2 := bloomProbes(h)
	require.Equal(t, []uint64{0x6b263a14, 0x15d6bf25}, []uint64{h1, h2}, "got %#x %#x", h1, h2)
	require.Equal(t, 1, bloomShardOf(h, 2))
	require.Equal(t, int(h%13), bloomShardOf(h, 13))

	// m = 128 bits, k = 3: bits 20, 57 and 94.
	f := newBloomFilter(2, 3)
	f.add(h)
	require.Equal(t, []uint64{1<<20 | 1<<57, 1 << (94 - 64)}, f.bits, "got %#x", f.bits)
}

func TestBloomNoFalseNegativesAndFalsePositiveRate(t *testing.T) {
	tests := []struct {
		n        int
		p        float64
		maxBytes int
	}{
		{n: 10, p: 0.01, maxBytes: DefaultBloomShardMaxBytes},
		{n: 20_000, p: 0.01, maxBytes: DefaultBloomShardMaxBytes},
		{n: 50_000, p: 0.01, maxBytes: 4 << 10},
		{n: 50_000, p: 0.05, maxBytes: 1 << 10},
		{n: 50_000, p: 0.001, maxBytes: DefaultBloomShardMaxBytes},
	}
	for i, tt := range tests {
		rng := rand.New(rand.NewPCG(uint64(i), 11))
		ids := modeltest.IDs(rng, tt.n+100_000)
		in, out := ids[:tt.n], ids[tt.n:]
		shape := bloomShapeFor(tt.n, tt.p, tt.maxBytes)
		filters := make([]*bloomFilter, shape.shards)
		for s := range filters {
			filters[s] = newBloomFilter(shape.words, shape.k)
		}
		for _, id := range in {
			h := bloomHash(id)
			filters[bloomShardOf(h, shape.shards)].add(h)
		}
		// Through the encoding, as a reader sees them.
		for s, f := range filters {
			var err error
			filters[s], err = decodeBloom(f.marshal())
			require.NoError(t, err)
		}
		for _, id := range in {
			h := bloomHash(id)
			require.True(t, filters[bloomShardOf(h, shape.shards)].mayContain(h), "false negative")
		}
		fp := 0
		for _, id := range out {
			h := bloomHash(id)
			if filters[bloomShardOf(h, shape.shards)].mayContain(h) {
				fp++
			}
		}
		rate := float64(fp) / float64(len(out))
		t.Logf("n=%d p=%v shards=%d words=%d k=%d: false-positive rate %.4f", tt.n, tt.p, shape.shards, shape.words, shape.k, rate)
		if tt.n >= 1000 {
			require.InDelta(t, tt.p, rate, tt.p*0.35+0.0005, "false-positive rate")
		} else {
			require.Less(t, rate, tt.p*2)
		}
	}
}

// TestBloomShardSelection: the shard a reader reads is the one the writer put
// the ID in, and shards are used about evenly.
func TestBloomShardSelection(t *testing.T) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(12, 12))
	ids, traces := modeltest.Traces(rng, 3000, 2)
	bkt := newMemBucket()
	meta := writeBlock(t, bkt, WriterConfig{BloomShardMaxBytes: 512}, ids, traces)
	require.Greater(t, meta.BloomShards, 4)

	counts := make([]int, meta.BloomShards)
	for _, id := range ids {
		s := bloomShardOf(bloomHash(id), meta.BloomShards)
		counts[s]++
		f, err := decodeBloom(bkt.objects[storage.BloomKey(testTenant, meta.BlockID, s)])
		require.NoError(t, err)
		require.True(t, f.mayContain(bloomHash(id)))
	}
	mean := float64(len(ids)) / float64(meta.BloomShards)
	for s, c := range counts {
		require.InDelta(t, mean, float64(c), 5*math.Sqrt(mean), "shard %d", s)
	}
	_, err := NewReader(bkt, meta).FindTraceByID(ctx, ids[0])
	require.NoError(t, err)
}

func TestDecodeBloomErrors(t *testing.T) {
	good := newBloomFilter(4, 3)
	good.add(42)
	b := good.marshal()
	corrupt := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), b...)) }
	tests := map[string][]byte{
		"empty":     nil,
		"short":     b[:10],
		"magic":     corrupt(func(b []byte) []byte { b[0] = 'X'; return b }),
		"version":   corrupt(func(b []byte) []byte { b[4] = 9; return b }),
		"zero k":    corrupt(func(b []byte) []byte { b[8] = 0; return b }),
		"words":     corrupt(func(b []byte) []byte { b[12] = 5; return b }),
		"checksum":  corrupt(func(b []byte) []byte { b[20] ^= 1; return b }),
		"truncated": b[:len(b)-1],
		"trailing":  append(append([]byte(nil), b...), 0),
	}
	for name, in := range tests {
		_, err := decodeBloom(in)
		require.ErrorIs(t, err, ErrCorrupt, name)
	}
	got, err := decodeBloom(b)
	require.NoError(t, err)
	require.Equal(t, good, got)
}
