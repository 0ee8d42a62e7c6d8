package querier_test

import (
	"context"
	"errors"
	"flag"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/gorilla/mux"
	"github.com/grafana/dskit/services"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	"github.com/vivace-dev/vivace/frontend"
	"github.com/vivace-dev/vivace/internal/vivacepb"
	"github.com/vivace-dev/vivace/querier"
)

// wait is how long liveness checks wait; nothing here is timed.
const wait = 10 * time.Second

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(*querier.Config)
		err    string
	}{
		{name: "defaults", change: func(*querier.Config) {}},
		{name: "frontend address", change: func(c *querier.Config) { c.FrontendWorker.FrontendAddress = "query-frontend.vivace.svc:9095" }},
		{name: "IPv6 frontend address", change: func(c *querier.Config) { c.FrontendWorker.FrontendAddress = "[::1]:9095" }},
		{name: "no port", change: func(c *querier.Config) { c.FrontendWorker.FrontendAddress = "query-frontend" }, err: `querier.frontend_worker.frontend_address "query-frontend" is not host:port`},
		{name: "no concurrency", change: func(c *querier.Config) { c.MaxConcurrentQueries = 0 }, err: "querier.max_concurrent_queries must be at least 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := defaultConfig()
			require.Equal(t, 20, cfg.MaxConcurrentQueries)
			tt.change(&cfg)
			err := cfg.Validate()
			if tt.err == "" {
				require.NoError(t, err)
			} else {
				require.ErrorContains(t, err, tt.err)
			}
		})
	}
}

func defaultConfig() querier.Config {
	var cfg querier.Config
	cfg.RegisterFlagsAndApplyDefaults("querier", flag.NewFlagSet("", flag.PanicOnError))
	return cfg
}

// startWorker runs a worker on q pulling from addr until the test ends.
func startWorker(t testing.TB, addr string, concurrency int, q *querier.Querier) *prometheus.Registry {
	t.Helper()
	cfg := defaultConfig()
	cfg.FrontendWorker.FrontendAddress = addr
	cfg.MaxConcurrentQueries = concurrency
	reg := prometheus.NewPedanticRegistry()
	w, err := querier.NewWorker(cfg, q, discardLogger(), reg)
	require.NoError(t, err)
	require.NoError(t, services.StartAndAwaitRunning(context.Background(), w))
	t.Cleanup(func() {
		require.NoError(t, services.StopAndAwaitTerminated(context.Background(), w))
	})
	return reg
}

func TestNewWorkerNeedsAnAddress(t *testing.T) {
	_, err := querier.NewWorker(defaultConfig(), nil, discardLogger(), prometheus.NewPedanticRegistry())
	require.ErrorContains(t, err, "frontend_address is required")
}

// fakeFrontend hands out the jobs sent on jobs, one per stream at a time,
// and passes on their results.
type fakeFrontend struct {
	vivacepb.UnimplementedFrontendServer
	jobs    chan *vivacepb.Job
	results chan *vivacepb.JobResult
}

func (f *fakeFrontend) Process(stream vivacepb.Frontend_ProcessServer) error {
	for {
		select {
		case <-stream.Context().Done():
			return nil
		case job := <-f.jobs:
			if err := stream.Send(job); err != nil {
				return err
			}
			res, err := stream.Recv()
			if err != nil {
				return err
			}
			f.results <- res
		}
	}
}

// serve serves srv's services on a 127.0.0.1 address (the given one, once
// it is free again, or any) until stop.
func serve(t testing.TB, addr string, register func(*grpc.Server)) (string, func()) {
	t.Helper()
	var lis net.Listener
	require.Eventually(t, func() bool {
		var err error
		lis, err = net.Listen("tcp", addr)
		return err == nil
	}, wait, 10*time.Millisecond, "listen on %s", addr)
	srv := grpc.NewServer()
	register(srv)
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(lis)
	}()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			srv.Stop()
			<-served
		}
	}
	t.Cleanup(stop)
	return lis.Addr().String(), stop
}

func TestWorkerAnswers(t *testing.T) {
	f := newFixture(t)
	q, _ := newQuerier(t, f.ing, f.bkt)
	failing := newFakeIngesters()
	failing.err = errors.New("ingesters down")
	qFailing, _ := newQuerier(t, failing, f.bkt)
	tests := []struct {
		name    string
		q       *querier.Querier
		job     *vivacepb.Job
		code    int32
		error   string // a part of the error text
		outcome string
	}{
		{name: "found", q: q, job: &vivacepb.Job{Tenant: tenant, TraceById: &vivacepb.TraceByIDRequest{TraceId: f.id[:]}}, outcome: "success"},
		{name: "not found", q: q, job: &vivacepb.Job{Tenant: tenant, TraceById: &vivacepb.TraceByIDRequest{TraceId: []byte{0xee}}}, outcome: "success"},
		{name: "invalid trace ID", q: q, job: &vivacepb.Job{Tenant: tenant, TraceById: &vivacepb.TraceByIDRequest{TraceId: make([]byte, 16)}}, code: 400, error: "invalid trace ID: all zeros", outcome: "bad_request"},
		{name: "no tenant", q: q, job: &vivacepb.Job{TraceById: &vivacepb.TraceByIDRequest{TraceId: f.id[:]}}, code: 400, error: "bad job: no tenant", outcome: "bad_request"},
		{name: "no request", q: q, job: &vivacepb.Job{Tenant: tenant}, code: 400, error: "bad job: no request in the job", outcome: "bad_request"},
		{name: "internal error", q: qFailing, job: &vivacepb.Job{Tenant: tenant, TraceById: &vivacepb.TraceByIDRequest{TraceId: f.id[:]}}, error: "ingesters down", outcome: "error"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := &fakeFrontend{jobs: make(chan *vivacepb.Job), results: make(chan *vivacepb.JobResult)}
			addr, _ := serve(t, "127.0.0.1:0", func(s *grpc.Server) { vivacepb.RegisterFrontendServer(s, fake) })
			reg := startWorker(t, addr, 1, tt.q)
			tt.job.Id = uint64(i + 1)
			fake.jobs <- tt.job
			res := <-fake.results
			require.Equal(t, tt.job.Id, res.Id)
			require.Equal(t, tt.code, res.Code)
			require.Contains(t, res.Error, tt.error)
			if tt.error != "" {
				require.Nil(t, res.TraceById)
			} else {
				require.Empty(t, res.Error)
				require.NotNil(t, res.TraceById.GetMetrics())
			}
			if tt.name == "found" {
				got := &tracev1.TracesData{}
				require.NoError(t, proto.Unmarshal(res.TraceById.Trace, got))
				requireSpans(t, f.whole, got)
			}
			require.EqualValues(t, 1, counterWith(t, reg, "vivace_querier_worker_jobs_total", "outcome", tt.outcome))
		})
	}
}

// counterWith is the value of the counter name with label=value.
func counterWith(t testing.TB, reg prometheus.Gatherer, name, label, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.Metric {
			for _, l := range m.Label {
				if l.GetName() == label && l.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// gatedIngesters answer once the gate is open.
type gatedIngesters struct {
	*fakeIngesters
	gate chan struct{}
}

func (g *gatedIngesters) FindTraceByID(ctx context.Context, req *vivacepb.TraceByIDRequest) (*vivacepb.TraceByIDResponse, error) {
	select {
	case <-g.gate:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return g.fakeIngesters.FindTraceByID(ctx, req)
}

type noLimits struct{}

func (noLimits) MaxBytesPerTrace(string) int { return 0 }

func (noLimits) MaxSearchDuration(string) time.Duration { return 0 }

// realFrontend is a running query-frontend serving jobs over gRPC.
type realFrontend struct {
	addr string
	h    http.Handler
	reg  *prometheus.Registry
	stop func()
}

// startFrontend runs a frontend on addr (or any port for 127.0.0.1:0)
// until stop or the end of the test.
func startFrontend(t testing.TB, addr string) *realFrontend {
	t.Helper()
	var cfg frontend.Config
	cfg.RegisterFlagsAndApplyDefaults("query-frontend", flag.NewFlagSet("", flag.PanicOnError))
	reg := prometheus.NewPedanticRegistry()
	f, err := frontend.New(cfg, noLimits{}, true, discardLogger(), reg)
	require.NoError(t, err)
	r := mux.NewRouter()
	f.RegisterRoutes(r)
	require.NoError(t, services.StartAndAwaitRunning(context.Background(), f))
	addr, stopServer := serve(t, addr, func(s *grpc.Server) { vivacepb.RegisterFrontendServer(s, f) })
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			stopServer()
			require.NoError(t, services.StopAndAwaitTerminated(context.Background(), f))
		}
	}
	t.Cleanup(stop)
	return &realFrontend{addr: addr, h: r, reg: reg, stop: stop}
}

// getTrace asks the frontend for the fixture's trace and checks the answer.
func (rf *realFrontend) getTrace(t testing.TB, f *fixture) {
	t.Helper()
	rec := <-rf.goGetTrace(f)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	got := &tracev1.TracesData{}
	require.NoError(t, proto.Unmarshal(rec.Body.Bytes(), got))
	requireSpans(t, f.whole, got)
}

func (rf *realFrontend) goGetTrace(f *fixture) <-chan *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodGet, "/api/traces/"+f.id.String(), nil)
	req.Header.Set("X-Scope-OrgID", tenant)
	req.Header.Set("Accept", "application/protobuf")
	out := make(chan *httptest.ResponseRecorder, 1)
	go func() {
		rec := httptest.NewRecorder()
		rf.h.ServeHTTP(rec, req)
		out <- rec
	}()
	return out
}

func (rf *realFrontend) connectedWorkers(t testing.TB) float64 {
	t.Helper()
	mfs, err := rf.reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == "vivace_query_frontend_connected_workers" {
			return mf.Metric[0].GetGauge().GetValue()
		}
	}
	return 0
}

// TestWorkersShareJobs: two queriers pull the jobs of one lookup; while one
// is busy, the other runs the rest.
func TestWorkersShareJobs(t *testing.T) {
	f := newFixture(t)
	ing := &gatedIngesters{fakeIngesters: f.ing, gate: make(chan struct{})}
	q, _ := newQuerier(t, ing, f.bkt)
	rf := startFrontend(t, "127.0.0.1:0")
	regs := []*prometheus.Registry{startWorker(t, rf.addr, 1, q), startWorker(t, rf.addr, 1, q)}
	require.Eventually(t, func() bool { return rf.connectedWorkers(t) == 2 }, wait, time.Millisecond)

	rec := rf.goGetTrace(f)
	// One querier waits on the ingesters: the other runs the four block jobs.
	require.Eventually(t, func() bool {
		return counterWith(t, regs[0], "vivace_querier_worker_jobs_total", "outcome", "success")+
			counterWith(t, regs[1], "vivace_querier_worker_jobs_total", "outcome", "success") == 4
	}, wait, time.Millisecond)
	close(ing.gate)
	got := <-rec
	require.Equal(t, http.StatusOK, got.Code, got.Body.String())
	for i, reg := range regs {
		require.NotZero(t, counterWith(t, reg, "vivace_querier_worker_jobs_total", "outcome", "success"), "worker %d ran no job", i)
	}
	rf.getTrace(t, f)
}

// TestWorkerTakesOverLostJob: a job whose querier went away mid-job runs on
// another querier, and the lookup succeeds.
func TestWorkerTakesOverLostJob(t *testing.T) {
	f := newFixture(t)
	q, _ := newQuerier(t, f.ing, f.bkt)
	rf := startFrontend(t, "127.0.0.1:0")
	rec := rf.goGetTrace(f)

	cc, err := grpc.NewClient(rf.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer cc.Close()
	ctx, cancel := context.WithCancel(context.Background())
	stream, err := vivacepb.NewFrontendClient(cc).Process(ctx)
	require.NoError(t, err)
	_, err = stream.Recv()
	require.NoError(t, err)
	cancel() // gone, with the job

	reg := startWorker(t, rf.addr, 2, q)
	got := <-rec
	require.Equal(t, http.StatusOK, got.Code, got.Body.String())
	require.EqualValues(t, 5, counterWith(t, reg, "vivace_querier_worker_jobs_total", "outcome", "success"))
}

// TestWorkerReconnects: a querier finds the frontend again after it restarts.
func TestWorkerReconnects(t *testing.T) {
	f := newFixture(t)
	q, _ := newQuerier(t, f.ing, f.bkt)
	rf := startFrontend(t, "127.0.0.1:0")
	startWorker(t, rf.addr, 3, q)
	rf.getTrace(t, f)

	rf.stop()
	rf = startFrontend(t, rf.addr)
	require.Eventually(t, func() bool { return rf.connectedWorkers(t) == 3 }, wait, time.Millisecond)
	rf.getTrace(t, f)
}
