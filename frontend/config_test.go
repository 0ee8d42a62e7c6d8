package frontend_test

import (
	"flag"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vivace-dev/vivace/frontend"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(*frontend.Config)
		err    string
	}{
		{name: "defaults", change: func(*frontend.Config) {}},
		{name: "no retries", change: func(c *frontend.Config) { c.MaxRetries = 0 }},
		{name: "negative retries", change: func(c *frontend.Config) { c.MaxRetries = -1 }, err: "query_frontend.max_retries must not be negative"},
		{name: "room for one lookup", change: func(c *frontend.Config) { c.MaxOutstandingPerTenant, c.Search.QueryShards = 5, 4 }},
		{
			name: "no room for one search", change: func(c *frontend.Config) { c.MaxOutstandingPerTenant = 8 },
			err: "query_frontend.max_outstanding_per_tenant must be at least search.query_shards+1 (9)",
		},
		{name: "no search shards", change: func(c *frontend.Config) { c.Search.QueryShards = 0 }, err: "query_frontend.search.query_shards must be between 1 and 256"},
		{name: "no search limit", change: func(c *frontend.Config) { c.Search.DefaultResultLimit = 0 }, err: "query_frontend.search.default_result_limit must be at least 1"},
		{
			name: "no room for one lookup", change: func(c *frontend.Config) { c.MaxOutstandingPerTenant = 4 },
			err: "query_frontend.max_outstanding_per_tenant must be at least query_shards+1 (5)",
		},
		{name: "no shards", change: func(c *frontend.Config) { c.TraceByID.QueryShards = 0 }, err: "query_frontend.trace_by_id.query_shards must be between 1 and 256"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var cfg frontend.Config
			cfg.RegisterFlagsAndApplyDefaults("query-frontend", flag.NewFlagSet("", flag.PanicOnError))
			require.Equal(t, 2000, cfg.MaxOutstandingPerTenant)
			require.Equal(t, 2, cfg.MaxRetries)
			tt.change(&cfg)
			err := cfg.Validate()
			if tt.err == "" {
				require.NoError(t, err)
			} else {
				require.EqualError(t, err, tt.err)
			}
		})
	}
}
