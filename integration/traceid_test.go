package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonv1 "go.opentelemetry.io/proto/otlp/common/v1"
	resourcev1 "go.opentelemetry.io/proto/otlp/resource/v1"
	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/vivace-dev/vivace/internal/model"
	"github.com/vivace-dev/vivace/internal/vivacepb"
)

// The traces of TestTraceIDForms.
const (
	idW3C      = "4bf92f3577b34da6a3ce929d0e0e4736" // 128-bit; its low half is the Datadog ID 11803532876627986230
	idShort    = "00000000000000000000000000abcdef" // a short hex ID, left-padded
	idDatadog  = "0000000000000000112210f47de98115" // 64-bit: the decimal 1234567890123456789
	idLowOnly  = "5b5d3ea0cc6f1d2e891087b8e3b70cb1" // 128-bit; its low half is the decimal 9876543210987654321
	idHexRead  = "00000000000000000000004567890123" // "4567890123" read as hex
	idDecRead  = "000000000000000000000001104478cb" // "4567890123" read as decimal
	idHexAlone = "00000000000000000000000000777777" // "777777" read as hex; read as decimal it is absent
)

// sendIDs exports one trace per ID over OTLP gRPC, each of two spans whose
// span IDs are the same in every trace (mixing two traces up would show).
func sendIDs(t *testing.T, v *vivace, ids ...string) map[string]*tracev1.TracesData {
	t.Helper()
	conn, err := grpc.NewClient(v.OTLPGRPC, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	now := uint64(time.Now().UnixNano())
	out := map[string]*tracev1.TracesData{}
	req := &coltracepb.ExportTraceServiceRequest{}
	for _, s := range ids {
		id, err := model.ParseTraceID(s)
		require.NoError(t, err)
		span := func(sid byte, parent []byte) *tracev1.Span {
			return &tracev1.Span{TraceId: id[:], SpanId: []byte{0, 0, 0, 0, 0, 0, 0, sid}, ParentSpanId: parent,
				Name: "op-" + s, Kind: tracev1.Span_SPAN_KIND_SERVER, StartTimeUnixNano: now, EndTimeUnixNano: now + 1e6}
		}
		rs := &tracev1.ResourceSpans{
			Resource: &resourcev1.Resource{Attributes: []*commonv1.KeyValue{{Key: "service.name",
				Value: &commonv1.AnyValue{Value: &commonv1.AnyValue_StringValue{StringValue: "kong"}}}}},
			ScopeSpans: []*tracev1.ScopeSpans{{Spans: []*tracev1.Span{span(1, nil), span(2, []byte{0, 0, 0, 0, 0, 0, 0, 1})}}},
		}
		req.ResourceSpans = append(req.ResourceSpans, rs)
		out[s] = &tracev1.TracesData{ResourceSpans: []*tracev1.ResourceSpans{rs}}
	}
	_, err = coltracepb.NewTraceServiceClient(conn).Export(context.Background(), req)
	require.NoError(t, err)
	return out
}

// idAnswer is a trace-by-ID answer, whatever its shape.
type idAnswer struct {
	code    int
	body    string
	td      *tracev1.TracesData
	status  vivacepb.PartialStatus
	message string
	warning string
}

func getByPastedID(t *testing.T, v *vivace, api string, asProto bool, pasted string) idAnswer {
	t.Helper()
	path := "/api/traces/" + url.PathEscape(pasted)
	if api == "v2" {
		path = "/api/v2/traces/" + url.PathEscape(pasted)
	}
	var headers []string
	if asProto {
		headers = []string{"Accept", "application/protobuf"}
	}
	code, body, hdr := v.get(path, headers...)
	a := idAnswer{code: code, body: string(body), td: &tracev1.TracesData{}}
	if w := hdr.Get("Warning"); w != "" {
		quoted, ok := strings.CutPrefix(w, "299 - ")
		require.True(t, ok, w)
		var err error
		a.warning, err = strconv.Unquote(quoted)
		require.NoError(t, err)
	}
	if code != http.StatusOK {
		return a
	}
	switch {
	case api == "v1" && asProto:
		require.NoError(t, proto.Unmarshal(body, a.td))
	case api == "v1":
		var doc struct{ Batches []json.RawMessage }
		require.NoError(t, json.Unmarshal(body, &doc))
		for _, b := range doc.Batches {
			rs := &tracev1.ResourceSpans{}
			require.NoError(t, protojson.Unmarshal(b, rs))
			a.td.ResourceSpans = append(a.td.ResourceSpans, rs)
		}
	case asProto:
		resp := &vivacepb.TraceByIDResponse{}
		require.NoError(t, proto.Unmarshal(body, resp))
		require.NoError(t, proto.Unmarshal(resp.Trace, a.td))
		a.status, a.message = resp.Status, resp.Message
	default:
		var doc struct {
			Trace   json.RawMessage
			Status  string
			Message string
		}
		require.NoError(t, json.Unmarshal(body, &doc))
		require.NoError(t, protojson.Unmarshal(doc.Trace, a.td))
		a.status, a.message = vivacepb.PartialStatus(vivacepb.PartialStatus_value[doc.Status]), doc.Message
	}
	return a
}

// TestTraceIDForms: a trace is found by every form of its ID users paste,
// on /api/traces and /api/v2/traces (JSON and protobuf) and by TraceQL
// trace:id, while live and from blocks alone: 32 hex digits, fewer, upper
// case, a traceparent, a UUID, a decimal Datadog ID (also of a 128-bit trace
// whose low half it is, as Kong's serialized log prints it), and a decimal
// string whose hex and decimal readings both exist.
func TestTraceIDForms(t *testing.T) {
	v := startVivace(t, "", nil)
	sent := sendIDs(t, v, idW3C, idShort, idDatadog, idLowOnly, idHexRead, idDecRead, idHexAlone)
	cases := []struct {
		name    string
		pasted  string
		want    []string
		partial bool
		message string // in v2's message and the Warning header
		code    int
		body    string
	}{
		{name: "32 hex digits", pasted: idW3C, want: []string{idW3C}},
		{name: "upper case", pasted: strings.ToUpper(idW3C), want: []string{idW3C}},
		{name: "UUID", pasted: "4bf92f35-77b3-4da6-a3ce-929d0e0e4736", want: []string{idW3C}},
		{name: "traceparent", pasted: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", want: []string{idW3C}},
		{name: "fewer hex digits", pasted: "abcdef", want: []string{idShort}},
		{name: "fewer hex digits, upper case", pasted: "ABCDEF", want: []string{idShort}},
		{name: "Datadog decimal of a 64-bit trace", pasted: "1234567890123456789", want: []string{idDatadog}},
		{
			name: "Kong's Datadog decimal, low half of a 128-bit trace", pasted: "11803532876627986230", want: []string{idW3C},
			message: "no trace has the ID 0000000000000000a3ce929d0e0e4736; this is trace " + idW3C + ", whose low 64 bits match",
		},
		{name: "decimal, low half of another 128-bit trace", pasted: "9876543210987654321", want: []string{idLowOnly}, message: "whose low 64 bits match"},
		{name: "64-bit hex, low half", pasted: "a3ce929d0e0e4736", want: []string{idW3C}, message: "whose low 64 bits match"},
		{
			name: "ambiguous decimal: both readings exist", pasted: "4567890123", want: []string{idHexRead, idDecRead}, partial: true,
			message: `trace ID "4567890123" matches 2 traces, shown together: ` + idHexRead + ` (read as hex), ` + idDecRead + ` (read as decimal)`,
		},
		{name: "decimal whose hex reading alone exists", pasted: "777777", want: []string{idHexAlone}},
		{name: "nowhere", pasted: "42424242", code: http.StatusNotFound, body: "trace not found: looked up"},
		{name: "garbage", pasted: "xyz", code: http.StatusBadRequest, body: `"xyz" has 'x' at position 1`},
	}
	window := url.Values{
		"start": {strconv.FormatInt(time.Now().Add(-time.Hour).Unix(), 10)},
		"end":   {strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10)},
	}
	check := func(stage string) {
		for _, tc := range cases {
			for _, api := range []string{"v1", "v2"} {
				for _, asProto := range []bool{false, true} {
					where := fmt.Sprintf("%s: %s: %s proto=%v", stage, tc.name, api, asProto)
					got := getByPastedID(t, v, api, asProto, tc.pasted)
					if tc.code != 0 {
						require.Equal(t, tc.code, got.code, where)
						require.Contains(t, got.body, tc.body, where)
						continue
					}
					require.Equal(t, http.StatusOK, got.code, "%s: %s", where, got.body)
					var want []string
					for _, id := range tc.want {
						want = append(want, flatten(t, sent[id])...)
					}
					slices.Sort(want)
					require.Equal(t, want, flatten(t, got.td), where)
					if tc.message == "" {
						require.Empty(t, got.warning, where)
					} else {
						require.Contains(t, got.warning, tc.message, where)
					}
					if api == "v2" {
						require.Equal(t, tc.partial, got.status == vivacepb.PartialStatus_PARTIAL, where)
						if tc.message != "" {
							require.Contains(t, got.message, tc.message, where)
						}
					}
				}
			}
			if tc.code != 0 {
				continue
			}
			params := url.Values{"q": {fmt.Sprintf(`{ trace:id = %q }`, tc.pasted)}, "start": window["start"], "end": window["end"]}
			code, body, _ := v.get("/api/search?" + params.Encode())
			require.Equal(t, http.StatusOK, code, "%s: %s: search: %s", stage, tc.name, body)
			var res searchResponse
			decodeStrict(t, body, &res)
			var found []string
			for _, tr := range res.Traces {
				id, err := model.ParseTraceID(tr.TraceID)
				require.NoError(t, err)
				found = append(found, id.String())
			}
			slices.Sort(found)
			want := slices.Sorted(slices.Values(tc.want))
			require.Equal(t, want, found, "%s: %s: TraceQL", stage, tc.name)
		}
	}
	check("live")

	v.flushAndWait(1)
	v.stop()
	require.NoError(t, os.RemoveAll(filepath.Join(v.dataDir, "wal")))
	v.start()
	check("blocks only")
}
