package block

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	commonv1 "go.opentelemetry.io/proto/otlp/common/v1"
	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"
	"golang.org/x/sync/errgroup"

	"github.com/vivace-dev/vivace/internal/model"
	"github.com/vivace-dev/vivace/internal/model/modeltest"
	"github.com/vivace-dev/vivace/internal/search"
	"github.com/vivace-dev/vivace/internal/vivacepb"
	"github.com/vivace-dev/vivace/storage"
	"github.com/vivace-dev/vivace/storage/fs"
)

// BenchmarkSearch scans the benchmark block (VIVACE_BENCH_BLOCK_MIB, 64 MiB
// by default) without a limit, the worst case of a search, the way a
// querier does (projected traces, search.Matcher): MB/s is of data.parquet,
// ns/op the latency of one whole-block search. The whole-* cases hand over
// whole traces, as the tag search does.
func BenchmarkSearch(b *testing.B) {
	bkt, meta, _ := loadBenchBlock(b)
	readers := []*Reader{NewReader(bkt, meta)}
	for _, bc := range []struct {
		name, query string
		whole       bool
	}{
		{"selective", `{ resource.service.name = "accounting" && name = "SELECT accounting.ledger" && status = error }`, false},
		{"selective-attribute", `{ span.http.route = "/api/ads" && span.http.response.status_code = 503 }`, false},
		{"unselective", `{ duration > 1ms }`, false},
		{"all", `{}`, false},
		{"whole-selective-attribute", `{ span.http.route = "/api/ads" && span.http.response.status_code = 503 }`, true},
		{"whole-all", `{}`, true},
	} {
		b.Run(bc.name, func(b *testing.B) {
			benchmarkSearchJob(b, readers, &vivacepb.SearchJob{Query: bc.query}, bc.whole)
		})
	}
}

// BenchmarkSearchBlockSet searches a set of blocks of about
// VIVACE_BENCH_SEARCH_MIB (default 1024) MiB of data.parquet in all, as a
// querier runs a search job over blocks: up to 8 blocks at a time, until
// the job's limit is reached. MB/s is of the whole set's data.parquet,
// ms/query the latency of one search, fetched-MB what it read. The set is
// built on first use, which takes minutes, into
// ${XDG_CACHE_HOME:-$HOME/.cache}/vivace/bench-search/ (or
// VIVACE_BENCH_SEARCH_DIR) and reused after: delete the folder to rebuild.
// "selective" queries match a handful of traces planted in the set; the
// "unselective" ones most traces.
//
//	go test ./storage/block -run '^$' -bench SearchBlockSet -benchtime 3x
func BenchmarkSearchBlockSet(b *testing.B) {
	set := loadBenchSet(b)
	readers := make([]*Reader, len(set.metas))
	for i, m := range set.metas {
		readers[i] = NewReader(set.bkt, m)
	}
	for _, bc := range []struct {
		name, query string
		limit       uint32
	}{
		{"selective-name/limit-20", `{ name = "` + benchNeedleName + `" }`, 20},
		{"selective-attribute/limit-20", `{ span.` + benchNeedleKey + ` = "` + benchNeedleValue + `" }`, 20},
		{"unselective-service/limit-20", `{ resource.service.name = "frontend" }`, 20},
		{"unselective-service/no-limit", `{ resource.service.name = "frontend" }`, 0},
		{"all/limit-20", `{}`, 20},
		{"all/no-limit", `{}`, 0},
	} {
		b.Run(bc.name, func(b *testing.B) {
			benchmarkSearchJob(b, readers, &vivacepb.SearchJob{Query: bc.query, Limit: bc.limit, SpansPerSpanSet: 3}, false)
		})
	}
}

func benchmarkSearchJob(b *testing.B, readers []*Reader, job *vivacepb.SearchJob, whole bool) {
	ctx := context.Background()
	var size int64
	for _, r := range readers {
		size += r.Meta().Size
		_, err := r.load(ctx) // index and footer, cached per Reader in a querier
		require.NoError(b, err)
	}
	b.SetBytes(size)
	b.ReportAllocs()
	var (
		resp *vivacepb.SearchResponse
		st   SearchStats
	)
	cpu0, cpuOK := processCPU()
	for b.Loop() {
		var err error
		resp, st, err = searchBlocks(ctx, readers, job, whole)
		require.NoError(b, err)
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/query")
	if cpu1, ok := processCPU(); ok && cpuOK {
		// CPU time is what a busy machine does not distort.
		b.ReportMetric(float64((cpu1-cpu0).Milliseconds())/float64(b.N), "cpu-ms/query")
	}
	b.ReportMetric(float64(len(resp.Traces)), "matched")
	b.ReportMetric(float64(st.InspectedTraces), "rebuilt")
	b.ReportMetric(float64(st.InspectedBytes)/1e6, "fetched-MB")
}

// processCPU is the CPU time (user and system) of the process so far, from
// /proc/self/stat: only on Linux.
func processCPU() (time.Duration, bool) {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return 0, false
	}
	// Fields after the command name, which ends with the last ')': state is
	// field 3, utime 14, stime 15, in clock ticks of 1/100 s.
	i := strings.LastIndexByte(string(b), ')')
	f := strings.Fields(string(b[i+1:]))
	if i < 0 || len(f) < 13 {
		return 0, false
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond, true
}

var errBenchStop = errors.New("limit reached")

// searchBlocks runs a search job over blocks the way querier.searchBlocks
// does.
func searchBlocks(ctx context.Context, readers []*Reader, job *vivacepb.SearchJob, whole bool) (*vivacepb.SearchResponse, SearchStats, error) {
	m, err := search.NewMatcher(job)
	if err != nil {
		return nil, SearchStats{}, err
	}
	res := search.NewResults(int(job.Limit), int(job.SpansPerSpanSet))
	start, end := m.TimeRange()
	opts := SearchOptions{Conditions: m.Query.Conditions(), Start: start, End: end, Project: !whole, Fields: m.Query.Fields()}
	var (
		mu  sync.Mutex // guards res and total
		all SearchStats
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for _, r := range readers {
		g.Go(func() error {
			st, err := r.Search(gctx, opts, func(_ model.TraceID, td *tracev1.TracesData) error {
				md := m.Match(td)
				if md == nil {
					return nil
				}
				mu.Lock()
				defer mu.Unlock()
				res.AddTrace(md)
				if res.Full() {
					cancel()
					return errBenchStop
				}
				return nil
			})
			mu.Lock()
			all.InspectedTraces += st.InspectedTraces
			all.InspectedBytes += st.InspectedBytes
			full := res.Full()
			mu.Unlock()
			if err == nil || errors.Is(err, errBenchStop) || (full && errors.Is(err, context.Canceled)) {
				return nil
			}
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, all, err
	}
	return res.Response(), all, nil
}

// The needles planted in the benchmark block set, each in about
// benchNeedles traces.
const (
	benchNeedleName  = "bench needle"
	benchNeedleKey   = "bench.marker"
	benchNeedleValue = "needle"
	benchNeedles     = 10
	benchSetBlocks   = 8
	// benchSetVersion names the set's folder: bump it when the generator,
	// the block format or the layout changes.
	benchSetVersion = "v1"
)

// benchSet is the benchmark block set.
type benchSet struct {
	bkt   storage.Bucket
	metas []*Meta
}

var benchSetOnce struct {
	once sync.Once
	set  *benchSet
	err  error
}

func loadBenchSet(b *testing.B) *benchSet {
	benchSetOnce.once.Do(func() {
		mib := 1024
		if s := os.Getenv("VIVACE_BENCH_SEARCH_MIB"); s != "" {
			var err error
			if mib, err = strconv.Atoi(s); err != nil {
				benchSetOnce.err = err
				return
			}
		}
		root := os.Getenv("VIVACE_BENCH_SEARCH_DIR")
		if root == "" {
			cache := os.Getenv("XDG_CACHE_HOME")
			if cache == "" {
				home, err := os.UserHomeDir()
				if err != nil {
					benchSetOnce.err = err
					return
				}
				cache = filepath.Join(home, ".cache")
			}
			root = filepath.Join(cache, "vivace", "bench-search")
		}
		dir := filepath.Join(root, fmt.Sprintf("%s-%dMiB", benchSetVersion, mib))
		start := time.Now()
		benchSetOnce.set, benchSetOnce.err = openOrBuildBenchSet(b, dir, int64(mib)<<20)
		if benchSetOnce.err == nil {
			var size, traces, spans int64
			for _, m := range benchSetOnce.set.metas {
				size, traces, spans = size+m.Size, traces+int64(m.TotalTraces), spans+int64(m.TotalSpans)
			}
			b.Logf("bench block set %s: %d blocks, %d MiB, %d traces, %d spans, ready in %s",
				dir, len(benchSetOnce.set.metas), size>>20, traces, spans, time.Since(start).Round(time.Second))
		}
	})
	require.NoError(b, benchSetOnce.err)
	return benchSetOnce.set
}

// openOrBuildBenchSet opens the set in dir, building it first if dir has no
// complete one: the blocks' IDs are in dir/blocks, written last.
func openOrBuildBenchSet(b *testing.B, dir string, size int64) (*benchSet, error) {
	list := filepath.Join(dir, "blocks")
	if _, err := os.Stat(list); errors.Is(err, os.ErrNotExist) {
		b.Logf("building the bench block set in %s (minutes; kept for later runs)", dir)
		if err := os.RemoveAll(dir); err != nil {
			return nil, err
		}
		if err := buildBenchSet(dir, size); err != nil {
			return nil, err
		}
	}
	ids, err := os.ReadFile(list)
	if err != nil {
		return nil, err
	}
	bkt, err := fs.New(filepath.Join(dir, "bucket"))
	if err != nil {
		return nil, err
	}
	set := &benchSet{bkt: bkt}
	for _, id := range strings.Fields(string(ids)) {
		m, err := ReadMeta(context.Background(), bkt, testTenant, id)
		if err != nil {
			return nil, err
		}
		set.metas = append(set.metas, m)
	}
	return set, nil
}

// buildBenchSet writes benchSetBlocks blocks of size/benchSetBlocks bytes
// each, two at a time. Block i holds traces of ten minutes from
// modeltest.BaseTime + i×10 minutes, as blocks cut by an ingester would.
func buildBenchSet(dir string, size int64) error {
	bkt, err := fs.New(filepath.Join(dir, "bucket"))
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, "tmp")
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return err
	}
	const bytesPerSpanGuess = 145 // measured; see FORMAT.md "Sizing"
	perBlock := int(size / benchSetBlocks / bytesPerSpanGuess / benchMeanSpans)
	// Each needle goes into about benchNeedles traces of the whole set.
	every := max(1, perBlock*benchSetBlocks/benchNeedles)
	ids := make([]string, benchSetBlocks)
	var g errgroup.Group
	g.SetLimit(2)
	for i := range benchSetBlocks {
		g.Go(func() error {
			rng := rand.New(rand.NewPCG(uint64(i), 42))
			shift := uint64(i) * uint64(10*time.Minute)
			w, err := NewWriter(WriterConfig{}, tmp, testTenant, uuid.New())
			if err != nil {
				return err
			}
			for j, id := range modeltest.IDs(rng, max(perBlock, 1)) {
				td := modeltest.Trace(rng, id, modeltest.SpanCount(rng, benchMeanSpans))
				shiftTrace(td, shift)
				switch n := i*perBlock + j; {
				case n%every == every/3:
					randomSpan(rng, td).Name = benchNeedleName
				case n%every == 2*every/3:
					s := randomSpan(rng, td)
					s.Attributes = append(s.Attributes, &commonv1.KeyValue{Key: benchNeedleKey, Value: &commonv1.AnyValue{Value: &commonv1.AnyValue_StringValue{StringValue: benchNeedleValue}}})
				}
				if err := w.Add(id, td); err != nil {
					w.Abort()
					return err
				}
			}
			meta, err := w.Finish(context.Background(), bkt)
			if err != nil {
				return err
			}
			ids[i] = meta.BlockID
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if err := os.RemoveAll(tmp); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "blocks"), []byte(strings.Join(ids, "\n")+"\n"), 0o644)
}

// shiftTrace moves every time of td by d.
func shiftTrace(td *tracev1.TracesData, d uint64) {
	for _, rs := range td.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				s.StartTimeUnixNano += d
				s.EndTimeUnixNano += d
				for _, e := range s.Events {
					e.TimeUnixNano += d
				}
			}
		}
	}
}

func randomSpan(rng *rand.Rand, td *tracev1.TracesData) *tracev1.Span {
	var spans []*tracev1.Span
	for _, rs := range td.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			spans = append(spans, ss.Spans...)
		}
	}
	return spans[rng.IntN(len(spans))]
}
