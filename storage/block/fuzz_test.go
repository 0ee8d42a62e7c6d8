package block

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/vivace-dev/vivace/internal/model"
	"github.com/vivace-dev/vivace/storage"
)

// Fuzz targets for every decoder of the format; their seeds live in
// testdata/fuzz/<target>/ (written by TestUpdateGolden -update), so plain
// `go test` replays them. Run one with e.g.
//
//	go test -run XXX -fuzz FuzzReadData -fuzztime 60s ./storage/block/

func FuzzDecodeIndex(f *testing.F) {
	f.Add([]byte(indexMagic), int64(100))
	f.Fuzz(func(t *testing.T, b []byte, size int64) {
		x, err := decodeIndex(b, size)
		if err != nil {
			require.ErrorIs(t, err, ErrCorrupt)
			return
		}
		require.Equal(t, b, x.marshal(), "a decodable index re-encodes to itself")
		for _, e := range x.RowGroups {
			require.Equal(t, x.find(e.MinID), x.find(e.MaxID))
		}
	})
}

func FuzzDecodeBloom(f *testing.F) {
	f.Add(newBloomFilter(2, 7).marshal())
	f.Fuzz(func(t *testing.T, b []byte) {
		bf, err := decodeBloom(b)
		if err != nil {
			require.ErrorIs(t, err, ErrCorrupt)
			return
		}
		require.Equal(t, b, bf.marshal(), "a decodable shard re-encodes to itself")
		bf.mayContain(bloomHash(model.TraceID{1}))
	})
}

func FuzzDecodeMeta(f *testing.F) {
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeMeta(b)
		if err != nil {
			return
		}
		// A meta that decodes is usable by a reader.
		_, _, err = m.idRange()
		require.NoError(t, err)
		out, err := json.Marshal(m)
		require.NoError(t, err)
		_, err = decodeMeta(out)
		require.NoError(t, err)
	})
}

// FuzzReadData overwrites bytes of the frozen block's data.parquet at off
// with patch and reads every trace: errors are fine, panics and hangs are not.
func FuzzReadData(f *testing.F) {
	clean := loadDir(f, goldenDir)
	delete(clean.objects, "golden.json")
	b, err := os.ReadFile(filepath.Join(goldenDir, "golden.json"))
	require.NoError(f, err)
	var g goldenFile
	require.NoError(f, json.Unmarshal(b, &g))
	dataKey := storage.DataKey(goldenTenant, goldenBlockID)
	data := clean.objects[dataKey]
	var ids []model.TraceID
	for _, gt := range g.Traces {
		id, err := model.ParseTraceID(gt.TraceID)
		require.NoError(f, err)
		ids = append(ids, id)
	}
	f.Add(uint32(0), []byte{})
	f.Fuzz(func(t *testing.T, off uint32, patch []byte) {
		bkt := newMemBucket()
		for k, v := range clean.objects {
			bkt.objects[k] = v
		}
		d := bytes.Clone(data)
		if len(d) > 0 {
			copy(d[int(off)%len(d):], patch)
		}
		bkt.objects[dataKey] = d
		ctx := context.Background()
		r := NewReader(bkt, g.Meta)
		for _, id := range ids {
			_, _ = r.FindTraceByID(ctx, id)
		}
		_ = r.Iterate(ctx, func(model.TraceID, *tracev1.TracesData) error { return nil })
	})
}

// FuzzAddEncoded: AddEncoded does not panic, fails only with ErrInvalidTrace,
// fails exactly when proto.Unmarshal or Add of the decoded trace fails, and
// otherwise stores the rows Add stores, which rebuild into equal traces;
// AddChecked does the same with what proto.Unmarshal accepts.
// It stays in memory to run fast (TestAddEncodedMatchesAdd reads blocks
// back); its generated seeds are written by TestUpdateAddEncodedSeeds.
func FuzzAddEncoded(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		enc := memWriter()
		encErr := enc.AddEncoded(fuzzTraceID, b)
		if encErr != nil {
			require.ErrorIs(t, encErr, ErrInvalidTrace)
			require.Zero(t, enc.rows.len())
		}
		td := &tracev1.TracesData{}
		if err := proto.Unmarshal(b, td); err != nil {
			require.Error(t, encErr, "AddEncoded takes what proto.Unmarshal rejects: %v", err)
			return
		}
		// What the check accepts, AddChecked stores as AddEncoded does.
		chk := memWriter()
		if err := chk.AddChecked(fuzzTraceID, b); err != nil || encErr != nil {
			require.Equal(t, encErr != nil, err != nil, "AddEncoded: %v, AddChecked: %v", encErr, err)
		} else {
			requireSameRows(t, &enc.rows, &chk.rows, enc.rows.len())
		}
		add := memWriter()
		if err := add.Add(fuzzTraceID, td); err != nil {
			require.Error(t, encErr, "AddEncoded takes what Add rejects: %v", err)
			return
		}
		require.NoError(t, encErr)
		requireSameRows(t, &add.rows, &enc.rows, add.rows.len())
		want, err := add.rows.rebuild(fuzzTraceID)
		require.NoError(t, err)
		got, err := enc.rows.rebuild(fuzzTraceID)
		require.NoError(t, err)
		require.True(t, proto.Equal(want, got), "Add        %v\nAddEncoded %v", want, got)
	})
}

// memWriter is a Writer without a data file, for one trace: Add and
// AddEncoded fill its rows; it cannot cut a row group or Finish.
func memWriter() *Writer {
	return &Writer{cfg: DefaultWriterConfig(), tenant: testTenant}
}
