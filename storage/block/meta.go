package block

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/google/uuid"

	"github.com/vivace-dev/vivace/internal/model"
	"github.com/vivace-dev/vivace/storage"
)

// VersionV1 is the only block format version so far (FORMAT.md).
const VersionV1 = "v1"

// maxMetaBytes bounds how much of a meta.json is read.
const maxMetaBytes = 1 << 20

// Meta is a block's meta.json, written last: a block without it is not
// visible. It is all a reader needs to decide whether a block may hold a trace.
type Meta struct {
	Version   string    `json:"version"`
	BlockID   string    `json:"blockID"`
	TenantID  string    `json:"tenantID"`
	StartTime time.Time `json:"startTime"` // earliest span start
	EndTime   time.Time `json:"endTime"`   // latest span end
	MinID     string    `json:"minID"`     // smallest trace ID, 32 lower-case hex digits
	MaxID     string    `json:"maxID"`     // largest trace ID
	// TotalTraces and TotalSpans count the block's traces and spans.
	TotalTraces int64 `json:"totalTraces"`
	TotalSpans  int64 `json:"totalSpans"`
	// Size is the size of data.parquet in bytes.
	Size            int64 `json:"size"`
	CompactionLevel int   `json:"compactionLevel"`
	// BloomShards is the number of bloom-<shard> objects, bloom-0 to
	// bloom-<BloomShards-1>; it is part of the shard function.
	BloomShards int `json:"bloomShards"`
	// RowGroups is the number of row groups in data.parquet (and entries in index).
	RowGroups int `json:"rowGroups"`
}

// ReadMeta reads and checks the meta.json of a block.
func ReadMeta(ctx context.Context, bkt storage.Bucket, tenant, blockID string) (*Meta, error) {
	rc, err := bkt.Get(ctx, storage.MetaKey(tenant, blockID))
	if err != nil {
		return nil, fmt.Errorf("read meta %s: %w", blockID, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxMetaBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read meta %s: %w", blockID, err)
	}
	m, err := decodeMeta(b)
	if err != nil {
		return nil, fmt.Errorf("read meta %s: %w", blockID, err)
	}
	if m.TenantID != tenant || m.BlockID != blockID {
		return nil, fmt.Errorf("read meta %s: %w: meta.json names block %s/%s", blockID, ErrCorrupt, m.TenantID, m.BlockID)
	}
	return m, nil
}

func decodeMeta(b []byte) (*Meta, error) {
	if len(b) > maxMetaBytes {
		return nil, fmt.Errorf("%w: meta.json larger than %d bytes", ErrCorrupt, maxMetaBytes)
	}
	var m Meta
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("%w: meta.json: %v", ErrCorrupt, err)
	}
	if err := m.validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

// validate checks what a reader relies on.
func (m *Meta) validate() error {
	if m.Version != VersionV1 {
		return fmt.Errorf("%w: %q (this build reads %q)", ErrUnsupportedVersion, m.Version, VersionV1)
	}
	var errs []error
	if _, err := uuid.Parse(m.BlockID); err != nil {
		errs = append(errs, fmt.Errorf("block ID %q: %v", m.BlockID, err))
	}
	minID, err1 := model.ParseTraceID(m.MinID)
	maxID, err2 := model.ParseTraceID(m.MaxID)
	switch {
	case err1 != nil || len(m.MinID) != 32:
		errs = append(errs, fmt.Errorf("min ID %q is not 32 hex digits", m.MinID))
	case err2 != nil || len(m.MaxID) != 32:
		errs = append(errs, fmt.Errorf("max ID %q is not 32 hex digits", m.MaxID))
	case minID.Compare(maxID) > 0:
		errs = append(errs, fmt.Errorf("min ID %s above max ID %s", m.MinID, m.MaxID))
	}
	if m.TotalTraces < 1 || m.TotalSpans < m.TotalTraces {
		errs = append(errs, fmt.Errorf("%d traces, %d spans", m.TotalTraces, m.TotalSpans))
	}
	if m.Size < 12 { // "PAR1", footer length, "PAR1"
		errs = append(errs, fmt.Errorf("data size %d", m.Size))
	}
	if m.BloomShards < 1 || m.BloomShards > maxBloomShards {
		errs = append(errs, fmt.Errorf("%d bloom shards, want 1 to %d", m.BloomShards, maxBloomShards))
	}
	if m.RowGroups < 1 || int64(m.RowGroups) > m.TotalTraces {
		errs = append(errs, fmt.Errorf("%d row groups for %d traces", m.RowGroups, m.TotalTraces))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: meta.json: %w", ErrCorrupt, err)
	}
	return nil
}

// idRange parses the block's smallest and largest trace ID.
func (m *Meta) idRange() (minID, maxID model.TraceID, err error) {
	if minID, err = model.ParseTraceID(m.MinID); err != nil {
		return minID, maxID, fmt.Errorf("%w: meta.json min ID: %v", ErrCorrupt, err)
	}
	if maxID, err = model.ParseTraceID(m.MaxID); err != nil {
		return minID, maxID, fmt.Errorf("%w: meta.json max ID: %v", ErrCorrupt, err)
	}
	return minID, maxID, nil
}
