package compactor

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/vivace-dev/vivace/internal/model/modeltest"
	"github.com/vivace-dev/vivace/storage"
	"github.com/vivace-dev/vivace/storage/block"
)

// TestCorruptBlock: a block that does not read is reported (log with tenant
// and block ID, vivace_compactor_corrupt_blocks_total) and left out of
// compaction from then on, without being deleted; the other blocks of its
// job are compacted in the same cycle, and the cycle does not fail.
func TestCorruptBlock(t *testing.T) {
	data := func(patch func(d []byte, tail int64) []byte) corruption { return corruption{storage.DataName, patch} }
	tests := map[string]corruption{
		"data truncated to half": data(func(d []byte, _ int64) []byte { return d[:len(d)/2] }),
		// The footer's end: the reader's last ranged read comes up short.
		"data truncated by 100 bytes": data(func(d []byte, _ int64) []byte { return d[:len(d)-100] }),
		"data with flipped bytes in the row groups": data(func(d []byte, _ int64) []byte {
			for i := 100; i < len(d)/2; i += 4001 {
				d[i] ^= 0x5a
			}
			return d
		}),
		"data with flipped bytes in the footer": data(func(d []byte, _ int64) []byte {
			for i := len(d) - 40; i < len(d)-8; i++ {
				d[i] ^= 0xff
			}
			return d
		}),
		"data not parquet at all": data(func(d []byte, _ int64) []byte { return bytes.Repeat([]byte("garbage!"), len(d)/8) }),
		// The last column chunk before the tail is the span column's: its
		// pages are read only when the merge takes the block's rows.
		"data with a flipped byte in a span page": data(func(d []byte, tail int64) []byte {
			d[tail-50] ^= 0x10
			return d
		}),
		"data missing": data(nil),
		"index with a flipped byte": {storage.IndexName, func(d []byte, _ int64) []byte {
			d[len(d)/2] ^= 1
			return d
		}},
		"index missing": {storage.IndexName, nil},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			ctx := t.Context()
			bkt := fsBucket(t)
			// One job's worth of blocks: RF 3 replicas of some traces and a
			// block of others, which is made corrupt.
			want := windowedReplicas(t, bkt, 21, 1, 1, 30)
			ids, traces := modeltest.Traces(rand.New(rand.NewPCG(22, 22)), 10, 5)
			bad := writeBlock(t, bkt, ids, traces)
			key := storage.BlockDir(tenant, bad.BlockID) + tc.object
			if tc.patch == nil {
				require.NoError(t, bkt.Delete(ctx, key))
			} else {
				idx := readObject(t, bkt, storage.IndexKey(tenant, bad.BlockID))
				tail := int64(binary.LittleEndian.Uint64(idx[8:16])) // FORMAT.md, "index"
				patched := tc.patch(readObject(t, bkt, key), tail)
				require.NoError(t, bkt.Put(ctx, key, bytes.NewReader(patched), int64(len(patched))))
			}

			var logs syncBuffer
			clk := newClock(modeltest.BaseTime.Add(time.Hour))
			c, list := newCompactor(t, bkt, ownsAll, clk)
			c.logger = slog.New(slog.NewJSONHandler(&logs, nil))
			require.NoError(t, list.Poll(ctx))
			sources := list.Metas(tenant)
			require.Len(t, sources, 4)

			require.NoError(t, c.Cycle(ctx), "a corrupt block does not fail the cycle")
			require.Equal(t, 1.0, testutil.ToFloat64(c.metrics.corruptBlocks.WithLabelValues(tenant)))
			require.Equal(t, 0.0, testutil.ToFloat64(c.metrics.compactionErrors.WithLabelValues(tenant)))
			require.Equal(t, 3.0, testutil.ToFloat64(c.metrics.blocksCompacted.WithLabelValues(tenant)), "the other blocks of the job")
			require.Contains(t, logs.String(), `"block_id":"`+bad.BlockID+`"`)
			require.Contains(t, logs.String(), `"tenant":"`+tenant+`"`)
			require.Contains(t, logs.String(), "corrupt block")

			require.NoError(t, list.Poll(ctx))
			metas := list.Metas(tenant)
			require.Len(t, metas, 2)
			require.Contains(t, metaIDs(metas), bad.BlockID, "left where it is")
			require.Len(t, list.CompactedMetas(tenant), 3)
			var out *block.Meta
			for _, m := range metas {
				if m.BlockID != bad.BlockID {
					out = m
				}
			}
			_, got := blockTraces(t, bkt, []*block.Meta{out})
			require.Equal(t, want, got)

			// Later cycles, once the window is over and every level is
			// merged together, leave it out without reporting it again.
			clk.add(3 * time.Hour)
			require.NoError(t, c.Cycle(ctx))
			require.NoError(t, list.Poll(ctx))
			require.Equal(t, metaIDs(metas), metaIDs(list.Metas(tenant)))
			require.Equal(t, 1.0, testutil.ToFloat64(c.metrics.corruptBlocks.WithLabelValues(tenant)))
			if tc.patch != nil {
				require.NotEmpty(t, readObject(t, bkt, key), "not deleted")
			}
		})
	}
}

// corruption replaces one object of a block by what patch makes of it, or
// deletes it if patch is nil.
type corruption struct {
	object string
	patch  func(b []byte, tail int64) []byte // tail: the tail offset of data.parquet
}

// TestTransientReadError: a source that fails to read for a reason that is
// not the block's (the object store) fails the job, and does not mark the
// block corrupt: the next cycle compacts it.
func TestTransientReadError(t *testing.T) {
	ctx := t.Context()
	fail := &flakyBucket{Bucket: fsBucket(t)}
	want := windowedReplicas(t, fail, 23, 1, 1, 30)
	c, list := newCompactor(t, fail, ownsAll, newClock(modeltest.BaseTime.Add(time.Hour)))
	require.NoError(t, list.Poll(ctx))

	fail.failures.Store(1)
	require.ErrorIs(t, c.Cycle(ctx), io.ErrClosedPipe)
	require.Equal(t, 0.0, testutil.ToFloat64(c.metrics.corruptBlocks.WithLabelValues(tenant)))
	require.Equal(t, 1.0, testutil.ToFloat64(c.metrics.compactionErrors.WithLabelValues(tenant)))
	require.NoError(t, c.Cycle(ctx))
	requireOneCopy(t, fail, want)
}

// TestPanicReadingBlock: a panic while a source is read fails neither the
// process nor the other blocks.
func TestPanicReadingBlock(t *testing.T) {
	ctx := t.Context()
	inner := fsBucket(t)
	want := windowedReplicas(t, inner, 24, 1, 1, 20)
	ids, traces := modeltest.Traces(rand.New(rand.NewPCG(25, 25)), 5, 5)
	bad := writeBlock(t, inner, ids, traces)
	bkt := &panickyBucket{Bucket: inner, blockID: bad.BlockID}
	c, list := newCompactor(t, bkt, ownsAll, newClock(modeltest.BaseTime.Add(time.Hour)))
	require.NoError(t, list.Poll(ctx))
	require.NoError(t, c.Cycle(ctx))
	require.Equal(t, 1.0, testutil.ToFloat64(c.metrics.corruptBlocks.WithLabelValues(tenant)))
	require.NoError(t, list.Poll(ctx))
	var rest []*block.Meta
	for _, m := range list.Metas(tenant) {
		if m.BlockID != bad.BlockID {
			rest = append(rest, m)
		}
	}
	require.Len(t, rest, 1)
	_, got := blockTraces(t, inner, rest)
	require.Equal(t, want, got)
}

func readObject(t testing.TB, bkt storage.Bucket, key string) []byte {
	t.Helper()
	rc, err := bkt.Get(context.Background(), key)
	require.NoError(t, err)
	defer rc.Close()
	b, err := io.ReadAll(rc)
	require.NoError(t, err)
	return b
}

// syncBuffer is a bytes.Buffer safe for concurrent use, for logs.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// flakyBucket fails the next failures ranged reads of a data.parquet.
type flakyBucket struct {
	storage.Bucket
	failures atomic.Int64
}

func (b *flakyBucket) GetRange(ctx context.Context, key string, off, length int64) (io.ReadCloser, error) {
	if strings.HasSuffix(key, "/"+storage.DataName) && b.failures.Add(-1) >= 0 {
		return nil, io.ErrClosedPipe
	}
	return b.Bucket.GetRange(ctx, key, off, length)
}

// panickyBucket serves ranged reads of one block's data.parquet with a
// reader that panics.
type panickyBucket struct {
	storage.Bucket
	blockID string
}

func (b *panickyBucket) GetRange(ctx context.Context, key string, off, length int64) (io.ReadCloser, error) {
	if key == storage.DataKey(tenant, b.blockID) {
		return io.NopCloser(panicReader{}), nil
	}
	return b.Bucket.GetRange(ctx, key, off, length)
}

type panicReader struct{}

func (panicReader) Read([]byte) (int, error) { panic(errors.New("a reader that panics")) }
