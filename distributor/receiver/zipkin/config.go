package zipkin

import (
	"errors"
	"flag"
)

// Config is distributor.receivers.zipkin, in Tempo's (the collector's) shape.
type Config struct {
	// Endpoint is the listen address; empty turns the receiver off.
	Endpoint string `yaml:"endpoint"`
	// MaxRequestBodySize is the largest request body accepted, in bytes,
	// both as received and after gunzipping.
	MaxRequestBodySize int64 `yaml:"max_request_body_size"`
}

// RegisterFlagsAndApplyDefaults registers the flags and sets the defaults.
func (c *Config) RegisterFlagsAndApplyDefaults(prefix string, f *flag.FlagSet) {
	f.StringVar(&c.Endpoint, prefix+".endpoint", "0.0.0.0:9411", "Zipkin HTTP listen address (/api/v2/spans, /api/v1/spans); empty turns it off.")
	f.Int64Var(&c.MaxRequestBodySize, prefix+".max-request-body-size", 16<<20, "Largest Zipkin request body accepted (also after gzip), in bytes.")
}

// Validate checks the config.
func (c *Config) Validate() error {
	if c.MaxRequestBodySize <= 0 {
		return errors.New("distributor.receivers.zipkin: max_request_body_size must be positive")
	}
	return nil
}
