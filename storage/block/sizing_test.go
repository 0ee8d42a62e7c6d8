package block

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestSizing measures bytes/span, footer and page-index size, and the CPU
// cost of a lookup for a grid of data page sizes and row group sizes; it is
// how the defaults were chosen (FORMAT.md, "Sizing"). CPU time rather than
// wall time, so that other load on the machine matters less. It runs only
// with VIVACE_SIZING=1:
//
//	VIVACE_SIZING=1 go test -run TestSizing -v ./storage/block/
func TestSizing(t *testing.T) {
	if os.Getenv("VIVACE_SIZING") == "" {
		t.Skip("set VIVACE_SIZING=1 to measure")
	}
	defer func(p int64) { dataPageSize = p }(dataPageSize)
	ctx := context.Background()
	const blockBytes = 16 << 20
	t.Logf("%6s %7s | %6s %7s %8s %8s | %9s %9s | %9s %9s", "page", "rgSpans", "B/span", "rg KiB", "footer/GiB", "pgidx/GiB", "write µs/sp", "lookup µs", "absent µs", "alloc KiB")
	for _, page := range []int64{32 << 10, 128 << 10, 256 << 10, 512 << 10} {
		for _, rgSpans := range []int{2_500, 5_000, 10_000} {
			dataPageSize = page
			cpu0 := cpuTime()
			bkt, meta, ids, err := buildBenchBlock(t.TempDir(), blockBytes, WriterConfig{RowGroupSpans: rgSpans})
			require.NoError(t, err)
			write := cpuTime() - cpu0
			r := NewReader(bkt, meta)
			l, err := r.load(ctx)
			require.NoError(t, err)
			idx := l.idx
			var rgBytes int64
			for _, e := range idx.RowGroups {
				rgBytes += e.Length
			}
			const lookups = 1000
			var ms0, ms1 runtimeMemStats
			ms0.read()
			cpu0 = cpuTime()
			for i := 0; i < lookups; i++ {
				td, err := r.FindTraceByID(ctx, ids[i%len(ids)])
				require.NoError(t, err)
				require.NotNil(t, td)
			}
			lookup := (cpuTime() - cpu0) / lookups
			ms1.read()
			perGiB := float64(1<<30) / float64(meta.Size)
			t.Logf("%6s %7d | %6.1f %7.0f %8.0fK %8.0fK | %9.2f %9.0f | %9s %9.0f", fmt.Sprintf("%dK", page>>10), rgSpans,
				float64(meta.Size)/float64(meta.TotalSpans), float64(rgBytes)/float64(len(idx.RowGroups))/1024,
				float64(idx.FooterLength)*perGiB/1024, float64(idx.FooterOffset-idx.TailOffset)*perGiB/1024,
				float64(write.Microseconds())/float64(meta.TotalSpans), float64(lookup.Microseconds()), "-",
				float64(ms1.alloc-ms0.alloc)/lookups/1024)
		}
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

type runtimeMemStats struct{ alloc uint64 }

func (m *runtimeMemStats) read() {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	m.alloc = ms.TotalAlloc
}

// TestSizingColumns prints the bytes of each column of one row group of a
// block with the default config (VIVACE_SIZING=1).
func TestSizingColumns(t *testing.T) {
	if os.Getenv("VIVACE_SIZING") == "" {
		t.Skip("set VIVACE_SIZING=1 to measure")
	}
	bkt, meta, _, err := buildBenchBlock(t.TempDir(), 8<<20, WriterConfig{})
	require.NoError(t, err)
	l, err := NewReader(bkt, meta).load(context.Background())
	require.NoError(t, err)
	md := l.footer
	rg := md.RowGroup(1)
	t.Logf("row group of %d spans; bytes per span:", rg.NumRows())
	for c := 0; c < rg.NumColumns(); c++ {
		cc, err := rg.ColumnChunk(c)
		require.NoError(t, err)
		t.Logf("%-16s %7.1f compressed %7.1f uncompressed", columns[c].name,
			float64(cc.TotalCompressedSize())/float64(rg.NumRows()), float64(cc.TotalUncompressedSize())/float64(rg.NumRows()))
	}
}
