package integration

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"

	"github.com/vivace-dev/vivace/internal/model"
	"github.com/vivace-dev/vivace/internal/model/modeltest"
)

// soakDuration bounds TestSoak's traffic; the whole test stays under a minute.
const soakDuration = 20 * time.Second

// TestSoak: on one process, tenant "good" sends traces and reads each back
// at once while tenant "flood" sends far beyond its rate limit and tenant
// "garbage" sends malformed bodies to every HTTP receiver. The good tenant
// reads back every trace it was acknowledged, live and after a flush; the
// flood is refused with 429 and Retry-After, the garbage with 400, each
// counted under its tenant and reason; nothing of the good tenant is refused.
func TestSoak(t *testing.T) {
	overridesFile := filepath.Join(t.TempDir(), "overrides.yaml")
	require.NoError(t, os.WriteFile(overridesFile, []byte(`overrides:
  flood:
    ingestion:
      rate_limit_bytes: 50000
      burst_size_bytes: 100000
`), 0o644))
	v := startVivace(t, fmt.Sprintf(`multitenancy_enabled: true
overrides:
  per_tenant_override_config: %s
`, overridesFile), nil)

	ctx, cancel := context.WithTimeout(context.Background(), soakDuration)
	defer cancel()
	var wg sync.WaitGroup

	// The flood: two senders of 10-trace requests (about 25 kB) over
	// OTLP/HTTP, as fast as the server answers.
	var floodOK, floodLimited, floodOther atomic.Int64
	var retryAfter atomic.Value
	for w := range 2 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 99))
			for ctx.Err() == nil {
				_, traces := modeltest.Traces(rng, 10, 5)
				td := &tracev1.TracesData{}
				for _, tr := range traces {
					td.ResourceSpans = append(td.ResourceSpans, tr.ResourceSpans...)
				}
				body, err := proto.Marshal(td)
				if err != nil {
					panic(err)
				}
				code, hdr := post(ctx, "http://"+v.OTLPHTTP+"/v1/traces", "application/x-protobuf", "flood", body)
				switch code {
				case http.StatusOK:
					floodOK.Add(1)
				case http.StatusTooManyRequests:
					floodLimited.Add(1)
					retryAfter.Store(hdr.Get("Retry-After"))
				case 0: // the test's deadline cut the request
				default:
					floodOther.Add(1)
				}
			}
		})
	}

	// The garbage: malformed bodies to every HTTP receiver, in turn.
	garbage := []struct{ url, contentType string }{
		{"http://" + v.OTLPHTTP + "/v1/traces", "application/x-protobuf"},
		{"http://" + v.OTLPHTTP + "/v1/traces", "application/json"},
		{"http://" + v.Zipkin + "/api/v2/spans", "application/json"},
		{"http://" + v.Datadog + "/v0.4/traces", "application/msgpack"},
		{"http://" + v.JaegerHTTP + "/api/traces", "application/x-thrift"},
	}
	var garbageBad, garbageOther atomic.Int64
	var garbageOtherCodes sync.Map
	wg.Go(func() {
		rng := rand.New(rand.NewPCG(7, 7))
		for i := 0; ctx.Err() == nil; i++ {
			junk := make([]byte, 1+rng.IntN(2000))
			for k := range junk {
				junk[k] = byte(rng.UintN(256))
			}
			junk[0] = 0xff // never a valid start of any of these formats
			g := garbage[i%len(garbage)]
			code, _ := post(ctx, g.url, g.contentType, "garbage", junk)
			switch code {
			case http.StatusBadRequest:
				garbageBad.Add(1)
			case 0:
			default:
				garbageOther.Add(1)
				garbageOtherCodes.Store(g.url+" "+strconv.Itoa(code), true)
			}
			time.Sleep(5 * time.Millisecond)
		}
	})

	// The good tenant: one trace at a time over OTLP gRPC, each read back as
	// soon as it is acknowledged; a flush halfway through.
	conn, err := grpc.NewClient(v.OTLPGRPC, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	client := coltracepb.NewTraceServiceClient(conn)
	goodCtx := metadata.AppendToOutgoingContext(context.Background(), "x-scope-orgid", "good")
	rng := rand.New(rand.NewPCG(1, 1))
	sent := map[model.TraceID]*coltracepb.ExportTraceServiceRequest{}
	flushed := false
	start := time.Now()
	for ctx.Err() == nil {
		ids, traces := modeltest.Traces(rng, 1, 10)
		req := &coltracepb.ExportTraceServiceRequest{ResourceSpans: traces[0].ResourceSpans}
		_, err := client.Export(goodCtx, req)
		require.NoError(t, err, "the good tenant is never refused")
		sent[ids[0]] = req
		rec := &recorder{}
		rec.add(req)
		code, got := fetch(t, v, ids[0], "v2", true, "good")
		require.Equal(t, http.StatusOK, code, "trace %s read right after it was acknowledged", ids[0])
		require.Equal(t, flatten(t, rec.traces(t)[ids[0]]), flatten(t, got))
		if !flushed && time.Since(start) > soakDuration/2 {
			code, _, _ := v.get("/flush")
			require.Equal(t, http.StatusNoContent, code)
			flushed = true
		}
	}
	wg.Wait()
	t.Logf("good: %d traces, each read back; flood: %d accepted, %d refused (429); garbage: %d refused (400)",
		len(sent), floodOK.Load(), floodLimited.Load(), garbageBad.Load())

	require.NotEmpty(t, sent)
	require.Positive(t, floodLimited.Load(), "the flood hits its rate limit")
	require.Positive(t, floodOK.Load(), "the flood's share within the limit is taken")
	require.Zero(t, floodOther.Load(), "the flood gets only 200 or 429")
	ra, _ := retryAfter.Load().(string)
	secs, err := strconv.Atoi(ra)
	require.NoError(t, err, "Retry-After %q", ra)
	require.Positive(t, secs)
	require.Positive(t, garbageBad.Load())
	var others []string
	garbageOtherCodes.Range(func(k, _ any) bool { others = append(others, k.(string)); return true })
	require.Zero(t, garbageOther.Load(), "garbage gets 400: %v", others)

	require.Positive(t, v.metricMatching("vivace_discarded_spans_total", `tenant="flood"`, `reason="rate_limited"`))
	require.Zero(t, v.metricMatching("vivace_discarded_spans_total", `tenant="good"`))
	require.Positive(t, v.metric("vivace_receiver_refused_requests_total"))

	// Everything acknowledged to the good tenant is still there once flushed.
	v.flushAndWait(int(v.metric("vivace_ingester_blocks_flushed_total")) + 1)
	all := map[model.TraceID]*coltracepb.ExportTraceServiceRequest{}
	for id, req := range sent {
		all[id] = req
	}
	rec := &recorder{}
	for _, req := range all {
		rec.add(req)
	}
	requireAllFound(t, v, rec.traces(t), "good")
}

// post sends body and returns the status (0 when ctx ended first) and headers.
func post(ctx context.Context, url, contentType, tenant string, body []byte) (int, http.Header) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		panic(err)
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("X-Scope-OrgID", tenant)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header
}

// metricMatching sums the series of a metric whose labels contain every one
// of the given label="value" pairs.
func (v *vivace) metricMatching(name string, labels ...string) float64 {
	v.t.Helper()
	resp, err := http.Get("http://" + v.HTTP + "/metrics")
	require.NoError(v.t, err)
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	sum := 0.0
lines:
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") {
			continue
		}
		for _, l := range labels {
			if !strings.Contains(line, l) {
				continue lines
			}
		}
		f, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		require.NoError(v.t, err)
		sum += f
	}
	return sum
}
