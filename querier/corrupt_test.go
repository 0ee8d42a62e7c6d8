package querier_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
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
	"github.com/vivace-dev/vivace/storage/block"
	"github.com/vivace-dev/vivace/storage/fs"
)

// corruptFixture: three blocks in a real local bucket, each with traces of
// its own: low holds traces 1-4, mid 11-14, high 21-24. The ingesters hold
// nothing.
type corruptFixture struct {
	dir   string
	bkt   *fs.Bucket
	metas map[string]*block.Meta
	in    map[string][]model.TraceID // block ID → its traces
	whole map[model.TraceID]*tracev1.TracesData
}

func newCorruptFixture(t *testing.T) *corruptFixture {
	t.Helper()
	dir := t.TempDir()
	bkt, err := fs.New(dir)
	require.NoError(t, err)
	f := &corruptFixture{dir: dir, bkt: bkt, metas: map[string]*block.Meta{}, in: map[string][]model.TraceID{}, whole: map[model.TraceID]*tracev1.TracesData{}}
	for b, blockID := range []string{blockLow, blockMid, blockHigh} {
		traces := map[model.TraceID]*tracev1.TracesData{}
		for k := range 4 {
			id := traceID(byte(10*b + k + 1))
			traces[id] = oneSpanTrace(id, "svc", fmt.Sprintf("op-%d", k), time.Duration(b)*time.Minute, nil)
			f.whole[id] = traces[id]
			f.in[blockID] = append(f.in[blockID], id)
		}
		f.metas[blockID] = writeBlock(t, bkt, tenant, blockID, traces)
	}
	return f
}

// damage rewrites one object of a block on disk.
func (f *corruptFixture) damage(t *testing.T, blockID, name string, fn func(b []byte, meta *block.Meta) []byte) {
	t.Helper()
	path := filepath.Join(f.dir, storage.BlockDir(tenant, blockID), name)
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, fn(b, f.metas[blockID]), 0o644))
}

// TestCorruptBlockSkipped: a block whose objects are damaged is skipped by
// trace lookups (answered PARTIAL, naming it), by low-half lookups, by
// search and by tag listings; the other blocks answer, the skip is counted
// per tenant, and nothing panics.
func TestCorruptBlockSkipped(t *testing.T) {
	flip := func(at func(b []byte, m *block.Meta) int) func(b []byte, m *block.Meta) []byte {
		return func(b []byte, m *block.Meta) []byte {
			i := at(b, m)
			for k := i; k < i+16 && k < len(b); k++ {
				b[k] ^= 0xa5
			}
			return b
		}
	}
	for _, tc := range []struct {
		name   string
		object string
		fn     func(b []byte, m *block.Meta) []byte
		spared bool // the damage may hit only what no read here decodes
	}{
		{name: "data.parquet: flipped bytes in the footer", object: "data.parquet", fn: flip(func(b []byte, _ *block.Meta) int { return len(b) - 40 })},
		{name: "data.parquet: flipped bytes at the first page", object: "data.parquet", fn: flip(func([]byte, *block.Meta) int { return 4 })},
		{name: "data.parquet: zeroed", object: "data.parquet", fn: func(b []byte, _ *block.Meta) []byte { return make([]byte, len(b)) }},
		{name: "data.parquet: flipped bytes in the middle", object: "data.parquet", fn: flip(func(b []byte, _ *block.Meta) int { return len(b) / 3 }), spared: true},
		{name: "data.parquet: truncated", object: "data.parquet", fn: func(b []byte, _ *block.Meta) []byte { return b[:len(b)/2] }},
		{name: "data.parquet: empty", object: "data.parquet", fn: func([]byte, *block.Meta) []byte { return nil }},
		{name: "index: truncated", object: "index", fn: func(b []byte, _ *block.Meta) []byte { return b[:len(b)/2] }},
		{name: "index: flipped byte", object: "index", fn: flip(func(b []byte, _ *block.Meta) int { return len(b) / 2 })},
		{name: "bloom: junk", object: "bloom-0", fn: func([]byte, *block.Meta) []byte { return []byte("junk") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newCorruptFixture(t)
			f.damage(t, blockMid, tc.object, tc.fn)
			q, reg := newQuerier(t, newFakeIngesters(), f.bkt)
			ctx := user.InjectOrgID(context.Background(), tenant)

			for _, blockID := range []string{blockLow, blockHigh} {
				for _, id := range f.in[blockID] {
					got, _ := findTrace(t, q, &vivacepb.TraceByIDRequest{TraceId: id[:]})
					requireSpans(t, f.whole[id], got)
				}
			}
			// A trace of the damaged block is not found, and the answer
			// says why it may be missing.
			got, resp := findTrace(t, q, &vivacepb.TraceByIDRequest{TraceId: f.in[blockMid][0][:]})
			if got == nil {
				require.Equal(t, vivacepb.PartialStatus_PARTIAL, resp.Status)
				require.Contains(t, resp.Message, blockMid)
				require.Contains(t, resp.Message, "corrupt")
			} else {
				require.True(t, tc.spared, "the damage went unnoticed")
				requireSpans(t, f.whole[f.in[blockMid][0]], got)
			}

			// Low-half lookups scan every block.
			low := model.TraceID{15: f.in[blockHigh][0][15]}
			got, _ = findTrace(t, q, &vivacepb.TraceByIDRequest{TraceId: low[:], LowHalf: true})
			requireSpans(t, f.whole[f.in[blockHigh][0]], got)

			res, err := q.Search(ctx, &vivacepb.SearchJob{Query: "{}"})
			require.NoError(t, err)
			found := ids(res)
			for _, blockID := range []string{blockLow, blockHigh} {
				for _, id := range f.in[blockID] {
					require.Contains(t, found, id.String())
				}
			}
			_, err = q.SearchTags(ctx, &vivacepb.TagsJob{})
			require.NoError(t, err)

			if !tc.spared {
				require.Positive(t, counterVec(t, reg, "vivace_querier_corrupt_blocks_total", tenant))
			}
			require.Zero(t, counterVec(t, reg, "vivace_querier_corrupt_blocks_total", "tenant-b"))
		})
	}
}

// flakyBucket fails every read of one block's data with a transient error.
type flakyBucket struct {
	storage.Bucket
	blockID string
}

var errFlaky = errors.New("connection reset by peer")

func (b flakyBucket) GetRange(ctx context.Context, key string, off, length int64) (io.ReadCloser, error) {
	if strings.Contains(key, b.blockID) {
		return nil, errFlaky
	}
	return b.Bucket.GetRange(ctx, key, off, length)
}

// TestTransientBlockErrorFails: an error that is not corruption fails the
// lookup and the search, so that nothing is silently missing from an answer
// because of a network blip; nothing is counted as corrupt.
func TestTransientBlockErrorFails(t *testing.T) {
	f := newCorruptFixture(t)
	q, reg := newQuerier(t, newFakeIngesters(), flakyBucket{f.bkt, blockMid})
	ctx := user.InjectOrgID(context.Background(), tenant)

	_, err := q.FindTraceByID(ctx, &vivacepb.TraceByIDRequest{TraceId: f.in[blockMid][0][:]})
	require.ErrorIs(t, err, errFlaky)
	require.ErrorContains(t, err, blockMid)
	_, err = q.FindTraceByID(ctx, &vivacepb.TraceByIDRequest{TraceId: []byte{0x77}, LowHalf: true, QueryMode: querier.ModeBlocks})
	require.ErrorIs(t, err, errFlaky)
	_, err = q.Search(ctx, &vivacepb.SearchJob{Query: "{}"})
	require.ErrorIs(t, err, errFlaky)
	require.Zero(t, counterVec(t, reg, "vivace_querier_corrupt_blocks_total", tenant))

	// The other blocks are not affected.
	got, resp := findTrace(t, q, &vivacepb.TraceByIDRequest{TraceId: f.in[blockLow][0][:], QueryMode: querier.ModeBlocks, BlockEnd: blockLow})
	requireSpans(t, f.whole[f.in[blockLow][0]], got)
	require.Equal(t, vivacepb.PartialStatus_COMPLETE, resp.Status)
}
