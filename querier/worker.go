package querier

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/grafana/dskit/backoff"
	"github.com/grafana/dskit/services"
	"github.com/grafana/dskit/user"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/vivace-dev/vivace/internal/model"
	"github.com/vivace-dev/vivace/internal/vivacepb"
)

const (
	// dnsLookupPeriod is how often the frontend address is resolved again, so
	// frontends that come and go behind one DNS name are found.
	dnsLookupPeriod  = 10 * time.Second
	dnsLookupTimeout = 5 * time.Second
)

// reconnect paces the opening of a new stream after one ended.
var reconnect = backoff.Config{MinBackoff: 100 * time.Millisecond, MaxBackoff: 2 * time.Second}

// Worker pulls jobs from the query-frontends and runs them on the querier:
// max_concurrent_queries Process streams to each address the frontend
// address resolves to. Adding a querier needs no change to the frontends.
type Worker struct {
	services.Service

	cfg    Config
	q      *Querier
	logger *slog.Logger
	jobs   *prometheus.CounterVec
}

// NewWorker makes a worker running the jobs of the frontends at
// cfg.FrontendWorker.FrontendAddress on q.
func NewWorker(cfg Config, q *Querier, logger *slog.Logger, reg prometheus.Registerer) (*Worker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.FrontendWorker.FrontendAddress == "" {
		return nil, errors.New("querier.frontend_worker.frontend_address is required to pull jobs from query-frontends")
	}
	w := &Worker{
		cfg:    cfg,
		q:      q,
		logger: logger.With("component", "querier-worker"),
		jobs: promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
			Name: "vivace_querier_worker_jobs_total", Help: "Jobs run for query-frontends, by outcome: success, bad_request or error.",
		}, []string{"outcome"}),
	}
	w.Service = services.NewBasicService(nil, w.running, nil).WithName("querier-worker")
	return w, nil
}

// frontendConn is the connection to one frontend and the streams on it.
type frontendConn struct {
	cc      *grpc.ClientConn
	cancel  context.CancelFunc
	streams sync.WaitGroup
}

func (c *frontendConn) close() {
	c.cancel()
	c.streams.Wait()
	_ = c.cc.Close()
}

func (w *Worker) running(ctx context.Context) error {
	conns := map[string]*frontendConn{} // by resolved address
	defer func() {
		for _, c := range conns {
			c.close()
		}
	}()
	tick := time.NewTicker(dnsLookupPeriod)
	defer tick.Stop()
	for {
		w.update(ctx, conns)
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// update connects to the frontends the address now resolves to and
// disconnects from those it no longer does.
func (w *Worker) update(ctx context.Context, conns map[string]*frontendConn) {
	addrs, err := w.resolve(ctx)
	if err != nil {
		// Keep the frontends we have: DNS may be back at the next lookup.
		w.logger.Warn("resolve query-frontend address", "address", w.cfg.FrontendWorker.FrontendAddress, "err", err)
		return
	}
	for addr, c := range conns {
		if !slices.Contains(addrs, addr) {
			w.logger.Info("query-frontend gone", "address", addr)
			c.close()
			delete(conns, addr)
		}
	}
	for _, addr := range addrs {
		if conns[addr] != nil {
			continue
		}
		c, err := w.connect(ctx, addr)
		if err != nil {
			w.logger.Warn("connect to query-frontend", "address", addr, "err", err)
			continue
		}
		w.logger.Info("pulling jobs from query-frontend", "address", addr)
		conns[addr] = c
	}
}

func (w *Worker) resolve(ctx context.Context) ([]string, error) {
	host, port, err := net.SplitHostPort(w.cfg.FrontendWorker.FrontendAddress)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, dnsLookupTimeout)
	defer cancel()
	ips, err := net.DefaultResolver.LookupHost(ctx, host)
	if err != nil {
		return nil, err
	}
	addrs := make([]string, len(ips))
	for i, ip := range ips {
		addrs[i] = net.JoinHostPort(ip, port)
	}
	return addrs, nil
}

func (w *Worker) connect(ctx context.Context, addr string) (*frontendConn, error) {
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	c := &frontendConn{cc: cc, cancel: cancel}
	client := vivacepb.NewFrontendClient(cc)
	for range w.cfg.MaxConcurrentQueries {
		c.streams.Go(func() { w.pull(ctx, client, addr) })
	}
	return c, nil
}

// pull keeps one Process stream open to a frontend, opening a new one, with
// backoff, whenever it ends, until ctx ends.
func (w *Worker) pull(ctx context.Context, client vivacepb.FrontendClient, addr string) {
	b := backoff.New(ctx, reconnect)
	healthy := true // to warn once when a frontend becomes unreachable, not at every attempt
	for b.Ongoing() {
		n, err := w.process(ctx, client)
		if ctx.Err() != nil {
			return
		}
		if n > 0 {
			b.Reset()
		}
		if healthy || n > 0 {
			w.logger.Warn("stream to query-frontend ended, reconnecting", "address", addr, "err", err)
		} else {
			w.logger.Debug("stream to query-frontend ended, reconnecting", "address", addr, "err", err)
		}
		healthy = n > 0
		b.Wait()
	}
}

// process runs the jobs of one stream, one at a time, and returns how many
// it ran when the stream ends.
func (w *Worker) process(ctx context.Context, client vivacepb.FrontendClient) (int, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := client.Process(ctx)
	if err != nil {
		return 0, err
	}
	for n := 0; ; n++ {
		job, err := stream.Recv()
		if err != nil {
			return n, err
		}
		if err := stream.Send(w.run(ctx, job)); err != nil {
			return n + 1, err
		}
	}
}

// run answers one job. Bad input gets code 400 so the frontend answers 400;
// other errors get code 0, a 500.
func (w *Worker) run(ctx context.Context, job *vivacepb.Job) *vivacepb.JobResult {
	res := &vivacepb.JobResult{Id: job.Id}
	ctx = user.InjectOrgID(ctx, job.Tenant)
	var err error
	switch {
	case job.Tenant == "":
		err = fmt.Errorf("%w: no tenant", errBadJob)
	case job.TraceById != nil:
		res.TraceById, err = w.q.FindTraceByID(ctx, job.TraceById)
	case job.Search != nil:
		res.Search, err = w.q.Search(ctx, job.Search)
	case job.Tags != nil:
		res.Tags, err = w.q.SearchTags(ctx, job.Tags)
	default:
		err = fmt.Errorf("%w: no request in the job", errBadJob)
	}
	switch {
	case err == nil:
		w.jobs.WithLabelValues("success").Inc()
		return res
	case errors.Is(err, errBadJob) || errors.Is(err, model.ErrInvalidTraceID):
		w.jobs.WithLabelValues("bad_request").Inc()
		return &vivacepb.JobResult{Id: job.Id, Error: err.Error(), Code: http.StatusBadRequest}
	default:
		w.jobs.WithLabelValues("error").Inc()
		w.logger.Warn("job failed", "tenant", job.Tenant, "trace_id", fmt.Sprintf("%x", job.TraceById.GetTraceId()), "err", err)
		return &vivacepb.JobResult{Id: job.Id, Error: err.Error()}
	}
}
