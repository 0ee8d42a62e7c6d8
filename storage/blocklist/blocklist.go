// Package blocklist keeps the list of complete blocks per tenant by polling
// the object store; queriers (and later compactors) read it.
package blocklist

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/grafana/dskit/services"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"golang.org/x/sync/errgroup"

	"github.com/vivace-dev/vivace/storage"
	"github.com/vivace-dev/vivace/storage/block"
)

// List is the polled block list, a dskit service. The first poll happens in
// starting, so a running List is never empty for lack of trying.
type List struct {
	services.Service

	bkt    storage.Bucket
	period time.Duration
	logger *slog.Logger

	mu    sync.RWMutex
	metas map[string]map[string]*block.Meta // tenant → block ID → meta

	blocks       *prometheus.GaugeVec
	pollSeconds  prometheus.Histogram
	pollFailures prometheus.Counter
}

// New makes a List polling bkt every period.
func New(bkt storage.Bucket, period time.Duration, logger *slog.Logger, reg prometheus.Registerer) *List {
	f := promauto.With(reg)
	l := &List{
		bkt:          bkt,
		period:       period,
		logger:       logger.With("component", "blocklist"),
		metas:        map[string]map[string]*block.Meta{},
		blocks:       f.NewGaugeVec(prometheus.GaugeOpts{Name: "vivace_blocklist_blocks", Help: "Blocks in the polled block list, by tenant."}, []string{"tenant"}),
		pollSeconds:  f.NewHistogram(prometheus.HistogramOpts{Name: "vivace_blocklist_poll_duration_seconds", Help: "Time to poll the block list."}),
		pollFailures: f.NewCounter(prometheus.CounterOpts{Name: "vivace_blocklist_poll_failures_total", Help: "Failed block list polls."}),
	}
	l.Service = services.NewTimerService(period, l.starting, l.iterate, nil)
	return l
}

func (l *List) starting(ctx context.Context) error { return l.Poll(ctx) }

func (l *List) iterate(ctx context.Context) error {
	if err := l.Poll(ctx); err != nil {
		l.pollFailures.Inc()
		l.logger.Error("poll block list", "err", err)
	}
	return nil // a failed poll keeps the last list and tries again
}

// Metas returns the tenant's blocks, in no particular order.
func (l *List) Metas(tenant string) []*block.Meta {
	l.mu.RLock()
	defer l.mu.RUnlock()
	out := make([]*block.Meta, 0, len(l.metas[tenant]))
	for _, m := range l.metas[tenant] {
		out = append(out, m)
	}
	return out
}

// Poll lists every tenant's blocks now. A meta already known is not read
// again: blocks are immutable.
func (l *List) Poll(ctx context.Context) error {
	start := time.Now()
	defer func() { l.pollSeconds.Observe(time.Since(start).Seconds()) }()
	tenants, err := l.bkt.List(ctx, "")
	if err != nil {
		return fmt.Errorf("list tenants: %w", err)
	}
	next := map[string]map[string]*block.Meta{}
	for _, t := range tenants {
		tenant, ok := strings.CutSuffix(t, "/")
		if !ok {
			continue
		}
		metas, err := l.pollTenant(ctx, tenant)
		if err != nil {
			return err
		}
		next[tenant] = metas
	}
	l.mu.Lock()
	for tenant := range l.metas {
		if _, ok := next[tenant]; !ok {
			l.blocks.DeleteLabelValues(tenant)
		}
	}
	l.metas = next
	for tenant, m := range next {
		l.blocks.WithLabelValues(tenant).Set(float64(len(m)))
	}
	l.mu.Unlock()
	return nil
}

func (l *List) pollTenant(ctx context.Context, tenant string) (map[string]*block.Meta, error) {
	dirs, err := l.bkt.List(ctx, tenant+"/")
	if err != nil {
		return nil, fmt.Errorf("list blocks of %s: %w", tenant, err)
	}
	l.mu.RLock()
	known := l.metas[tenant]
	l.mu.RUnlock()
	out := map[string]*block.Meta{}
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for _, d := range dirs {
		id, ok := strings.CutSuffix(strings.TrimPrefix(d, tenant+"/"), "/")
		if !ok {
			continue
		}
		if m, ok := known[id]; ok {
			// Goroutines started for earlier new blocks write out too.
			mu.Lock()
			out[id] = m
			mu.Unlock()
			continue
		}
		g.Go(func() error {
			m, err := block.ReadMeta(gctx, l.bkt, tenant, id)
			switch {
			case errors.Is(err, storage.ErrNotFound):
				return nil // still being written: meta.json comes last
			case err != nil:
				// One bad block must not hide the others.
				l.logger.Error("skipping block with unreadable meta", "tenant", tenant, "block_id", id, "err", err)
				return nil
			}
			mu.Lock()
			out[id] = m
			mu.Unlock()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return out, nil
}
