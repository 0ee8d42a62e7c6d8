package overrides_test

import (
	"context"
	"flag"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/grafana/dskit/services"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/vivace-dev/vivace/internal/overrides"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func defaultConfig() overrides.Config {
	var cfg overrides.Config
	cfg.RegisterFlagsAndApplyDefaults("overrides", flag.NewFlagSet("test", flag.PanicOnError))
	return cfg
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func TestDefaults(t *testing.T) {
	cfg := defaultConfig()
	require.NoError(t, cfg.Validate())
	d := cfg.Defaults
	require.Equal(t, overrides.LocalRateStrategy, d.Ingestion.RateStrategy)
	require.Equal(t, 15_000_000, d.Ingestion.RateLimitBytes)
	require.Equal(t, 20_000_000, d.Ingestion.BurstSizeBytes)
	require.Equal(t, 10_000, d.Ingestion.MaxTracesPerUser)
	require.Equal(t, 2048, d.Ingestion.MaxAttributeBytes)
	require.Equal(t, 5_000_000, d.Global.MaxBytesPerTrace)
	require.Zero(t, d.Read.MaxSearchDuration)
	require.Zero(t, d.Compaction.BlockRetention)
	require.Equal(t, 10*time.Second, cfg.PerTenantOverridePeriod)
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(c *overrides.Config)
		errHas string
	}{
		{name: "unknown strategy", change: func(c *overrides.Config) { c.Defaults.Ingestion.RateStrategy = "shared" }, errHas: `overrides.defaults: ingestion.rate_strategy "shared": want local or global`},
		{name: "negative limit", change: func(c *overrides.Config) { c.Defaults.Global.MaxBytesPerTrace = -1 }, errHas: "global.max_bytes_per_trace is -1"},
		{name: "rate without burst", change: func(c *overrides.Config) { c.Defaults.Ingestion.BurstSizeBytes = 0 }, errHas: "burst_size_bytes must be positive"},
		{name: "negative duration", change: func(c *overrides.Config) { c.Defaults.Read.MaxSearchDuration = -1 }, errHas: "read.max_search_duration must not be negative"},
		{name: "URL", change: func(c *overrides.Config) { c.PerTenantOverrideConfig = "https://example.com/o.yaml" }, errHas: "want a file path, not a URL"},
		{name: "no period", change: func(c *overrides.Config) {
			c.PerTenantOverrideConfig, c.PerTenantOverridePeriod = "/etc/overrides.yaml", 0
		}, errHas: "per_tenant_override_period must be positive"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := defaultConfig()
			tc.change(&cfg)
			require.ErrorContains(t, cfg.Validate(), tc.errHas)
			_, err := overrides.New(cfg, discardLogger(), nil)
			require.ErrorContains(t, err, tc.errHas)
		})
	}
}

func TestParseFile(t *testing.T) {
	defaults := defaultConfig().Defaults
	with := func(change func(l *overrides.Limits)) *overrides.Limits {
		l := defaults
		change(&l)
		return &l
	}
	for _, tc := range []struct {
		name   string
		file   string
		want   map[string]*overrides.Limits
		errHas string
	}{
		{name: "empty file", file: "", want: map[string]*overrides.Limits{}},
		{name: "no tenants", file: "overrides: {}\n", want: map[string]*overrides.Limits{}},
		{
			name: "keys left out keep the defaults",
			file: `
overrides:
  team-a:
    ingestion:
      rate_limit_bytes: 1000
  team-b:
    global:
      max_bytes_per_trace: 0
    compaction:
      block_retention: 14d
    read:
      max_search_duration: 1h30m
`,
			want: map[string]*overrides.Limits{
				"team-a": with(func(l *overrides.Limits) { l.Ingestion.RateLimitBytes = 1000 }),
				"team-b": with(func(l *overrides.Limits) {
					l.Global.MaxBytesPerTrace = 0
					l.Compaction.BlockRetention = model.Duration(14 * 24 * time.Hour)
					l.Read.MaxSearchDuration = model.Duration(90 * time.Minute)
				}),
			},
		},
		{
			name: "an empty entry is the defaults; the wildcard is a tenant",
			file: "overrides:\n  team-a:\n  \"*\":\n    ingestion: {max_traces_per_user: 5, rate_strategy: global}\n",
			want: map[string]*overrides.Limits{
				"team-a": &defaults,
				"*": with(func(l *overrides.Limits) {
					l.Ingestion.MaxTracesPerUser = 5
					l.Ingestion.RateStrategy = overrides.GlobalRateStrategy
				}),
			},
		},
		{name: "unknown top-level key", file: "tenants: {}\n", errHas: "field tenants not found"},
		{name: "legacy flat key", file: "overrides:\n  team-a:\n    max_traces_per_user: 5\n", errHas: `tenant "team-a" (line 3): yaml: unmarshal errors:`},
		{name: "unknown nested key", file: "overrides:\n  team-a:\n    ingestion: {rate_limit: 5}\n", errHas: "field rate_limit not found"},
		{name: "wrong type", file: "overrides:\n  team-a:\n    global: {max_bytes_per_trace: lots}\n", errHas: "cannot unmarshal !!str `lots` into int"},
		{name: "bad duration", file: "overrides:\n  team-a:\n    read: {max_search_duration: soon}\n", errHas: `not a valid duration string: "soon"`},
		{name: "invalid limit", file: "overrides:\n  team-a:\n    ingestion: {max_attribute_bytes: -1}\n", errHas: `tenant "team-a" (line 3): ingestion.max_attribute_bytes is -1`},
		{name: "entry not a mapping", file: "overrides:\n  team-a: 5\n", errHas: `tenant "team-a" (line 2)`},
		{name: "not YAML", file: "overrides: [\n", errHas: "invalid runtime overrides file: yaml:"},
		{name: "two documents", file: "overrides: {}\n---\noverrides: {}\n", errHas: "more than one YAML document"},
		{name: "duplicate tenant", file: "overrides:\n  a: {}\n  a: {}\n", errHas: `mapping key "a" already defined`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := overrides.ParseFile([]byte(tc.file), defaults)
			if tc.errHas != "" {
				require.ErrorIs(t, err, overrides.ErrInvalidFile)
				require.ErrorContains(t, err, tc.errHas)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestParseFileTooLarge(t *testing.T) {
	b := []byte("overrides: {}\n" + strings.Repeat("#", overrides.MaxFileBytes))
	_, err := overrides.ParseFile(b, defaultConfig().Defaults)
	require.ErrorIs(t, err, overrides.ErrFileTooLarge)
	require.EqualError(t, err, "runtime overrides file is too large: 10485774 bytes, over the limit of 10485760")
}

func TestLookup(t *testing.T) {
	cfg := defaultConfig()
	path := writeFile(t, filepath.Join(t.TempDir(), "overrides.yaml"), `
overrides:
  small:
    ingestion: {rate_limit_bytes: 10, burst_size_bytes: 20, max_traces_per_user: 3, max_attribute_bytes: 4, rate_strategy: global}
    global: {max_bytes_per_trace: 5}
    read: {max_search_duration: 6h}
    compaction: {block_retention: 7d}
  "*":
    global: {max_bytes_per_trace: 99}
`)
	cfg.PerTenantOverrideConfig = path
	o := start(t, cfg, prometheus.NewRegistry())

	require.Equal(t, overrides.GlobalRateStrategy, o.IngestionRateStrategy("small"))
	require.Equal(t, 10, o.IngestionRateLimitBytes("small"))
	require.Equal(t, 20, o.IngestionBurstSizeBytes("small"))
	require.Equal(t, 3, o.MaxTracesPerUser("small"))
	require.Equal(t, 4, o.MaxAttributeBytes("small"))
	require.Equal(t, 5, o.MaxBytesPerTrace("small"))
	require.Equal(t, 6*time.Hour, o.MaxSearchDuration("small"))
	require.Equal(t, 7*24*time.Hour, o.BlockRetention("small"))

	// Another tenant gets the wildcard entry, itself over the defaults.
	require.Equal(t, 99, o.MaxBytesPerTrace("other"))
	require.Equal(t, 15_000_000, o.IngestionRateLimitBytes("other"))
	require.Equal(t, overrides.LocalRateStrategy, o.IngestionRateStrategy("other"))

	// Without a file, and with NewStatic, everyone gets the defaults.
	for _, o := range []*overrides.Overrides{start(t, defaultConfig(), nil), overrides.NewStatic(cfg.Defaults)} {
		require.Equal(t, 5_000_000, o.MaxBytesPerTrace("small"))
		require.Equal(t, 10_000, o.MaxTracesPerUser("small"))
	}
}

// A change of the file is applied without a restart; a bad file leaves the
// last good one in force, and is counted.
func TestReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "overrides.yaml")
	writeFile(t, path, "overrides:\n  team-a:\n    global: {max_bytes_per_trace: 1000}\n")
	cfg := defaultConfig()
	cfg.PerTenantOverrideConfig, cfg.PerTenantOverridePeriod = path, 10*time.Millisecond
	reg := prometheus.NewRegistry()
	o := start(t, cfg, reg)
	require.Equal(t, 1000, o.MaxBytesPerTrace("team-a"))
	require.Equal(t, 5_000_000, o.MaxBytesPerTrace("team-b"))
	require.Equal(t, 1.0, metricValue(t, reg, "vivace_overrides_tenants"))

	writeFile(t, path, "overrides:\n  team-a:\n    global: {max_bytes_per_trace: 2000}\n  team-b:\n    global: {max_bytes_per_trace: 3000}\n")
	require.Eventually(t, func() bool { return o.MaxBytesPerTrace("team-a") == 2000 }, 10*time.Second, 5*time.Millisecond)
	require.Equal(t, 3000, o.MaxBytesPerTrace("team-b"))

	failures := func() float64 {
		return metricValue(t, reg, "vivace_overrides_reload_failures_total")
	}
	require.Zero(t, failures())
	for i, bad := range []string{
		"overrides:\n  team-a:\n    global: {max_bytes_per_trac: 1}\n", // unknown key
		"overrides: [\n", // not YAML
		"overrides:\n  team-a:\n    global: {max_bytes_per_trace: 1}\n" + strings.Repeat("#", overrides.MaxFileBytes), // too large
	} {
		writeFile(t, path, bad)
		require.Eventually(t, func() bool { return failures() >= float64(i+1) }, 10*time.Second, 5*time.Millisecond)
		require.Equal(t, 2000, o.MaxBytesPerTrace("team-a"), "the last good file stays in force")
		require.Equal(t, 3000, o.MaxBytesPerTrace("team-b"))
	}
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP vivace_runtime_config_last_reload_successful Whether the last runtime-config reload attempt was successful.
# TYPE vivace_runtime_config_last_reload_successful gauge
vivace_runtime_config_last_reload_successful{config="overrides"} 0
`), "vivace_runtime_config_last_reload_successful"))

	writeFile(t, path, "overrides: {}\n")
	require.Eventually(t, func() bool { return o.MaxBytesPerTrace("team-a") == 5_000_000 }, 10*time.Second, 5*time.Millisecond)
}

func TestStartRefusesBadFile(t *testing.T) {
	for name, content := range map[string]string{
		"unknown key": "overrides:\n  team-a:\n    ingestion: {max_live_traces: 1}\n",
		"too large":   strings.Repeat("#", overrides.MaxFileBytes+1),
	} {
		t.Run(name, func(t *testing.T) {
			cfg := defaultConfig()
			cfg.PerTenantOverrideConfig = writeFile(t, filepath.Join(t.TempDir(), "o.yaml"), content)
			reg := prometheus.NewRegistry()
			o, err := overrides.New(cfg, discardLogger(), reg)
			require.NoError(t, err)
			err = services.StartAndAwaitRunning(context.Background(), o)
			require.ErrorContains(t, err, "failed to load runtime config")
			require.Equal(t, 1.0, metricValue(t, reg, "vivace_overrides_reload_failures_total"))
		})
	}
	cfg := defaultConfig()
	cfg.PerTenantOverrideConfig = filepath.Join(t.TempDir(), "missing.yaml")
	o, err := overrides.New(cfg, discardLogger(), nil)
	require.NoError(t, err)
	require.ErrorContains(t, services.StartAndAwaitRunning(context.Background(), o), "no such file")
}

func start(tb testing.TB, cfg overrides.Config, reg prometheus.Registerer) *overrides.Overrides {
	tb.Helper()
	o, err := overrides.New(cfg, discardLogger(), reg)
	require.NoError(tb, err)
	require.NoError(tb, services.StartAndAwaitRunning(context.Background(), o))
	tb.Cleanup(func() { require.NoError(tb, services.StopAndAwaitTerminated(context.Background(), o)) })
	return o
}

// writeFile replaces path atomically, as a ConfigMap update does.
func writeFile(tb testing.TB, path, content string) string {
	tb.Helper()
	tmp := path + ".tmp"
	require.NoError(tb, os.WriteFile(tmp, []byte(content), 0o644))
	require.NoError(tb, os.Rename(tmp, path))
	return path
}

// metricValue is the value of the counter or gauge name (0 if it has not
// been created).
func metricValue(tb testing.TB, g prometheus.Gatherer, name string) float64 {
	tb.Helper()
	mfs, err := g.Gather()
	require.NoError(tb, err)
	for _, mf := range mfs {
		if mf.GetName() == name {
			m := mf.GetMetric()[0]
			return m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return 0
}
