// Package blocklist keeps the list of complete blocks per tenant by polling
// the object store; queriers and compactors read it. Blocks marked compacted
// (meta.compacted.json) are kept apart: readers never see them, the
// compactor deletes them after a grace period.
//
// Listing every block of a tenant at every poll costs a LIST and a GET per
// block. So one poller per tenant, its builder, lists the blocks and writes
// them to the tenant index (<tenant>/index.json.gz); every other poller
// reads that index, one GET per tenant, and lists only if it is missing,
// unreadable or stale. A reader's list is then up to two polls old (the
// builder's and its own), or the stale bound plus a poll if the builder
// stopped: Config.MaxListDelay.
package blocklist

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/grafana/dskit/backoff"
	"github.com/grafana/dskit/services"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/vivace-dev/vivace/storage"
	"github.com/vivace-dev/vivace/storage/block"
)

// List is the polled block list, a dskit service. The first poll happens in
// starting, so a running List is never empty for lack of trying.
type List struct {
	services.Service

	bkt        storage.Bucket
	buildIndex func(tenant string) bool // nil: never
	staleAfter time.Duration
	now        func() time.Time // the clock of tenant indexes; tests move it
	logger     *slog.Logger
	metrics    *metrics

	mu        sync.RWMutex
	metas     map[string]map[string]*block.Meta          // tenant → block ID → meta
	compacted map[string]map[string]*block.CompactedMeta // tenant → block ID → compacted meta
}

// New makes a List polling bkt every period that only reads tenant
// indexes, with the default stale bound.
func New(bkt storage.Bucket, period time.Duration, logger *slog.Logger, reg prometheus.Registerer) *List {
	return newList(Config{PollInterval: period}, bkt, logger, reg)
}

// NewWithConfig makes a List polling bkt as cfg says; with cfg.BuildIndex
// it writes the indexes of the tenants it owns.
func NewWithConfig(cfg Config, bkt storage.Bucket, logger *slog.Logger, reg prometheus.Registerer) (*List, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return newList(cfg, bkt, logger, reg), nil
}

func newList(cfg Config, bkt storage.Bucket, logger *slog.Logger, reg prometheus.Registerer) *List {
	l := &List{
		bkt:        bkt,
		buildIndex: cfg.BuildIndex,
		staleAfter: cfg.StaleAfter(),
		now:        time.Now,
		logger:     logger.With("component", "blocklist"),
		metrics:    newMetrics(reg),
		metas:      map[string]map[string]*block.Meta{},
		compacted:  map[string]map[string]*block.CompactedMeta{},
	}
	l.Service = services.NewTimerService(cfg.PollInterval, l.starting, l.iterate, nil)
	return l
}

// starting waits for a first complete list, retrying while the store is
// unreachable (on Kubernetes, object storage may start after us): the
// process stays unready instead of failing and restarting.
func (l *List) starting(ctx context.Context) error {
	b := backoff.New(ctx, backoff.Config{MinBackoff: 100 * time.Millisecond, MaxBackoff: 10 * time.Second})
	for {
		err := l.Poll(ctx)
		if err == nil {
			return nil
		}
		l.metrics.pollFailures.Inc()
		l.logger.Warn("first poll of the block list failed; retrying", "err", err)
		b.Wait()
		if !b.Ongoing() {
			return fmt.Errorf("first poll of the block list: %w", err)
		}
	}
}

func (l *List) iterate(ctx context.Context) error {
	if err := l.Poll(ctx); err != nil {
		l.metrics.pollFailures.Inc()
		l.logger.Error("poll block list", "err", err)
	}
	return nil // a failed poll keeps the last list and tries again
}

// Metas returns the tenant's blocks, in no particular order. Blocks marked
// compacted are not among them.
func (l *List) Metas(tenant string) []*block.Meta {
	l.mu.RLock()
	defer l.mu.RUnlock()
	out := make([]*block.Meta, 0, len(l.metas[tenant]))
	for _, m := range l.metas[tenant] {
		out = append(out, m)
	}
	return out
}

// CompactedMetas returns the tenant's blocks that are marked compacted and
// not yet deleted, in no particular order.
func (l *List) CompactedMetas(tenant string) []*block.CompactedMeta {
	l.mu.RLock()
	defer l.mu.RUnlock()
	out := make([]*block.CompactedMeta, 0, len(l.compacted[tenant]))
	for _, m := range l.compacted[tenant] {
		out = append(out, m)
	}
	return out
}

// Tenants returns the tenants with blocks, compacted or not, sorted.
func (l *List) Tenants() []string {
	l.mu.RLock()
	defer l.mu.RUnlock()
	var out []string
	for t := range l.metas { // a polled tenant is in both maps
		if len(l.metas[t])+len(l.compacted[t]) > 0 {
			out = append(out, t)
		}
	}
	slices.Sort(out)
	return out
}

// tenantBlocks is one tenant's part of a poll.
type tenantBlocks struct {
	metas     map[string]*block.Meta
	compacted map[string]*block.CompactedMeta
}

// Poll refreshes every tenant's blocks now: from the tenant index, or by
// listing them (and writing the index) for the tenants this List builds.
// Tenants are found by listing the top level, which is cheap.
func (l *List) Poll(ctx context.Context) error {
	start := time.Now()
	defer func() { l.metrics.pollSeconds.Observe(time.Since(start).Seconds()) }()
	tenants, err := l.bkt.List(ctx, "")
	if err != nil {
		return fmt.Errorf("list tenants: %w", err)
	}
	next := map[string]tenantBlocks{}
	for _, t := range tenants {
		tenant, ok := strings.CutSuffix(t, "/")
		if !ok {
			continue
		}
		tb, err := l.pollTenant(ctx, tenant)
		if err != nil {
			return err
		}
		next[tenant] = tb
	}
	l.mu.Lock()
	for tenant := range l.metas {
		if _, ok := next[tenant]; !ok {
			l.metrics.forget(tenant)
		}
	}
	l.metas = map[string]map[string]*block.Meta{}
	l.compacted = map[string]map[string]*block.CompactedMeta{}
	for tenant, tb := range next {
		l.metas[tenant] = tb.metas
		l.compacted[tenant] = tb.compacted
		l.metrics.blocks.WithLabelValues(tenant).Set(float64(len(tb.metas)))
		l.metrics.compactedBlocks.WithLabelValues(tenant).Set(float64(len(tb.compacted)))
	}
	l.mu.Unlock()
	return nil
}

// pollTenant returns the tenant's blocks: listed, and written to the tenant
// index, if this List builds the tenant's index; else read from the index,
// or listed if the index cannot be trusted.
func (l *List) pollTenant(ctx context.Context, tenant string) (tenantBlocks, error) {
	if l.buildIndex != nil && l.buildIndex(tenant) {
		return l.build(ctx, tenant)
	}
	tb, err := l.read(ctx, tenant)
	if err == nil {
		return tb, nil
	}
	if errors.Is(err, storage.ErrNotFound) {
		// Usual for a new tenant, or before any builder ran.
		l.logger.Debug("no tenant index, listing blocks", "tenant", tenant)
	} else {
		l.logger.Warn("tenant index not usable, listing blocks", "tenant", tenant, "err", err)
	}
	return l.listTenant(ctx, tenant)
}

// build lists the tenant's blocks and writes them to the tenant index.
func (l *List) build(ctx context.Context, tenant string) (tenantBlocks, error) {
	// Taken before listing: every block complete by then is in the list.
	createdAt := l.now()
	tb, err := l.listTenant(ctx, tenant)
	if err != nil {
		return tb, err
	}
	l.metrics.indexAge.DeleteLabelValues(tenant) // this List reads no index of the tenant
	if err := writeIndex(ctx, l.bkt, tenant, createdAt, tb); err != nil {
		if ctx.Err() != nil {
			return tb, ctx.Err() // stopping: not the index's fault
		}
		// This List is right all the same; readers list the tenant once the
		// index they have is stale.
		l.metrics.indexErrors.WithLabelValues(tenant, reasonWrite).Inc()
		l.logger.Error("write tenant index", "tenant", tenant, "err", err)
		return tb, nil
	}
	l.metrics.indexBuilds.WithLabelValues(tenant).Inc()
	return tb, nil
}

// read returns the tenant's blocks from its tenant index, or an error if
// it is missing (wrapping storage.ErrNotFound), unreadable or stale.
func (l *List) read(ctx context.Context, tenant string) (tenantBlocks, error) {
	idx, err := readIndex(ctx, l.bkt, tenant)
	if err != nil {
		l.metrics.indexAge.DeleteLabelValues(tenant)
		reason := reasonUnreadable
		if errors.Is(err, storage.ErrNotFound) {
			reason = reasonMissing
		}
		l.metrics.indexErrors.WithLabelValues(tenant, reason).Inc()
		return tenantBlocks{}, err
	}
	age := idx.age(l.now())
	l.metrics.indexAge.WithLabelValues(tenant).Set(age.Seconds())
	if age > l.staleAfter {
		l.metrics.indexErrors.WithLabelValues(tenant, reasonStale).Inc()
		return tenantBlocks{}, fmt.Errorf("tenant index of %s: %w: created %s, %s ago (bound %s)",
			tenant, errStaleIndex, idx.CreatedAt.Format(time.RFC3339), age.Round(time.Second), l.staleAfter)
	}
	return idx.blocks(), nil
}

// listTenant lists the tenant's block folders and sorts them into blocks and
// compacted blocks. A meta already known is not read again (blocks are
// immutable), but every listed block is checked for a compacted marker.
//
// The compactor writes a replacement block's meta.json before it marks the
// sources compacted. When this poll sees a block newly marked, it lists the
// folders again, so the replacement is in the same list even if the first
// listing came too early: a trace is never missing from a list.
func (l *List) listTenant(ctx context.Context, tenant string) (tenantBlocks, error) {
	l.mu.RLock()
	known, knownCompacted := l.metas[tenant], l.compacted[tenant]
	l.mu.RUnlock()
	out := tenantBlocks{metas: map[string]*block.Meta{}, compacted: map[string]*block.CompactedMeta{}}
	var mu sync.Mutex // guards out

	ids, err := l.listBlocks(ctx, tenant)
	if err != nil {
		return out, err
	}
	newlyMarked := false
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for id := range ids {
		if cm, ok := knownCompacted[id]; ok {
			mu.Lock()
			out.compacted[id] = cm // a compacted block stays compacted
			mu.Unlock()
			continue
		}
		g.Go(func() error {
			m, cm := l.readBlock(gctx, tenant, id, known[id])
			mu.Lock()
			defer mu.Unlock()
			if cm != nil {
				out.compacted[id] = cm
				newlyMarked = true
			} else if m != nil {
				out.metas[id] = m
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil || !newlyMarked {
		return out, err
	}

	again, err := l.listBlocks(ctx, tenant)
	if err != nil {
		return out, err
	}
	for id := range out.metas {
		delete(again, id)
	}
	for id := range out.compacted {
		delete(again, id)
	}
	g, gctx = errgroup.WithContext(ctx)
	g.SetLimit(16)
	for id := range again {
		// New or incomplete at the first look: a replacement, or a newer
		// block. Its marker, if any, is read at the next poll: listing a
		// compacted block for one period is harmless, its objects are
		// still there.
		g.Go(func() error {
			m, err := block.ReadMeta(gctx, l.bkt, tenant, id)
			if err != nil {
				if !errors.Is(err, storage.ErrNotFound) {
					l.logger.Error("skipping block with unreadable meta", "tenant", tenant, "block_id", id, "err", err)
				}
				return nil
			}
			mu.Lock()
			out.metas[id] = m
			mu.Unlock()
			return nil
		})
	}
	return out, g.Wait()
}

// readBlock returns a listed block's meta (known, if it was listed before),
// or its compacted meta if it is marked compacted, or neither if it is not
// (or no longer) a complete block or cannot be read.
func (l *List) readBlock(ctx context.Context, tenant, id string, known *block.Meta) (*block.Meta, *block.CompactedMeta) {
	m := known
	if m == nil {
		var err error
		m, err = block.ReadMeta(ctx, l.bkt, tenant, id)
		switch {
		case errors.Is(err, storage.ErrNotFound):
			// Being written (meta.json comes last) or being deleted (it
			// goes first): the marker below tells which.
			m = nil
		case err != nil:
			// One bad block must not hide the others.
			l.logger.Error("skipping block with unreadable meta", "tenant", tenant, "block_id", id, "err", err)
			return nil, nil
		}
	}
	cm, err := block.ReadCompacted(ctx, l.bkt, tenant, id)
	switch {
	case err == nil:
		// Even without meta.json: a deletion that was interrupted, which
		// the compactor finishes.
		return nil, cm
	case errors.Is(err, storage.ErrNotFound):
		return m, nil
	default:
		l.logger.Error("cannot read compacted marker", "tenant", tenant, "block_id", id, "err", err)
		return known, nil // keep what readers saw until we know better
	}
}

// listBlocks returns the IDs of the tenant's block folders.
func (l *List) listBlocks(ctx context.Context, tenant string) (map[string]bool, error) {
	dirs, err := l.bkt.List(ctx, tenant+"/")
	if err != nil {
		return nil, fmt.Errorf("list blocks of %s: %w", tenant, err)
	}
	ids := make(map[string]bool, len(dirs))
	for _, d := range dirs {
		if id, ok := strings.CutSuffix(strings.TrimPrefix(d, tenant+"/"), "/"); ok {
			ids[id] = true
		}
	}
	return ids, nil
}
