package compactor

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/vivace-dev/vivace/storage/block"
)

// job is one compaction: blocks of one tenant merged into one block.
type job struct {
	// key names the group the blocks come from (tenant, window, level). The
	// ring assigns whole groups, not jobs: two compactors with slightly
	// different block lists then still never pick overlapping jobs.
	key    string
	tenant string
	blocks []*block.Meta
}

// retentionKey is the ring key of a tenant's retention.
func retentionKey(tenant string) string { return "retention/" + tenant }

// plan groups a tenant's blocks by the compaction window their newest span
// ends in and by compaction level, and cuts each group into jobs of
// minInputBlocks to maxInputBlocks blocks within the size limits. Blocks past
// retention are left to retention.
//
// Level keeps the merging of fresh blocks logarithmic. Once a window is over
// (a whole window has passed since its end), its blocks are grouped whatever
// their level: replicas of the same spans may sit at different levels, and
// would otherwise never meet to be deduplicated.
func plan(cfg CompactionConfig, tenant string, metas []*block.Meta, now time.Time) []job {
	cutoff := now.Add(-cfg.BlockRetention)
	groups := map[string][]*block.Meta{}
	for _, m := range metas {
		if m.EndTime.Before(cutoff) {
			continue
		}
		window := m.EndTime.Truncate(cfg.CompactionWindow)
		level := fmt.Sprint(m.CompactionLevel)
		if !now.Before(window.Add(2 * cfg.CompactionWindow)) {
			level = "all"
		}
		key := fmt.Sprintf("%s/%s/%s", tenant, window.UTC().Format(time.RFC3339), level)
		groups[key] = append(groups[key], m)
	}

	var jobs []job
	for _, key := range slices.Sorted(maps.Keys(groups)) {
		blocks := groups[key]
		// Smallest first: small blocks are the ones worth merging.
		slices.SortFunc(blocks, func(a, b *block.Meta) int {
			return cmp.Or(cmp.Compare(a.Size, b.Size), strings.Compare(a.BlockID, b.BlockID))
		})
		var (
			cur          []*block.Meta
			bytes, count int64
		)
		flush := func() {
			if len(cur) >= minInputBlocks {
				jobs = append(jobs, job{key: key, tenant: tenant, blocks: cur})
			}
			cur, bytes, count = nil, 0, 0
		}
		for _, m := range blocks {
			if len(cur) == maxInputBlocks || bytes+m.Size > int64(cfg.MaxBlockBytes) || count+m.TotalTraces > int64(cfg.MaxCompactionObjects) {
				flush()
			}
			if m.Size > int64(cfg.MaxBlockBytes) || m.TotalTraces > int64(cfg.MaxCompactionObjects) {
				continue // too large to merge with anything
			}
			cur = append(cur, m)
			bytes += m.Size
			count += m.TotalTraces
		}
		flush()
	}
	return jobs
}
