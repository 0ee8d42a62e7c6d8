package distributor

import (
	"flag"

	"github.com/vivace-dev/vivace/distributor/receiver/otlp"
)

// Config is the distributor's part of the config file.
type Config struct {
	Receivers        ReceiversConfig        `yaml:"receivers"`
	LogReceivedSpans LogReceivedSpansConfig `yaml:"log_received_spans"`
}

// LogReceivedSpansConfig logs every received span, as Tempo's option does.
type LogReceivedSpansConfig struct {
	Enabled              bool `yaml:"enabled"`
	IncludeAllAttributes bool `yaml:"include_all_attributes"`
	FilterByStatusError  bool `yaml:"filter_by_status_error"`
}

// ReceiversConfig lists the wire-format receivers, under Tempo's keys.
type ReceiversConfig struct {
	OTLP otlp.Config `yaml:"otlp"`
}

// RegisterFlagsAndApplyDefaults registers the flags and sets the defaults.
func (c *Config) RegisterFlagsAndApplyDefaults(prefix string, f *flag.FlagSet) {
	c.Receivers.OTLP.RegisterFlagsAndApplyDefaults(prefix+".receivers.otlp", f)
	f.BoolVar(&c.LogReceivedSpans.Enabled, prefix+".log-received-spans.enabled", false, "Log the tenant, trace ID, span ID and service of every received span.")
	f.BoolVar(&c.LogReceivedSpans.IncludeAllAttributes, prefix+".log-received-spans.include-all-attributes", false, "Also log every span and resource attribute.")
	f.BoolVar(&c.LogReceivedSpans.FilterByStatusError, prefix+".log-received-spans.filter-by-status-error", false, "Log only spans whose status is error.")
}

// Validate checks the config.
func (c *Config) Validate() error { return c.Receivers.OTLP.Validate() }
