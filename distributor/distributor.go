// Package distributor receives spans, splits them by trace ID and pushes
// each trace to the ingesters that own it.
package distributor

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/grafana/dskit/limiter"
	"github.com/grafana/dskit/ring"
	"github.com/grafana/dskit/user"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vivace-dev/vivace/distributor/receiver"
	"github.com/vivace-dev/vivace/ingester/client"
	"github.com/vivace-dev/vivace/internal/model"
	"github.com/vivace-dev/vivace/internal/overrides"
	"github.com/vivace-dev/vivace/internal/vivacepb"
)

// IngesterClient is the distributor→ingester hop: a gRPC client, or the
// ingester itself when it runs in this process.
type IngesterClient interface {
	Push(ctx context.Context, req *vivacepb.PushRequest) (*vivacepb.PushResponse, error)
}

// Ingesters is how the distributor reaches the ingesters: the ring that
// places each trace, and a client for each ingester in it.
type Ingesters struct {
	Ring   ring.DoBatchRing
	Client func(ring.InstanceDesc) (IngesterClient, error)
	// Timeout bounds one push to one ingester.
	Timeout time.Duration
}

// Distributor is the distributor role; receivers push through it.
type Distributor struct {
	cfg       Config
	ingesters Ingesters
	limits    *overrides.Overrides
	rate      *limiter.RateLimiter // bytes per tenant
	logger    *slog.Logger
	m         *metrics
}

var _ receiver.Pusher = (*Distributor)(nil)

// Reasons of vivace_discarded_spans_total, besides malformed.
const (
	reasonRateLimited        = "rate_limited"
	reasonLiveTracesExceeded = "live_traces_exceeded"
	reasonTraceTooLarge      = "trace_too_large"
)

// rateRecheckPeriod is how often a tenant's rate limiter takes up a changed
// limit or number of distributors.
const rateRecheckPeriod = 10 * time.Second

// ingesterLimitRetryAfter is the retry hint given with traces refused by the
// ingesters: a trace stops counting as live within ingester.trace_idle_period
// (10s by default) of its last span.
const ingesterLimitRetryAfter = 10 * time.Second

// New makes a distributor pushing to ingesters under the tenants' limits.
// distributors counts the healthy distributors, among which the global rate
// strategy shares a tenant's rate limit; nil counts one.
func New(cfg Config, ingesters Ingesters, limits *overrides.Overrides, distributors func() int, logger *slog.Logger, reg prometheus.Registerer) (*Distributor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if distributors == nil {
		distributors = func() int { return 1 }
	}
	return &Distributor{
		cfg:       cfg,
		ingesters: ingesters,
		limits:    limits,
		rate:      limiter.NewRateLimiter(rateStrategy{limits, distributors}, rateRecheckPeriod),
		logger:    logger.With("component", "distributor"),
		m:         newMetrics(reg),
	}, nil
}

// rateStrategy is the dskit limiter's view of ingestion.rate_limit_bytes.
type rateStrategy struct {
	limits       *overrides.Overrides
	distributors func() int
}

func (s rateStrategy) Limit(tenant string) float64 {
	limit := s.limits.IngestionRateLimitBytes(tenant)
	if limit <= 0 {
		return math.MaxFloat64 // rate.Inf: no limit
	}
	if s.limits.IngestionRateStrategy(tenant) == overrides.GlobalRateStrategy {
		if n := s.distributors(); n > 1 {
			return float64(limit) / float64(n)
		}
	}
	return float64(limit)
}

// Burst is the same for both strategies: it bounds one request.
func (s rateStrategy) Burst(tenant string) int { return s.limits.IngestionBurstSizeBytes(tenant) }

// PushOTLP checks an encoded ExportTraceServiceRequest, splits it by trace
// without decoding the spans, and pushes it. A request proto.Unmarshal would
// refuse, or one over the tenant's rate limit, is refused whole: what is
// stored is known to decode, so blocks need not check it again. Traces the
// ingesters refuse for a limit are left out, the others stored, and the
// error (a *receiver.LimitError) names the limit; spans counts the spans
// stored.
func (d *Distributor) PushOTLP(ctx context.Context, tenant string, req []byte) (int, error) {
	if err := d.checkRate(tenant, len(req)); err != nil {
		d.m.discardedSpans.WithLabelValues(tenant, reasonRateLimited).Add(float64(model.CountSpans(req)))
		return 0, err
	}
	err := model.CheckTracesData(req)
	var split *model.Split
	if err == nil {
		split, err = model.SplitByTraceTruncating(req, d.limits.MaxAttributeBytes(tenant))
	}
	if err != nil {
		d.m.discardedSpans.WithLabelValues(tenant, "malformed").Inc()
		return 0, fmt.Errorf("%w: %v", receiver.ErrBadInput, err)
	}
	if split.Truncated > 0 {
		d.m.truncatedAttributes.WithLabelValues(tenant).Add(float64(split.Truncated))
	}
	if split.Spans == 0 {
		return 0, nil
	}
	refused, err := d.push(ctx, tenant, split)
	if err != nil {
		d.m.pushFailures.Inc()
		return 0, fmt.Errorf("push to ingesters: %w", err)
	}
	if d.cfg.LogReceivedSpans.Enabled {
		d.logSpans(tenant, req)
	}
	if len(refused) > 0 {
		return d.refuseTraces(tenant, split, refused)
	}
	d.m.receivedSpans.WithLabelValues(tenant).Add(float64(split.Spans))
	d.m.receivedBytes.WithLabelValues(tenant).Add(float64(len(req)))
	return split.Spans, nil
}

// checkRate takes n bytes from tenant's rate limit, or refuses them all.
func (d *Distributor) checkRate(tenant string, n int) error {
	now := time.Now()
	if d.rate.AllowN(now, tenant, n) {
		return nil
	}
	// Refused: a reservation, cancelled at once, tells how long to wait.
	r := d.rate.ReserveN(now, tenant, n)
	if !r.OK() {
		return &receiver.LimitError{
			Reason:     reasonRateLimited,
			Msg:        fmt.Sprintf("request of %d bytes is larger than the ingestion burst size (%d bytes) of tenant %s: send smaller requests", n, d.rate.Burst(now, tenant), tenant),
			RetryAfter: time.Second,
		}
	}
	delay := r.DelayFrom(now)
	r.CancelAt(now)
	limit := d.limits.IngestionRateLimitBytes(tenant)
	rate := fmt.Sprintf("%d bytes/s", limit)
	if local := int(d.rate.Limit(now, tenant)); local != limit {
		rate = fmt.Sprintf("%d bytes/s per distributor, %d bytes/s globally", local, limit)
	}
	return &receiver.LimitError{
		Reason:     reasonRateLimited,
		Msg:        fmt.Sprintf("ingestion rate limit (%s, burst %d bytes) exceeded for tenant %s while adding %d bytes; retry later", rate, d.rate.Burst(now, tenant), tenant, n),
		RetryAfter: delay,
	}
}

// refused is a trace a quorum of ingesters did not store.
type refused struct {
	trace  int // index into Split.IDs
	reason vivacepb.PushErrorReason
}

// refuseTraces counts the refused traces and names their limits.
func (d *Distributor) refuseTraces(tenant string, split *model.Split, refusedTraces []refused) (int, error) {
	var live, large, liveSpans, largeSpans, refusedBytes int
	var example model.TraceID
	for _, r := range refusedTraces {
		spans := model.CountSpans(split.Traces[r.trace])
		refusedBytes += len(split.Traces[r.trace])
		if r.reason == vivacepb.PushErrorReason_MAX_LIVE_TRACES {
			live, liveSpans = live+1, liveSpans+spans
			continue
		}
		if large == 0 {
			example = split.IDs[r.trace]
		}
		large, largeSpans = large+1, largeSpans+spans
	}
	var msgs []string
	reason := reasonTraceTooLarge
	if live > 0 {
		reason = reasonLiveTracesExceeded
		d.m.discardedSpans.WithLabelValues(tenant, reasonLiveTracesExceeded).Add(float64(liveSpans))
		msgs = append(msgs, fmt.Sprintf("max live traces per tenant (%d per ingester) exceeded for tenant %s: %d new traces refused",
			d.limits.MaxTracesPerUser(tenant), tenant, live))
	}
	if large > 0 {
		d.m.discardedSpans.WithLabelValues(tenant, reasonTraceTooLarge).Add(float64(largeSpans))
		msgs = append(msgs, fmt.Sprintf("max bytes per trace (%d) exceeded for tenant %s: the spans of %d traces refused (trace %s first), their spans accepted before kept",
			d.limits.MaxBytesPerTrace(tenant), tenant, large, example))
	}
	stored := split.Spans - liveSpans - largeSpans
	d.m.receivedSpans.WithLabelValues(tenant).Add(float64(stored))
	d.m.receivedBytes.WithLabelValues(tenant).Add(float64(totalBytes(split) - refusedBytes))
	return stored, &receiver.LimitError{
		Reason: reason,
		Msg: fmt.Sprintf("%s; %d of %d traces stored; retry later",
			strings.Join(msgs, "; "), len(split.IDs)-len(refusedTraces), len(split.IDs)),
		RetryAfter: ingesterLimitRetryAfter,
	}
}

func totalBytes(split *model.Split) int {
	n := 0
	for _, t := range split.Traces {
		n += len(t)
	}
	return n
}

// push sends each trace to the replication_factor ingesters that own it, one
// request per ingester, and returns once a quorum of them answered for every
// trace. A trace fewer than a quorum of them stored, because the others
// refused it for a limit, is returned as refused.
func (d *Distributor) push(ctx context.Context, tenant string, split *model.Split) ([]refused, error) {
	keys := make([]uint32, len(split.IDs))
	for i, id := range split.IDs {
		keys[i] = client.Token(tenant, id)
	}
	st := &pushState{stored: make([]atomic.Int32, len(split.IDs))}
	// The pushes beyond the quorum go on after the request returns: they
	// must not be cancelled with it.
	pushCtx := user.InjectOrgID(context.WithoutCancel(ctx), tenant)
	err := ring.DoBatchWithOptions(ctx, ring.WriteNoExtend, d.ingesters.Ring, keys, func(inst ring.InstanceDesc, idx []int) error {
		req := &vivacepb.PushRequest{Ids: make([][]byte, len(idx)), Traces: make([][]byte, len(idx))}
		for k, i := range idx {
			req.Ids[k], req.Traces[k] = split.IDs[i][:], split.Traces[i]
		}
		c, err := d.ingesters.Client(inst)
		if err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(pushCtx, d.ingesters.Timeout)
		defer cancel()
		resp, err := c.Push(ctx, req)
		if err != nil {
			return fmt.Errorf("ingester %s: %w", inst.Id, err)
		}
		errs := resp.GetErrorsByTrace()
		if len(errs) != 0 && len(errs) != len(idx) {
			return fmt.Errorf("ingester %s: %d trace errors for %d traces", inst.Id, len(errs), len(idx))
		}
		for k, i := range idx {
			if len(errs) == 0 || errs[k] == vivacepb.PushErrorReason_NO_ERROR {
				st.stored[i].Add(1)
				continue
			}
			st.mu.Lock()
			if st.reasons == nil {
				st.reasons = make([]vivacepb.PushErrorReason, len(split.IDs))
			}
			st.reasons[i] = errs[k]
			st.mu.Unlock()
		}
		return nil
	}, ring.DoBatchOptions{})
	if err != nil {
		return nil, err
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.reasons == nil {
		// Every answer so far stored everything: a quorum holds each trace.
		return nil, nil
	}
	quorum := int32(d.ingesters.Ring.ReplicationFactor()/2 + 1)
	var out []refused
	for i := range split.IDs {
		if st.stored[i].Load() < quorum && st.reasons[i] != vivacepb.PushErrorReason_NO_ERROR {
			out = append(out, refused{trace: i, reason: st.reasons[i]})
		}
	}
	return out, nil
}

// pushState is what the ingesters answered for each trace of a push.
type pushState struct {
	stored []atomic.Int32 // ingesters that stored the trace
	// reasons, made at the first refusal, holds the last reason each
	// trace was refused for.
	mu      sync.Mutex
	reasons []vivacepb.PushErrorReason
}
