package block

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/vivace-dev/vivace/internal/model"
	"github.com/vivace-dev/vivace/internal/model/modeltest"
	"github.com/vivace-dev/vivace/storage"
)

var update = flag.Bool("update", false, "rewrite the frozen v1 block, its golden JSON and the fuzz seeds under testdata/")

// The frozen block of format v1, written once by this package's first format
// and read by every later build: testdata/v1/<goldenTenant>/<goldenBlockID>/
// and what it holds in testdata/v1/golden.json. Never regenerate it once it
// is committed: a reader that can no longer read it is a broken reader. A new
// format version freezes its own block beside it (testdata/v2/...).
const (
	goldenDir     = "testdata/v1"
	goldenTenant  = "tenant-golden"
	goldenBlockID = "0e5d9a2c-7f31-4b8e-9c64-2a1f3b5d7e90"
)

type goldenFile struct {
	Meta   *Meta         `json:"meta"`
	Traces []goldenTrace `json:"traces"`
}

type goldenTrace struct {
	TraceID string          `json:"traceID"`
	Trace   json.RawMessage `json:"trace"` // protojson of TracesData
}

// TestUpdateGolden writes the frozen block and golden JSON with -update.
func TestUpdateGolden(t *testing.T) {
	if !*update {
		t.Skip("run with -update to rewrite testdata/v1")
	}
	require.NoError(t, os.RemoveAll(goldenDir))
	rng := rand.New(rand.NewPCG(2026, 3))
	ids, traces := tracesWithSpans(rng, 1, 3, 7, 2, 12, 1, 4)
	bkt := newMemBucket()
	w, err := NewWriter(WriterConfig{RowGroupSpans: 10, BloomShardMaxBytes: 8}, t.TempDir(), goldenTenant, uuid.MustParse(goldenBlockID))
	require.NoError(t, err)
	for i, id := range ids {
		require.NoError(t, w.Add(id, traces[i]))
	}
	meta, err := w.Finish(context.Background(), bkt)
	require.NoError(t, err)
	bkt.writeDir(t, goldenDir)

	// The meta indented, then one trace per line.
	mb, err := json.MarshalIndent(meta, "  ", "  ")
	require.NoError(t, err)
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "{\n  \"meta\": %s,\n  \"traces\": [\n", mb)
	for i, id := range ids {
		pj, err := protojson.Marshal(traces[i])
		require.NoError(t, err)
		line, err := json.Marshal(goldenTrace{TraceID: id.String(), Trace: pj}) // compacts the protojson
		require.NoError(t, err)
		sep := ","
		if i == len(ids)-1 {
			sep = ""
		}
		fmt.Fprintf(&buf, "    %s%s\n", line, sep)
	}
	buf.WriteString("  ]\n}\n")
	require.NoError(t, os.WriteFile(filepath.Join(goldenDir, "golden.json"), buf.Bytes(), 0o644))
	writeFuzzSeeds(t, bkt, meta)
}

// TestReadFrozenV1 reads the block frozen by the first format, forever.
func TestReadFrozenV1(t *testing.T) {
	ctx := context.Background()
	b, err := os.ReadFile(filepath.Join(goldenDir, "golden.json"))
	require.NoError(t, err)
	var g goldenFile
	require.NoError(t, json.Unmarshal(b, &g))

	bkt := loadDir(t, goldenDir)
	delete(bkt.objects, "golden.json")
	meta, err := ReadMeta(ctx, bkt, goldenTenant, goldenBlockID)
	require.NoError(t, err)
	require.Equal(t, g.Meta, meta)
	require.Equal(t, int64(len(bkt.objects[storage.DataKey(goldenTenant, goldenBlockID)])), meta.Size)
	require.Greater(t, meta.RowGroups, 1)
	require.Greater(t, meta.BloomShards, 1)

	want := make([]*tracev1.TracesData, len(g.Traces))
	ids := make([]model.TraceID, len(g.Traces))
	for i, gt := range g.Traces {
		ids[i], err = model.ParseTraceID(gt.TraceID)
		require.NoError(t, err)
		want[i] = &tracev1.TracesData{}
		require.NoError(t, protojson.Unmarshal(gt.Trace, want[i]))
	}
	require.Equal(t, int64(len(ids)), meta.TotalTraces)

	r := NewReader(bkt, meta)
	for i, id := range ids {
		td, err := r.FindTraceByID(ctx, id)
		require.NoError(t, err)
		require.True(t, proto.Equal(want[i], td), "trace %s differs", id)
	}
	for _, id := range modeltest.IDs(rand.New(rand.NewPCG(1, 1)), 50) {
		td, err := r.FindTraceByID(ctx, id)
		require.NoError(t, err)
		require.Nil(t, td)
	}
	n := 0
	require.NoError(t, r.Iterate(ctx, func(id model.TraceID, td *tracev1.TracesData) error {
		require.Equal(t, ids[n], id)
		require.True(t, proto.Equal(want[n], td), "trace %s differs", id)
		n++
		return nil
	}))
	require.Equal(t, len(ids), n)
}

// writeFuzzSeeds stores seeds for the fuzz targets, from the frozen block.
func writeFuzzSeeds(t *testing.T, bkt *memBucket, meta *Meta) {
	seed := func(target, name string, args ...any) {
		dir := filepath.Join("testdata", "fuzz", target)
		require.NoError(t, os.MkdirAll(dir, 0o755))
		s := "go test fuzz v1\n"
		for _, a := range args {
			switch v := a.(type) {
			case []byte:
				s += fmt.Sprintf("[]byte(%q)\n", v)
			case int64:
				s += fmt.Sprintf("int64(%d)\n", v)
			case uint32:
				s += fmt.Sprintf("uint32(%d)\n", v)
			default:
				t.Fatalf("seed type %T", a)
			}
		}
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644))
	}
	idx := bkt.objects[storage.IndexKey(meta.TenantID, meta.BlockID)]
	seed("FuzzDecodeIndex", "frozen-v1", idx, meta.Size)
	seed("FuzzDecodeIndex", "wrong-size", idx, meta.Size-1)
	seed("FuzzDecodeIndex", "truncated", idx[:len(idx)/2], meta.Size)
	seed("FuzzDecodeBloom", "frozen-v1-shard-0", bkt.objects[storage.BloomKey(meta.TenantID, meta.BlockID, 0)])
	seed("FuzzDecodeBloom", "one-word", newBloomFilter(1, 1).marshal())
	seed("FuzzDecodeMeta", "frozen-v1", bkt.objects[storage.MetaKey(meta.TenantID, meta.BlockID)])
	seed("FuzzDecodeMeta", "future-version", []byte(`{"version":"v9"}`))
	seed("FuzzReadData", "untouched", uint32(0), []byte{})
	seed("FuzzReadData", "first-page", uint32(4), []byte{0xff, 0xff, 0xff, 0xff})
	seed("FuzzReadData", "footer", uint32(meta.Size-100), []byte("garbage"))
}
