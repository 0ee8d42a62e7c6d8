package compactor

import (
	"context"
	"errors"

	"github.com/vivace-dev/vivace/storage"
	"github.com/vivace-dev/vivace/storage/block"
)

// A corrupt block is reported and skipped: never a crash, and never a reason
// to stop compacting the tenant's other blocks. The compactor remembers it
// (in memory: a restart looks again) and leaves it where it is, for an
// operator to look at; retention still deletes it in time.

// corruptSource returns the block that a failed job's error shows to be
// corrupt, if any: a source that does not decode (block.ErrCorrupt, which
// the block package and merge's reading make of a decoder's panic too), one
// of whose objects is missing while its meta.json is there (a data.parquet
// shorter than its meta.json says is block.ErrCorrupt too). A read error that is not
// clearly the block's (the object store failing, ctx ending) is not
// corruption: the job is tried again next cycle.
func (c *Compactor) corruptSource(ctx context.Context, err error) *block.Meta {
	var se *sourceError
	if !errors.As(err, &se) || ctx.Err() != nil {
		return nil
	}
	switch {
	case errors.Is(se.err, block.ErrCorrupt):
		return se.meta
	case errors.Is(se.err, storage.ErrNotFound):
		if c.hasMeta(ctx, se.meta) { // else deleted since it was listed
			return se.meta
		}
		return nil
	}
	return nil
}

// hasMeta tells whether the block's meta.json is (still) there.
func (c *Compactor) hasMeta(ctx context.Context, m *block.Meta) bool {
	_, err := block.ReadMeta(ctx, c.bkt, m.TenantID, m.BlockID)
	return err == nil
}

// markCorrupt leaves the block out of plans from now on, and reports it.
func (c *Compactor) markCorrupt(m *block.Meta, err error) {
	if c.corrupt[m.TenantID] == nil {
		c.corrupt[m.TenantID] = map[string]bool{}
	}
	c.corrupt[m.TenantID][m.BlockID] = true
	c.metrics.corruptBlocks.WithLabelValues(m.TenantID).Inc()
	c.logger.Error("corrupt block: leaving it out of compaction", "tenant", m.TenantID, "block_id", m.BlockID, "err", err)
}
