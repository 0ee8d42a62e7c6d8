package ingester_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/grafana/dskit/services"
	"github.com/grafana/dskit/user"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/vivace-dev/vivace/ingester"
	"github.com/vivace-dev/vivace/internal/overrides"
	"github.com/vivace-dev/vivace/internal/vivacepb"
)

// syncBuffer is a log destination safe for the ingester's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// recordStarts returns where each record of a WAL segment starts (see the
// format in package wal: a 24-byte header, then length, CRC, payload).
func recordStarts(t *testing.T, b []byte) []int {
	t.Helper()
	var out []int
	for off := 24; off < len(b); {
		require.LessOrEqual(t, off+8, len(b))
		out = append(out, off)
		off += 8 + int(binary.LittleEndian.Uint32(b[off:]))
	}
	return out
}

// TestReplayDamagedRecord: a WAL record damaged in the middle of a segment
// (a flipped bit: its checksum fails) does not stop the ingester. The
// replay logs and counts it, and serves and flushes every other record.
func TestReplayDamagedRecord(t *testing.T) {
	dir := t.TempDir()
	ing1, _ := startIngester(t, testConfig(t, dir), newBucket(t))
	traces := makeTraces(t, rand.New(rand.NewPCG(11, 11)), []string{"a"}, 8, 5, 1)
	ctx := user.InjectOrgID(context.Background(), "a")
	push := func(tt *tenantTrace) {
		_, err := ing1.Push(ctx, &vivacepb.PushRequest{Ids: [][]byte{tt.id[:]}, Traces: tt.parts})
		require.NoError(t, err)
	}
	for _, tt := range traces[:6] { // one record each in segment 0
		push(tt)
	}
	require.NoError(t, ing1.Flush())
	for _, tt := range traces[6:] { // segment 1
		push(tt)
	}
	killed := copyDir(t, dir)
	stopIngester(t, ing1)

	seg0 := filepath.Join(killed, "00000000.wal")
	b, err := os.ReadFile(seg0)
	require.NoError(t, err)
	starts := recordStarts(t, b)
	require.Len(t, starts, 6)
	b[starts[3]+8+5] ^= 0x10 // in record 3's payload
	require.NoError(t, os.WriteFile(seg0, b, 0o644))

	logs := &syncBuffer{}
	reg := prometheus.NewPedanticRegistry()
	bkt := newBucket(t)
	ing2, err := ingester.New(testConfig(t, killed), bkt, overrides.NewStatic(defaultLimits()),
		slog.New(slog.NewTextHandler(logs, nil)), reg)
	require.NoError(t, err)
	require.NoError(t, services.StartAndAwaitRunning(context.Background(), ing2))
	t.Cleanup(func() { _ = services.StopAndAwaitTerminated(context.Background(), ing2) })

	kept := append(append([]*tenantTrace{}, traces[:3]...), traces[4:]...)
	requireFound(t, ing2, kept)
	require.EqualValues(t, len(kept), metricValue(t, reg, "vivace_ingester_wal_replayed_traces_total"))
	require.EqualValues(t, 1, metricValue(t, reg, "vivace_ingester_wal_damaged_records_total"))
	require.Contains(t, logs.String(), "WAL segment has damaged records")
	require.Contains(t, logs.String(), "checksum mismatch")

	// What was kept is flushed as usual: one block per segment.
	metas := waitForBlocks(t, bkt, "a", 2)
	total := int64(0)
	for _, m := range metas {
		total += int64(m.TotalTraces)
	}
	require.EqualValues(t, len(kept), total)

	require.Empty(t, find(t, ing2, "a", traces[3].id), "the damaged record's trace")
}
