package block

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/vivace-dev/vivace/storage"
)

// CompactedMeta is a block's meta.compacted.json, as in Tempo: the block's
// meta.json plus the time the compactor replaced it. Its presence takes the
// block out of the block list, while its objects stay readable until the
// compactor deletes them a grace period after CompactedTime.
type CompactedMeta struct {
	Meta
	CompactedTime time.Time `json:"compactedTime"`
}

// WriteCompacted marks the block of meta compacted at the given time.
func WriteCompacted(ctx context.Context, bkt storage.Bucket, meta *Meta, at time.Time) error {
	b, err := json.MarshalIndent(&CompactedMeta{Meta: *meta, CompactedTime: at.UTC()}, "", "  ")
	if err != nil {
		return fmt.Errorf("mark block %s compacted: %w", meta.BlockID, err)
	}
	if err := bkt.Put(ctx, storage.CompactedMetaKey(meta.TenantID, meta.BlockID), bytes.NewReader(b), int64(len(b))); err != nil {
		return fmt.Errorf("mark block %s compacted: %w", meta.BlockID, err)
	}
	return nil
}

// ReadCompacted reads a block's compacted marker; the error wraps
// storage.ErrNotFound when the block is not marked compacted.
func ReadCompacted(ctx context.Context, bkt storage.Bucket, tenant, blockID string) (*CompactedMeta, error) {
	rc, err := bkt.Get(ctx, storage.CompactedMetaKey(tenant, blockID))
	if err != nil {
		return nil, fmt.Errorf("read compacted meta %s: %w", blockID, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxMetaBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read compacted meta %s: %w", blockID, err)
	}
	cm, err := decodeCompacted(b)
	if err != nil {
		return nil, fmt.Errorf("read compacted meta %s: %w", blockID, err)
	}
	if cm.TenantID != tenant || cm.BlockID != blockID {
		return nil, fmt.Errorf("read compacted meta %s: %w: it names block %s/%s", blockID, ErrCorrupt, cm.TenantID, cm.BlockID)
	}
	return cm, nil
}

func decodeCompacted(b []byte) (*CompactedMeta, error) {
	if len(b) > maxMetaBytes {
		return nil, fmt.Errorf("%w: meta.compacted.json larger than %d bytes", ErrCorrupt, maxMetaBytes)
	}
	var cm CompactedMeta
	if err := json.Unmarshal(b, &cm); err != nil {
		return nil, fmt.Errorf("%w: meta.compacted.json: %v", ErrCorrupt, err)
	}
	if err := cm.validate(); err != nil {
		return nil, err
	}
	if cm.CompactedTime.IsZero() {
		return nil, fmt.Errorf("%w: meta.compacted.json has no compactedTime", ErrCorrupt)
	}
	return &cm, nil
}
