package block

import (
	"errors"
	"flag"
	"fmt"
)

// Defaults of WriterConfig, chosen by measurement (see FORMAT.md, "Sizing").
const (
	// DefaultRowGroupSpans is the number of spans after which the writer cuts
	// a row group (at a trace boundary). A lookup reads and decodes one row
	// group, so this bounds the cost of a lookup.
	DefaultRowGroupSpans = 5_000
	// DefaultBloomFalsePositive is the target false-positive rate of the
	// bloom filter over trace IDs.
	DefaultBloomFalsePositive = 0.01
	// DefaultBloomShardMaxBytes is the largest bloom shard's bit array; the
	// filter is split into as many shards as needed to stay under it.
	DefaultBloomShardMaxBytes = 16 << 10
)

// WriterConfig tunes how a block is written; readers need none of it.
type WriterConfig struct {
	// RowGroupSpans is the target number of spans per row group. A row group
	// is cut before a trace that would take it past this number, so a row
	// group is larger only when one trace alone is. Default 5000.
	RowGroupSpans int `yaml:"row_group_spans"`
	// BloomFalsePositive is the target false-positive rate of the bloom
	// filter, in (0, 0.5]. Default 0.01.
	BloomFalsePositive float64 `yaml:"bloom_false_positive"`
	// BloomShardMaxBytes caps one bloom shard's bit array; at least 8.
	// Default 16 KiB.
	BloomShardMaxBytes int `yaml:"bloom_shard_max_bytes"`
}

// DefaultWriterConfig returns the defaults documented on WriterConfig.
func DefaultWriterConfig() WriterConfig {
	return WriterConfig{
		RowGroupSpans:      DefaultRowGroupSpans,
		BloomFalsePositive: DefaultBloomFalsePositive,
		BloomShardMaxBytes: DefaultBloomShardMaxBytes,
	}
}

// RegisterFlagsAndApplyDefaults registers the config's flags under prefix
// (e.g. "storage.block.") and sets the defaults.
func (c *WriterConfig) RegisterFlagsAndApplyDefaults(prefix string, f *flag.FlagSet) {
	f.IntVar(&c.RowGroupSpans, prefix+"row-group-spans", DefaultRowGroupSpans, "Target number of spans per parquet row group of a block; a lookup reads one row group.")
	f.Float64Var(&c.BloomFalsePositive, prefix+"bloom-false-positive", DefaultBloomFalsePositive, "Target false-positive rate of a block's trace-ID bloom filter.")
	f.IntVar(&c.BloomShardMaxBytes, prefix+"bloom-shard-max-bytes", DefaultBloomShardMaxBytes, "Largest size of one bloom filter shard; a lookup reads one shard.")
}

// Validate reports a config the writer cannot use.
func (c WriterConfig) Validate() error {
	var errs []error
	if c.RowGroupSpans < 1 {
		errs = append(errs, fmt.Errorf("row group spans %d: must be at least 1", c.RowGroupSpans))
	}
	if !(c.BloomFalsePositive > 0 && c.BloomFalsePositive <= 0.5) {
		errs = append(errs, fmt.Errorf("bloom false positive %v: must be in (0, 0.5]", c.BloomFalsePositive))
	}
	if c.BloomShardMaxBytes < 8 {
		errs = append(errs, fmt.Errorf("bloom shard max bytes %d: must be at least 8", c.BloomShardMaxBytes))
	}
	return errors.Join(errs...)
}
