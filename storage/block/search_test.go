package block

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/parquet"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	commonv1 "go.opentelemetry.io/proto/otlp/common/v1"
	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/vivace-dev/vivace/internal/model"
	"github.com/vivace-dev/vivace/internal/model/modeltest"
	"github.com/vivace-dev/vivace/internal/search"
	"github.com/vivace-dev/vivace/internal/traceql"
	"github.com/vivace-dev/vivace/internal/vivacepb"
	"github.com/vivace-dev/vivace/storage"
)

// searchQueries cover every column Search pre-filters on, every operator on
// them, queries it must not prune at all, and every kind of field a
// projected search keeps or leaves out.
var searchQueries = []string{
	`{}`,
	`{ resource.service.name = "payment" }`,
	`{ resource.service.name != "payment" }`,
	`{ resource.service.name = "nobody" }`,
	`{ resource.service.name > "frontend" && name < "c" }`,
	`{ name = "validate card" }`,
	`{ name =~ "oteldemo.*" }`,
	`{ name = "HGET" } && { resource.service.name = "frontend" }`,
	`{ name = "HGET" } || { name = "charge" }`,
	`{ kind = client }`,
	`{ kind = server && status = error }`,
	`{ status != unset }`,
	`{ duration > 1s }`,
	`{ duration <= 1ms }`,
	`{ duration >= 500ms } >> { name = "HGET" }`,
	`{ !(name = "HGET") }`,
	`{ span.http.request.method = "GET" }`,
	`{ .service.name = "cart" }`,
	`{ name = "HGET" } | count() > 2`,
	`{ span.http.route = "/api/ads" && span.http.response.status_code = 503 }`,
	`{ .http.route = "/api/ads" } | select(span.http.request.method, resource.cloud.region)`,
	`{ span:statusMessage =~ ".*refused.*" }`,
	`{ status = error } | select(span:statusMessage)`,
	`{ status = ok } | by(resource.service.name)`,
	`{ instrumentation.otel.scope.kind = "library" }`,
	`{ instrumentation:name = "payment" && instrumentation:version != "" }`,
	`{ resource.k8s.pod.name =~ "cart.*" }`,
	`{ span.app.cache.hit = true } | by(span.http.request.method)`,
	`{ span:childCount > 2 }`,
	`{ trace:rootService = "frontend" && trace:rootName != "" }`,
	`{ nestedSetParent = -1 && trace:duration > 1s }`,
	`{ span.http.response.status_code >= 500 } >> { kind = client }`,
	`{ span.app.user != nil && span.app.empty = nil }`,
	`{ span:parentID = nil } | select(span:id, trace:id)`,
}

// timedQueries are the searchQueries also run with time ranges.
var timedQueries = map[string]bool{
	`{}`:                                    true,
	`{ resource.service.name = "payment" }`: true,
	`{ duration > 1s }`:                     true,
	`{ span.http.route = "/api/ads" && span.http.response.status_code = 503 }`: true,
}

// searchBlock writes n traces of about spans spans, in row groups of 200
// spans.
func searchBlock(t testing.TB, seed uint64, n, spans int) (*Reader, *Meta, []model.TraceID) {
	t.Helper()
	ids, traces := modeltest.Traces(rand.New(rand.NewPCG(seed, seed)), n, spans)
	w, err := NewWriter(WriterConfig{RowGroupSpans: 200}, t.TempDir(), testTenant, uuid.New())
	require.NoError(t, err)
	for i, id := range ids {
		require.NoError(t, w.Add(id, traces[i]))
	}
	bkt := newMemBucket()
	meta, err := w.Finish(context.Background(), bkt)
	require.NoError(t, err)
	return NewReader(bkt, meta), meta, ids
}

// TestSearchMatchesIterate: Search with a query's conditions hands over every
// trace the query matches (the same as evaluating every whole trace), with
// the same search result whether whole or projected, and, for selective
// queries, rebuilds fewer traces.
func TestSearchMatchesIterate(t *testing.T) {
	ctx := context.Background()
	r, meta, ids := searchBlock(t, 7, 200, 12)
	require.Greater(t, meta.RowGroups, 5)
	mid := meta.StartTime.Add(meta.EndTime.Sub(meta.StartTime) / 2).Unix()
	var whole []*tracev1.TracesData
	require.NoError(t, r.Iterate(ctx, func(_ model.TraceID, td *tracev1.TracesData) error {
		whole = append(whole, td)
		return nil
	}))

	for _, text := range searchQueries {
		for _, tr := range []struct {
			name       string
			start, end int64
		}{
			{"any-time", 0, 0},
			{"first-half", 0, mid},
			{"second-half", mid, 0},
			{"a-minute", mid, mid + 60},
		} {
			if tr.name != "any-time" && !timedQueries[text] {
				continue
			}
			t.Run(text+"/"+tr.name, func(t *testing.T) {
				m, err := search.NewMatcher(&vivacepb.SearchJob{Query: text, Start: tr.start, End: tr.end})
				require.NoError(t, err)
				var want []*vivacepb.TraceSearchMetadata
				for _, td := range whole {
					if md := m.Match(td); md != nil {
						want = append(want, md)
					}
				}
				start, end := m.TimeRange()
				for _, project := range []bool{false, true} {
					opts := SearchOptions{Conditions: m.Query.Conditions(), Start: start, End: end, Project: project, Fields: m.Query.Fields()}
					var got []*vivacepb.TraceSearchMetadata
					st, err := r.Search(ctx, opts, func(id model.TraceID, td *tracev1.TracesData) error {
						if md := m.Match(td); md != nil {
							require.Equal(t, id.String(), md.TraceID)
							got = append(got, md)
						}
						return nil
					})
					require.NoError(t, err)
					require.Len(t, got, len(want), "project=%v", project)
					for i := range want {
						require.True(t, proto.Equal(want[i], got[i]), "project=%v\nwant %v\ngot  %v", project, want[i], got[i])
					}
					require.GreaterOrEqual(t, st.InspectedTraces, uint64(len(want)))
					require.LessOrEqual(t, st.InspectedBytes, uint64(meta.Size))
					conds := m.Query.Conditions()
					if tr.start == 0 && tr.end == 0 && len(want) < len(ids)/4 && len(conds) > 0 && text != `{ !(name = "HGET") }` {
						if _, ok := conditionColumn(conds[0]); ok {
							require.Less(t, st.InspectedTraces, uint64(len(ids)), "the dedicated columns rule traces out")
						}
					}
					if tr.name == "a-minute" {
						require.Less(t, st.InspectedTraces, uint64(len(ids)), "the time range rules traces out")
					}
				}
			})
		}
	}
}

// TestSearchProjectedFetchesLess: a projected search that needs no span
// attributes does not fetch the span column, most of a block.
func TestSearchProjectedFetchesLess(t *testing.T) {
	ctx := context.Background()
	r, meta, ids := searchBlock(t, 9, 100, 10)
	count := func(opts SearchOptions) SearchStats {
		n := 0
		st, err := r.Search(ctx, opts, func(model.TraceID, *tracev1.TracesData) error { n++; return nil })
		require.NoError(t, err)
		require.Equal(t, len(ids), n)
		return st
	}
	whole := count(SearchOptions{})
	require.Equal(t, uint64(sumRowGroups(r)), whole.InspectedBytes)
	_ = meta
	q, err := traceql.Parse(`{ status = error } | select(resource.cloud.region, instrumentation:name)`)
	require.NoError(t, err)
	projected := count(SearchOptions{Project: true, Fields: q.Fields()})
	require.Less(t, projected.InspectedBytes*3, whole.InspectedBytes, "without the span column")
	q, err = traceql.Parse(`{ span.http.route = "/" }`)
	require.NoError(t, err)
	withSpans := count(SearchOptions{Project: true, Fields: q.Fields()})
	require.Equal(t, whole.InspectedBytes, withSpans.InspectedBytes)
}

func sumRowGroups(r *Reader) int64 {
	l, err := r.load(context.Background())
	if err != nil {
		panic(err)
	}
	var n int64
	for _, e := range l.idx.RowGroups {
		n += e.Length
	}
	return n
}

// TestSearchProjectedTrace: a projected trace has every span with its
// column fields, its resource and scope, the attributes the fields name and
// nothing else of the span blob.
func TestSearchProjectedTrace(t *testing.T) {
	ctx := context.Background()
	r, _, _ := searchBlock(t, 10, 20, 8)
	q, err := traceql.Parse(`{ span.http.route = "/" || span:statusMessage != "" } | select(.service.name)`)
	require.NoError(t, err)
	var n int
	_, err = r.Search(ctx, SearchOptions{Project: true, Fields: q.Fields()}, func(id model.TraceID, got *tracev1.TracesData) error {
		want, err := r.FindTraceByID(ctx, id)
		require.NoError(t, err)
		// Strip from the whole trace what the projection leaves out.
		for _, rs := range want.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					s.TraceState, s.Flags, s.Events, s.Links = "", 0, nil, nil
					s.DroppedAttributesCount, s.DroppedEventsCount, s.DroppedLinksCount = 0, 0, 0
					var kept []*commonv1.KeyValue
					for _, kv := range s.Attributes {
						if kv.Key == "http.route" || kv.Key == "service.name" {
							kept = append(kept, kv)
						}
					}
					s.Attributes = kept
				}
			}
		}
		require.True(t, proto.Equal(want, got), "want %v\ngot  %v", want, got)
		n++
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, 20, n)
}

// TestSearchSkipsRowGroups: a condition or a time range outside a row
// group's statistics skips it without fetching it.
func TestSearchSkipsRowGroups(t *testing.T) {
	ctx := context.Background()
	r, meta, _ := searchBlock(t, 8, 100, 10)
	q, err := traceql.Parse(`{ resource.service.name = "zzz-not-there" }`)
	require.NoError(t, err)
	for _, opts := range []SearchOptions{
		{Conditions: q.Conditions()},
		{Start: uint64(meta.EndTime.Add(time.Hour).UnixNano())}, // beyond the longest span
		{End: uint64(meta.StartTime.UnixNano())},
	} {
		st, err := r.Search(ctx, opts, func(model.TraceID, *tracev1.TracesData) error {
			t.Fatal("no trace may be handed over")
			return nil
		})
		require.NoError(t, err)
		require.Equal(t, meta.RowGroups, st.SkippedRowGroups)
		require.Zero(t, st.InspectedBytes)
	}
}

// TestSearchStopsAtError: the first error of fn ends the search.
func TestSearchStopsAtError(t *testing.T) {
	r, _, _ := searchBlock(t, 11, 50, 10)
	stop := errors.New("stop")
	n := 0
	st, err := r.Search(context.Background(), SearchOptions{Project: true}, func(model.TraceID, *tracev1.TracesData) error {
		n++
		if n == 3 {
			return stop
		}
		return nil
	})
	require.ErrorIs(t, err, stop)
	require.Equal(t, 3, n)
	require.Equal(t, uint64(3), st.InspectedTraces)
}

// TestSearchSmallPages: with many pages per column chunk, a search that
// reads few rows of a column skips and seeks between them and still hands
// over the same traces, whole or projected.
func TestSearchSmallPages(t *testing.T) {
	for _, direct := range []bool{true, false} {
		t.Run(fmt.Sprintf("direct=%v", direct), func(t *testing.T) {
			defer func(d bool) { decodeDictPages = d }(decodeDictPages)
			decodeDictPages = direct
			testSearchSmallPages(t)
		})
	}
}

func testSearchSmallPages(t *testing.T) {
	defer func(n int64) { dataPageSize = n }(dataPageSize)
	dataPageSize = 2 << 10
	ctx := context.Background()
	ids, traces := modeltest.Traces(rand.New(rand.NewPCG(12, 12)), 150, 12)
	w, err := NewWriter(WriterConfig{RowGroupSpans: 1000}, t.TempDir(), testTenant, uuid.New())
	require.NoError(t, err)
	for i, id := range ids {
		require.NoError(t, w.Add(id, traces[i]))
	}
	bkt := newMemBucket()
	meta, err := w.Finish(ctx, bkt)
	require.NoError(t, err)
	r := NewReader(bkt, meta)
	for _, text := range []string{
		`{ name = "validate card" }`,
		`{ kind = server && status = error }`,
		`{ span.http.route = "/api/ads" && span.http.response.status_code = 503 }`,
		`{ resource.service.name = "payment" } | select(span.app.order.amount)`,
		`{ duration > 1500ms }`,
	} {
		t.Run(text, func(t *testing.T) {
			m, err := search.NewMatcher(&vivacepb.SearchJob{Query: text})
			require.NoError(t, err)
			var want []*vivacepb.TraceSearchMetadata
			for _, td := range traces {
				if md := m.Match(td); md != nil {
					want = append(want, md)
				}
			}
			require.NotEmpty(t, want)
			for _, project := range []bool{false, true} {
				var got []*vivacepb.TraceSearchMetadata
				_, err := r.Search(ctx, SearchOptions{Conditions: m.Query.Conditions(), Project: project, Fields: m.Query.Fields()}, func(_ model.TraceID, td *tracev1.TracesData) error {
					if md := m.Match(td); md != nil {
						got = append(got, md)
					}
					return nil
				})
				require.NoError(t, err)
				require.Len(t, got, len(want))
				for i := range want {
					require.True(t, proto.Equal(want[i], got[i]), "project=%v\nwant %v\ngot  %v", project, want[i], got[i])
				}
			}
		})
	}
}

// FuzzSearch overwrites bytes of the frozen block's data.parquet at off with
// patch and searches it, whole and projected, with conditions on dedicated
// columns, on attributes and on time: errors are fine, panics and hangs are
// not.
func FuzzSearch(f *testing.F) {
	clean := loadDir(f, goldenDir)
	delete(clean.objects, "golden.json")
	b, err := os.ReadFile(filepath.Join(goldenDir, "golden.json"))
	require.NoError(f, err)
	var g goldenFile
	require.NoError(f, json.Unmarshal(b, &g))
	dataKey := storage.DataKey(goldenTenant, goldenBlockID)
	data := clean.objects[dataKey]
	var opts []SearchOptions
	for _, text := range []string{`{}`, `{ name != "x" && span.http.request.method = "GET" }`, `{ resource.service.name = "cart" } | select(span:statusMessage, instrumentation.x)`} {
		m, err := search.NewMatcher(&vivacepb.SearchJob{Query: text})
		require.NoError(f, err)
		for _, project := range []bool{false, true} {
			opts = append(opts, SearchOptions{Conditions: m.Query.Conditions(), Project: project, Fields: m.Query.Fields()})
		}
	}
	opts = append(opts, SearchOptions{Start: uint64(g.Meta.StartTime.UnixNano()) + 1, End: uint64(g.Meta.EndTime.UnixNano()), Project: true})
	f.Add(uint32(0), []byte{})
	for i := range 8 {
		f.Add(uint32(len(data)*i/8), []byte{0xff, 0x00, 0x7f})
	}
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
		r := NewReader(bkt, g.Meta)
		for _, o := range opts {
			_, _ = r.Search(context.Background(), o, func(model.TraceID, *tracev1.TracesData) error { return nil })
		}
	})
}

// TestAppendIndexes decodes dictionary indexes in the RLE / bit-packing
// hybrid encoding, with the Parquet format's own example, and rejects what
// does not decode.
func TestAppendIndexes(t *testing.T) {
	// Bit width 3; a bit-packed group of 0..7 (Encodings.md's example
	// bytes); a run of five 2s; a bit-packed group of which the page uses 2.
	page := []byte{3, 0x03, 0x88, 0xc6, 0xfa, 5 << 1, 2, 0x03, 0x0d, 0x00, 0x00}
	got, err := appendIndexes([]int32{9}, page, 15, 8)
	require.NoError(t, err)
	require.Equal(t, []int32{9, 0, 1, 2, 3, 4, 5, 6, 7, 2, 2, 2, 2, 2, 5, 1}, got)

	// Width 0: every index is 0. Width 9: RLE values take two bytes.
	got, err = appendIndexes(nil, []byte{0, 4 << 1}, 4, 1)
	require.NoError(t, err)
	require.Equal(t, []int32{0, 0, 0, 0}, got)
	got, err = appendIndexes(nil, []byte{9, 2 << 1, 0x2c, 0x01}, 2, 301)
	require.NoError(t, err)
	require.Equal(t, []int32{300, 300}, got)

	for name, page := range map[string][]byte{
		"empty":             {},
		"too wide":          {33, 2, 0},
		"index too large":   {3, 5 << 1, 7},
		"truncated run":     {9, 5 << 1, 1},
		"truncated packing": {3, 0x03, 0x88},
		"short":             {3, 2 << 1, 1},
		"empty run":         {3, 0, 1},
		"bad header":        {3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
	} {
		_, err := appendIndexes(nil, page, 5, 7)
		require.Error(t, err, name)
	}
}

// TestSearchLargeDictionary: a dictionary column whose dictionary outgrows
// what the writer keeps (1 MiB) continues in PLAIN pages, which a search
// reads too.
func TestSearchLargeDictionary(t *testing.T) {
	for _, direct := range []bool{true, false} {
		t.Run(fmt.Sprintf("direct=%v", direct), func(t *testing.T) {
			defer func(d bool) { decodeDictPages = d }(decodeDictPages)
			decodeDictPages = direct
			testSearchLargeDictionary(t)
		})
	}
}

func testSearchLargeDictionary(t *testing.T) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(13, 13))
	ids := modeltest.IDs(rng, 60)
	traces := make([]*tracev1.TracesData, len(ids))
	w, err := NewWriter(WriterConfig{RowGroupSpans: 100_000}, t.TempDir(), testTenant, uuid.New())
	require.NoError(t, err)
	for i, id := range ids {
		traces[i] = modeltest.Trace(rng, id, 40)
		for _, rs := range traces[i].ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					s.Name = fmt.Sprintf("%s %x %s", s.Name, rng.Uint64(), strings.Repeat("x", 500)) // 2400 distinct names of 500 bytes
				}
			}
		}
		require.NoError(t, w.Add(id, traces[i]))
	}
	bkt := newMemBucket()
	meta, err := w.Finish(ctx, bkt)
	require.NoError(t, err)
	require.Equal(t, 1, meta.RowGroups)
	r := NewReader(bkt, meta)
	l, err := r.load(ctx)
	require.NoError(t, err)
	cc, err := l.footer.RowGroup(0).ColumnChunk(colName)
	require.NoError(t, err)
	require.Contains(t, cc.Encodings(), parquet.Encodings.Plain, "the name column falls back to PLAIN pages")

	name := traces[len(traces)-1].ResourceSpans[0].ScopeSpans[0].Spans[0].Name // in a PLAIN page
	for _, text := range []string{`{}`, `{ name = "` + name + `" }`, `{ name != "` + name + `" && kind = server }`} {
		m, err := search.NewMatcher(&vivacepb.SearchJob{Query: text})
		require.NoError(t, err)
		var want []*vivacepb.TraceSearchMetadata
		for _, td := range traces {
			if md := m.Match(td); md != nil {
				want = append(want, md)
			}
		}
		require.NotEmpty(t, want, text)
		for _, project := range []bool{false, true} {
			var got []*vivacepb.TraceSearchMetadata
			_, err := r.Search(ctx, SearchOptions{Conditions: m.Query.Conditions(), Project: project, Fields: m.Query.Fields()}, func(_ model.TraceID, td *tracev1.TracesData) error {
				if md := m.Match(td); md != nil {
					got = append(got, md)
				}
				return nil
			})
			require.NoError(t, err)
			require.Len(t, got, len(want), "%s project=%v", text, project)
			for i := range want {
				require.True(t, proto.Equal(want[i], got[i]), "project=%v\nwant %v\ngot  %v", project, want[i], got[i])
			}
		}
	}
}

// TestFinder: finder.in is bytes.Contains.
func TestFinder(t *testing.T) {
	rng := rand.New(rand.NewPCG(14, 14))
	alphabet := []byte("needl/Xx0")
	for range 20000 {
		lit := make([]byte, 1+rng.IntN(4))
		for i := range lit {
			lit[i] = alphabet[rng.IntN(len(alphabet))]
		}
		b := make([]byte, rng.IntN(12))
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		require.Equal(t, bytes.Contains(b, lit), newFinder(string(lit)).in(b), "%q in %q", lit, b)
	}
	require.True(t, newFinder("").in(nil))
	require.True(t, newFinder("needle").in([]byte("\x0a\x06needle")))
	require.False(t, newFinder("needle").in([]byte("needl")))
}
