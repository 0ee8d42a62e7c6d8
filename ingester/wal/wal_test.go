package wal_test

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/vivace-dev/vivace/ingester/wal"
	"github.com/vivace-dev/vivace/internal/model"
	"github.com/vivace-dev/vivace/internal/model/modeltest"
)

// headerSize is the segment header: 8 bytes of magic and a 16-byte segment ID.
const headerSize = 24

// record is what one Append wrote and where.
type record struct {
	tenant string
	ids    []model.TraceID
	traces [][]byte
	refs   []wal.Ref
	end    int64 // segment size after the record
}

// entry is one call of Replay's callback.
type entry struct {
	tenant string
	id     model.TraceID
	ref    wal.Ref
}

var tenants = []string{"tenant-a", "b", "", strings.Repeat("t", 300)}

// randomPush makes the traces of one push: arbitrary bytes, since the WAL
// does not look inside them; some pushes are empty and some traces are too.
func randomPush(rng *rand.Rand) ([]model.TraceID, [][]byte) {
	n := rng.IntN(6)
	ids := make([]model.TraceID, n)
	traces := make([][]byte, n)
	for i := range n {
		for j := range ids[i] {
			ids[i][j] = byte(rng.UintN(256))
		}
		traces[i] = make([]byte, rng.IntN(3)*rng.IntN(1500))
		for j := range traces[i] {
			traces[i][j] = byte(rng.UintN(256))
		}
	}
	return ids, traces
}

// writeSegment creates segment seq in dir and appends n random pushes to it.
func writeSegment(t testing.TB, dir string, seq, n int, rng *rand.Rand) (*wal.Segment, []record) {
	t.Helper()
	seg, err := wal.Create(dir, seq)
	require.NoError(t, err)
	require.EqualValues(t, headerSize, seg.Size())
	records := make([]record, n)
	for i := range records {
		tenant := tenants[rng.IntN(len(tenants))]
		ids, traces := randomPush(rng)
		refs, err := seg.Append(tenant, ids, traces)
		require.NoError(t, err)
		require.Len(t, refs, len(ids))
		records[i] = record{tenant: tenant, ids: ids, traces: traces, refs: refs, end: seg.Size()}
	}
	return seg, records
}

// entries is what Replay must report for records.
func entries(records []record) []entry {
	var out []entry
	for _, r := range records {
		for i, id := range r.ids {
			out = append(out, entry{r.tenant, id, r.refs[i]})
		}
	}
	return out
}

func replay(t testing.TB, dir string, seq int) (*wal.Segment, []entry, error) {
	t.Helper()
	var got []entry
	seg, err := wal.Replay(dir, seq, func(tenant string, id model.TraceID, ref wal.Ref) {
		got = append(got, entry{tenant, id, ref})
	})
	if seg != nil {
		t.Cleanup(func() { seg.Close() })
	}
	return seg, got, err
}

// requireReadBack checks that every trace of records reads back exactly from seg.
func requireReadBack(t testing.TB, seg *wal.Segment, records []record) {
	t.Helper()
	for _, r := range records {
		for i, ref := range r.refs {
			got, err := seg.ReadAt(ref)
			require.NoError(t, err)
			require.Equal(t, r.traces[i], nonNil(got))
		}
	}
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

func segmentFile(dir string, seq int) string {
	return filepath.Join(dir, fmt.Sprintf("%08d.wal", seq))
}

func TestAppendReplay(t *testing.T) {
	tests := []struct {
		name    string
		records int
	}{
		{"empty segment", 0},
		{"one record", 1},
		{"many records", 500},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			rng := rand.New(rand.NewPCG(uint64(i), 7))
			seg, records := writeSegment(t, dir, 3, tt.records, rng)
			requireReadBack(t, seg, records)
			id, size := seg.ID, seg.Size()
			require.NotEqual(t, [16]byte{}, id)
			require.NoError(t, seg.Close())

			st, err := os.Stat(segmentFile(dir, 3))
			require.NoError(t, err)
			require.Equal(t, size, st.Size())

			got, gotEntries, err := replay(t, dir, 3)
			require.NoError(t, err)
			require.Equal(t, entries(records), gotEntries)
			require.Equal(t, 3, got.Seq)
			require.Equal(t, id, got.ID)
			require.Equal(t, size, got.Size())
			requireReadBack(t, got, records)
		})
	}
}

// TestAppendReplayOTLP round-trips real encoded traces, the WAL's actual content.
func TestAppendReplayOTLP(t *testing.T) {
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(1, 2))
	ids, traces := modeltest.Traces(rng, 50, 20)
	seg, err := wal.Create(dir, 0)
	require.NoError(t, err)
	want := map[model.TraceID][]byte{}
	for k := 0; k < len(ids); k += 5 {
		var encoded [][]byte
		for _, td := range traces[k : k+5] {
			b, err := proto.Marshal(td)
			require.NoError(t, err)
			encoded = append(encoded, b)
		}
		for j, id := range ids[k : k+5] {
			want[id] = encoded[j]
		}
		_, err := seg.Append(tenants[k%2], ids[k:k+5], encoded)
		require.NoError(t, err)
	}
	require.NoError(t, seg.Close())

	got, gotEntries, err := replay(t, dir, 0)
	require.NoError(t, err)
	require.Len(t, gotEntries, len(ids))
	for i, e := range gotEntries {
		require.Equal(t, ids[i], e.id)
		b, err := got.ReadAt(e.ref)
		require.NoError(t, err)
		require.Equal(t, want[e.id], b)
		td := &tracev1.TracesData{}
		require.NoError(t, proto.Unmarshal(b, td))
		require.True(t, proto.Equal(traces[i], td))
	}
}

func TestAppendErrors(t *testing.T) {
	dir := t.TempDir()
	seg, err := wal.Create(dir, 0)
	require.NoError(t, err)
	defer seg.Close()
	id := model.TraceID{15: 1}

	_, err = seg.Append(strings.Repeat("x", 1<<16), []model.TraceID{id}, [][]byte{{1}})
	require.ErrorContains(t, err, "too long")
	require.EqualValues(t, headerSize, seg.Size(), "a rejected append writes nothing")

	_, err = seg.Append("t", []model.TraceID{id}, nil)
	require.Error(t, err, "an ID without its trace")
	_, err = seg.Append("t", nil, [][]byte{{1}})
	require.Error(t, err, "a trace without its ID")
	require.EqualValues(t, headerSize, seg.Size(), "a rejected append writes nothing")

	// The longest tenant is fine.
	_, err = seg.Append(strings.Repeat("x", 1<<16-1), []model.TraceID{id}, [][]byte{{1}})
	require.NoError(t, err)
	require.NoError(t, seg.Close())
	_, got, err := replay(t, dir, 0)
	require.NoError(t, err)
	require.Len(t, got, 1)
	require.Len(t, got[0].tenant, 1<<16-1)
}

func TestCreateExisting(t *testing.T) {
	dir := t.TempDir()
	seg, err := wal.Create(dir, 1)
	require.NoError(t, err)
	defer seg.Close()
	_, err = wal.Create(dir, 1)
	require.Error(t, err, "a segment is never overwritten")
}

func TestClosedSegment(t *testing.T) {
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(3, 3))
	seg, records := writeSegment(t, dir, 0, 5, rng)
	ref := records[0].refs
	require.NoError(t, seg.Close())
	require.NoError(t, seg.Close(), "closing twice is fine")
	_, err := seg.Append("t", nil, nil)
	require.ErrorIs(t, err, wal.ErrClosed)
	if len(ref) > 0 {
		_, err = seg.ReadAt(ref[0])
		require.ErrorIs(t, err, wal.ErrClosed)
	}
	require.NoError(t, seg.Sync(), "syncing a closed segment is a no-op")
	require.FileExists(t, segmentFile(dir, 0), "Close keeps the file")

	require.NoError(t, seg.Remove())
	require.NoFileExists(t, segmentFile(dir, 0))
	require.NoError(t, seg.Remove(), "removing twice is fine")
}

func TestRemoveOpenSegment(t *testing.T) {
	dir := t.TempDir()
	seg, err := wal.Create(dir, 0)
	require.NoError(t, err)
	refs, err := seg.Append("t", []model.TraceID{{15: 1}}, [][]byte{{1, 2, 3}})
	require.NoError(t, err)
	require.NoError(t, seg.Sync())
	require.NoError(t, seg.Remove())
	require.NoFileExists(t, segmentFile(dir, 0))
	_, err = seg.ReadAt(refs[0])
	require.ErrorIs(t, err, wal.ErrClosed)
}

// TestReadRacingRemove: a read that races the segment's removal gets the
// bytes or ErrClosed, never another error (the ingester serves ErrClosed
// from the blocks and anything else as an internal error).
func TestReadRacingRemove(t *testing.T) {
	for round := range 50 {
		dir := t.TempDir()
		seg, err := wal.Create(dir, round)
		require.NoError(t, err)
		payload := make([]byte, 64<<10)
		refs, err := seg.Append("t", []model.TraceID{{15: 1}}, [][]byte{payload})
		require.NoError(t, err)
		var wg sync.WaitGroup
		errs := make(chan error, 8*200)
		for range 8 {
			wg.Go(func() {
				for range 200 {
					b, err := seg.ReadAt(refs[0])
					if err != nil {
						errs <- err
						return
					}
					if len(b) != len(payload) {
						errs <- fmt.Errorf("read %d bytes, want %d", len(b), len(payload))
						return
					}
				}
			})
		}
		require.NoError(t, seg.Remove())
		wg.Wait()
		close(errs)
		for err := range errs {
			require.ErrorIs(t, err, wal.ErrClosed)
		}
	}
}

func TestReplayTornTail(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 5))
	srcDir := t.TempDir()
	// Records of at least a few hundred bytes so every cut lands where meant.
	var records []record
	seg, err := wal.Create(srcDir, 0)
	require.NoError(t, err)
	for i := range 10 {
		ids := []model.TraceID{{0: byte(i), 15: 1}, {0: byte(i), 15: 2}}
		traces := [][]byte{make([]byte, 200+i), make([]byte, 300)}
		for _, tr := range traces {
			for j := range tr {
				tr[j] = byte(rng.UintN(256))
			}
		}
		refs, err := seg.Append(tenants[i%len(tenants)], ids, traces)
		require.NoError(t, err)
		records = append(records, record{tenant: tenants[i%len(tenants)], ids: ids, traces: traces, refs: refs, end: seg.Size()})
	}
	require.NoError(t, seg.Close())
	full, err := os.ReadFile(segmentFile(srcDir, 0))
	require.NoError(t, err)
	start := func(k int) int64 { // where record k begins
		if k == 0 {
			return headerSize
		}
		return records[k-1].end
	}

	tests := []struct {
		name    string
		size    int64
		intact  int // records kept
		corrupt bool
	}{
		{"header only", headerSize, 0, false},
		{"whole file", records[9].end, 10, false},
		{"at a record boundary", records[4].end, 5, false},
		{"one byte of the last record", start(9) + 1, 9, true},
		{"half a record header", start(9) + 4, 9, true},
		{"record header without payload", start(9) + 8, 9, true},
		{"one payload byte", start(9) + 9, 9, true},
		{"half the last record", (start(9) + records[9].end) / 2, 9, true},
		{"last byte missing", records[9].end - 1, 9, true},
		{"torn in the middle", (start(3) + records[3].end) / 2, 3, true},
		{"torn in the first record", start(0) + 20, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			require.NoError(t, os.WriteFile(segmentFile(dir, 0), full[:tt.size], 0o644))
			seg, got, err := replay(t, dir, 0)
			require.NotNil(t, seg, "a segment with a valid header is returned")
			if tt.corrupt {
				require.ErrorIs(t, err, wal.ErrCorrupt)
				require.ErrorContains(t, err, "torn")
			} else {
				require.NoError(t, err)
			}
			require.Equal(t, entries(records[:tt.intact]), got)
			require.Equal(t, start(tt.intact), seg.Size(), "the size covers the intact records only")
			requireReadBack(t, seg, records[:tt.intact])
		})
	}
}

// rawRecord frames payload as a WAL record: length, CRC-32C, payload.
func rawRecord(payload []byte) []byte {
	b := binary.LittleEndian.AppendUint32(nil, uint32(len(payload)))
	b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(payload, crc32.MakeTable(crc32.Castagnoli)))
	return append(b, payload...)
}

// rawPayload encodes a record's payload: tenant, trace count, traces.
func rawPayload(tenant string, count uint32, traces ...[]byte) []byte {
	b := binary.LittleEndian.AppendUint16(nil, uint16(len(tenant)))
	b = append(b, tenant...)
	b = binary.LittleEndian.AppendUint32(b, count)
	for i, tr := range traces {
		b = append(b, model.TraceID{15: byte(i + 1)}.String()[:16]...)
		b = binary.LittleEndian.AppendUint32(b, uint32(len(tr)))
		b = append(b, tr...)
	}
	return b
}

// TestReplayCorruption: a damaged record is skipped, and replay resumes at
// the next intact one.
func TestReplayCorruption(t *testing.T) {
	rng := rand.New(rand.NewPCG(6, 6))
	srcDir := t.TempDir()
	seg, records := writeSegment(t, srcDir, 0, 8, rng)
	require.NoError(t, seg.Close())
	full, err := os.ReadFile(segmentFile(srcDir, 0))
	require.NoError(t, err)
	const k = 5 // the damaged record
	recStart := records[k-1].end

	tests := []struct {
		name   string
		damage func(b []byte) []byte
		kept   []record // what replays: all but the damaged record
		msg    string
	}{
		{
			name:   "flipped payload byte",
			damage: func(b []byte) []byte { b[recStart+8+2] ^= 0x40; return b },
			kept:   without(records, k), msg: "checksum mismatch",
		},
		{
			name:   "flipped last byte of the record",
			damage: func(b []byte) []byte { b[records[k].end-1] ^= 0x01; return b },
			kept:   without(records, k), msg: "checksum mismatch",
		},
		{
			name:   "flipped checksum byte",
			damage: func(b []byte) []byte { b[recStart+5] ^= 0x01; return b },
			kept:   without(records, k), msg: "checksum mismatch",
		},
		{
			name:   "shorter length",
			damage: func(b []byte) []byte { b[recStart]--; return b },
			kept:   without(records, k), msg: "checksum mismatch",
		},
		{
			name: "length past the end of the file",
			damage: func(b []byte) []byte {
				binary.LittleEndian.PutUint32(b[recStart:], uint32(len(b)))
				return b
			},
			kept: without(records, k), msg: "torn record",
		},
		{
			name: "length over the record limit",
			damage: func(b []byte) []byte {
				binary.LittleEndian.PutUint32(b[recStart:], 0xffffffff)
				return b
			},
			kept: without(records, k), msg: "length",
		},
		{
			name:   "zero-filled tail",
			damage: func(b []byte) []byte { return append(b[:records[len(records)-1].end], make([]byte, 4096)...) },
			kept:   records, msg: "short payload",
		},
		{
			name:   "valid checksum, trailing bytes in the payload",
			damage: func(b []byte) []byte { return append(b, rawRecord(append(rawPayload("t", 1, []byte("abc")), 0))...) },
			kept:   records, msg: "trailing bytes",
		},
		{
			name:   "valid checksum, more traces than the payload holds",
			damage: func(b []byte) []byte { return append(b, rawRecord(rawPayload("t", 2, []byte("abc")))...) },
			kept:   records, msg: "short trace header",
		},
		{
			name: "valid checksum, trace longer than the payload",
			damage: func(b []byte) []byte {
				p := rawPayload("t", 1, []byte("abc"))
				binary.LittleEndian.PutUint32(p[len(p)-7:], 4)
				return append(b, rawRecord(p)...)
			},
			kept: records, msg: "short trace",
		},
		{
			name:   "valid checksum, tenant longer than the payload",
			damage: func(b []byte) []byte { return append(b, rawRecord([]byte{0xff, 0x00, 'a'})...) },
			kept:   records, msg: "short tenant",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			b := tt.damage(append([]byte(nil), full...))
			require.NoError(t, os.WriteFile(segmentFile(dir, 0), b, 0o644))
			seg, got, err := replay(t, dir, 0)
			require.NotNil(t, seg)
			require.ErrorIs(t, err, wal.ErrCorrupt)
			require.ErrorContains(t, err, tt.msg)
			require.Equal(t, entries(tt.kept), got, "records before and after the damage are kept")
			requireReadBack(t, seg, tt.kept)
		})
	}
}

// without is records but the k-th.
func without(records []record, k int) []record {
	return append(records[:k:k], records[k+1:]...)
}

// TestReplayValidRawRecord pins the documented record format: a record built
// by hand from the package comment's description replays.
func TestReplayValidRawRecord(t *testing.T) {
	dir := t.TempDir()
	seg, err := wal.Create(dir, 0)
	require.NoError(t, err)
	require.NoError(t, seg.Close())
	f, err := os.OpenFile(segmentFile(dir, 0), os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.Write(rawRecord(rawPayload("tenant", 2, []byte("hello"), []byte{})))
	require.NoError(t, err)
	require.NoError(t, f.Close())

	got, gotEntries, err := replay(t, dir, 0)
	require.NoError(t, err)
	require.Len(t, gotEntries, 2)
	require.Equal(t, "tenant", gotEntries[0].tenant)
	b, err := got.ReadAt(gotEntries[0].ref)
	require.NoError(t, err)
	require.Equal(t, "hello", string(b))
	require.Zero(t, gotEntries[1].ref.Len)
}

func TestReplayBadHeader(t *testing.T) {
	dir := t.TempDir()
	seg, err := wal.Create(dir, 0)
	require.NoError(t, err)
	_, err = seg.Append("t", []model.TraceID{{15: 1}}, [][]byte{{1}})
	require.NoError(t, err)
	require.NoError(t, seg.Close())
	good, err := os.ReadFile(segmentFile(dir, 0))
	require.NoError(t, err)

	tests := []struct {
		name string
		file []byte
	}{
		{"empty file", nil},
		{"short magic", good[:5]},
		{"short segment ID", good[:headerSize-1]},
		{"wrong magic", append([]byte("VVWAL\x00\x00\x02"), good[8:]...)},
		{"not a WAL", []byte(strings.Repeat("hello world ", 10))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			require.NoError(t, os.WriteFile(segmentFile(dir, 7), tt.file, 0o644))
			called := false
			seg, err := wal.Replay(dir, 7, func(string, model.TraceID, wal.Ref) { called = true })
			require.Nil(t, seg)
			require.ErrorIs(t, err, wal.ErrCorrupt)
			require.ErrorContains(t, err, "no valid header")
			require.False(t, called)
		})
	}

	t.Run("missing file", func(t *testing.T) {
		seg, err := wal.Replay(t.TempDir(), 7, func(string, model.TraceID, wal.Ref) {})
		require.Nil(t, seg)
		require.ErrorIs(t, err, os.ErrNotExist)
		require.NotErrorIs(t, err, wal.ErrCorrupt)
	})
}

func TestSegments(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string)
		want  []int
	}{
		{"empty dir", func(*testing.T, string) {}, nil},
		{
			name: "numeric order, not name order",
			setup: func(t *testing.T, dir string) {
				for _, seq := range []int{10, 2, 100000000, 1, 0} {
					seg, err := wal.Create(dir, seq)
					require.NoError(t, err)
					require.NoError(t, seg.Close())
				}
			},
			want: []int{0, 1, 2, 10, 100000000},
		},
		{
			name: "other files and folders are ignored",
			setup: func(t *testing.T, dir string) {
				for _, seq := range []int{4, 3} {
					seg, err := wal.Create(dir, seq)
					require.NoError(t, err)
					require.NoError(t, seg.Close())
				}
				for _, name := range []string{"foo.wal", "00000005.wal.tmp", "00000006", "README"} {
					require.NoError(t, os.WriteFile(filepath.Join(dir, name), nil, 0o644))
				}
				require.NoError(t, os.Mkdir(filepath.Join(dir, "00000007.wal"), 0o755))
				require.NoError(t, os.Mkdir(filepath.Join(dir, "tmp"), 0o755))
			},
			want: []int{3, 4},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			tt.setup(t, dir)
			got, err := wal.Segments(dir)
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}

	t.Run("missing dir", func(t *testing.T) {
		_, err := wal.Segments(filepath.Join(t.TempDir(), "nope"))
		require.Error(t, err)
	})
}

// TestReplayCorruptLengthAllocation: a corrupt length under the record limit
// must not make replay allocate it when the file cannot hold that much.
func TestReplayCorruptLengthAllocation(t *testing.T) {
	dir := t.TempDir()
	seg, err := wal.Create(dir, 0)
	require.NoError(t, err)
	require.NoError(t, seg.Close())
	f, err := os.OpenFile(segmentFile(dir, 0), os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = f.Write(binary.LittleEndian.AppendUint32(binary.LittleEndian.AppendUint32(nil, 1<<30-1), 0))
	require.NoError(t, err)
	require.NoError(t, f.Close())

	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	got, _, err := replay(t, dir, 0)
	runtime.ReadMemStats(&after)
	require.NotNil(t, got)
	require.ErrorIs(t, err, wal.ErrCorrupt)
	require.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(64<<20), "bytes allocated by the replay")
}
