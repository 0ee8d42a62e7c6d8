package opencensus

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	agenttracepb "github.com/census-instrumentation/opencensus-proto/gen-go/agent/trace/v1"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

var updateSeeds = flag.Bool("update-seeds", false, "rewrite the generated seed files under testdata/fuzz/")

// seeds are the generated seed inputs of each fuzz target; TestSeeds
// keeps them under testdata/fuzz/ so plain `go test` replays them.
func seeds(tb testing.TB) map[string]map[string][]byte {
	enc := func(m *agenttracepb.ExportTraceServiceRequest) []byte {
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
		require.NoError(tb, err)
		return b
	}
	export := map[string][]byte{"empty": {}}
	for _, tc := range translateCases {
		for i, m := range tc.in {
			export[fmt.Sprintf("%s-%d", tc.name, i)] = enc(m)
		}
	}
	rich := export["span-fields-0"]
	export["truncated"] = rich[:len(rich)/2]
	export["bad-utf8-name"] = []byte{0x12, 0x05, 0x22, 0x03, 0x0a, 0x01, 0xff} // spans{name{value: "\xff"}}
	return map[string]map[string][]byte{"FuzzExport": export}
}

func TestSeeds(t *testing.T) {
	for target, files := range seeds(t) {
		for name, data := range files {
			path := filepath.Join("testdata", "fuzz", target, name)
			want := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", data)
			if *updateSeeds {
				require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
				require.NoError(t, os.WriteFile(path, []byte(want), 0o644))
				continue
			}
			got, err := os.ReadFile(path)
			if err != nil || string(got) != want {
				t.Errorf("%s is missing or stale: run go test -run TestSeeds -update-seeds", path)
			}
		}
	}
}

// FuzzExport feeds Export messages through the handler's decode, translate
// and push, and through the translation as the first and as a later
// message of a stream: anything accepted must be OTLP the distributor can
// route, anything refused must be InvalidArgument with a reason.
func FuzzExport(f *testing.F) {
	r, err := New(testConfig(), false, &fakePusher{}, discardLogger(), prometheus.NewRegistry())
	require.NoError(f, err)
	f.Fuzz(func(t *testing.T, b []byte) {
		var st stream
		if err := r.exportMessage(context.Background(), &st, "t", b); err != nil {
			require.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)
			require.Zero(t, r.refusedCount("rejected"), "the translation made OTLP the distributor refuses: %v", err)
		}

		var msg agenttracepb.ExportTraceServiceRequest
		if proto.Unmarshal(b, &msg) != nil {
			return
		}
		for _, st := range []*stream{{}, {node: testNode("web")}} {
			req, n, err := st.next(&msg)
			if err != nil {
				var br *badRequest
				require.True(t, errors.As(err, &br), "%T: %v", err, err)
				require.NotEmpty(t, br.reason)
				continue
			}
			requireRoutable(t, req, n)
		}
	})
}
