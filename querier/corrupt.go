package querier

import (
	"errors"
	"fmt"
	"runtime/debug"

	"github.com/vivace-dev/vivace/storage/block"
)

// skipCorrupt tells whether err says the block is corrupt (block.ErrCorrupt,
// which the block reader also returns for a decoder panic). Such a block is
// logged and counted, and the caller skips it and answers from the others: a
// damaged block must never stop a tenant's reads.
//
// Any other error (a backend timeout, a network blip, a throttled request)
// still fails the query: skipping the block then would silently leave out
// data that a retry finds. A missing block (storage.ErrNotFound) is the
// caller's business: compacted or deleted since the last poll.
func (q *Querier) skipCorrupt(tenant string, m *block.Meta, err error) bool {
	if err == nil || !errors.Is(err, block.ErrCorrupt) {
		return false
	}
	q.logger.Error("skipping corrupt block", "tenant", tenant, "block_id", m.BlockID, "err", err)
	q.m.corruptBlocks.WithLabelValues(tenant).Inc()
	return true
}

// safeRead runs one read of a block and turns a panic into block.ErrCorrupt:
// whatever the block holds, it must not take the process down. The block
// reader already recovers its decoders' panics; this covers the rest.
func (q *Querier) safeRead(tenant string, m *block.Meta, read func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			q.logger.Error("panic reading block", "tenant", tenant, "block_id", m.BlockID, "panic", p, "stack", string(debug.Stack()))
			err = fmt.Errorf("%w: block %s: panic: %v", block.ErrCorrupt, m.BlockID, p)
		}
	}()
	return read()
}
