package compactor

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/vivace-dev/vivace/storage"
)

// retain deletes the tenant's blocks whose newest span is older than the
// tenant's block_retention, and its compacted blocks marked longer ago than
// compacted_block_retention. Nothing younger is touched.
func (c *Compactor) retain(ctx context.Context, tenant string, now time.Time) error {
	var errs []error
	cutoff := now.Add(-c.blockRetention(tenant))
	for _, m := range c.list.Metas(tenant) {
		if !m.EndTime.Before(cutoff) {
			continue
		}
		deleted, err := c.deleteBlock(ctx, tenant, m.BlockID)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if deleted {
			c.metrics.retentionDeleted.WithLabelValues(tenant).Inc()
			c.logger.Info("deleted block past retention", "tenant", tenant, "block_id", m.BlockID, "end", m.EndTime)
		}
	}
	for _, cm := range c.list.CompactedMetas(tenant) {
		if now.Sub(cm.CompactedTime) <= c.cfg.CompactedBlockRetention {
			continue
		}
		deleted, err := c.deleteBlock(ctx, tenant, cm.BlockID)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if deleted {
			c.metrics.compactedDeleted.WithLabelValues(tenant).Inc()
			c.logger.Info("deleted compacted block", "tenant", tenant, "block_id", cm.BlockID, "compacted", cm.CompactedTime)
		}
	}
	return errors.Join(errs...)
}

// deleteBlock deletes a block's objects, meta.json first, so that no poll
// from then on lists a half-deleted block, and meta.compacted.json last, so
// that an interrupted deletion of a compacted block is still known as one and
// finished later. It reports whether there was anything to delete (the block
// list may show a block deleted since its last poll).
func (c *Compactor) deleteBlock(ctx context.Context, tenant, id string) (bool, error) {
	keys, err := c.bkt.List(ctx, storage.BlockDir(tenant, id))
	if err != nil {
		return false, fmt.Errorf("delete block %s: %w", id, err)
	}
	if len(keys) == 0 {
		return false, nil
	}
	meta, marker := storage.MetaKey(tenant, id), storage.CompactedMetaKey(tenant, id)
	order := []string{meta}
	for _, k := range keys {
		if k != meta && k != marker {
			order = append(order, k)
		}
	}
	if slices.Contains(keys, marker) {
		order = append(order, marker)
	}
	for _, k := range order {
		if err := c.bkt.Delete(ctx, k); err != nil {
			return false, fmt.Errorf("delete block %s: %w", id, err)
		}
	}
	return true, nil
}
