package datadog

import (
	"errors"
	"flag"
)

// Config is distributor.receivers.datadog. Tempo has no Datadog receiver;
// the shape is the collector's datadog receiver's (endpoint and a body limit).
type Config struct {
	// Endpoint is the listen address; empty turns the receiver off.
	Endpoint string `yaml:"endpoint"`
	// MaxRequestBodySize is the largest request body accepted, in bytes,
	// both as received and after gunzipping.
	MaxRequestBodySize int64 `yaml:"max_request_body_size"`
}

// RegisterFlagsAndApplyDefaults registers the flags and sets the defaults.
func (c *Config) RegisterFlagsAndApplyDefaults(prefix string, f *flag.FlagSet) {
	f.StringVar(&c.Endpoint, prefix+".endpoint", "0.0.0.0:8126", "Datadog agent trace intake listen address (/v0.3, /v0.4, /v0.5, /v0.7 traces, /info); empty turns it off.")
	f.Int64Var(&c.MaxRequestBodySize, prefix+".max-request-body-size", 50<<20, "Largest Datadog request body accepted (also after gzip), in bytes.")
}

// Validate checks the config.
func (c *Config) Validate() error {
	if c.MaxRequestBodySize <= 0 {
		return errors.New("distributor.receivers.datadog: max_request_body_size must be positive")
	}
	return nil
}
