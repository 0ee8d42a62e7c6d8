package blocklist

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/vivace-dev/vivace/storage"
	"github.com/vivace-dev/vivace/storage/block"
)

// The tenant index, <tenant>/index.json.gz, is gzipped JSON:
//
//	{"version": 1, "created_at": "<RFC 3339>",
//	 "meta": [<meta.json>, ...], "compacted": [<meta.compacted.json>, ...]}
//
// the tenant's blocks and compacted blocks as its builder listed them, each
// list sorted by block ID. created_at is when that listing began, so every
// block complete by then is in it. It is derived data, rewritten whole at
// every poll of the builder: a reader that does not understand it lists the
// blocks instead, so a new version needs no migration.
const indexVersion = 1

// maxIndexBytes bounds the decompressed index a reader accepts (a meta is
// about 450 bytes: some 500,000 blocks). A larger one is treated as corrupt
// and the tenant listed, which at that size is slow but still right.
const maxIndexBytes = 256 << 20

type tenantIndex struct {
	Version   int                    `json:"version"`
	CreatedAt time.Time              `json:"created_at"`
	Meta      []*block.Meta          `json:"meta"`
	Compacted []*block.CompactedMeta `json:"compacted"`
}

func newIndex(createdAt time.Time, tb tenantBlocks) *tenantIndex {
	idx := &tenantIndex{Version: indexVersion, CreatedAt: createdAt.UTC(), Meta: []*block.Meta{}, Compacted: []*block.CompactedMeta{}}
	for _, m := range tb.metas {
		idx.Meta = append(idx.Meta, m)
	}
	for _, cm := range tb.compacted {
		idx.Compacted = append(idx.Compacted, cm)
	}
	// Sorted, so that an unchanged list encodes the same.
	slices.SortFunc(idx.Meta, func(a, b *block.Meta) int { return strings.Compare(a.BlockID, b.BlockID) })
	slices.SortFunc(idx.Compacted, func(a, b *block.CompactedMeta) int { return strings.Compare(a.BlockID, b.BlockID) })
	return idx
}

// blocks is the index as a poll result.
func (idx *tenantIndex) blocks() tenantBlocks {
	tb := tenantBlocks{
		metas:     make(map[string]*block.Meta, len(idx.Meta)),
		compacted: make(map[string]*block.CompactedMeta, len(idx.Compacted)),
	}
	for _, m := range idx.Meta {
		tb.metas[m.BlockID] = m
	}
	for _, cm := range idx.Compacted {
		tb.compacted[cm.BlockID] = cm
	}
	return tb
}

func (idx *tenantIndex) marshal() ([]byte, error) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if err := json.NewEncoder(zw).Encode(idx); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// decodeIndex decodes a tenant index and checks that it is one of tenant's.
// The metas in it were checked by the builder when it read them; this
// checks what would make the list wrong as a whole.
func decodeIndex(b []byte, tenant string) (*tenantIndex, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errCorruptIndex, err)
	}
	// Reading to the end checks the gzip checksum.
	js, err := io.ReadAll(io.LimitReader(zr, maxIndexBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errCorruptIndex, err)
	}
	if len(js) > maxIndexBytes {
		return nil, fmt.Errorf("%w: larger than %d bytes", errCorruptIndex, maxIndexBytes)
	}
	var idx tenantIndex
	if err := json.Unmarshal(js, &idx); err != nil {
		return nil, fmt.Errorf("%w: %v", errCorruptIndex, err)
	}
	if idx.Version != indexVersion {
		return nil, fmt.Errorf("%w: version %d (this build reads %d)", errCorruptIndex, idx.Version, indexVersion)
	}
	if idx.CreatedAt.IsZero() {
		return nil, fmt.Errorf("%w: no created_at", errCorruptIndex)
	}
	seen := make(map[string]bool, len(idx.Meta)+len(idx.Compacted))
	check := func(m *block.Meta) error {
		switch {
		case m == nil:
			return fmt.Errorf("%w: null meta", errCorruptIndex)
		case m.TenantID != tenant:
			return fmt.Errorf("%w: block %s of tenant %q", errCorruptIndex, m.BlockID, m.TenantID)
		case uuid.Validate(m.BlockID) != nil:
			return fmt.Errorf("%w: block ID %q", errCorruptIndex, m.BlockID)
		case seen[m.BlockID]:
			return fmt.Errorf("%w: block %s listed twice", errCorruptIndex, m.BlockID)
		}
		seen[m.BlockID] = true
		return nil
	}
	for _, m := range idx.Meta {
		if err := check(m); err != nil {
			return nil, err
		}
	}
	for _, cm := range idx.Compacted {
		if cm == nil {
			return nil, fmt.Errorf("%w: null compacted meta", errCorruptIndex)
		}
		if err := check(&cm.Meta); err != nil {
			return nil, err
		}
		if cm.CompactedTime.IsZero() {
			return nil, fmt.Errorf("%w: compacted block %s has no compactedTime", errCorruptIndex, cm.BlockID)
		}
	}
	return &idx, nil
}

// writeIndex replaces the tenant's index with one Put, so a reader gets
// the old index or the new one, whole. A tenant left without blocks loses
// its index, so that its folder goes and it is no longer polled.
func writeIndex(ctx context.Context, bkt storage.Bucket, tenant string, createdAt time.Time, tb tenantBlocks) error {
	key := storage.TenantIndexKey(tenant)
	if len(tb.metas)+len(tb.compacted) == 0 {
		if err := bkt.Delete(ctx, key); err != nil {
			return fmt.Errorf("delete tenant index of %s: %w", tenant, err)
		}
		return nil
	}
	b, err := newIndex(createdAt, tb).marshal()
	if err != nil {
		return fmt.Errorf("encode tenant index of %s: %w", tenant, err)
	}
	if err := bkt.Put(ctx, key, bytes.NewReader(b), int64(len(b))); err != nil {
		return fmt.Errorf("write tenant index of %s: %w", tenant, err)
	}
	return nil
}

// readIndex reads the tenant's index; the error wraps storage.ErrNotFound
// if there is none, errCorruptIndex if it does not decode.
func readIndex(ctx context.Context, bkt storage.Bucket, tenant string) (*tenantIndex, error) {
	rc, err := bkt.Get(ctx, storage.TenantIndexKey(tenant))
	if err != nil {
		return nil, fmt.Errorf("read tenant index of %s: %w", tenant, err)
	}
	defer rc.Close()
	// Compressed, the index is much smaller than maxIndexBytes: this only
	// stops an endless body.
	b, err := io.ReadAll(io.LimitReader(rc, maxIndexBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read tenant index of %s: %w", tenant, err)
	}
	idx, err := decodeIndex(b, tenant)
	if err != nil {
		return nil, fmt.Errorf("read tenant index of %s: %w", tenant, err)
	}
	return idx, nil
}

// age is how old the index is at now; an index from a clock ahead of ours
// is new.
func (idx *tenantIndex) age(now time.Time) time.Duration {
	return max(0, now.Sub(idx.CreatedAt))
}
