package frontend

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/vivace-dev/vivace/internal/model/modeltest"
	"github.com/vivace-dev/vivace/internal/vivacepb"
)

// TestTraceJSONAsProtojson checks batchesJSON and v2JSON against the
// protojson rendering they replaced: the same bytes once protojson's random
// spaces are removed.
func TestTraceJSONAsProtojson(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 8))
	traces := []*tracev1.TracesData{{}, {ResourceSpans: []*tracev1.ResourceSpans{{}}}}
	for _, spans := range []int{1, 7, 60, 400} {
		traces = append(traces, modeltest.Trace(rng, modeltest.IDs(rng, 1)[0], spans))
	}
	resps := []*vivacepb.TraceByIDResponse{
		{},
		{Metrics: &vivacepb.TraceByIDMetrics{}},
		{Metrics: &vivacepb.TraceByIDMetrics{InspectedBytes: 1 << 40}, Status: vivacepb.PartialStatus_PARTIAL, Message: "cut \"short\"\n"},
	}
	for i, td := range traces {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			want := []byte(`{"batches":[`)
			for i, rs := range td.ResourceSpans {
				if i > 0 {
					want = append(want, ',')
				}
				want = appendProtojson(t, want, rs)
			}
			want = append(want, "]}"...)
			require.Equal(t, string(want), string(batchesJSON(td)))

			for _, resp := range resps {
				want := appendProtojson(t, []byte(`{"trace":`), td)
				if rest := appendProtojson(t, nil, resp); len(rest) > 2 {
					want = append(append(want, ','), rest[1:]...)
				} else {
					want = append(want, '}')
				}
				got, err := v2JSON(td, resp)
				require.NoError(t, err)
				require.Equal(t, string(want), string(got))
			}
		})
	}
}

// appendProtojson appends m in protojson, without its random spaces.
func appendProtojson(t testing.TB, dst []byte, m proto.Message) []byte {
	t.Helper()
	j, err := protojson.Marshal(m)
	require.NoError(t, err)
	var b bytes.Buffer
	require.NoError(t, json.Compact(&b, j))
	return append(dst, b.Bytes()...)
}
