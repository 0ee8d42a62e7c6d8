package frontend_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/google/uuid"
	"github.com/grafana/dskit/kv/consul"
	"github.com/grafana/dskit/ring"
	"github.com/grafana/dskit/services"
	"github.com/grafana/dskit/user"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	commonv1 "go.opentelemetry.io/proto/otlp/common/v1"
	resourcev1 "go.opentelemetry.io/proto/otlp/resource/v1"
	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/vivace-dev/vivace/frontend"
	"github.com/vivace-dev/vivace/ingester"
	"github.com/vivace-dev/vivace/internal/model"
	"github.com/vivace-dev/vivace/internal/overrides"
	"github.com/vivace-dev/vivace/internal/vivacepb"
	"github.com/vivace-dev/vivace/querier"
	"github.com/vivace-dev/vivace/storage/block"
	"github.com/vivace-dev/vivace/storage/blocklist"
	"github.com/vivace-dev/vivace/storage/fs"
)

// The traces of TestTraceIDForms, by role.
const (
	idW3C      = "4bf92f3577b34da6a3ce929d0e0e4736" // live; its low half is 11803532876627986230
	idShort    = "00000000000000000000000000abcdef" // in a block
	idDatadog  = "0000000000000000112210f47de98115" // live: the decimal 1234567890123456789
	idLowBlock = "5b5d3ea0cc6f1d2e891087b8e3b70cb1" // in a block; its low half is 9876543210987654321
	idHexRead  = "00000000000000000000004567890123" // live: "4567890123" read as hex
	idDecRead  = "000000000000000000000001104478cb" // in a block: "4567890123" read as decimal
	idHexOnly  = "00000000000000000000000000777777" // live: "777777" read as hex; its decimal reading is absent
)

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// oneRing is a ring of one ingester, which owns every trace.
type oneRing struct{ inst ring.InstanceDesc }

func (r oneRing) Get(uint32, ring.Operation, []ring.InstanceDesc, []string, []string) (ring.ReplicationSet, error) {
	return ring.ReplicationSet{Instances: []ring.InstanceDesc{r.inst}}, nil
}
func (oneRing) ReplicationFactor() int { return 1 }
func (oneRing) InstancesCount() int    { return 1 }
func (r oneRing) GetReplicationSetForOperation(ring.Operation) (ring.ReplicationSet, error) {
	return ring.ReplicationSet{Instances: []ring.InstanceDesc{r.inst}}, nil
}

func mustID(t testing.TB, s string) model.TraceID {
	t.Helper()
	id, err := model.ParseTraceID(s)
	require.NoError(t, err)
	return id
}

// idTrace is a trace of two spans whose span IDs are the same in every
// trace, so that mixing two traces up would show.
func idTrace(id model.TraceID) *tracev1.TracesData {
	base := uint64(time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC).UnixNano())
	span := func(sid byte, parent []byte) *tracev1.Span {
		return &tracev1.Span{TraceId: id[:], SpanId: []byte{0, 0, 0, 0, 0, 0, 0, sid}, ParentSpanId: parent, Name: "op-" + id.String(),
			Kind: tracev1.Span_SPAN_KIND_SERVER, StartTimeUnixNano: base, EndTimeUnixNano: base + 1e6}
	}
	return &tracev1.TracesData{ResourceSpans: []*tracev1.ResourceSpans{{
		Resource: &resourcev1.Resource{Attributes: []*commonv1.KeyValue{{Key: "service.name",
			Value: &commonv1.AnyValue{Value: &commonv1.AnyValue_StringValue{StringValue: "svc"}}}}},
		ScopeSpans: []*tracev1.ScopeSpans{{Spans: []*tracev1.Span{span(1, nil), span(2, []byte{0, 0, 0, 0, 0, 0, 0, 1})}}},
	}}}
}

// idPieces is a real ingester holding the live traces, real blocks in a
// local bucket holding the others, and a real querier over both.
func idPieces(t *testing.T) *querier.Querier {
	t.Helper()
	bkt, err := fs.New(t.TempDir())
	require.NoError(t, err)
	for i, ids := range [][]string{{idShort, idDecRead}, {idLowBlock}} {
		w, err := block.NewWriter(block.WriterConfig{}, t.TempDir(), model.SingleTenant, uuid.MustParse(fmt.Sprintf("%d0000000-0000-4000-8000-000000000000", i+1)))
		require.NoError(t, err)
		for _, s := range ids { // sorted
			require.NoError(t, w.Add(mustID(t, s), idTrace(mustID(t, s))))
		}
		_, err = w.Finish(context.Background(), bkt)
		require.NoError(t, err)
	}

	var cfg ingester.Config
	cfg.RegisterFlagsAndApplyDefaults("ingester", flag.NewFlagSet("", flag.PanicOnError))
	cfg.WALPath = t.TempDir()
	cfg.MaxBlockDuration, cfg.MaxBlockBytes, cfg.CompleteBlockTimeout = time.Hour, 1<<40, time.Hour
	kv, closer := consul.NewInMemoryClient(ring.GetCodec(), log.NewNopLogger(), nil)
	t.Cleanup(func() { closer.Close() })
	lc := &cfg.Lifecycler
	lc.RingConfig.KVStore.Mock = kv
	lc.RingConfig.ReplicationFactor = 1
	lc.Addr, lc.ID, lc.MinReadyDuration = "127.0.0.1", "ingester-1", 0
	var limits overrides.Config
	limits.RegisterFlagsAndApplyDefaults("overrides", flag.NewFlagSet("", flag.PanicOnError))
	ing, err := ingester.New(cfg, bkt, overrides.NewStatic(limits.Defaults), discard(), prometheus.NewRegistry())
	require.NoError(t, err)
	require.NoError(t, services.StartAndAwaitRunning(context.Background(), ing))
	t.Cleanup(func() { require.NoError(t, services.StopAndAwaitTerminated(context.Background(), ing)) })
	push := &vivacepb.PushRequest{}
	for _, s := range []string{idW3C, idDatadog, idHexRead, idHexOnly} {
		id := mustID(t, s)
		b, err := proto.Marshal(idTrace(id))
		require.NoError(t, err)
		push.Ids, push.Traces = append(push.Ids, id[:]), append(push.Traces, b)
	}
	_, err = ing.Push(user.InjectOrgID(context.Background(), model.SingleTenant), push)
	require.NoError(t, err)

	reg := prometheus.NewRegistry()
	list := blocklist.New(bkt, time.Hour, discard(), reg)
	require.NoError(t, list.Poll(context.Background()))
	return querier.New(querier.Ingesters{
		Ring:    oneRing{ring.InstanceDesc{Id: "ingester-1", Addr: "127.0.0.1", State: ring.ACTIVE}},
		Client:  func(ring.InstanceDesc) (querier.IngesterClient, error) { return ing, nil },
		Timeout: time.Minute,
	}, bkt, list, discard(), reg)
}

// traceAnswer is what one trace-by-ID answer holds, whatever its shape.
type traceAnswer struct {
	code    int
	body    string
	ids     []string // trace IDs of the spans, sorted, each once
	spans   int
	status  vivacepb.PartialStatus
	message string
	warning string
}

func getTrace(t *testing.T, h http.Handler, api string, asProto bool, pasted string) traceAnswer {
	t.Helper()
	path := "/api/traces/" + pasted
	if api == "v2" {
		path = "/api/v2/traces/" + pasted
	}
	headers := map[string]string{}
	if asProto {
		headers["Accept"] = "application/protobuf"
	}
	rec := get(t, h, path, headers)
	a := traceAnswer{code: rec.Code, body: rec.Body.String()}
	if w := rec.Header().Get("Warning"); w != "" {
		// RFC 9111 5.5: warn-code warn-agent "warn-text".
		quoted, ok := strings.CutPrefix(w, "299 - ")
		require.True(t, ok, w)
		var err error
		a.warning, err = strconv.Unquote(quoted)
		require.NoError(t, err)
	}
	if rec.Code != http.StatusOK {
		return a
	}
	td := &tracev1.TracesData{}
	switch {
	case api == "v1" && asProto:
		require.NoError(t, proto.Unmarshal(rec.Body.Bytes(), td))
	case api == "v1":
		var doc struct{ Batches []json.RawMessage }
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &doc))
		for _, b := range doc.Batches {
			rs := &tracev1.ResourceSpans{}
			require.NoError(t, protojson.Unmarshal(b, rs))
			td.ResourceSpans = append(td.ResourceSpans, rs)
		}
	case asProto:
		resp := &vivacepb.TraceByIDResponse{}
		require.NoError(t, proto.Unmarshal(rec.Body.Bytes(), resp))
		require.NoError(t, proto.Unmarshal(resp.Trace, td))
		a.status, a.message = resp.Status, resp.Message
	default:
		var doc struct {
			Trace   json.RawMessage
			Status  string
			Message string
		}
		require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &doc))
		require.NoError(t, protojson.Unmarshal(doc.Trace, td))
		a.status, a.message = vivacepb.PartialStatus(vivacepb.PartialStatus_value[doc.Status]), doc.Message
	}
	for _, rs := range td.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				a.ids = append(a.ids, model.TraceID(s.TraceId).String())
				a.spans++
			}
		}
	}
	slices.Sort(a.ids)
	a.ids = slices.Compact(a.ids)
	return a
}

// TestTraceIDForms looks traces up by every form of ID users paste, on v1
// and v2, JSON and protobuf, through the frontend's jobs on a real querier
// over a real ingester (live traces) and real blocks; and checks that TraceQL
// trace:id finds the same traces.
func TestTraceIDForms(t *testing.T) {
	q := idPieces(t)
	h, _ := newServer(t, q, setup{shards: 2})
	for _, tc := range []struct {
		name    string
		pasted  string
		want    []string // trace IDs answered; none for an error
		partial bool     // v2 status
		message string   // in the v2 message and the Warning header; "" for none
		code    int      // when not 200
		body    string   // substring of the error body
	}{
		{name: "32 hex digits", pasted: idW3C, want: []string{idW3C}},
		{name: "upper case", pasted: strings.ToUpper(idW3C), want: []string{idW3C}},
		{name: "UUID", pasted: "4bf92f35-77b3-4da6-a3ce-929d0e0e4736", want: []string{idW3C}},
		{name: "traceparent", pasted: "00-" + idW3C + "-00f067aa0ba902b7-01", want: []string{idW3C}},
		{name: "fewer hex digits", pasted: "abcdef", want: []string{idShort}},
		{name: "fewer hex digits, upper case, some zeros", pasted: "00ABCDEF", want: []string{idShort}},
		{name: "decimal Datadog ID of a 64-bit trace", pasted: "1234567890123456789", want: []string{idDatadog}},
		{
			name: "decimal Datadog ID, low half of a live 128-bit trace", pasted: "11803532876627986230",
			want: []string{idW3C}, message: "no trace has the ID 0000000000000000a3ce929d0e0e4736; this is trace " + idW3C + ", whose low 64 bits match",
		},
		{
			name: "decimal Datadog ID, low half of a 128-bit trace in a block", pasted: "9876543210987654321",
			want: []string{idLowBlock}, message: "whose low 64 bits match",
		},
		{name: "16 hex digits, low half of a 128-bit trace", pasted: "a3ce929d0e0e4736", want: []string{idW3C}, message: "whose low 64 bits match"},
		{name: "traceparent of a 64-bit tracer", pasted: "00-0000000000000000a3ce929d0e0e4736-00f067aa0ba902b7-01", want: []string{idW3C}, message: "whose low 64 bits match"},
		{
			name: "ambiguous decimal: both readings exist", pasted: "4567890123",
			want: []string{idHexRead, idDecRead}, partial: true,
			message: `trace ID "4567890123" matches 2 traces, shown together: ` + idHexRead + ` (read as hex), ` + idDecRead + ` (read as decimal). Open one by its 32-digit ID to see it alone`,
		},
		{name: "decimal whose hex reading alone exists", pasted: "777777", want: []string{idHexOnly}},
		{
			name: "decimal that is nowhere", pasted: "42424242", code: http.StatusNotFound,
			body: "trace not found: looked up 00000000000000000000000042424242 (read as hex) and 000000000000000000000000028757b2 (read as decimal), and 128-bit IDs by their low 64 bits",
		},
		{name: "hex that is nowhere", pasted: "ff", code: http.StatusNotFound, body: "trace not found\n"},
		{name: "garbage", pasted: "xyz", code: http.StatusBadRequest, body: `invalid trace ID: "xyz" has 'x' at position 1, only hex digits are allowed`},
		{name: "dashes of no known shape", pasted: "12-34", code: http.StatusBadRequest, body: "neither a UUID (8-4-4-4-12 hex digits) nor a traceparent"},
		{name: "too long", pasted: strings.Repeat("1", 129), code: http.StatusBadRequest, body: "at most 128 are allowed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, api := range []string{"v1", "v2"} {
				for _, asProto := range []bool{false, true} {
					got := getTrace(t, h, api, asProto, tc.pasted)
					where := fmt.Sprintf("%s proto=%v", api, asProto)
					if tc.code != 0 {
						require.Equal(t, tc.code, got.code, where)
						require.Contains(t, got.body, tc.body, where)
						continue
					}
					require.Equal(t, http.StatusOK, got.code, "%s: %s", where, got.body)
					want := slices.Clone(tc.want)
					slices.Sort(want)
					require.Equal(t, want, got.ids, where)
					require.Equal(t, 2*len(tc.want), got.spans, "%s: every span of every trace, once", where)
					if tc.message == "" {
						require.Empty(t, got.warning, where)
					} else {
						require.Contains(t, got.warning, tc.message, where)
					}
					if api == "v2" {
						require.Equal(t, tc.partial, got.status == vivacepb.PartialStatus_PARTIAL, where)
						if tc.message == "" {
							require.Empty(t, got.message, where)
						} else {
							require.Contains(t, got.message, tc.message, where)
						}
					}
				}
			}
			if tc.code != 0 {
				return
			}
			// TraceQL: trace:id = "<what was pasted>" finds the same traces.
			res, err := q.Search(user.InjectOrgID(context.Background(), model.SingleTenant), &vivacepb.SearchJob{Query: fmt.Sprintf(`{ trace:id = %q }`, tc.pasted)})
			require.NoError(t, err)
			var found []string
			for _, tr := range res.Traces {
				found = append(found, tr.TraceID)
			}
			slices.Sort(found)
			want := slices.Clone(tc.want)
			slices.Sort(want)
			require.Equal(t, want, found, "TraceQL")
		})
	}
}

// partialQuerier answers ingester jobs with its trace, and block jobs with
// nothing but a PARTIAL status, as a querier that skipped a corrupt block.
type partialQuerier struct {
	frontend.Querier
	trace []byte
}

func (q partialQuerier) FindTraceByID(_ context.Context, req *vivacepb.TraceByIDRequest) (*vivacepb.TraceByIDResponse, error) {
	if req.QueryMode == "ingesters" {
		return &vivacepb.TraceByIDResponse{Trace: q.trace}, nil
	}
	return &vivacepb.TraceByIDResponse{Status: vivacepb.PartialStatus_PARTIAL, Message: "corrupt block 10000000-0000-4000-8000-000000000000 skipped: spans held there are missing"}, nil
}

// TestTraceByIDCorruptBlockPartial: a querier's PARTIAL answer (a corrupt
// block skipped) makes the v2 answer PARTIAL with its message, v1 carries it
// in a Warning header, and a 404 says it.
func TestTraceByIDCorruptBlockPartial(t *testing.T) {
	id, td := fixedTrace()
	b, err := proto.Marshal(td)
	require.NoError(t, err)
	const msg = "corrupt block 10000000-0000-4000-8000-000000000000 skipped"
	h, _ := newServer(t, partialQuerier{trace: b}, setup{shards: 2})

	v2 := getTrace(t, h, "v2", false, id.String())
	require.Equal(t, http.StatusOK, v2.code)
	require.Equal(t, vivacepb.PartialStatus_PARTIAL, v2.status)
	require.Contains(t, v2.message, msg)
	require.Equal(t, model.SpanCount(td), v2.spans)
	v1 := getTrace(t, h, "v1", true, id.String())
	require.Equal(t, http.StatusOK, v1.code)
	require.Contains(t, v1.warning, msg)

	h, _ = newServer(t, partialQuerier{}, setup{shards: 2})
	nf := getTrace(t, h, "v2", false, id.String())
	require.Equal(t, http.StatusNotFound, nf.code)
	require.Equal(t, "trace not found: "+msg+": spans held there are missing\n", nf.body)
}
