package distributor

import (
	"bytes"
	"errors"
	"flag"
	"fmt"

	"gopkg.in/yaml.v3"

	"github.com/vivace-dev/vivace/distributor/receiver/datadog"
	"github.com/vivace-dev/vivace/distributor/receiver/jaeger"
	"github.com/vivace-dev/vivace/distributor/receiver/opencensus"
	"github.com/vivace-dev/vivace/distributor/receiver/otlp"
	"github.com/vivace-dev/vivace/distributor/receiver/zipkin"
	"github.com/vivace-dev/vivace/internal/membership"
)

// Config is the distributor's part of the config file.
type Config struct {
	Receivers        ReceiversConfig        `yaml:"receivers"`
	LogReceivedSpans LogReceivedSpansConfig `yaml:"log_received_spans"`
	// Ring is the distributors' own ring: who is distributing, for the
	// status page and for limits shared among distributors.
	Ring membership.Config `yaml:"ring"`
}

// LogReceivedSpansConfig logs every received span, as Tempo's option does.
type LogReceivedSpansConfig struct {
	Enabled              bool `yaml:"enabled"`
	IncludeAllAttributes bool `yaml:"include_all_attributes"`
	FilterByStatusError  bool `yaml:"filter_by_status_error"`
}

// ReceiversConfig lists the wire-format receivers, under Tempo's keys.
// Without a receivers section every receiver is on; with one, exactly those
// it lists are (see UnmarshalYAML).
type ReceiversConfig struct {
	OTLP   otlp.Config   `yaml:"otlp"`
	Zipkin zipkin.Config `yaml:"zipkin"`
	Jaeger jaeger.Config `yaml:"jaeger"`
	// OpenCensus is the OpenCensus agent's gRPC: `opencensus: {endpoint: 0.0.0.0:55678}`.
	OpenCensus opencensus.Config `yaml:"opencensus"`
	// Datadog has no Tempo key: `datadog: {endpoint: 0.0.0.0:8126}`.
	Datadog datadog.Config `yaml:"datadog"`
}

// RegisterFlagsAndApplyDefaults registers the flags and sets the defaults.
func (c *Config) RegisterFlagsAndApplyDefaults(prefix string, f *flag.FlagSet) {
	c.Receivers.OTLP.RegisterFlagsAndApplyDefaults(prefix+".receivers.otlp", f)
	c.Receivers.Zipkin.RegisterFlagsAndApplyDefaults(prefix+".receivers.zipkin", f)
	c.Receivers.Jaeger.RegisterFlagsAndApplyDefaults(prefix+".receivers.jaeger", f)
	c.Receivers.OpenCensus.RegisterFlagsAndApplyDefaults(prefix+".receivers.opencensus", f)
	c.Receivers.Datadog.RegisterFlagsAndApplyDefaults(prefix+".receivers.datadog", f)
	f.BoolVar(&c.LogReceivedSpans.Enabled, prefix+".log-received-spans.enabled", false, "Log the tenant, trace ID, span ID and service of every received span.")
	f.BoolVar(&c.LogReceivedSpans.IncludeAllAttributes, prefix+".log-received-spans.include-all-attributes", false, "Also log every span and resource attribute.")
	c.Ring.RegisterFlagsAndApplyDefaults(prefix+".ring.", f)
	f.BoolVar(&c.LogReceivedSpans.FilterByStatusError, prefix+".log-received-spans.filter-by-status-error", false, "Log only spans whose status is error.")
}

// Validate checks the config.
func (c *Config) Validate() error {
	return errors.Join(c.Receivers.OTLP.Validate(), c.Receivers.Zipkin.Validate(), c.Receivers.Jaeger.Validate(), c.Receivers.OpenCensus.Validate(), c.Receivers.Datadog.Validate(), c.Ring.Validate("distributor.ring"))
}

// UnmarshalYAML gives a receivers section Tempo's meaning: the receivers and
// protocols it lists are on, all others off, and one listed without an
// endpoint (e.g. `zipkin:` alone) listens on its usual address.
func (c *ReceiversConfig) UnmarshalYAML(node *yaml.Node) error {
	defaults := *c
	c.OTLP.Protocols.GRPC.Endpoint, c.OTLP.Protocols.HTTP.Endpoint = "", ""
	c.Zipkin.Endpoint = ""
	c.OpenCensus.Endpoint = ""
	c.Datadog.Endpoint = ""
	j := &c.Jaeger.Protocols
	j.ThriftHTTP.Endpoint, j.GRPC.Endpoint, j.ThriftBinary.Endpoint, j.ThriftCompact.Endpoint = "", "", "", ""

	// Node.Decode is not strict: decode a copy with unknown keys refused.
	b, err := yaml.Marshal(node)
	if err != nil {
		return err
	}
	type plain ReceiversConfig
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode((*plain)(c)); err != nil {
		return fmt.Errorf("receivers: %w", err)
	}

	listed := func(path ...string) bool { return child(node, path...) != nil }
	enable := func(ep *string, def string, path ...string) {
		if *ep == "" && listed(path...) {
			*ep = def
		}
	}
	enable(&c.OTLP.Protocols.GRPC.Endpoint, defaults.OTLP.Protocols.GRPC.Endpoint, "otlp", "protocols", "grpc")
	enable(&c.OTLP.Protocols.HTTP.Endpoint, defaults.OTLP.Protocols.HTTP.Endpoint, "otlp", "protocols", "http")
	enable(&c.Zipkin.Endpoint, defaults.Zipkin.Endpoint, "zipkin")
	enable(&c.OpenCensus.Endpoint, defaults.OpenCensus.Endpoint, "opencensus")
	enable(&c.Datadog.Endpoint, defaults.Datadog.Endpoint, "datadog")
	d := &defaults.Jaeger.Protocols
	enable(&j.ThriftHTTP.Endpoint, d.ThriftHTTP.Endpoint, "jaeger", "protocols", "thrift_http")
	enable(&j.GRPC.Endpoint, d.GRPC.Endpoint, "jaeger", "protocols", "grpc")
	enable(&j.ThriftBinary.Endpoint, d.ThriftBinary.Endpoint, "jaeger", "protocols", "thrift_binary")
	enable(&j.ThriftCompact.Endpoint, d.ThriftCompact.Endpoint, "jaeger", "protocols", "thrift_compact")
	return nil
}

// child finds the value at path in a YAML mapping, or nil.
func child(node *yaml.Node, path ...string) *yaml.Node {
	for _, key := range path {
		if node.Kind != yaml.MappingNode {
			return nil
		}
		var next *yaml.Node
		for i := 0; i+1 < len(node.Content); i += 2 {
			if node.Content[i].Value == key {
				next = node.Content[i+1]
			}
		}
		if next == nil {
			return nil
		}
		node = next
	}
	return node
}
