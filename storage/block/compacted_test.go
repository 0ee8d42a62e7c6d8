package block

import (
	"bytes"
	"context"
	"encoding/json"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vivace-dev/vivace/storage"
)

func TestCompactedMeta(t *testing.T) {
	ctx := context.Background()
	bkt := newMemBucket()
	ids, traces := tracesWithSpans(rand.New(rand.NewPCG(3, 3)), 2, 3)
	meta := writeBlock(t, bkt, WriterConfig{}, ids, traces)

	_, err := ReadCompacted(ctx, bkt, testTenant, meta.BlockID)
	require.ErrorIs(t, err, storage.ErrNotFound, "not marked yet")

	at := time.Date(2026, 3, 14, 16, 0, 0, 123, time.FixedZone("x", 3600))
	require.NoError(t, WriteCompacted(ctx, bkt, meta, at))
	cm, err := ReadCompacted(ctx, bkt, testTenant, meta.BlockID)
	require.NoError(t, err)
	require.Equal(t, *meta, cm.Meta)
	require.True(t, cm.CompactedTime.Equal(at))
	require.Equal(t, time.UTC, cm.CompactedTime.Location())

	// Tempo's shape: the meta.json fields and compactedTime, side by side.
	var fields map[string]any
	b, err := bkt.get(storage.CompactedMetaKey(testTenant, meta.BlockID))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &fields))
	require.Contains(t, fields, "compactedTime")
	require.Equal(t, meta.BlockID, fields["blockID"])

	// The marker leaves the block readable.
	got, err := NewReader(bkt, meta).FindTraceByID(ctx, ids[1])
	require.NoError(t, err)
	require.Equal(t, 3, countSpans(got))

	put := func(id, s string) {
		require.NoError(t, bkt.Put(ctx, storage.CompactedMetaKey(testTenant, id), bytes.NewReader([]byte(s)), int64(len(s))))
	}
	for name, tc := range map[string]struct{ id, body string }{
		"not json":        {"b0d0c0a0-0000-4000-8000-000000000001", "{"},
		"no time":         {meta.BlockID, string(mustJSON(t, meta))},
		"other block":     {"b0d0c0a0-0000-4000-8000-000000000002", string(b)},
		"bad meta fields": {meta.BlockID, `{"version":"v1","compactedTime":"2026-03-14T16:00:00Z"}`},
	} {
		t.Run(name, func(t *testing.T) {
			put(tc.id, tc.body)
			_, err := ReadCompacted(ctx, bkt, testTenant, tc.id)
			require.ErrorIs(t, err, ErrCorrupt)
		})
	}
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}
