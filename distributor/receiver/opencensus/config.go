package opencensus

import (
	"errors"
	"flag"
)

// Config is distributor.receivers.opencensus, in Tempo's (the collector's)
// shape: `opencensus: {endpoint: 0.0.0.0:55678}`.
type Config struct {
	// Endpoint is the gRPC listen address; empty turns the receiver off.
	Endpoint string `yaml:"endpoint"`
	// MaxRecvMsgSizeMiB bounds one Export message of the stream.
	MaxRecvMsgSizeMiB int `yaml:"max_recv_msg_size_mib"`
}

// RegisterFlagsAndApplyDefaults registers the flags and sets the defaults.
func (c *Config) RegisterFlagsAndApplyDefaults(prefix string, f *flag.FlagSet) {
	f.StringVar(&c.Endpoint, prefix+".endpoint", "0.0.0.0:55678", "OpenCensus agent gRPC (TraceService Export stream) listen address; empty turns it off.")
	f.IntVar(&c.MaxRecvMsgSizeMiB, prefix+".max-recv-msg-size-mib", 16, "Largest OpenCensus Export message accepted, in MiB.")
}

// Validate checks the config.
func (c *Config) Validate() error {
	if c.MaxRecvMsgSizeMiB <= 0 {
		return errors.New("distributor.receivers.opencensus: max_recv_msg_size_mib must be positive")
	}
	return nil
}
