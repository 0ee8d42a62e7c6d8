package compactor

import (
	"flag"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

func defaultConfig(t testing.TB) Config {
	t.Helper()
	var cfg Config
	cfg.RegisterFlagsAndApplyDefaults("compactor", flag.NewFlagSet("", flag.PanicOnError))
	require.NoError(t, cfg.Validate())
	return cfg
}

func TestConfig(t *testing.T) {
	cfg := defaultConfig(t)
	require.Equal(t, CompactionConfig{
		CompactionWindow:        time.Hour,
		MaxBlockBytes:           100 << 30,
		MaxCompactionObjects:    6_000_000,
		BlockRetention:          336 * time.Hour,
		CompactedBlockRetention: time.Hour,
		CompactionCycle:         30 * time.Second,
	}, cfg.Compaction)

	// Tempo's keys, strictly: the app decodes `compactor:` into Config.
	const doc = `
compaction:
  compaction_window: 2h
  max_block_bytes: 1073741824
  max_compaction_objects: 1000
  block_retention: 48h
  compacted_block_retention: 30m
  compaction_cycle: 1m
`
	dec := yaml.NewDecoder(strings.NewReader(doc))
	dec.KnownFields(true)
	require.NoError(t, dec.Decode(&cfg))
	require.Equal(t, CompactionConfig{
		CompactionWindow:        2 * time.Hour,
		MaxBlockBytes:           1 << 30,
		MaxCompactionObjects:    1000,
		BlockRetention:          48 * time.Hour,
		CompactedBlockRetention: 30 * time.Minute,
		CompactionCycle:         time.Minute,
	}, cfg.Compaction)

	fs := flag.NewFlagSet("", flag.ContinueOnError)
	cfg = Config{}
	cfg.RegisterFlagsAndApplyDefaults("compactor", fs)
	require.NoError(t, fs.Parse([]string{"-compactor.compaction.block-retention=72h"}))
	require.Equal(t, 72*time.Hour, cfg.Compaction.BlockRetention)

	for name, mutate := range map[string]func(*CompactionConfig){
		"window":    func(c *CompactionConfig) { c.CompactionWindow = 0 },
		"bytes":     func(c *CompactionConfig) { c.MaxBlockBytes = 0 },
		"objects":   func(c *CompactionConfig) { c.MaxCompactionObjects = -1 },
		"retention": func(c *CompactionConfig) { c.BlockRetention = 0 },
		"compacted": func(c *CompactionConfig) { c.CompactedBlockRetention = -time.Second },
		"cycle":     func(c *CompactionConfig) { c.CompactionCycle = 0 },
	} {
		t.Run(name, func(t *testing.T) {
			cfg := defaultConfig(t)
			mutate(&cfg.Compaction)
			require.Error(t, cfg.Validate())
		})
	}
}
