package compactor

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vivace-dev/vivace/storage/block"
)

func TestPlan(t *testing.T) {
	now := time.Date(2026, 3, 14, 15, 30, 0, 0, time.UTC)
	cfg := CompactionConfig{
		CompactionWindow:     time.Hour,
		MaxBlockBytes:        1000,
		MaxCompactionObjects: 100,
		BlockRetention:       48 * time.Hour,
	}
	meta := func(id string, end time.Time, level int, size, traces int64) *block.Meta {
		return &block.Meta{BlockID: id, EndTime: end, CompactionLevel: level, Size: size, TotalTraces: traces}
	}
	ids := func(j job) []string {
		var out []string
		for _, m := range j.blocks {
			out = append(out, m.BlockID)
		}
		return out
	}
	at := func(h, m int) time.Time { return time.Date(2026, 3, 14, h, m, 0, 0, time.UTC) }

	for _, tc := range []struct {
		name  string
		metas []*block.Meta
		want  map[string][]string // job key → block IDs, in job order
	}{
		{
			name:  "one block is no job",
			metas: []*block.Meta{meta("a1", at(15, 10), 0, 10, 1)},
		},
		{
			name:  "same window and level, smallest first",
			metas: []*block.Meta{meta("b1", at(15, 10), 0, 30, 1), meta("b2", at(15, 50), 0, 10, 1), meta("b3", at(15, 5), 0, 20, 1)},
			want:  map[string][]string{"t/2026-03-14T15:00:00Z/0": {"b2", "b3", "b1"}},
		},
		{
			name: "windows and levels apart while the window is recent",
			metas: []*block.Meta{
				meta("c1", at(15, 10), 0, 10, 1), meta("c2", at(14, 50), 0, 10, 1), // different windows
				meta("c3", at(15, 20), 1, 10, 1), meta("c4", at(14, 20), 1, 10, 1), // different levels from the above
			},
		},
		{
			name: "a window over for a whole window merges all levels",
			metas: []*block.Meta{
				meta("d1", at(13, 10), 0, 10, 1), meta("d2", at(13, 20), 2, 50, 1), meta("d3", at(13, 59), 1, 20, 1),
				meta("d4", at(14, 10), 0, 10, 1), meta("d5", at(14, 20), 1, 10, 1), // 14:00 is still recent at 15:30
			},
			want: map[string][]string{"t/2026-03-14T13:00:00Z/all": {"d1", "d3", "d2"}},
		},
		{
			name: "at most eight blocks a job",
			metas: []*block.Meta{
				meta("e1", at(15, 1), 0, 1, 1), meta("e2", at(15, 2), 0, 2, 1), meta("e3", at(15, 3), 0, 3, 1), meta("e4", at(15, 4), 0, 4, 1), meta("e5", at(15, 5), 0, 5, 1),
				meta("e6", at(15, 6), 0, 6, 1), meta("e7", at(15, 7), 0, 7, 1), meta("e8", at(15, 8), 0, 8, 1), meta("e9", at(15, 9), 0, 9, 1), meta("e10", at(15, 10), 0, 10, 1),
			},
			want: map[string][]string{"t/2026-03-14T15:00:00Z/0": {"e1", "e2", "e3", "e4", "e5", "e6", "e7", "e8"}, "t/2026-03-14T15:00:00Z/0#2": {"e9", "e10"}},
		},
		{
			name: "byte and trace limits",
			metas: []*block.Meta{
				meta("f1", at(15, 1), 0, 400, 10), meta("f2", at(15, 2), 0, 500, 10), meta("f3", at(15, 3), 0, 600, 10), // 400+500 fit, 600 alone does not
				meta("f4", at(15, 4), 0, 2000, 1),                                // too big for anything
				meta("f5", at(14, 1), 0, 1, 60), meta("f6", at(14, 2), 0, 2, 60), // 120 traces: over
			},
			want: map[string][]string{"t/2026-03-14T15:00:00Z/0": {"f1", "f2"}},
		},
		{
			name:  "past retention is left to retention",
			metas: []*block.Meta{meta("g1", at(15, 0).Add(-49*time.Hour), 0, 1, 1), meta("g2", at(15, 1).Add(-49*time.Hour), 0, 1, 1)},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := map[string][]string{}
			for _, j := range plan(cfg, "t", tc.metas, now) {
				require.Equal(t, "t", j.tenant)
				key := j.key
				if _, ok := got[key]; ok {
					key += "#2"
				}
				got[key] = ids(j)
			}
			if tc.want == nil {
				tc.want = map[string][]string{}
			}
			require.Equal(t, tc.want, got)
		})
	}
}
