package compactor

import (
	"errors"
	"flag"
	"time"
)

// A job merges at least minInputBlocks and at most maxInputBlocks blocks:
// more inputs mean more readers open at once and more memory.
const (
	minInputBlocks = 2
	maxInputBlocks = 8
)

// Config is the compactor's part of the config file (`compactor:`).
type Config struct {
	Compaction CompactionConfig `yaml:"compaction"`
}

// CompactionConfig holds Tempo's `compactor.compaction` keys that Vivace uses.
type CompactionConfig struct {
	// Blocks whose newest span ends in the same window are merged together.
	CompactionWindow time.Duration `yaml:"compaction_window"`
	// A job's input blocks hold at most this many bytes of data.parquet
	// and this many traces, which bounds the block it writes.
	MaxBlockBytes        uint64 `yaml:"max_block_bytes"`
	MaxCompactionObjects int    `yaml:"max_compaction_objects"`
	// Blocks whose newest span is older than this are deleted.
	BlockRetention time.Duration `yaml:"block_retention"`
	// A block marked compacted is deleted this long after it was marked, so
	// readers that listed it before have polled the block list since.
	CompactedBlockRetention time.Duration `yaml:"compacted_block_retention"`
	// How often the compactor looks for work.
	CompactionCycle time.Duration `yaml:"compaction_cycle"`
}

// RegisterFlagsAndApplyDefaults registers the flags under prefix (e.g.
// "compactor") and sets the defaults, Tempo's.
func (c *Config) RegisterFlagsAndApplyDefaults(prefix string, f *flag.FlagSet) {
	p := prefix + ".compaction."
	cc := &c.Compaction
	f.DurationVar(&cc.CompactionWindow, p+"compaction-window", time.Hour, "Merge blocks whose newest span ends within the same window of this length.")
	f.Uint64Var(&cc.MaxBlockBytes, p+"max-block-bytes", 100<<30, "Largest total data size of the blocks one compaction merges.")
	f.IntVar(&cc.MaxCompactionObjects, p+"max-compaction-objects", 6_000_000, "Largest total number of traces in the blocks one compaction merges.")
	f.DurationVar(&cc.BlockRetention, p+"block-retention", 14*24*time.Hour, "Delete blocks whose newest span is older than this.")
	f.DurationVar(&cc.CompactedBlockRetention, p+"compacted-block-retention", time.Hour, "Delete a compacted block this long after it was replaced. Must be longer than storage.trace.blocklist_poll plus the longest query.")
	f.DurationVar(&cc.CompactionCycle, p+"compaction-cycle", 30*time.Second, "How often to look for blocks to compact and delete.")
}

// Validate checks the config.
func (c *Config) Validate() error {
	cc := c.Compaction
	var errs []error
	if cc.CompactionWindow <= 0 {
		errs = append(errs, errors.New("compactor.compaction.compaction_window must be positive"))
	}
	if cc.MaxBlockBytes == 0 {
		errs = append(errs, errors.New("compactor.compaction.max_block_bytes must be positive"))
	}
	if cc.MaxCompactionObjects <= 0 {
		errs = append(errs, errors.New("compactor.compaction.max_compaction_objects must be positive"))
	}
	if cc.BlockRetention <= 0 {
		errs = append(errs, errors.New("compactor.compaction.block_retention must be positive"))
	}
	if cc.CompactedBlockRetention <= 0 {
		errs = append(errs, errors.New("compactor.compaction.compacted_block_retention must be positive"))
	}
	if cc.CompactionCycle <= 0 {
		errs = append(errs, errors.New("compactor.compaction.compaction_cycle must be positive"))
	}
	return errors.Join(errs...)
}
