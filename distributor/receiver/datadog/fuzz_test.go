package datadog

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/tinylib/msgp/msgp"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// dd-trace-go (TestDDTraceGo) keeps a few package-level goroutines
	// after Stop; they are its, not the receiver's.
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("github.com/DataDog/dd-trace-go/v2/internal/remoteconfig.(*Client).Start.func1"),
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
	)
}

var updateSeeds = flag.Bool("update-seeds", false, "rewrite the generated seed files under testdata/fuzz/")

// seeds are the generated seed inputs of each fuzz target; TestSeeds
// keeps them under testdata/fuzz/ so plain `go test` replays them.
func seeds() map[string]map[string][]byte {
	rich := []ddSpan{
		baseSpan(func(s *ddSpan) {
			s.Type, s.Error = "web", 1
			s.Meta = [][2]string{{"_dd.p.tid", "6578a1b200000000"}, {"span.kind", "server"}, {"env", "prod"}, {"error.message", "boom"}}
			s.Metrics = []metric{{"_sampling_priority_v1", 1}}
		}),
		baseSpan(func(s *ddSpan) { s.SpanID, s.ParentID = 9, spanID }),
	}
	v04 := appendV04(nil, rich)
	return map[string]map[string][]byte{
		"FuzzDecodeV04": {
			"rich":      v04,
			"empty":     msgp.AppendArrayHeader(nil, 0),
			"zero-ids":  appendV04(nil, []ddSpan{{Service: "s"}}),
			"truncated": v04[:len(v04)/2],
			"nil":       msgp.AppendNil(nil),
		},
		"FuzzDecodeV05": {
			"rich":      appendV05(nil, rich),
			"empty":     appendV05(nil),
			"bad-index": {0x92, 0x91, 0xa0, 0x91, 0x91, 0x9c, 0x05},
		},
		"FuzzDecodeV07": {
			"rich": appendV07(nil, v07Payload{ContainerID: "c", Lang: "python", LangVersion: "3.12", TracerVersion: "2.9.0", RuntimeID: "r",
				Env: "prod", Hostname: "h", AppVersion: "1", Tags: [][2]string{{"_dd.tags.process", "a:b"}},
				Chunks: []v07Chunk{{Priority: 1, Origin: "lambda", Tags: [][2]string{{"_dd.p.tid", "6578a1b200000000"}}, Spans: rich}, {Dropped: true}}}),
			"empty":     msgp.AppendMapHeader(nil, 0),
			"zero-ids":  appendV07(nil, chunksOf([]ddSpan{{Service: "s"}})),
			"truncated": v04[:len(v04)/2],
			"nil":       msgp.AppendNil(nil),
		},
		"FuzzDecodeJSON": {
			"rich":  []byte(`[[{"service":"web","name":"n","resource":"r","trace_id":1,"span_id":2,"parent_id":0,"start":1,"duration":2,"error":1,"meta":{"env":"prod","_dd.p.tid":"6578a1b200000000"},"metrics":{"m":1.5}}]]`),
			"empty": []byte(`[]`),
		},
	}
}

func TestSeeds(t *testing.T) {
	for target, files := range seeds() {
		for name, data := range files {
			path := filepath.Join("testdata", "fuzz", target, name)
			want := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", data)
			if *updateSeeds {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			got, err := os.ReadFile(path)
			if err != nil || string(got) != want {
				t.Errorf("%s is missing or stale: run go test -run TestSeeds -update-seeds", path)
			}
		}
	}
}

// fuzzDecoded checks that whatever a decoder accepts translates to OTLP
// the distributor can route.
func fuzzDecoded(t *testing.T, spans []span, err error) {
	if err != nil {
		return
	}
	req, kept, dropped := translate(spans, tracer{lang: "go"})
	if kept+dropped != len(spans) {
		t.Fatalf("kept %d + dropped %d != %d spans", kept, dropped, len(spans))
	}
	requireRoutable(t, req, kept)
}

func FuzzDecodeV04(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) { spans, err := decodeV04(b); fuzzDecoded(t, spans, err) })
}

func FuzzDecodeV05(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) { spans, err := decodeV05(b); fuzzDecoded(t, spans, err) })
}

func FuzzDecodeV07(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		tr := tracer{lang: "go"}
		spans, err := decodeV07(b, &tr)
		if err != nil {
			return
		}
		req, kept, dropped := translate(spans, tr)
		if kept+dropped != len(spans) {
			t.Fatalf("kept %d + dropped %d != %d spans", kept, dropped, len(spans))
		}
		requireRoutable(t, req, kept)
	})
}

func FuzzDecodeJSON(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) { spans, err := decodeJSON(b); fuzzDecoded(t, spans, err) })
}
