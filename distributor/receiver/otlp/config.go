package otlp

import (
	"errors"
	"flag"
)

// Config is distributor.receivers.otlp, in Tempo's (the collector's) shape.
type Config struct {
	Protocols struct {
		GRPC Endpoint `yaml:"grpc"`
		HTTP Endpoint `yaml:"http"`
	} `yaml:"protocols"`
}

// Endpoint is one protocol's listener. An empty endpoint turns it off.
type Endpoint struct {
	Endpoint          string `yaml:"endpoint"`
	MaxRecvMsgSizeMiB int    `yaml:"max_recv_msg_size_mib"`
}

// RegisterFlagsAndApplyDefaults registers the flags and sets the defaults.
func (c *Config) RegisterFlagsAndApplyDefaults(prefix string, f *flag.FlagSet) {
	f.StringVar(&c.Protocols.GRPC.Endpoint, prefix+".grpc.endpoint", "0.0.0.0:4317", "OTLP gRPC listen address; empty turns it off.")
	f.IntVar(&c.Protocols.GRPC.MaxRecvMsgSizeMiB, prefix+".grpc.max-recv-msg-size-mib", 16, "Largest OTLP gRPC request accepted, in MiB.")
	f.StringVar(&c.Protocols.HTTP.Endpoint, prefix+".http.endpoint", "0.0.0.0:4318", "OTLP HTTP listen address; empty turns it off.")
	f.IntVar(&c.Protocols.HTTP.MaxRecvMsgSizeMiB, prefix+".http.max-recv-msg-size-mib", 16, "Largest OTLP HTTP request body accepted (after gzip), in MiB.")
}

// Validate checks the config.
func (c *Config) Validate() error {
	if c.Protocols.GRPC.MaxRecvMsgSizeMiB <= 0 || c.Protocols.HTTP.MaxRecvMsgSizeMiB <= 0 {
		return errors.New("distributor.receivers.otlp: max_recv_msg_size_mib must be positive")
	}
	return nil
}
