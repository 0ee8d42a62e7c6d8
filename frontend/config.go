package frontend

import (
	"errors"
	"flag"
)

// Config is query_frontend in the config file.
type Config struct {
	TraceByID struct {
		// QueryShards is how many block-ID ranges a lookup is split into,
		// besides the one job for the ingesters.
		QueryShards int `yaml:"query_shards"`
	} `yaml:"trace_by_id"`
}

// RegisterFlagsAndApplyDefaults registers the flags and sets the defaults.
func (c *Config) RegisterFlagsAndApplyDefaults(prefix string, f *flag.FlagSet) {
	f.IntVar(&c.TraceByID.QueryShards, prefix+".trace-by-id.query-shards", 4, "Block-ID ranges a trace lookup is split into, run in parallel.")
}

// Validate checks the config.
func (c *Config) Validate() error {
	if c.TraceByID.QueryShards < 1 || c.TraceByID.QueryShards > 256 {
		return errors.New("query_frontend.trace_by_id.query_shards must be between 1 and 256")
	}
	return nil
}
