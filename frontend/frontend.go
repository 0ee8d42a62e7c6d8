// Package frontend is the public read API (Tempo's HTTP API). It splits each
// query into jobs, queues them fairly per tenant for the queriers to pull,
// and combines the answers.
package frontend

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/mux"
	"github.com/grafana/dskit/services"
	"github.com/grafana/dskit/user"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vivace-dev/vivace/internal/model"
	"github.com/vivace-dev/vivace/internal/vivacepb"
)

// Querier is what a local worker runs jobs on in monolithic mode; in
// microservices mode queriers pull jobs through Process instead.
type Querier interface {
	FindTraceByID(ctx context.Context, req *vivacepb.TraceByIDRequest) (*vivacepb.TraceByIDResponse, error)
	Search(ctx context.Context, req *vivacepb.SearchJob) (*vivacepb.SearchResponse, error)
	SearchTags(ctx context.Context, req *vivacepb.TagsJob) (*vivacepb.TagsResult, error)
}

// Limits are the per-tenant limits the frontend enforces.
type Limits interface {
	MaxBytesPerTrace(tenant string) int
	// MaxSearchDuration bounds end - start of a search; 0 is no bound.
	MaxSearchDuration(tenant string) time.Duration
}

// Frontend is the query-frontend role. It queues the jobs of each lookup
// fairly per tenant; workers pull them: queriers over gRPC (Process) and, in
// monolithic mode, local workers (RunLocalWorkers).
type Frontend struct {
	services.Service
	vivacepb.UnimplementedFrontendServer

	cfg          Config
	limits       Limits
	multitenancy bool
	logger       *slog.Logger
	metrics      *metrics
	queue        *queue
	jobID        atomic.Uint64

	local        Querier // set before start, read by running
	localWorkers int
}

// New makes a frontend; start it as a service before serving requests' jobs.
func New(cfg Config, limits Limits, multitenancy bool, logger *slog.Logger, reg prometheus.Registerer) (*Frontend, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m := newMetrics(reg)
	f := &Frontend{
		cfg:          cfg,
		limits:       limits,
		multitenancy: multitenancy,
		logger:       logger.With("component", "query-frontend"),
		metrics:      m,
		queue:        newQueue(cfg.MaxOutstandingPerTenant, m),
	}
	f.Service = services.NewBasicService(nil, f.running, f.stopping).WithName("query-frontend")
	return f, nil
}

// RunLocalWorkers makes n workers that run jobs on q in this process, for
// monolithic mode. Call it before starting the service; the workers start
// and stop with it.
func (f *Frontend) RunLocalWorkers(q Querier, n int) {
	f.local, f.localWorkers = q, n
}

func (f *Frontend) running(ctx context.Context) error {
	var wg sync.WaitGroup
	for range f.localWorkers {
		wg.Go(func() { f.runLocal(ctx, f.local) })
	}
	<-ctx.Done()
	wg.Wait()
	return nil
}

// stopping fails the jobs still queued and ends every Process handler.
func (f *Frontend) stopping(error) error {
	f.queue.close()
	return nil
}

func (f *Frontend) runLocal(ctx context.Context, q Querier) {
	f.metrics.connectedWorkers.Inc()
	defer f.metrics.connectedWorkers.Dec()
	for {
		r, err := f.queue.dequeue(ctx)
		if err != nil {
			return
		}
		// The job ends with its lookup, or when the frontend stops.
		jobCtx, cancel := context.WithCancel(user.InjectOrgID(r.ctx, r.tenant))
		stop := context.AfterFunc(ctx, cancel)
		resp, err := runJob(jobCtx, q, r.job)
		stop()
		cancel()
		r.done(resp, err)
	}
}

// runJob runs a job on a local querier.
func runJob(ctx context.Context, q Querier, job *vivacepb.Job) (*vivacepb.JobResult, error) {
	var (
		res vivacepb.JobResult
		err error
	)
	switch {
	case job.TraceById != nil:
		res.TraceById, err = q.FindTraceByID(ctx, job.TraceById)
	case job.Search != nil:
		res.Search, err = q.Search(ctx, job.Search)
	case job.Tags != nil:
		res.Tags, err = q.SearchTags(ctx, job.Tags)
	default:
		err = errors.New("empty job")
	}
	if err != nil {
		return nil, err
	}
	return &res, nil
}

// Process runs jobs on a querier's stream, one at a time, until the stream
// ends or the frontend stops. A job in flight when the stream breaks goes
// back to the front of its tenant's queue for another querier.
func (f *Frontend) Process(stream vivacepb.Frontend_ProcessServer) error {
	f.metrics.connectedWorkers.Inc()
	defer f.metrics.connectedWorkers.Dec()
	for {
		r, err := f.queue.dequeue(stream.Context())
		if errors.Is(err, errStopping) {
			return status.Error(codes.Unavailable, err.Error())
		}
		if err != nil {
			return status.FromContextError(err).Err()
		}
		res, err := f.exchange(stream, r)
		if err != nil {
			f.retry(r, err)
			return status.Error(codes.Unavailable, err.Error())
		}
		if err := resultError(res); err != nil {
			r.done(nil, err)
		} else {
			r.done(res, nil)
		}
	}
}

// exchange sends the job and waits for its result.
func (f *Frontend) exchange(stream vivacepb.Frontend_ProcessServer, r *request) (*vivacepb.JobResult, error) {
	id := f.jobID.Add(1)
	type answer struct {
		res *vivacepb.JobResult
		err error
	}
	ch := make(chan answer, 1)
	// Send and Recv wait on the querier: they run aside so that stopping the
	// frontend ends the handler at once; gRPC then ends them with the stream.
	go func() {
		job := &vivacepb.Job{Id: id, Tenant: r.tenant, TraceById: r.job.TraceById, Search: r.job.Search, Tags: r.job.Tags}
		if err := stream.Send(job); err != nil {
			ch <- answer{err: err}
			return
		}
		res, err := stream.Recv()
		ch <- answer{res, err}
	}()
	select {
	case a := <-ch:
		if a.err == nil && a.res.GetId() != id {
			return nil, fmt.Errorf("querier answered job %d, want %d", a.res.GetId(), id)
		}
		return a.res, a.err
	case <-f.queue.stopped:
		return nil, errStopping
	}
}

// retry gives a job whose querier went away to another one, up to max_retries times.
func (f *Frontend) retry(r *request, cause error) {
	if r.retries >= f.cfg.MaxRetries {
		f.logger.Warn("job failed: its queriers went away", "tenant", r.tenant, "attempts", r.retries+1, "err", cause)
		r.done(nil, fmt.Errorf("job failed on %d queriers, the last: %w", r.retries+1, cause))
		return
	}
	f.logger.Info("querier went away with a job, retrying it", "tenant", r.tenant, "err", cause)
	r.retries++
	f.metrics.retries.Inc()
	if err := f.queue.requeue(r); err != nil {
		r.done(nil, err)
	}
}

// resultError is the error a querier reported: its 4xx codes are the
// request's fault and answered as such, anything else is ours (500).
func resultError(res *vivacepb.JobResult) error {
	if res.Error == "" && res.Code == 0 {
		return nil
	}
	msg := res.Error
	if msg == "" {
		msg = http.StatusText(int(res.Code))
	}
	if res.Code >= 400 && res.Code <= 499 {
		return &httpError{int(res.Code), msg}
	}
	return errors.New(msg)
}

// RegisterRoutes adds the read API to router.
func (f *Frontend) RegisterRoutes(router *mux.Router) {
	router.Handle("/api/traces/{traceID}", f.instrument("trace_by_id_v1", f.traceByIDV1)).Methods(http.MethodGet)
	router.Handle("/api/v2/traces/{traceID}", f.instrument("trace_by_id_v2", f.traceByIDV2)).Methods(http.MethodGet)
	router.Handle("/api/search", f.instrument("search", f.search)).Methods(http.MethodGet)
	router.Handle("/api/search/tags", f.instrument("search_tags", f.searchTags)).Methods(http.MethodGet)
	router.Handle("/api/v2/search/tags", f.instrument("search_tags_v2", f.searchTagsV2)).Methods(http.MethodGet)
	router.Handle("/api/search/tag/{tag}/values", f.instrument("search_tag_values", f.searchTagValues)).Methods(http.MethodGet)
	router.Handle("/api/v2/search/tag/{tag}/values", f.instrument("search_tag_values_v2", f.searchTagValuesV2)).Methods(http.MethodGet)
	router.HandleFunc("/api/echo", func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "echo", http.StatusOK)
	}).Methods(http.MethodGet)
}

func (f *Frontend) instrument(endpoint string, h func(http.ResponseWriter, *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		err := h(w, r)
		if err != nil && r.Context().Err() != nil {
			err = r.Context().Err() // the client went away; what failed then does not matter
		}
		if code := f.observe(endpoint, start, err); err != nil {
			http.Error(w, err.Error(), code)
		}
	})
}

// statusClientClosed is counted for requests whose client went away first
// (nginx's 499); nobody reads the answer.
const statusClientClosed = 499

// observe counts a request to endpoint that began at start and ended with
// err, and returns the HTTP status code err is answered with. Errors that
// are not the request's fault are logged.
func (f *Frontend) observe(endpoint string, start time.Time, err error) int {
	code := http.StatusOK
	var he *httpError
	switch {
	case err == nil:
	case errors.As(err, &he):
		code = he.code
	case errors.Is(err, context.Canceled):
		code = statusClientClosed
	default:
		code = http.StatusInternalServerError
		f.logger.Error("request failed", "endpoint", endpoint, "err", err)
	}
	f.metrics.requests.WithLabelValues(endpoint, strconv.Itoa(code)).Inc()
	f.metrics.duration.WithLabelValues(endpoint).Observe(time.Since(start).Seconds())
	return code
}

// traceRequest is a parsed trace-by-ID request.
type traceRequest struct {
	tenant     string
	id         model.TraceID
	start, end int64
	proto      bool
}

func unixSeconds(q map[string][]string, name string) (int64, error) {
	v := ""
	if vs := q[name]; len(vs) > 0 {
		v = vs[0]
	}
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, badRequest("%s=%q is not a time in unix seconds", name, v)
	}
	return n, nil
}

// acceptsProtobuf reads every Accept line; media types are case-insensitive
// and may have whitespace before their parameters (RFC 9110 8.3.1, 12.5.1).
func acceptsProtobuf(r *http.Request) bool {
	for _, line := range r.Header.Values("Accept") {
		for _, a := range strings.Split(line, ",") {
			mt, _, _ := strings.Cut(a, ";")
			mt = strings.TrimSpace(mt)
			if strings.EqualFold(mt, "application/protobuf") || strings.EqualFold(mt, "application/x-protobuf") {
				return true
			}
		}
	}
	return false
}

func (f *Frontend) jobs(tr *traceRequest) []*vivacepb.TraceByIDRequest {
	n := f.cfg.TraceByID.QueryShards
	jobs := []*vivacepb.TraceByIDRequest{{TraceId: tr.id[:], Start: tr.start, End: tr.end, QueryMode: "ingesters"}}
	for _, r := range blockRanges(n) {
		jobs = append(jobs, &vivacepb.TraceByIDRequest{
			TraceId: tr.id[:], Start: tr.start, End: tr.end, QueryMode: "blocks",
			BlockStart: r[0], BlockEnd: r[1],
		})
	}
	return jobs
}

// blockRanges splits the block-ID (UUID) space into n ranges [first, last].
func blockRanges(n int) [][2]string {
	out := make([][2]string, n)
	for i := range n {
		lo := uint64(i) << 32 / uint64(n)
		hi := uint64(i+1)<<32/uint64(n) - 1
		out[i] = [2]string{fmt.Sprintf("%08x-0000-0000-0000-000000000000", lo), fmt.Sprintf("%08x-ffff-ffff-ffff-ffffffffffff", hi)}
	}
	return out
}
