package distributor

import (
	"flag"

	"github.com/vivace-dev/vivace/distributor/receiver/otlp"
)

// Config is the distributor's part of the config file.
type Config struct {
	Receivers ReceiversConfig `yaml:"receivers"`
}

// ReceiversConfig lists the wire-format receivers, under Tempo's keys.
type ReceiversConfig struct {
	OTLP otlp.Config `yaml:"otlp"`
}

// RegisterFlagsAndApplyDefaults registers the flags and sets the defaults.
func (c *Config) RegisterFlagsAndApplyDefaults(prefix string, f *flag.FlagSet) {
	c.Receivers.OTLP.RegisterFlagsAndApplyDefaults(prefix+".receivers.otlp", f)
}

// Validate checks the config.
func (c *Config) Validate() error { return c.Receivers.OTLP.Validate() }
