package ingester

import (
	"errors"
	"flag"
	"time"

	"github.com/go-kit/log"
	"github.com/grafana/dskit/ring"

	"github.com/vivace-dev/vivace/storage/block"
)

// Config is the ingester's part of the config file.
type Config struct {
	MaxBlockDuration     time.Duration `yaml:"max_block_duration"`
	MaxBlockBytes        uint64        `yaml:"max_block_bytes"`
	CompleteBlockTimeout time.Duration `yaml:"complete_block_timeout"`
	FlushCheckPeriod     time.Duration `yaml:"flush_check_period"`
	// ConcurrentFlushes is how many cut generations are written into blocks
	// at once; 0 means half of GOMAXPROCS, at least 1.
	ConcurrentFlushes int `yaml:"concurrent_flushes"`
	// A trace that got no part for this long (for half of it at the
	// earliest) stops counting as live for the tenant's max_traces_per_user.
	TraceIdlePeriod time.Duration `yaml:"trace_idle_period"`

	// Lifecycler is how the ingester joins the ring: Tempo's
	// ingester.lifecycler, with ring.replication_factor and ring.kvstore.
	Lifecycler ring.LifecyclerConfig `yaml:"lifecycler"`

	// Set by the app from storage.trace: where the WAL lives and how blocks are written.
	WALPath string             `yaml:"-"`
	Block   block.WriterConfig `yaml:"-"`
}

// RegisterFlagsAndApplyDefaults registers the flags and sets the defaults.
func (c *Config) RegisterFlagsAndApplyDefaults(prefix string, f *flag.FlagSet) {
	f.DurationVar(&c.MaxBlockDuration, prefix+".max-block-duration", 5*time.Minute, "Cut the head block into a backend block when it is this old.")
	f.Uint64Var(&c.MaxBlockBytes, prefix+".max-block-bytes", 256<<20, "Cut the head block when its WAL holds this many bytes.")
	f.DurationVar(&c.CompleteBlockTimeout, prefix+".complete-block-timeout", 2*time.Minute, "Keep serving a flushed block's traces from the WAL this long, so queriers have polled the new block. Must be longer than storage.trace.blocklist_poll.")
	f.DurationVar(&c.FlushCheckPeriod, prefix+".flush-check-period", time.Second, "How often to check whether the head block is due.")
	f.IntVar(&c.ConcurrentFlushes, prefix+".concurrent-flushes", 0, "How many cut head blocks are written into backend blocks at once; 0 means half of GOMAXPROCS, at least 1. Building a block takes about one core per 100k spans/s.")
	f.DurationVar(&c.TraceIdlePeriod, prefix+".trace-idle-period", 10*time.Second, "A trace that received no span for this long (for half of it at the earliest) stops counting as live towards overrides' max_traces_per_user.")
	c.Lifecycler.RingConfig.KVStore.Store = "memberlist"
	c.Lifecycler.RegisterFlagsWithPrefix(prefix+".", f, log.NewNopLogger())
}

// Validate checks the config.
func (c *Config) Validate() error {
	switch {
	case c.MaxBlockDuration <= 0:
		return errors.New("ingester.max_block_duration must be positive")
	case c.MaxBlockBytes == 0:
		return errors.New("ingester.max_block_bytes must be positive")
	case c.FlushCheckPeriod <= 0:
		return errors.New("ingester.flush_check_period must be positive")
	case c.ConcurrentFlushes < 0:
		return errors.New("ingester.concurrent_flushes must not be negative")
	case c.TraceIdlePeriod <= 0:
		return errors.New("ingester.trace_idle_period must be positive")
	case c.WALPath == "":
		return errors.New("storage.trace.wal.path must be set")
	case c.Lifecycler.RingConfig.ReplicationFactor < 1:
		return errors.New("ingester.lifecycler.ring.replication_factor must be at least 1")
	}
	return c.Lifecycler.Validate()
}
