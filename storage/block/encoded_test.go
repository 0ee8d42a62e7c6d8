package block

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonv1 "go.opentelemetry.io/proto/otlp/common/v1"
	resourcev1 "go.opentelemetry.io/proto/otlp/resource/v1"
	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/vivace-dev/vivace/internal/model"
	"github.com/vivace-dev/vivace/internal/model/modeltest"
)

var updateSeeds = flag.Bool("update-seeds", false, "rewrite the generated seeds of FuzzAddEncoded under testdata/fuzz/")

// TestAddEncodedMatchesAdd: for traces encoded every way the ingester's WAL
// can hold them, AddEncoded(id, b) stores the rows Add(id, Unmarshal(b))
// stores (span blobs may differ in bytes, not in what they decode to), and
// the two blocks give back equal traces.
func TestAddEncodedMatchesAdd(t *testing.T) {
	tests := []struct {
		name string
		cfg  WriterConfig
		make func(t *testing.T, rng *rand.Rand) ([]model.TraceID, [][]byte)
	}{
		{
			name: "one encoding per trace",
			make: func(t *testing.T, rng *rand.Rand) ([]model.TraceID, [][]byte) {
				ids, traces := modeltest.Traces(rng, 150, 20)
				return ids, marshalAll(t, traces)
			},
		},
		{
			name: "WAL parts of interleaved requests",
			cfg:  WriterConfig{RowGroupSpans: 500},
			make: func(t *testing.T, rng *rand.Rand) ([]model.TraceID, [][]byte) {
				ids, traces := modeltest.Traces(rng, 120, 20)
				return ids, walEncodings(t, rng, ids, traces, 7, false)
			},
		},
		{
			name: "WAL parts, scrambled field order and split messages",
			make: func(t *testing.T, rng *rand.Rand) ([]model.TraceID, [][]byte) {
				ids, traces := modeltest.Traces(rng, 100, 20)
				return ids, walEncodings(t, rng, ids, traces, 5, true)
			},
		},
		{
			name: "shared span IDs (Zipkin)",
			make: func(t *testing.T, rng *rand.Rand) ([]model.TraceID, [][]byte) {
				ids, traces := modeltest.Traces(rng, 80, 20)
				for _, td := range traces {
					shareSpanIDs(rng, td)
				}
				return ids, walEncodings(t, rng, ids, traces, 3, false)
			},
		},
		{
			name: "large traces, one row group each",
			cfg:  WriterConfig{RowGroupSpans: 100},
			make: func(t *testing.T, rng *rand.Rand) ([]model.TraceID, [][]byte) {
				ids, traces := tracesWithSpans(rng, 1, 150, 2000, 99, 101, 3)
				return ids, walEncodings(t, rng, ids, traces, 4, true)
			},
		},
		{
			name: "ExportTraceServiceRequest",
			make: func(t *testing.T, rng *rand.Rand) ([]model.TraceID, [][]byte) {
				ids, traces := modeltest.Traces(rng, 20, 20)
				encs := make([][]byte, len(traces))
				for i, td := range traces {
					encs[i] = mustMarshal(t, &coltracepb.ExportTraceServiceRequest{ResourceSpans: td.ResourceSpans})
				}
				return ids, encs
			},
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(i), 99))
			ids, encs := tt.make(t, rng)
			requireSameBlocks(t, tt.cfg, ids, encs)
		})
	}
}

// TestAddEncodedOddEncodings covers valid encodings no encoder we know of
// writes, where the decoder's rules decide: unknown fields, known field
// numbers with another wire type, repeated scalars (the last wins), split
// messages (they merge), non-canonical varints.
func TestAddEncodedOddEncodings(t *testing.T) {
	id := model.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	other := model.TraceID{15: 9}
	span := mustMarshal(t, &tracev1.Span{
		TraceId: id[:], SpanId: []byte{1, 2, 3, 4, 5, 6, 7, 8}, ParentSpanId: []byte{8, 7}, Name: "op", Kind: tracev1.Span_SPAN_KIND_CLIENT,
		StartTimeUnixNano: 1_700_000_000_000_000_000, EndTimeUnixNano: 1_700_000_000_500_000_000,
		Attributes: []*commonv1.KeyValue{{Key: "k", Value: &commonv1.AnyValue{Value: &commonv1.AnyValue_StringValue{StringValue: "v"}}}},
		Status:     &tracev1.Status{Code: tracev1.Status_STATUS_CODE_ERROR, Message: "boom"},
	})
	// A KeyValue with a string value, its records in proto.Marshal's order or
	// reversed; resources of two of them.
	kv := func(k, v string, reversed bool) []byte {
		key, val := bytesField(nil, 1, []byte(k)), bytesField(nil, 2, bytesField(nil, 1, []byte(v)))
		if reversed {
			return cat(val, key)
		}
		return cat(key, val)
	}
	service := func(name string, reversed bool) []byte { return bytesField(nil, 1, kv("service.name", name, reversed)) }
	host := func(reversed bool) []byte { return bytesField(nil, 1, kv("host.name", "h", reversed)) }
	resource := func(name string) []byte { return cat(service(name, false), host(false)) }
	scope := mustMarshal(t, &commonv1.InstrumentationScope{Name: "lib", Version: "1"})
	unknownGroup := cat(tag(nil, 99, protowire.StartGroupType), bytesField(nil, 1, []byte("\xff")), tag(nil, 99, protowire.EndGroupType))

	tests := []struct {
		name string
		td   []byte
	}{
		{"plain", traces(rs(nil, ss(nil, span)))},
		{"trace_id twice, the last one right", traces(rs(nil, ss(nil, bytesField(bytesField(nil, 1, other[:]), 1, id[:]), span)))},
		{"column fields twice, the last one wins", traces(rs(nil, ss(nil, cat(span,
			bytesField(nil, 2, []byte{9}), bytesField(nil, 4, nil), bytesField(nil, 5, []byte("renamed")),
			varintField(nil, 6, 3), fixed64Field(nil, 7, 5), fixed64Field(nil, 8, 4))))),
		},
		{"column numbers with other wire types are unknown fields", traces(rs(nil, ss(nil, cat(span,
			varintField(nil, 1, 7), fixed64Field(nil, 2, 1), varintField(nil, 5, 1), fixed64Field(nil, 6, 2), bytesField(nil, 7, []byte("x")),
			varintField(nil, 15, 2))))),
		},
		{"kind beyond 32 bits", traces(rs(nil, ss(nil, cat(span, varintField(nil, 6, 1<<40|3)))))},
		{"status thrice, merged", traces(rs(nil, ss(nil, cat(span,
			bytesField(nil, 15, bytesField(nil, 2, []byte("second"))),
			bytesField(nil, 15, varintField(nil, 3, 1)),
			bytesField(nil, 15, fixed64Field(nil, 3, 2)))))),
		},
		{"unknown fields everywhere, invalid UTF-8 in them", cat(traces(rs(
			cat(bytesField(nil, 1, cat(resource("a"), unknownGroup)), varintField(nil, 77, 1)),
			cat(ss(bytesField(nil, 1, scope), cat(span, bytesField(nil, 1000, []byte("\xfe")))), unknownGroup),
		)), fixed64Field(nil, 5, 3))},
		{"records of the wrong wire type at every level", cat(traces(rs(
			cat(varintField(nil, 1, 1), varintField(nil, 2, 2)),
			cat(ss(nil, span), varintField(nil, 1, 3), varintField(nil, 2, 4)),
		)), varintField(nil, 1, 5))},
		{"resource in two records, schema_url twice", traces(
			cat(bytesField(nil, 1, service("a", false)), bytesField(nil, 3, []byte("s1")),
				rs(nil, ss(bytesField(nil, 1, scope), span)), bytesField(nil, 1, host(false)), bytesField(nil, 3, []byte("s2"))),
			rs(bytesField(nil, 1, resource("a")), ss(bytesField(nil, 1, scope), span)),
			rs(cat(bytesField(nil, 1, resource("a")), bytesField(nil, 3, []byte("s2"))), ss(bytesField(nil, 1, scope), span)),
		)},
		{"equal resources encoded differently merge", traces(
			rs(bytesField(nil, 1, resource("a")), ss(bytesField(nil, 1, scope), span)),
			rs(bytesField(nil, 1, resource("b")), ss(nil, span)),
			rs(cat(bytesField(nil, 3, nil), bytesField(nil, 1, cat(service("a", true), host(true)))), ss(cat(bytesField(nil, 3, nil), bytesField(nil, 1, reverse(t, scope))), span)),
			rs(cat(bytesField(nil, 1, nil), bytesField(nil, 3, nil)), ss(nil, span)),
			rs(nil, ss(varintField(nil, 3, 1), span)),
		)},
		{"empty containers", traces(rs(nil), rs(bytesField(nil, 1, resource("a")), ss(nil), ss(nil, span)), rs(nil, ss(bytesField(nil, 1, scope))))},
		{"overlong varints", traces(rs(nil, ss(nil, overlong(span))))},
		{"concatenated parts", cat(traces(rs(nil, ss(nil, span))), traces(rs(bytesField(nil, 1, resource("a")), ss(nil, span))), traces(rs(nil, ss(nil, span))))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.NoError(t, proto.Unmarshal(tt.td, &tracev1.TracesData{}), "a valid encoding")
			requireSameBlocks(t, WriterConfig{}, []model.TraceID{id}, [][]byte{tt.td})
		})
	}
}

// TestAddEncodedRejects: AddEncoded rejects with ErrInvalidTrace what
// proto.Unmarshal or Add rejects, and a rejected trace leaves nothing behind.
func TestAddEncodedRejects(t *testing.T) {
	id := model.TraceID{15: 1}
	other := model.TraceID{15: 2}
	good := func(id model.TraceID, name string) []byte {
		return mustMarshal(t, &tracev1.Span{TraceId: id[:], SpanId: []byte{1}, Name: name})
	}
	span := good(id, "op")
	attr := func(kv []byte) []byte { return bytesField(bytes.Clone(span), 9, kv) }
	tests := []struct {
		name        string
		id          model.TraceID
		td          []byte
		undecodable bool // proto.Unmarshal fails too
	}{
		{"zero trace ID", model.TraceID{}, traces(rs(nil, ss(nil, good(model.TraceID{}, "op")))), false},
		{"no bytes", id, nil, false},
		{"no spans", id, traces(rs(bytesField(nil, 1, nil), ss(nil)), rs(nil)), false},
		{"a span of another trace", id, traces(rs(nil, ss(nil, span, good(other, "x"), span))), false},
		{"a span without trace_id", id, traces(rs(nil, ss(nil, span, bytesField(nil, 5, []byte("x"))))), false},
		{"trace_id of 15 bytes", id, traces(rs(nil, ss(nil, bytesField(nil, 1, id[:15])))), false},
		{"right trace_id, then another", id, traces(rs(nil, ss(nil, bytesField(bytes.Clone(span), 1, other[:])))), false},
		{"truncated", id, traces(rs(nil, ss(nil, span)))[:12], true},
		{"length past the end", id, append(tag(nil, 1, protowire.BytesType), 0x7f, 1), true},
		{"bad varint", id, bytes.Repeat([]byte{0xff}, 11), true},
		{"field number 0", id, append(traces(rs(nil, ss(nil, span))), 0x00, 0x01), true},
		{"field number past the maximum in a span", id, traces(rs(nil, ss(nil, varintField(bytes.Clone(span), protowire.MaxValidNumber+1, 1)))), true},
		{"end group without a start", id, traces(rs(nil, ss(nil, tag(bytes.Clone(span), 20, protowire.EndGroupType)))), true},
		{"unterminated group", id, traces(rs(nil, ss(nil, tag(bytes.Clone(span), 20, protowire.StartGroupType)))), true},
		{"invalid wire type", id, traces(rs(nil, ss(nil, tag(bytes.Clone(span), 20, 6)))), true},
		{"span name not UTF-8", id, traces(rs(nil, ss(nil, bytesField(bytes.Clone(span), 5, []byte("\xff"))))), true},
		{"trace_state not UTF-8", id, traces(rs(nil, ss(nil, bytesField(bytes.Clone(span), 3, []byte("\xc3"))))), true},
		{"attribute key not UTF-8", id, traces(rs(nil, ss(nil, attr(bytesField(nil, 1, []byte("\xff")))))), true},
		{"nested string not UTF-8", id, traces(rs(nil, ss(nil, attr(bytesField(nil, 2,
			bytesField(nil, 6, bytesField(nil, 1, bytesField(nil, 2, bytesField(nil, 5, bytesField(nil, 1, bytesField(nil, 1, []byte("\xff")))))))))))), true},
		{"event name not UTF-8", id, traces(rs(nil, ss(nil, bytesField(bytes.Clone(span), 11, bytesField(nil, 2, []byte("\xff")))))), true},
		{"link malformed", id, traces(rs(nil, ss(nil, bytesField(bytes.Clone(span), 13, []byte{0x0a, 0x05})))), true},
		{"status message not UTF-8", id, traces(rs(nil, ss(nil, bytesField(bytes.Clone(span), 15, bytesField(nil, 2, []byte("\xff")))))), true},
		{"resource attribute not UTF-8", id, traces(rs(bytesField(nil, 1, bytesField(nil, 1, bytesField(nil, 1, []byte("\xff")))), ss(nil, span))), true},
		{"scope name not UTF-8", id, traces(rs(nil, ss(bytesField(nil, 1, bytesField(nil, 1, []byte("\xff"))), span))), true},
		{"schema_url not UTF-8, no spans", id, traces(rs(bytesField(nil, 3, []byte("\xff")))), true},
		{"entity ref key not UTF-8 in a resource", id, traces(rs(nil, ss(nil, span)), rs(bytesField(nil, 1, bytesField(nil, 3, bytesField(nil, 3, []byte("\xff")))))), true},
	}
	w, err := NewWriter(WriterConfig{}, t.TempDir(), testTenant, uuid.New())
	require.NoError(t, err)
	defer w.Abort()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			uerr := proto.Unmarshal(tt.td, &tracev1.TracesData{})
			require.Equal(t, tt.undecodable, uerr != nil, "proto.Unmarshal: %v", uerr)
			err := w.AddEncoded(tt.id, tt.td)
			require.ErrorIs(t, err, ErrInvalidTrace)
			require.Zero(t, w.rows.len(), "nothing of the rejected trace stays")
			require.False(t, w.hasLast)
		})
	}
	require.NoError(t, w.AddEncoded(id, traces(rs(nil, ss(nil, span)))))
	require.ErrorIs(t, w.AddEncoded(id, traces(rs(nil, ss(nil, span)))), ErrOutOfOrder)
	bkt := newMemBucket()
	meta, err := w.Finish(context.Background(), bkt)
	require.NoError(t, err)
	require.Equal(t, int64(1), meta.TotalTraces)
	require.Equal(t, int64(1), meta.TotalSpans)
	require.ErrorIs(t, w.AddEncoded(other, traces(rs(nil, ss(nil, good(other, "x"))))), ErrWriterClosed)
}

// TestAddEncodedNestingLimit: AddEncoded accepts exactly the nesting depth
// proto.Unmarshal accepts.
func TestAddEncodedNestingLimit(t *testing.T) {
	id := model.TraceID{15: 1}
	span := mustMarshal(t, &tracev1.Span{TraceId: id[:], SpanId: []byte{1}})
	// TracesData, ResourceSpans, ScopeSpans, Span and KeyValue are 5 levels.
	limit := protowire.DefaultRecursionLimit - 5
	var accepted, rejected int
	for _, levels := range []int{limit - 2, limit - 1, limit, limit + 1, limit + 2} {
		td := traces(rs(nil, ss(nil, bytesField(bytes.Clone(span), 9, bytesField(bytesField(nil, 1, []byte("deep")), 2, nestedAnyValue(levels))))))
		uerr := proto.Unmarshal(td, &tracev1.TracesData{})
		w, err := NewWriter(WriterConfig{}, t.TempDir(), testTenant, uuid.New())
		require.NoError(t, err)
		err = w.AddEncoded(id, td)
		w.Abort()
		if uerr != nil {
			require.ErrorIs(t, err, ErrInvalidTrace, "%d levels", levels)
			rejected++
		} else {
			require.NoError(t, err, "%d levels", levels)
			accepted++
		}
	}
	require.Equal(t, 3, accepted)
	require.Equal(t, 2, rejected)
}

// TestAddEncodedCanonicalCache: the cache of resource and scope values
// stays bounded and a full one changes nothing stored.
func TestAddEncodedCanonicalCache(t *testing.T) {
	defer func(n int) { maxCanonicalCache = n }(maxCanonicalCache)
	maxCanonicalCache = 20 << 10
	rng := rand.New(rand.NewPCG(8, 8))
	ids, traces := modeltest.Traces(rng, 150, 5)
	// Resources differ per trace so that the cache fills quickly.
	for i, td := range traces {
		for _, rs := range td.ResourceSpans {
			rs.Resource.Attributes = append(rs.Resource.Attributes, &commonv1.KeyValue{Key: "trace", Value: &commonv1.AnyValue{Value: &commonv1.AnyValue_IntValue{IntValue: int64(i)}}})
		}
	}
	requireSameBlocks(t, WriterConfig{}, ids, marshalAll(t, traces))

	var c canonicalCache
	for i := range 200 {
		key := bytesField(nil, 1, bytesField(nil, 1, bytesField(nil, 1, fmt.Appendf(nil, "%0*d", 1<<10, i))))
		_, err := c.resource(key)
		require.NoError(t, err)
		require.LessOrEqual(t, c.size, maxCanonicalCache)
	}
	require.Less(t, len(c.resources), 20)
}

// requireSameBlocks writes ids with encs through AddEncoded and through
// Unmarshal + Add, checks that each trace's rows agree, and that both blocks
// read back the same.
func requireSameBlocks(t testing.TB, cfg WriterConfig, ids []model.TraceID, encs [][]byte) {
	t.Helper()
	ctx := context.Background()
	wAdd, err := NewWriter(cfg, t.TempDir(), testTenant, uuid.New())
	require.NoError(t, err)
	defer wAdd.Abort()
	wEnc, err := NewWriter(cfg, t.TempDir(), testTenant, uuid.New())
	require.NoError(t, err)
	defer wEnc.Abort()
	for i, id := range ids {
		td := &tracev1.TracesData{}
		require.NoError(t, proto.Unmarshal(encs[i], td))
		require.NoError(t, wAdd.Add(id, td))
		require.NoError(t, wEnc.AddEncoded(id, encs[i]))
		requireSameRows(t, &wAdd.rows, &wEnc.rows, countSpans(td))
	}
	bktAdd, bktEnc := newMemBucket(), newMemBucket()
	metaAdd, err := wAdd.Finish(ctx, bktAdd)
	require.NoError(t, err)
	metaEnc, err := wEnc.Finish(ctx, bktEnc)
	require.NoError(t, err)
	mA, mE := *metaAdd, *metaEnc
	mA.BlockID, mA.Size, mE.BlockID, mE.Size = "", 0, "", 0
	require.Equal(t, mA, mE)

	rAdd, rEnc := NewReader(bktAdd, metaAdd), NewReader(bktEnc, metaEnc)
	for _, id := range ids {
		want, err := rAdd.FindTraceByID(ctx, id)
		require.NoError(t, err)
		require.NotNil(t, want)
		got, err := rEnc.FindTraceByID(ctx, id)
		require.NoError(t, err)
		require.True(t, proto.Equal(want, got), "trace %s:\nAdd        %v\nAddEncoded %v", id, want, got)
	}
}

// requireSameRows checks that the last n rows of a and b agree: every
// column equal, span blobs decoding to equal spans.
func requireSameRows(t testing.TB, a, b *rows, n int) {
	t.Helper()
	require.Equal(t, a.len(), b.len())
	type row struct {
		traceID, spanID, parentID string
		start, duration           int64
		name                      string
		kind, status              int32
		service, resource, scope  string
	}
	rowOf := func(r *rows, i int) row {
		return row{
			string(r.traceID[i]), string(r.spanID[i]), string(r.parentID[i]), r.start[i], r.duration[i], string(r.name[i]),
			r.kind[i], r.status[i], string(r.service[i]), string(r.resource[i]), string(r.scope[i]),
		}
	}
	for i := a.len() - n; i < a.len(); i++ {
		require.Equal(t, rowOf(a, i), rowOf(b, i), "row %d", i)
		sa, sb := &tracev1.Span{}, &tracev1.Span{}
		require.NoError(t, proto.Unmarshal(a.span[i], sa))
		require.NoError(t, proto.Unmarshal(b.span[i], sb))
		require.True(t, proto.Equal(sa, sb), "row %d: span blobs differ:\n%v\n%v", i, sa, sb)
	}
}

// walEncodings returns each trace as the ingester's WAL holds it: the parts
// model.SplitByTrace cut for it from several requests, concatenated. The
// spans of all traces are dealt at random into requests, each grouping its
// spans under their resource and scope as an SDK batch does; scrambled
// requests have their fields reordered and singular messages split.
func walEncodings(t testing.TB, rng *rand.Rand, ids []model.TraceID, traces []*tracev1.TracesData, requests int, scrambled bool) [][]byte {
	t.Helper()
	type placed struct {
		rs   *tracev1.ResourceSpans
		ss   *tracev1.ScopeSpans
		span *tracev1.Span
	}
	var all []placed
	for _, td := range traces {
		for _, rs := range td.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					all = append(all, placed{rs, ss, s})
				}
			}
		}
	}
	rng.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	parts := map[model.TraceID][][]byte{}
	desc := (&tracev1.TracesData{}).ProtoReflect().Descriptor()
	for r := range requests {
		req := &tracev1.TracesData{}
		rsOf := map[*tracev1.ResourceSpans]*tracev1.ResourceSpans{}
		ssOf := map[*tracev1.ScopeSpans]*tracev1.ScopeSpans{}
		for _, p := range all[r*len(all)/requests : (r+1)*len(all)/requests] {
			rs := rsOf[p.rs]
			if rs == nil {
				rs = &tracev1.ResourceSpans{Resource: p.rs.Resource, SchemaUrl: p.rs.SchemaUrl}
				rsOf[p.rs] = rs
				req.ResourceSpans = append(req.ResourceSpans, rs)
			}
			ss := ssOf[p.ss]
			if ss == nil {
				ss = &tracev1.ScopeSpans{Scope: p.ss.Scope, SchemaUrl: p.ss.SchemaUrl}
				ssOf[p.ss] = ss
				rs.ScopeSpans = append(rs.ScopeSpans, ss)
			}
			ss.Spans = append(ss.Spans, p.span)
		}
		b := mustMarshal(t, req)
		if scrambled {
			b = scramble(rng, b, desc)
		}
		split, err := model.SplitByTrace(b)
		require.NoError(t, err)
		for i, id := range split.IDs {
			parts[id] = append(parts[id], split.Traces[i])
		}
	}
	out := make([][]byte, len(ids))
	for i, id := range ids {
		require.NotEmpty(t, parts[id])
		out[i] = bytes.Join(parts[id], nil)
	}
	return out
}

// shareSpanIDs adds the server side of some CLIENT spans of td the way
// Zipkin reports an RPC: a SERVER span with the client's span and parent IDs,
// under the server's resource.
func shareSpanIDs(rng *rand.Rand, td *tracev1.TracesData) {
	var clients []*tracev1.Span
	for _, rs := range td.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				if s.Kind == tracev1.Span_SPAN_KIND_CLIENT || len(clients) == 0 {
					clients = append(clients, s)
				}
			}
		}
	}
	server := &tracev1.ScopeSpans{Scope: &commonv1.InstrumentationScope{Name: "zipkin"}}
	for i, c := range clients {
		if i > 0 && rng.IntN(2) == 0 {
			continue
		}
		s := proto.Clone(c).(*tracev1.Span)
		s.Kind = tracev1.Span_SPAN_KIND_SERVER
		s.Name = "handle " + c.Name
		s.StartTimeUnixNano += 1000
		s.EndTimeUnixNano -= 1000
		s.Attributes = s.Attributes[:1]
		server.Spans = append(server.Spans, s)
	}
	td.ResourceSpans = append(td.ResourceSpans, &tracev1.ResourceSpans{
		Resource: &resourcev1.Resource{Attributes: []*commonv1.KeyValue{
			{Key: "service.name", Value: &commonv1.AnyValue{Value: &commonv1.AnyValue_StringValue{StringValue: "zipkin-server"}}},
		}},
		ScopeSpans: []*tracev1.ScopeSpans{server},
	})
}

// scramble re-encodes the message b of type md, and every message in it, in
// a valid encoding other than proto.Marshal's: records shuffled (those of one
// field number keep their order, which repeated fields and "last one wins"
// depend on), and singular messages sometimes split into two records, which
// the decoder merges.
func scramble(rng *rand.Rand, b []byte, md protoreflect.MessageDescriptor) []byte {
	var (
		recs [][]byte
		nums []protowire.Number
	)
	err := forEachRecord(b, func(num protowire.Number, typ protowire.Type, raw, val []byte) error {
		if fd := md.Fields().ByNumber(num); fd != nil && fd.Message() != nil && typ == protowire.BytesType {
			inner := scramble(rng, val, fd.Message())
			if fd.IsList() || rng.IntN(3) > 0 {
				raw = bytesField(nil, num, inner)
			} else {
				cut := recordBoundary(rng, inner)
				raw = bytesField(bytesField(nil, num, inner[:cut]), num, inner[cut:])
			}
		}
		recs, nums = append(recs, raw), append(nums, num)
		return nil
	})
	if err != nil {
		panic(err) // scramble takes valid encodings only
	}
	slots := map[protowire.Number][]int{}
	for pos, i := range rng.Perm(len(recs)) {
		slots[nums[i]] = append(slots[nums[i]], pos)
	}
	out := make([][]byte, len(recs))
	for i, r := range recs {
		out[slots[nums[i]][0]] = r
		slots[nums[i]] = slots[nums[i]][1:]
	}
	return bytes.Join(out, nil)
}

// recordBoundary returns a random offset in the message b at which a record
// starts (or len(b)).
func recordBoundary(rng *rand.Rand, b []byte) int {
	offs := []int{0}
	_ = forEachRecord(b, func(_ protowire.Number, _ protowire.Type, raw, _ []byte) error {
		offs = append(offs, offs[len(offs)-1]+len(raw))
		return nil
	})
	return offs[rng.IntN(len(offs))]
}

// reverse returns the message b with its records in reverse order (the same
// message if no field has more than one record).
func reverse(t testing.TB, b []byte) []byte {
	var recs [][]byte
	require.NoError(t, forEachRecord(b, func(_ protowire.Number, _ protowire.Type, raw, _ []byte) error {
		recs = append([][]byte{raw}, recs...)
		return nil
	}))
	return bytes.Join(recs, nil)
}

// overlong re-encodes the records of b with every tag and length in a
// non-minimal varint, which decoders accept.
func overlong(b []byte) []byte {
	var out []byte
	_ = forEachRecord(b, func(num protowire.Number, typ protowire.Type, raw, val []byte) error {
		out = append(out, overlongVarint(protowire.EncodeTag(num, typ))...)
		if typ == protowire.BytesType {
			out = append(out, overlongVarint(uint64(len(val)))...)
			out = append(out, val...)
		} else {
			_, _, n := protowire.ConsumeTag(raw)
			out = append(out, raw[n:]...)
		}
		return nil
	})
	return out
}

func overlongVarint(v uint64) []byte {
	b := protowire.AppendVarint(nil, v)
	b[len(b)-1] |= 0x80
	return append(b, 0x00)
}

// nestedAnyValue encodes an AnyValue of arrays in arrays, levels (>= 1)
// messages deep.
func nestedAnyValue(levels int) []byte {
	var b []byte // AnyValue{}: one level
	if levels%2 == 0 {
		b = bytesField(nil, 5, nil) // AnyValue{array_value: {}}: two
	}
	for l := 2 - levels%2; l < levels; l += 2 {
		b = bytesField(nil, 5, bytesField(nil, 1, b)) // AnyValue{array_value: {values: [b]}}
	}
	return b
}

// cat concatenates encodings into a new slice.
func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// Raw encoding helpers: each appends one record to b.
func tag(b []byte, num protowire.Number, typ protowire.Type) []byte {
	return protowire.AppendTag(b, num, typ)
}

func bytesField(b []byte, num protowire.Number, v []byte) []byte {
	return protowire.AppendBytes(protowire.AppendTag(b, num, protowire.BytesType), v)
}

func varintField(b []byte, num protowire.Number, v uint64) []byte {
	return protowire.AppendVarint(protowire.AppendTag(b, num, protowire.VarintType), v)
}

func fixed64Field(b []byte, num protowire.Number, v uint64) []byte {
	return protowire.AppendFixed64(protowire.AppendTag(b, num, protowire.Fixed64Type), v)
}

// traces encodes a TracesData of the encoded ResourceSpans rss.
func traces(rss ...[]byte) []byte {
	var b []byte
	for _, r := range rss {
		b = bytesField(b, 1, r)
	}
	return b
}

// rs encodes a ResourceSpans: head (resource and other records), the
// encoded ScopeSpans ss as scope_spans, then tail records.
func rs(head []byte, scopeSpans ...[]byte) []byte {
	b := bytes.Clone(head)
	for _, s := range scopeSpans {
		b = bytesField(b, 2, s)
	}
	return b
}

// ss encodes a ScopeSpans: head records, then the encoded spans.
func ss(head []byte, spans ...[]byte) []byte {
	b := bytes.Clone(head)
	for _, s := range spans {
		b = bytesField(b, 2, s)
	}
	return b
}

func marshalAll(t testing.TB, traces []*tracev1.TracesData) [][]byte {
	encs := make([][]byte, len(traces))
	for i, td := range traces {
		encs[i] = mustMarshal(t, td)
	}
	return encs
}

func mustMarshal(t testing.TB, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	require.NoError(t, err)
	return b
}

// fuzzTraceID is the trace ID of FuzzAddEncoded and its seeds.
var fuzzTraceID = model.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36}

// TestUpdateAddEncodedSeeds rewrites the generated seeds of FuzzAddEncoded
// (go test -run TestUpdateAddEncodedSeeds -update-seeds ./storage/block/).
func TestUpdateAddEncodedSeeds(t *testing.T) {
	if !*updateSeeds {
		t.Skip("run with -update-seeds to rewrite testdata/fuzz/FuzzAddEncoded")
	}
	rng := rand.New(rand.NewPCG(2026, 4))
	one := modeltest.Trace(rng, fuzzTraceID, 1)
	three := modeltest.Trace(rng, fuzzTraceID, 3)
	zipkin := modeltest.Trace(rng, fuzzTraceID, 2)
	shareSpanIDs(rng, zipkin)
	ids := []model.TraceID{fuzzTraceID}
	threeB := mustMarshal(t, three)
	minimal := mustMarshal(t, &tracev1.Span{TraceId: fuzzTraceID[:], SpanId: []byte{1}, Name: "op", Status: &tracev1.Status{Code: 2}})
	seeds := map[string][]byte{
		"modeltest-one-span":    mustMarshal(t, one),
		"modeltest-three-spans": threeB,
		"wal-parts":             walEncodings(t, rng, ids, []*tracev1.TracesData{three}, 3, false)[0],
		"wal-parts-scrambled":   walEncodings(t, rng, ids, []*tracev1.TracesData{three}, 2, true)[0],
		"shared-span-ids":       mustMarshal(t, zipkin),
		"minimal":               traces(rs(nil, ss(nil, minimal))),
		"odd-encodings": traces(
			rs(varintField(nil, 1, 1), ss(varintField(nil, 3, 1), overlong(minimal), varintField(nil, 2, 2))),
			rs(bytesField(nil, 1, nil), ss(nil, varintField(fixed64Field(bytes.Clone(minimal), 7, 9), 6, 1<<33)), bytesField(nil, 99, []byte("\xff")))),
		"other-trace": traces(rs(nil, ss(nil, mustMarshal(t, &tracev1.Span{TraceId: make([]byte, 16), Name: "x"})))),
		"truncated":   threeB[:len(threeB)/2],
		"empty":       nil,
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzAddEncoded")
	require.NoError(t, os.RemoveAll(dir))
	require.NoError(t, os.MkdirAll(dir, 0o755))
	for name, b := range seeds {
		content := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)
		require.Less(t, len(content), 32<<10, "seed %s too big", name)
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644))
	}
}
