// Package overrides holds the per-tenant limits: defaults from the config
// file, and a runtime overrides file, reloaded without a restart, whose
// entries replace them for some tenants. Every role reads its limits through
// one *Overrides.
package overrides

import (
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/prometheus/common/model"
)

// Rate strategies of ingestion.rate_strategy.
const (
	// LocalRateStrategy applies rate_limit_bytes to each distributor.
	LocalRateStrategy = "local"
	// GlobalRateStrategy shares rate_limit_bytes among the healthy distributors.
	GlobalRateStrategy = "global"
)

// Limits are one tenant's limits, under Tempo's (non-legacy) keys. Zero
// means no limit, for every field.
type Limits struct {
	Ingestion  IngestionLimits  `yaml:"ingestion"`
	Read       ReadLimits       `yaml:"read"`
	Compaction CompactionLimits `yaml:"compaction"`
	Global     GlobalLimits     `yaml:"global"`
}

// IngestionLimits are enforced on the write path.
type IngestionLimits struct {
	// Distributor: bytes of OTLP received per second, and the burst above it.
	RateStrategy   string `yaml:"rate_strategy"`
	RateLimitBytes int    `yaml:"rate_limit_bytes"`
	BurstSizeBytes int    `yaml:"burst_size_bytes"`
	// Ingester: live traces in one ingester, those that received a part
	// within ingester.trace_idle_period (Tempo's local max_traces_per_user).
	MaxTracesPerUser int `yaml:"max_traces_per_user"`
	// Distributor: longer string and bytes attribute values are truncated
	// (Tempo's per-tenant ingestion.max_attribute_bytes).
	MaxAttributeBytes int `yaml:"max_attribute_bytes"`
}

// ReadLimits are enforced by the query-frontend.
type ReadLimits struct {
	// The longest time range one search covers.
	MaxSearchDuration model.Duration `yaml:"max_search_duration"`
}

// CompactionLimits are enforced by the compactor.
type CompactionLimits struct {
	// Blocks older than this are deleted; 0 leaves it to
	// compactor.compaction.block_retention.
	BlockRetention model.Duration `yaml:"block_retention"`
}

// GlobalLimits are enforced by several roles.
type GlobalLimits struct {
	// Ingester: bytes of one trace held unflushed; query-frontend: largest
	// trace returned by ID.
	MaxBytesPerTrace int `yaml:"max_bytes_per_trace"`
}

// Validate checks the limits; field names the YAML path for errors.
func (l *Limits) Validate() error {
	var errs []error
	in := &l.Ingestion
	switch in.RateStrategy {
	case LocalRateStrategy, GlobalRateStrategy:
	default:
		errs = append(errs, fmt.Errorf("ingestion.rate_strategy %q: want %s or %s", in.RateStrategy, LocalRateStrategy, GlobalRateStrategy))
	}
	for _, v := range []struct {
		key string
		n   int
	}{
		{"ingestion.rate_limit_bytes", in.RateLimitBytes},
		{"ingestion.burst_size_bytes", in.BurstSizeBytes},
		{"ingestion.max_traces_per_user", in.MaxTracesPerUser},
		{"ingestion.max_attribute_bytes", in.MaxAttributeBytes},
		{"global.max_bytes_per_trace", l.Global.MaxBytesPerTrace},
	} {
		if v.n < 0 {
			errs = append(errs, fmt.Errorf("%s is %d: want 0 (no limit) or more", v.key, v.n))
		}
	}
	if in.RateLimitBytes > 0 && in.BurstSizeBytes <= 0 {
		errs = append(errs, errors.New("ingestion.burst_size_bytes must be positive when ingestion.rate_limit_bytes is: no request would fit"))
	}
	if l.Read.MaxSearchDuration < 0 {
		errs = append(errs, errors.New("read.max_search_duration must not be negative"))
	}
	if l.Compaction.BlockRetention < 0 {
		errs = append(errs, errors.New("compaction.block_retention must not be negative"))
	}
	return errors.Join(errs...)
}

// Config is overrides in the config file: the limits of every tenant, and
// the runtime file that overrides them for some.
type Config struct {
	Defaults Limits `yaml:"defaults"`
	// PerTenantOverrideConfig is the runtime overrides file, in Tempo's
	// format: `overrides: {<tenant>: <Limits>}`, "*" for every tenant
	// without an entry of its own.
	PerTenantOverrideConfig string        `yaml:"per_tenant_override_config"`
	PerTenantOverridePeriod time.Duration `yaml:"per_tenant_override_period"`
}

// RegisterFlagsAndApplyDefaults registers the flags under prefix (e.g.
// "overrides") and sets the defaults, Tempo's.
func (c *Config) RegisterFlagsAndApplyDefaults(prefix string, f *flag.FlagSet) {
	d := &c.Defaults
	p := prefix + "."
	f.StringVar(&d.Ingestion.RateStrategy, p+"ingestion.rate-strategy", LocalRateStrategy, "local: each distributor lets a tenant send rate_limit_bytes per second; global: the healthy distributors share it.")
	f.IntVar(&d.Ingestion.RateLimitBytes, p+"ingestion.rate-limit-bytes", 15_000_000, "Bytes per second a tenant may send; above it requests are refused with 429 / ResourceExhausted. 0: no limit.")
	f.IntVar(&d.Ingestion.BurstSizeBytes, p+"ingestion.burst-size-bytes", 20_000_000, "Bytes a tenant may send at once above the rate; also the largest request accepted.")
	f.IntVar(&d.Ingestion.MaxTracesPerUser, p+"ingestion.max-traces-per-user", 10_000, "Live traces of a tenant in one ingester (those that received spans within ingester.trace_idle_period); new traces beyond it are refused. 0: no limit.")
	f.IntVar(&d.Ingestion.MaxAttributeBytes, p+"ingestion.max-attribute-bytes", 2048, "Longer string and bytes attribute values are truncated to this many bytes. 0: no limit.")
	f.Var(&d.Read.MaxSearchDuration, p+"read.max-search-duration", "Longest time range of one search. 0: no limit.")
	f.Var(&d.Compaction.BlockRetention, p+"compaction.block-retention", "Delete a tenant's blocks older than this. 0: compactor.compaction.block_retention.")
	f.IntVar(&d.Global.MaxBytesPerTrace, p+"max-bytes-per-trace", 5_000_000, "Largest trace in bytes: an ingester refuses parts that would make an unflushed trace larger; trace by ID v1 answers 422 above it, v2 a partial trace. 0: no limit.")
	f.StringVar(&c.PerTenantOverrideConfig, p+"per-tenant-override-config", "", "Runtime overrides file (overrides: {<tenant>: <limits>}), reloaded without a restart; each entry is decoded over the defaults, \"*\" for every tenant without one.")
	f.DurationVar(&c.PerTenantOverridePeriod, p+"per-tenant-override-period", 10*time.Second, "How often to reload the runtime overrides file.")
}

// Validate checks the config.
func (c *Config) Validate() error {
	var errs []error
	if err := c.Defaults.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("overrides.defaults: %w", err))
	}
	if isURL(c.PerTenantOverrideConfig) {
		errs = append(errs, fmt.Errorf("overrides.per_tenant_override_config %q: want a file path, not a URL", c.PerTenantOverrideConfig))
	}
	if c.PerTenantOverrideConfig != "" && c.PerTenantOverridePeriod <= 0 {
		errs = append(errs, errors.New("overrides.per_tenant_override_period must be positive"))
	}
	return errors.Join(errs...)
}
