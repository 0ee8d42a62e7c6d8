package overrides

import (
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/grafana/dskit/flagext"
	"github.com/grafana/dskit/runtimeconfig"
	"github.com/grafana/dskit/services"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vivace-dev/vivace/internal/logging"
)

// Overrides answers every role's question "what is this tenant's limit?":
// the tenant's entry in the runtime overrides file, else the wildcard entry,
// else the defaults. It is a dskit service that reloads the file every
// per_tenant_override_period (dskit runtimeconfig); a file that cannot be
// read, is too large or does not parse leaves the last good one in force,
// is logged and counted (vivace_overrides_reload_failures_total, and dskit's
// vivace_runtime_config_last_reload_successful{config="overrides"} gauge).
// At start the file must load, or the service fails.
//
// Without a file it answers the defaults and its service does nothing.
// Lookups are safe for concurrent use, from before start on.
type Overrides struct {
	services.Service

	defaults Limits
	path     string
	mgr      *runtimeconfig.Manager // nil without a file
	logger   *slog.Logger
	m        *metrics

	mu       sync.Mutex
	lastGood [sha256.Size]byte // of the last file that parsed, to parse it once
}

// New makes the overrides of cfg. It validates cfg.
func New(cfg Config, logger *slog.Logger, reg prometheus.Registerer) (*Overrides, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	o := &Overrides{defaults: cfg.Defaults, path: cfg.PerTenantOverrideConfig, logger: logger.With("component", "overrides"), m: newMetrics(reg)}
	if o.path == "" {
		o.Service = services.NewIdleService(nil, nil).WithName("overrides")
		return o, nil
	}
	mgr, err := runtimeconfig.New(runtimeconfig.Config{
		LoadPath:     flagext.StringSliceCSV{o.path},
		ReloadPeriod: cfg.PerTenantOverridePeriod,
		Preprocessor: o.check,
		Loader:       o.load,
	}, "overrides", prometheus.WrapRegistererWithPrefix("vivace_", reg), logging.GoKit(o.logger))
	if err != nil {
		return nil, fmt.Errorf("runtime overrides: %w", err)
	}
	o.mgr = mgr
	o.Service = mgr
	return o, nil
}

// NewStatic makes overrides that always answer defaults: no file, no
// service to run. For tests, and for callers the runtime file is not wired to.
func NewStatic(defaults Limits) *Overrides {
	return &Overrides{defaults: defaults, Service: services.NewIdleService(nil, nil)}
}

// check runs on the file's bytes before dskit parses them: it refuses a file
// over MaxFileBytes and, as the loader would, one that does not parse, so
// that every refusal is counted here.
func (o *Overrides) check(b []byte) ([]byte, error) {
	if len(b) > MaxFileBytes {
		o.m.reloadFailures.Inc()
		return nil, fmt.Errorf("%w: %d bytes, over the limit of %d", ErrFileTooLarge, len(b), MaxFileBytes)
	}
	sum := sha256.Sum256(b)
	o.mu.Lock()
	same := sum == o.lastGood
	o.mu.Unlock()
	if same {
		return b, nil // unchanged: dskit will not load it again either
	}
	if _, err := ParseFile(b, o.defaults); err != nil {
		o.m.reloadFailures.Inc()
		return nil, err
	}
	o.mu.Lock()
	o.lastGood = sum
	o.mu.Unlock()
	return b, nil
}

// load is the dskit loader: r holds the file as dskit re-encoded it.
func (o *Overrides) load(r io.Reader) (any, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxFileBytes+1))
	if err != nil {
		o.m.reloadFailures.Inc()
		return nil, err
	}
	tenants, err := ParseFile(b, o.defaults)
	if err != nil {
		o.m.reloadFailures.Inc()
		return nil, err
	}
	o.m.tenants.Set(float64(len(tenants)))
	o.logger.Info("loaded runtime overrides", "file", o.path, "tenants", len(tenants))
	return tenants, nil
}

// For returns the limits of tenant. The result must not be changed.
func (o *Overrides) For(tenant string) *Limits {
	if o.mgr != nil {
		if tenants, ok := o.mgr.GetConfig().(map[string]*Limits); ok {
			if l := tenants[tenant]; l != nil {
				return l
			}
			if l := tenants[Wildcard]; l != nil {
				return l
			}
		}
	}
	return &o.defaults
}

// Defaults are the limits of a tenant the runtime file does not name.
func (o *Overrides) Defaults() Limits { return o.defaults }

// PerTenant returns the limits of each tenant in the runtime file as last
// loaded; nil without a file. The result must not be changed.
func (o *Overrides) PerTenant() map[string]*Limits {
	if o.mgr == nil {
		return nil
	}
	tenants, _ := o.mgr.GetConfig().(map[string]*Limits)
	return tenants
}

// IngestionRateStrategy is local or global: whether the rate limit applies
// to each distributor or is shared among them.
func (o *Overrides) IngestionRateStrategy(tenant string) string {
	return o.For(tenant).Ingestion.RateStrategy
}

// IngestionRateLimitBytes is the bytes per second tenant may send; 0: no limit.
func (o *Overrides) IngestionRateLimitBytes(tenant string) int {
	return o.For(tenant).Ingestion.RateLimitBytes
}

// IngestionBurstSizeBytes is the bytes tenant may send at once.
func (o *Overrides) IngestionBurstSizeBytes(tenant string) int {
	return o.For(tenant).Ingestion.BurstSizeBytes
}

// MaxTracesPerUser is the number of live traces of tenant one ingester may
// hold; 0: no limit.
func (o *Overrides) MaxTracesPerUser(tenant string) int {
	return o.For(tenant).Ingestion.MaxTracesPerUser
}

// MaxAttributeBytes is the longest string or bytes attribute value kept
// whole; 0: no limit.
func (o *Overrides) MaxAttributeBytes(tenant string) int {
	return o.For(tenant).Ingestion.MaxAttributeBytes
}

// MaxBytesPerTrace is the largest trace of tenant, in bytes; 0: no limit.
func (o *Overrides) MaxBytesPerTrace(tenant string) int {
	return o.For(tenant).Global.MaxBytesPerTrace
}

// MaxSearchDuration is the longest time range of one search; 0: no limit.
func (o *Overrides) MaxSearchDuration(tenant string) time.Duration {
	return time.Duration(o.For(tenant).Read.MaxSearchDuration)
}

// BlockRetention is how long tenant's blocks are kept; 0: the compactor's
// own block_retention.
func (o *Overrides) BlockRetention(tenant string) time.Duration {
	return time.Duration(o.For(tenant).Compaction.BlockRetention)
}

// isURL tells a URL from a file path; dskit would fetch a URL without a
// size limit, so only files are taken.
func isURL(path string) bool {
	return strings.HasPrefix(path, "http://") || strings.HasPrefix(path, "https://")
}
