package frontend

import (
	"errors"
	"flag"
	"fmt"
)

// Config is query_frontend in the config file.
type Config struct {
	// MaxOutstandingPerTenant bounds the jobs of one tenant waiting for a
	// querier; a request that does not fit is answered 429.
	MaxOutstandingPerTenant int `yaml:"max_outstanding_per_tenant"`
	// MaxRetries is how often a job is requeued when the querier running it
	// goes away.
	MaxRetries int `yaml:"max_retries"`
	TraceByID  struct {
		// QueryShards is how many block-ID ranges a lookup is split into,
		// besides the one job for the ingesters.
		QueryShards int `yaml:"query_shards"`
	} `yaml:"trace_by_id"`
	Search struct {
		// QueryShards is how many block-ID ranges a search or tags request
		// is split into, besides the one job for the ingesters.
		QueryShards int `yaml:"query_shards"`
		// DefaultResultLimit is the limit of a search that gives none.
		DefaultResultLimit int `yaml:"default_result_limit"`
	} `yaml:"search"`
}

// RegisterFlagsAndApplyDefaults registers the flags and sets the defaults.
func (c *Config) RegisterFlagsAndApplyDefaults(prefix string, f *flag.FlagSet) {
	f.IntVar(&c.MaxOutstandingPerTenant, prefix+".max-outstanding-per-tenant", 2000, "Jobs of one tenant that may wait for a querier; more are answered 429.")
	f.IntVar(&c.MaxRetries, prefix+".max-retries", 2, "Times a job is retried on another querier when the one running it goes away.")
	f.IntVar(&c.TraceByID.QueryShards, prefix+".trace-by-id.query-shards", 4, "Block-ID ranges a trace lookup is split into, run in parallel.")
	f.IntVar(&c.Search.QueryShards, prefix+".search.query-shards", 8, "Block-ID ranges a search is split into, run in parallel.")
	f.IntVar(&c.Search.DefaultResultLimit, prefix+".search.default-result-limit", 20, "Traces a search returns when it sets no limit.")
}

// Validate checks the config.
func (c *Config) Validate() error {
	if c.TraceByID.QueryShards < 1 || c.TraceByID.QueryShards > 256 {
		return errors.New("query_frontend.trace_by_id.query_shards must be between 1 and 256")
	}
	// A lookup queues all its jobs at once: query_shards block jobs and one ingester job.
	if c.MaxOutstandingPerTenant < c.TraceByID.QueryShards+1 {
		return fmt.Errorf("query_frontend.max_outstanding_per_tenant must be at least query_shards+1 (%d)", c.TraceByID.QueryShards+1)
	}
	if c.Search.QueryShards < 1 || c.Search.QueryShards > 256 {
		return errors.New("query_frontend.search.query_shards must be between 1 and 256")
	}
	if c.MaxOutstandingPerTenant < c.Search.QueryShards+1 {
		return fmt.Errorf("query_frontend.max_outstanding_per_tenant must be at least search.query_shards+1 (%d)", c.Search.QueryShards+1)
	}
	if c.Search.DefaultResultLimit < 1 {
		return errors.New("query_frontend.search.default_result_limit must be at least 1")
	}
	if c.MaxRetries < 0 {
		return errors.New("query_frontend.max_retries must not be negative")
	}
	return nil
}
