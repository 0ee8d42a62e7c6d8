package frontend_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/grafana/dskit/services"
	"github.com/grafana/dskit/user"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/vivace-dev/vivace/frontend"
	"github.com/vivace-dev/vivace/internal/vivacepb"
)

// wait is how long liveness checks wait; nothing here is timed.
const wait = 10 * time.Second

// serveGRPC serves f's Frontend service on a 127.0.0.1 port until the test
// ends and returns a client connection to it.
func serveGRPC(t testing.TB, f *frontend.Frontend) *grpc.ClientConn {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := grpc.NewServer()
	vivacepb.RegisterFrontendServer(srv, f)
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(lis)
	}()
	cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() {
		require.NoError(t, cc.Close())
		srv.Stop()
		<-served
	})
	return cc
}

// remoteWorker answers the jobs of one stream with q, as a querier does,
// until ctx ends; answer may change each result before it is sent.
func remoteWorker(ctx context.Context, cc *grpc.ClientConn, q frontend.Querier, answer func(*vivacepb.JobResult)) error {
	stream, err := vivacepb.NewFrontendClient(cc).Process(ctx)
	if err != nil {
		return err
	}
	for {
		job, err := stream.Recv()
		if err != nil {
			return err
		}
		resp, err := q.FindTraceByID(user.InjectOrgID(ctx, job.Tenant), job.TraceById)
		res := &vivacepb.JobResult{Id: job.Id, TraceById: resp}
		if err != nil {
			res.Error = err.Error()
		}
		if answer != nil {
			answer(res)
		}
		if err := stream.Send(res); err != nil {
			return err
		}
	}
}

// goRemoteWorker runs remoteWorker until the test ends.
func goRemoteWorker(t testing.TB, cc *grpc.ClientConn, q frontend.Querier, answer func(*vivacepb.JobResult)) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = remoteWorker(ctx, cc, q, answer)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

// dyingWorker takes one job and goes away without answering it.
func dyingWorker(t testing.TB, cc *grpc.ClientConn) *vivacepb.Job {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stream, err := vivacepb.NewFrontendClient(cc).Process(ctx)
	require.NoError(t, err)
	job, err := stream.Recv()
	require.NoError(t, err)
	return job
}

// goGet serves GET path in the background; the recorder arrives when done.
func goGet(ctx context.Context, h http.Handler, path string, headers map[string]string) <-chan *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, path, nil).WithContext(ctx)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	out := make(chan *httptest.ResponseRecorder, 1)
	go func() { out <- serve(h, req) }()
	return out
}

// metricValue is the sum of the samples of name whose labels include want.
func metricValue(t testing.TB, reg prometheus.Gatherer, name string, want map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.Metric {
			labels := map[string]string{}
			for _, l := range m.Label {
				labels[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if labels[k] != v {
					continue metric
				}
			}
			sum += m.GetGauge().GetValue() + m.GetCounter().GetValue() + float64(m.GetHistogram().GetSampleCount())
		}
	}
	return sum
}

func requireMetric(t testing.TB, reg prometheus.Gatherer, name string, labels map[string]string, want float64) {
	t.Helper()
	require.Eventually(t, func() bool { return metricValue(t, reg, name, labels) == want }, wait, time.Millisecond,
		"%s%v never became %v", name, labels, want)
}

func TestRemoteWorkers(t *testing.T) {
	id, _ := fixedTrace()
	f, h, reg := newFrontend(t, setup{shards: 3})
	start(t, f)
	cc := serveGRPC(t, f)
	q := fixture()
	for range 2 {
		goRemoteWorker(t, cc, q, nil)
	}
	requireMetric(t, reg, "vivace_query_frontend_connected_workers", nil, 2)

	local, _ := newServer(t, fixture(), setup{shards: 3})
	want := get(t, local, "/api/v2/traces/"+id.String(), nil)
	require.Equal(t, http.StatusOK, want.Code)
	rec := get(t, h, "/api/v2/traces/"+id.String(), nil)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.Equal(t, want.Body.String(), rec.Body.String(), "remote and local workers answer alike")
	require.Len(t, q.takeJobs(), 4)
	require.EqualValues(t, 4, metricValue(t, reg, "vivace_query_frontend_queue_duration_seconds", nil))
}

// TestRemoteErrors: a querier's 4xx is the request's answer; anything
// else it reports is a 500.
func TestRemoteErrors(t *testing.T) {
	id, _ := fixedTrace()
	path := "/api/traces/" + id.String()
	tests := []struct {
		name  string
		error string
		code  int32
		want  int
		body  string
	}{
		{name: "bad request", error: "invalid trace ID: all zeros", code: 400, want: 400, body: "find trace " + id.String() + ": invalid trace ID: all zeros\n"},
		{name: "too many requests", error: "slow down", code: 429, want: 429, body: "find trace " + id.String() + ": slow down\n"},
		{name: "internal", error: "disk on fire", want: 500, body: "find trace " + id.String() + ": disk on fire\n"},
		{name: "5xx code", error: "unavailable", code: 503, want: 500, body: "find trace " + id.String() + ": unavailable\n"},
		{name: "code without text", code: 404, want: 404, body: "find trace " + id.String() + ": Not Found\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, h, _ := newFrontend(t, setup{})
			start(t, f)
			goRemoteWorker(t, serveGRPC(t, f), fixture(), func(res *vivacepb.JobResult) {
				res.TraceById, res.Error, res.Code = nil, tt.error, tt.code
			})
			rec := get(t, h, path, nil)
			require.Equal(t, tt.want, rec.Code)
			require.Equal(t, tt.body, rec.Body.String())
		})
	}
}

// TestRetry: a job whose querier goes away runs on another querier, up to
// max_retries times; then the request fails.
func TestRetry(t *testing.T) {
	id, _ := fixedTrace()
	path := "/api/v2/traces/" + id.String()

	t.Run("on another querier", func(t *testing.T) {
		f, h, reg := newFrontend(t, setup{shards: 1})
		start(t, f)
		cc := serveGRPC(t, f)
		rec := goGet(context.Background(), h, path, nil)
		lost := dyingWorker(t, cc)
		q := fixture()
		goRemoteWorker(t, cc, q, nil)
		got := <-rec
		require.Equal(t, http.StatusOK, got.Code, got.Body.String())
		jobs := q.takeJobs()
		require.Len(t, jobs, 2)
		require.Contains(t, []string{jobs[0].req.QueryMode, jobs[1].req.QueryMode}, lost.TraceById.QueryMode)
		require.EqualValues(t, 1, metricValue(t, reg, "vivace_query_frontend_retries_total", nil))
	})

	t.Run("up to max_retries", func(t *testing.T) {
		f, h, reg := newFrontend(t, setup{shards: 1})
		start(t, f)
		cc := serveGRPC(t, f)
		rec := goGet(context.Background(), h, path, nil)
		first := dyingWorker(t, cc)
		for i := range 2 { // the default max_retries
			// Once requeued, the job goes before the lookup's other job.
			requireMetric(t, reg, "vivace_query_frontend_retries_total", nil, float64(i+1))
			again := dyingWorker(t, cc)
			require.Equal(t, first.TraceById.QueryMode, again.TraceById.QueryMode, "a retried job goes first")
			require.NotEqual(t, first.Id, again.Id)
		}
		got := <-rec
		require.Equal(t, http.StatusInternalServerError, got.Code)
		require.True(t, strings.HasPrefix(got.Body.String(), "find trace "+id.String()+": job failed on 3 queriers, the last: "), got.Body.String())
		// The lookup's other job is dropped, not run.
		requireMetric(t, reg, "vivace_query_frontend_discarded_jobs_total", map[string]string{"reason": "cancelled"}, 1)
		require.Zero(t, metricValue(t, reg, "vivace_query_frontend_queue_length", nil))
	})
}

// TestCancelledRequest: the jobs of a request that went away are never run.
func TestCancelledRequest(t *testing.T) {
	id, _ := fixedTrace()
	f, h, reg := newFrontend(t, setup{shards: 1})
	start(t, f)
	ctx, cancel := context.WithCancel(context.Background())
	rec := goGet(ctx, h, "/api/traces/"+id.String(), nil)
	requireMetric(t, reg, "vivace_query_frontend_queue_length", map[string]string{"tenant": "single-tenant"}, 2)
	cancel()
	<-rec
	require.Zero(t, metricValue(t, reg, "vivace_query_frontend_queue_length", nil))
	require.EqualValues(t, 2, metricValue(t, reg, "vivace_query_frontend_discarded_jobs_total", map[string]string{"reason": "cancelled"}))

	q := fixture()
	goRemoteWorker(t, serveGRPC(t, f), q, nil)
	require.Equal(t, http.StatusNotFound, get(t, h, "/api/traces/ff", nil).Code)
	for _, j := range q.takeJobs() {
		require.EqualValues(t, 0xff, j.req.TraceId[15], "only the later request's jobs run")
	}
}

// TestQueueFull: a tenant's request that does not fit in its queue is
// answered 429; other tenants are not affected.
func TestQueueFull(t *testing.T) {
	id, _ := fixedTrace()
	path := "/api/traces/" + id.String()
	f, h, reg := newFrontend(t, setup{shards: 1, maxOutstanding: 3, multitenancy: true})
	start(t, f) // no workers: jobs stay queued
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	team1 := map[string]string{"X-Scope-OrgID": "team-1"}
	first := goGet(ctx, h, path, team1)
	requireMetric(t, reg, "vivace_query_frontend_queue_length", map[string]string{"tenant": "team-1"}, 2)

	rec := get(t, h, path, team1)
	require.Equal(t, http.StatusTooManyRequests, rec.Code)
	require.Equal(t, "too many outstanding requests: tenant \"team-1\" has 2 jobs queued, and query_frontend.max_outstanding_per_tenant is 3\n", rec.Body.String())
	require.EqualValues(t, 2, metricValue(t, reg, "vivace_query_frontend_discarded_jobs_total", map[string]string{"tenant": "team-1", "reason": "queue_full"}))
	require.EqualValues(t, 1, metricValue(t, reg, "vivace_query_frontend_requests_total", map[string]string{"code": "429"}))

	other := goGet(ctx, h, path, map[string]string{"X-Scope-OrgID": "team-2"})
	requireMetric(t, reg, "vivace_query_frontend_queue_length", map[string]string{"tenant": "team-2"}, 2)
	cancel()
	<-first
	<-other
}

// TestStop: stopping the frontend ends its Process handlers, even with a
// job in flight, and fails the requests still waiting.
func TestStop(t *testing.T) {
	id, _ := fixedTrace()
	f, h, reg := newFrontend(t, setup{shards: 1})
	require.NoError(t, services.StartAndAwaitRunning(context.Background(), f))
	cc := serveGRPC(t, f)

	// Two streams take the two jobs of a lookup and never answer; a third waits for a job.
	rec := goGet(context.Background(), h, "/api/traces/"+id.String(), nil)
	var streams []vivacepb.Frontend_ProcessClient
	for i := range 3 {
		s, err := vivacepb.NewFrontendClient(cc).Process(context.Background())
		require.NoError(t, err)
		if i < 2 {
			_, err = s.Recv()
			require.NoError(t, err)
		}
		streams = append(streams, s)
	}
	requireMetric(t, reg, "vivace_query_frontend_connected_workers", nil, 3)

	require.NoError(t, services.StopAndAwaitTerminated(context.Background(), f))
	got := <-rec
	require.Equal(t, http.StatusServiceUnavailable, got.Code, got.Body.String())
	for _, s := range streams {
		job, err := s.Recv()
		require.Nil(t, job, "a stopped frontend hands out no job")
		require.Equal(t, codes.Unavailable, status.Code(err), err)
	}
	requireMetric(t, reg, "vivace_query_frontend_connected_workers", nil, 0)
	require.Equal(t, http.StatusServiceUnavailable, get(t, h, "/api/traces/"+id.String(), nil).Code)
}
