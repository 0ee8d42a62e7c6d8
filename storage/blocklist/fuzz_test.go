package blocklist

import (
	"bytes"
	"compress/gzip"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vivace-dev/vivace/storage/block"
)

// FuzzDecodeIndex: any bytes either fail to decode with errCorruptIndex or
// decode to an index that re-encodes to an equal one. Run with e.g.
//
//	go test -run XXX -fuzz FuzzDecodeIndex -fuzztime 60s ./storage/blocklist/
func FuzzDecodeIndex(f *testing.F) {
	m := block.Meta{
		Version: block.VersionV1, BlockID: "0b8f5d2e-4c1a-4f5e-9d3b-2a6c7e8f9a01", TenantID: "a",
		StartTime: time.Unix(1, 0).UTC(), EndTime: time.Unix(2, 0).UTC(),
		MinID: "00000000000000000000000000000001", MaxID: "000000000000000000000000000000ff",
		TotalTraces: 2, TotalSpans: 3, Size: 100, BloomShards: 1, RowGroups: 1,
	}
	cm := block.CompactedMeta{Meta: m, CompactedTime: time.Unix(3, 0).UTC()}
	cm.BlockID = "5f0c1e2d-3b4a-4c5d-8e6f-7a8b9c0d1e2f"
	tb := tenantBlocks{
		metas:     map[string]*block.Meta{m.BlockID: &m},
		compacted: map[string]*block.CompactedMeta{cm.BlockID: &cm},
	}
	valid, err := newIndex(time.Unix(4, 0), tb).marshal()
	require.NoError(f, err)
	f.Add(valid)
	f.Add(gzipBytes(f, `{"version":1,"created_at":"2026-03-14T16:00:00Z","meta":[null],"compacted":[]}`))
	f.Add(gzipBytes(f, `{}`))
	f.Add([]byte(`{"version":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		idx, err := decodeIndex(b, "a")
		if err != nil {
			require.ErrorIs(t, err, errCorruptIndex)
			return
		}
		again, err := newIndex(idx.CreatedAt, idx.blocks()).marshal()
		require.NoError(t, err)
		idx2, err := decodeIndex(again, "a")
		require.NoError(t, err)
		require.Equal(t, idx.blocks(), idx2.blocks())
		require.True(t, idx.CreatedAt.Equal(idx2.CreatedAt))
	})
}

func gzipBytes(t testing.TB, s string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, err := zw.Write([]byte(s))
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	return buf.Bytes()
}
