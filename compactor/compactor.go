// Package compactor merges a tenant's small blocks of the same time window
// into larger ones without duplicate spans, deletes the blocks they replace
// after a grace period, and deletes blocks past retention.
//
// Several compactors share the work through the ring: each runs only the jobs
// whose key it owns, so two never merge the same blocks. If two ever own the
// same key (a ring change mid-cycle), both may merge the same blocks: nothing
// is lost and readers drop the duplicate spans, but the traces sit in two
// blocks until a later cycle merges those.
package compactor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/grafana/dskit/services"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vivace-dev/vivace/storage"
	"github.com/vivace-dev/vivace/storage/block"
	"github.com/vivace-dev/vivace/storage/blocklist"
)

// Compactor is the compactor role, a dskit service running a Cycle every
// compaction_cycle.
type Compactor struct {
	services.Service

	cfg       CompactionConfig
	bkt       storage.Bucket
	list      *blocklist.List
	owns      func(key string) bool
	retention func(tenant string) time.Duration
	blockCfg  block.WriterConfig
	tempDir   string
	logger    *slog.Logger
	metrics   *metrics
	now       func() time.Time // the clock; tests move it

	mu sync.Mutex // one cycle at a time; guards marked, corrupt and exported
	// marked holds, per tenant, the blocks this compactor marked compacted
	// that the block list may still show until its next poll.
	marked map[string]map[string]bool
	// corrupt holds, per tenant, the listed blocks found corrupt, which no
	// plan includes any more. They are not deleted: an operator decides.
	corrupt map[string]map[string]bool
	// exported holds the tenants whose block gauges this compactor sets.
	exported map[string]bool
}

// New makes a compactor of the blocks that list polls from bkt (list is a
// service of its own, started before the compactor). owns tells
// whether this instance runs the job or tenant retention with the given key
// (the app asks the ring; two compactors must never both own a key).
// retention gives a tenant's block_retention (the per-tenant override); a
// nil func, or a result of 0 or less, means the configured block_retention.
// blockCfg is how new blocks are written; their data.parquet is built under
// tempDir (os.TempDir() if empty).
func New(cfg Config, bkt storage.Bucket, list *blocklist.List, owns func(key string) bool, retention func(tenant string) time.Duration,
	blockCfg block.WriterConfig, tempDir string, logger *slog.Logger, reg prometheus.Registerer,
) (*Compactor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := &Compactor{
		cfg:       cfg.Compaction,
		bkt:       bkt,
		list:      list,
		owns:      owns,
		retention: retention,
		blockCfg:  blockCfg,
		tempDir:   tempDir,
		logger:    logger.With("component", "compactor"),
		metrics:   newMetrics(reg),
		now:       time.Now,
		marked:    map[string]map[string]bool{},
		corrupt:   map[string]map[string]bool{},
		exported:  map[string]bool{},
	}
	c.Service = services.NewTimerService(c.cfg.CompactionCycle, nil, c.iterate, nil)
	return c, nil
}

// blockRetention is the tenant's block_retention.
func (c *Compactor) blockRetention(tenant string) time.Duration {
	if c.retention != nil {
		if d := c.retention(tenant); d > 0 {
			return d
		}
	}
	return c.cfg.BlockRetention
}

func (c *Compactor) iterate(ctx context.Context) error {
	if err := c.Cycle(ctx); err != nil && ctx.Err() == nil {
		c.logger.Error("compaction cycle", "err", err)
	}
	return nil // a failed cycle is tried again at the next one
}

// Cycle does, for every tenant of the block list: if this compactor owns the
// tenant's retention, the tenant's block gauges, retention and the deletion
// of compacted blocks past their grace period; then every compaction job it
// owns. A failure does not stop the rest; the failures are returned together.
func (c *Compactor) Cycle(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	start := time.Now()
	defer func() { c.metrics.cycleSeconds.Observe(time.Since(start).Seconds()) }()
	var errs []error
	owned := map[string]bool{}
	for _, tenant := range c.list.Tenants() {
		if err := ctx.Err(); err != nil {
			return err
		}
		now := c.now()
		if c.owns(retentionKey(tenant)) {
			owned[tenant] = true
			// Every compactor sees every block: only the one owner of a
			// tenant exports its gauges, so that a sum over compactors
			// counts each block once.
			c.metrics.setBlocks(tenant, c.list.Metas(tenant))
			c.exported[tenant] = true
			errs = append(errs, c.retain(ctx, tenant, now))
		}
		errs = append(errs, c.compactTenant(ctx, tenant, now))
	}
	for tenant := range c.exported {
		if !owned[tenant] { // gone, or owned by another compactor now
			c.metrics.forgetBlocks(tenant)
			delete(c.exported, tenant)
		}
	}
	return errors.Join(errs...)
}

// compactTenant runs the tenant's jobs this compactor owns, one at a time.
// A job that finds one of its blocks corrupt leaves the block out from then
// on, and the blocks of its group are planned again without it.
func (c *Compactor) compactTenant(ctx context.Context, tenant string, now time.Time) error {
	cfg := c.cfg
	cfg.BlockRetention = c.blockRetention(tenant)
	var (
		errs  []error
		again map[string]bool // the groups to plan again; nil: all
	)
	for {
		found := map[string]bool{} // groups with a block found corrupt
		for _, j := range plan(cfg, tenant, c.live(tenant), now) {
			if err := ctx.Err(); err != nil {
				return err
			}
			if !c.owns(j.key) || (again != nil && !again[j.key]) {
				continue
			}
			err := c.compact(ctx, j)
			if err == nil {
				continue
			}
			if m := c.corruptSource(ctx, err); m != nil {
				c.markCorrupt(m, err)
				found[j.key] = true
				continue
			}
			c.metrics.compactionErrors.WithLabelValues(tenant).Inc()
			errs = append(errs, fmt.Errorf("compact %s: %w", j.key, err))
		}
		if len(found) == 0 {
			return errors.Join(errs...)
		}
		again = found // each round leaves out one more block at least: it ends
	}
}

// live returns the tenant's listed blocks that are neither marked compacted
// by this compactor nor corrupt, and forgets the marked and corrupt blocks
// the block list no longer shows.
func (c *Compactor) live(tenant string) []*block.Meta {
	metas := c.list.Metas(tenant)
	listed := make(map[string]bool, len(metas))
	for _, m := range metas {
		listed[m.BlockID] = true
	}
	marked, corrupt := c.marked[tenant], c.corrupt[tenant]
	for id := range marked {
		if !listed[id] {
			delete(marked, id) // the list has caught up
		}
	}
	for id := range corrupt {
		if !listed[id] {
			delete(corrupt, id) // deleted, by an operator or retention
		}
	}
	var live []*block.Meta
	for _, m := range metas {
		if !marked[m.BlockID] && !corrupt[m.BlockID] {
			live = append(live, m)
		}
	}
	return live
}

// compact runs one job: merge its blocks into a new block, then, only once
// that block is complete (meta.json written), mark every source compacted.
// Readers list either the sources or the new block (or both for a moment,
// which costs a duplicate that their combining drops), never neither.
func (c *Compactor) compact(ctx context.Context, j job) error {
	c.metrics.compactions.WithLabelValues(j.tenant).Inc()
	// The block list may be older than a compaction another compactor did
	// (before a ring change): do not merge the same blocks twice.
	for _, m := range j.blocks {
		_, err := block.ReadCompacted(ctx, c.bkt, j.tenant, m.BlockID)
		switch {
		case err == nil:
			c.logger.Info("skipping job: a block is already compacted", "tenant", j.tenant, "block_id", m.BlockID)
			return nil
		case !errors.Is(err, storage.ErrNotFound):
			return err
		}
	}
	start := time.Now()
	meta, st, err := c.merge(ctx, j.tenant, j.blocks)
	if err != nil {
		return err
	}
	now := c.now()
	if c.marked[j.tenant] == nil {
		c.marked[j.tenant] = map[string]bool{}
	}
	ids := make([]string, len(j.blocks))
	for i, m := range j.blocks {
		// If marking stops half-way, the unmarked sources stay listed with
		// the new block: readers drop the duplicate spans, and a later job
		// merges them again.
		if err := block.WriteCompacted(ctx, c.bkt, m, now); err != nil {
			return err
		}
		c.marked[j.tenant][m.BlockID] = true
		ids[i] = m.BlockID
	}
	c.metrics.blocksCompacted.WithLabelValues(j.tenant).Add(float64(len(j.blocks)))
	c.metrics.bytesWritten.WithLabelValues(j.tenant).Add(float64(meta.Size))
	c.metrics.spansWritten.WithLabelValues(j.tenant).Add(float64(st.spansOut))
	c.metrics.spansDeduplicated.WithLabelValues(j.tenant).Add(float64(st.spansIn - st.spansOut))
	c.logger.Info("compacted blocks", "tenant", j.tenant, "block_id", meta.BlockID, "level", meta.CompactionLevel,
		"sources", ids, "spans_in", st.spansIn, "spans_out", st.spansOut, "bytes", meta.Size, "duration", time.Since(start))
	return nil
}
