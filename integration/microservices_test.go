package integration

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/vivace-dev/vivace/internal/model"
	"github.com/vivace-dev/vivace/internal/model/modeltest"
	"github.com/vivace-dev/vivace/internal/vivacepb"
	"github.com/vivace-dev/vivace/storage/storagetest"
)

// TestMicroservices runs every role as its own process, as the Helm chart's
// distributed mode does: 1 distributor, 3 ingesters with replication factor
// 3, 1 query-frontend, 2 queriers and a compactor, over a real MinIO. A
// client streams traces while one ingester is killed with SIGKILL and later
// restarted; every acknowledged trace must then be found complete, each span
// once, through the frontend, both before and after every block is flushed.
func TestMicroservices(t *testing.T) {
	m := storagetest.StartMinIO(t)
	config := `
ingester:
  complete_block_timeout: 5s
  lifecycler:
    heartbeat_period: 1s
    ring:
      replication_factor: 3
compactor:
  compaction:
    compaction_cycle: 1s
    compacted_block_retention: 5s
storage:
  trace:
    blocklist_poll: 1s
    backend: s3
    s3:
      bucket: ${VIVACE_TEST_BUCKET}
      endpoint: ${VIVACE_TEST_ENDPOINT}
      access_key: ${VIVACE_TEST_ACCESS_KEY}
      secret_key: ${VIVACE_TEST_SECRET_KEY}
      insecure: true
`
	env := []string{
		"VIVACE_TEST_BUCKET=" + m.Bucket,
		"VIVACE_TEST_ENDPOINT=" + m.Endpoint,
		"VIVACE_TEST_ACCESS_KEY=" + m.AccessKey,
		"VIVACE_TEST_SECRET_KEY=" + m.SecretKey,
	}
	start := func(target string, flags ...string) *vivace {
		return startVivace(t, config, env, append([]string{"-config.expand-env=true", "-target=" + target}, flags...)...)
	}
	seed := start("ingester", "-ingester.lifecycler.ID=ingester-1")
	join := "-memberlist.join=" + seed.Memberlist
	ingesters := []*vivace{
		seed,
		start("ingester", "-ingester.lifecycler.ID=ingester-2", join),
		start("ingester", "-ingester.lifecycler.ID=ingester-3", join),
	}
	frontend := start("query-frontend")
	for i := range 2 {
		start("querier", join, "-querier.frontend-address="+frontend.GRPC, "-distributor.ring.instance-id=querier-"+string(rune('1'+i)))
	}
	compactor := start("compactor", join, "-compactor.ring.instance-id=compactor-1")
	dist := start("distributor", join, "-distributor.ring.instance-id=distributor-1")
	// The distributor is ready once it sees an ingester; wait for all three.
	require.Eventually(t, func() bool {
		_, body, _ := dist.get("/ingester/ring")
		return countActive(body) == 3
	}, 30*time.Second, 100*time.Millisecond, "the distributor sees three ACTIVE ingesters")

	conn, err := grpc.NewClient(dist.OTLPGRPC, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	client := coltracepb.NewTraceServiceClient(conn)

	// The client streams traces until told to stop; only acknowledged
	// requests are expected back.
	rec := &recorder{}
	var sent, failed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		rng := rand.New(rand.NewPCG(42, 42))
		for {
			select {
			case <-stop:
				return
			default:
			}
			_, traces := modeltest.Traces(rng, 4, 12)
			req := &coltracepb.ExportTraceServiceRequest{}
			for _, td := range traces {
				req.ResourceSpans = append(req.ResourceSpans, td.ResourceSpans...)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_, err := client.Export(ctx, req)
			cancel()
			if err != nil {
				failed.Add(1)
				t.Logf("push failed: %v", err)
			} else {
				rec.add(req)
			}
			sent.Add(1)
			time.Sleep(5 * time.Millisecond)
		}
	}()
	waitSent := func(n int64) {
		t.Helper()
		target := sent.Load() + n
		require.Eventually(t, func() bool { return sent.Load() >= target }, time.Minute, 10*time.Millisecond)
	}
	began := time.Now()
	step := func(what string) { t.Logf("%6.1fs %s", time.Since(began).Seconds(), what) }
	waitSent(50)
	step("streaming")
	ingesters[1].kill()
	waitSent(200) // with one of three replicas gone, writes still reach a quorum
	step("killed ingester-2")
	ingesters[1].start()
	step("restarted ingester-2")
	waitSent(50)
	close(stop)
	wg.Wait()
	require.Zero(t, failed.Load(), "no push fails while one ingester of three is down")

	want := rec.traces(t)
	t.Logf("%d requests, %d traces acknowledged", sent.Load(), len(want))
	requireEachFound(t, frontend, want)
	requireSearchFindsAll(t, frontend, want)
	step("all found before flush, by ID and by search")

	// Flush every ingester and wait until their WAL copies are dropped
	// (complete_block_timeout): answers then come from blocks alone.
	for _, ing := range ingesters {
		ing.flushAndWait(1)
	}
	require.Eventually(t, func() bool {
		for _, ing := range ingesters {
			if ing.metric("vivace_ingester_wal_segments") > 1 {
				return false
			}
		}
		return true
	}, time.Minute, 100*time.Millisecond, "ingesters drop flushed WAL segments")
	step("flushed")
	requireEachFound(t, frontend, want)
	step("all found from blocks")

	// The compactor merges the three replicas' blocks into one copy; the
	// answers stay the same, each span once.
	require.Eventually(t, func() bool {
		return compactor.metric("vivace_compactor_blocks_compacted_total") >= 3
	}, time.Minute, 100*time.Millisecond, "the compactor merges the replicas' blocks")
	require.Positive(t, compactor.metric("vivace_compactor_spans_deduplicated_total"))
	requireEachFound(t, frontend, want)
	requireSearchFindsAll(t, frontend, want)
	step("all found after compaction, by ID and by search")

	// A graceful stop flushes and leaves the ring.
	ingesters[2].stop()
	require.Eventually(t, func() bool {
		_, body, _ := dist.get("/ingester/ring")
		return countActive(body) == 2
	}, 30*time.Second, 100*time.Millisecond, "a stopped ingester leaves the ring")
	step("ingester-3 left")
	code, _, _ := dist.get("/distributor/ring")
	require.Equal(t, http.StatusOK, code)
	code, _, _ = dist.get("/memberlist")
	require.Equal(t, http.StatusOK, code)
}

// requireEachFound checks that every trace comes back exactly, each span
// once: all of them as Grafana asks (v2, protobuf), in parallel, and a few
// through every API shape.
func requireEachFound(t *testing.T, v *vivace, want map[model.TraceID]*tracev1.TracesData) {
	t.Helper()
	ids := make(chan model.TraceID)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var missing []string
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range ids {
				code, got := fetch(t, v, id, "v2", true, "")
				if code != http.StatusOK || !slices.Equal(flatten(t, want[id]), flatten(t, got)) {
					mu.Lock()
					missing = append(missing, fmt.Sprintf("%s (HTTP %d)", id, code))
					mu.Unlock()
				}
			}
		}()
	}
	sample := map[model.TraceID]*tracev1.TracesData{}
	for id, td := range want {
		ids <- id
		if len(sample) < 10 {
			sample[id] = td
		}
	}
	close(ids)
	wg.Wait()
	if len(missing) > 0 {
		t.Fatalf("%d of %d traces not found complete, or with a span twice, e.g. %v", len(missing), len(want), missing[:min(5, len(missing))])
	}
	requireAllFound(t, v, sample, "")
}

// requireSearchFindsAll checks that a search over everything, through the
// frontend's HTTP API and its streaming gRPC on the same port, finds each
// trace once.
func requireSearchFindsAll(t *testing.T, frontend *vivace, want map[model.TraceID]*tracev1.TracesData) {
	t.Helper()
	wantIDs := make([]string, 0, len(want))
	for id := range want {
		wantIDs = append(wantIDs, id.String())
	}
	slices.Sort(wantIDs)
	limit := strconv.Itoa(len(want) + 100)

	code, body, _ := frontend.get("/api/search?q=" + url.QueryEscape("{}") + "&limit=" + limit)
	require.Equal(t, http.StatusOK, code, string(body))
	var resp searchResponse
	decodeStrict(t, body, &resp)
	var got []string
	for _, tr := range resp.Traces {
		got = append(got, tr.TraceID)
	}
	slices.Sort(got)
	require.Equal(t, wantIDs, got, "HTTP search")

	stream, err := streamingClient(t, frontend.HTTP).Search(orgCtx(t, ""), &vivacepb.SearchRequest{Query: "{}", Limit: uint32(len(want) + 100)})
	require.NoError(t, err)
	msgs, err := receive(stream)
	require.NoError(t, err)
	require.NotEmpty(t, msgs)
	last := msgs[len(msgs)-1]
	require.Equal(t, last.Metrics.TotalJobs, last.Metrics.CompletedJobs)
	got = traceIDs(last.Traces)
	slices.Sort(got)
	require.Equal(t, wantIDs, got, "streamed search")
}
