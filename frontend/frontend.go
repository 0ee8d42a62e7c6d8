// Package frontend is the public read API (Tempo's HTTP API). It splits each
// query into jobs, runs them on queriers and combines the answers.
package frontend

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"
	"github.com/grafana/dskit/user"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"
	"golang.org/x/sync/errgroup"
	"google.golang.org/protobuf/proto"

	"github.com/vivace-dev/vivace/internal/model"
	"github.com/vivace-dev/vivace/internal/vivacepb"
)

// Querier is the frontend→querier hop.
type Querier interface {
	FindTraceByID(ctx context.Context, req *vivacepb.TraceByIDRequest) (*vivacepb.TraceByIDResponse, error)
}

// Limits are the per-tenant limits the frontend enforces.
type Limits interface {
	MaxBytesPerTrace(tenant string) int
}

// Frontend is the query-frontend role.
type Frontend struct {
	cfg          Config
	querier      Querier
	limits       Limits
	multitenancy bool
	logger       *slog.Logger

	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// New makes a frontend sending jobs to querier.
func New(cfg Config, querier Querier, limits Limits, multitenancy bool, logger *slog.Logger, reg prometheus.Registerer) (*Frontend, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	f := promauto.With(reg)
	return &Frontend{
		cfg:          cfg,
		querier:      querier,
		limits:       limits,
		multitenancy: multitenancy,
		logger:       logger.With("component", "query-frontend"),
		requests: f.NewCounterVec(prometheus.CounterOpts{
			Name: "vivace_query_frontend_requests_total", Help: "Read API requests, by endpoint and status code.",
		}, []string{"endpoint", "code"}),
		duration: f.NewHistogramVec(prometheus.HistogramOpts{
			Name: "vivace_query_frontend_request_duration_seconds", Help: "Read API latency, by endpoint.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}, []string{"endpoint"}),
	}, nil
}

// RegisterRoutes adds the read API to router.
func (f *Frontend) RegisterRoutes(router *mux.Router) {
	router.Handle("/api/traces/{traceID}", f.instrument("trace_by_id_v1", f.traceByIDV1)).Methods(http.MethodGet)
	router.Handle("/api/v2/traces/{traceID}", f.instrument("trace_by_id_v2", f.traceByIDV2)).Methods(http.MethodGet)
	router.HandleFunc("/api/echo", func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "echo", http.StatusOK)
	}).Methods(http.MethodGet)
}

// httpError is an error with the status code it is answered with.
type httpError struct {
	code int
	msg  string
}

func (e *httpError) Error() string { return e.msg }

func badRequest(format string, args ...any) error {
	return &httpError{http.StatusBadRequest, fmt.Sprintf(format, args...)}
}

func (f *Frontend) instrument(endpoint string, h func(http.ResponseWriter, *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		err := h(w, r)
		code := http.StatusOK
		if err != nil {
			var he *httpError
			if errors.As(err, &he) {
				code = he.code
			} else {
				code = http.StatusInternalServerError
				f.logger.Error("request failed", "endpoint", endpoint, "err", err)
			}
			http.Error(w, err.Error(), code)
		}
		f.requests.WithLabelValues(endpoint, strconv.Itoa(code)).Inc()
		f.duration.WithLabelValues(endpoint).Observe(time.Since(start).Seconds())
	})
}

// traceRequest is a parsed trace-by-ID request.
type traceRequest struct {
	tenant     string
	id         model.TraceID
	start, end int64
	proto      bool
}

func (f *Frontend) parseTraceRequest(r *http.Request) (*traceRequest, error) {
	tenant, err := model.ResolveTenant(f.multitenancy, r.Header.Get(model.TenantHeader))
	if err != nil {
		return nil, &httpError{http.StatusUnauthorized, err.Error()}
	}
	id, err := model.ParseTraceID(mux.Vars(r)["traceID"])
	if err != nil {
		return nil, badRequest("%v", err)
	}
	tr := &traceRequest{tenant: tenant, id: id, proto: acceptsProtobuf(r)}
	q := r.URL.Query()
	if tr.start, err = unixSeconds(q, "start"); err != nil {
		return nil, err
	}
	if tr.end, err = unixSeconds(q, "end"); err != nil {
		return nil, err
	}
	if tr.start > 0 && tr.end > 0 && tr.end < tr.start {
		return nil, badRequest("end (%d) is before start (%d)", tr.end, tr.start)
	}
	return tr, nil
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

// findTrace splits a lookup into one ingester job and query_shards block
// jobs over block-ID ranges, runs them in parallel and combines the parts.
func (f *Frontend) findTrace(ctx context.Context, tr *traceRequest) (*tracev1.TracesData, uint64, error) {
	ctx = user.InjectOrgID(ctx, tr.tenant)
	jobs := f.jobs(tr)
	answers := make([]*vivacepb.TraceByIDResponse, len(jobs))
	g, gctx := errgroup.WithContext(ctx)
	for i, job := range jobs {
		g.Go(func() error {
			resp, err := f.querier.FindTraceByID(gctx, job)
			answers[i] = resp
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, 0, fmt.Errorf("find trace %s: %w", tr.id, err)
	}
	var parts []*tracev1.TracesData
	var inspected uint64
	for _, a := range answers {
		inspected += a.GetMetrics().GetInspectedBytes()
		if len(a.GetTrace()) == 0 {
			continue
		}
		td := &tracev1.TracesData{}
		if err := proto.Unmarshal(a.Trace, td); err != nil {
			return nil, 0, fmt.Errorf("decode querier answer: %w", err)
		}
		parts = append(parts, td)
	}
	return model.Combine(parts...), inspected, nil
}

func (f *Frontend) jobs(tr *traceRequest) []*vivacepb.TraceByIDRequest {
	n := f.cfg.TraceByID.QueryShards
	jobs := []*vivacepb.TraceByIDRequest{{TraceId: tr.id[:], Start: tr.start, End: tr.end, QueryMode: "ingesters"}}
	for i := range n {
		lo := uint64(i) << 32 / uint64(n)
		hi := uint64(i+1)<<32/uint64(n) - 1
		jobs = append(jobs, &vivacepb.TraceByIDRequest{
			TraceId: tr.id[:], Start: tr.start, End: tr.end, QueryMode: "blocks",
			BlockStart: fmt.Sprintf("%08x-0000-0000-0000-000000000000", lo),
			BlockEnd:   fmt.Sprintf("%08x-ffff-ffff-ffff-ffffffffffff", hi),
		})
	}
	return jobs
}
