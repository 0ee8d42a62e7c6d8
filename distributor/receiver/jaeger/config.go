package jaeger

import (
	"errors"
	"flag"
	"fmt"
)

// Config is distributor.receivers.jaeger, in Tempo's (the collector's) shape:
//
//	protocols:
//	  thrift_http:    {endpoint: 0.0.0.0:14268}
//	  grpc:           {endpoint: 0.0.0.0:14250}
//	  thrift_binary:  {endpoint: 0.0.0.0:6832}
//	  thrift_compact: {endpoint: 0.0.0.0:6831}
//
// Each protocol is off when its endpoint is empty.
type Config struct {
	Protocols struct {
		ThriftHTTP    TCPEndpoint `yaml:"thrift_http"`
		GRPC          TCPEndpoint `yaml:"grpc"`
		ThriftBinary  UDPEndpoint `yaml:"thrift_binary"`
		ThriftCompact UDPEndpoint `yaml:"thrift_compact"`
	} `yaml:"protocols"`
}

// TCPEndpoint is the thrift-over-HTTP or the gRPC listener.
type TCPEndpoint struct {
	Endpoint          string `yaml:"endpoint"`
	MaxRecvMsgSizeMiB int    `yaml:"max_recv_msg_size_mib"`
}

// UDPEndpoint is an agent (emitBatch) listener. The extra keys are the
// collector's jaeger receiver's UDP server settings.
type UDPEndpoint struct {
	Endpoint string `yaml:"endpoint"`
	// QueueSize datagrams wait for a worker; a datagram arriving when the
	// queue is full is dropped and counted.
	QueueSize int `yaml:"queue_size"`
	// MaxPacketSize is the largest datagram read; a longer one is dropped
	// and counted (it would otherwise be silently truncated).
	MaxPacketSize int `yaml:"max_packet_size"`
	// Workers decode, translate and push datagrams concurrently.
	Workers int `yaml:"workers"`
	// SocketBufferSize sets the socket's receive buffer in bytes; 0 keeps
	// the operating system's default.
	SocketBufferSize int `yaml:"socket_buffer_size"`
}

// RegisterFlagsAndApplyDefaults registers the flags and sets the defaults.
func (c *Config) RegisterFlagsAndApplyDefaults(prefix string, f *flag.FlagSet) {
	p := &c.Protocols
	f.StringVar(&p.ThriftHTTP.Endpoint, prefix+".thrift-http.endpoint", "0.0.0.0:14268", "Jaeger thrift over HTTP (POST /api/traces) listen address; empty turns it off.")
	f.IntVar(&p.ThriftHTTP.MaxRecvMsgSizeMiB, prefix+".thrift-http.max-recv-msg-size-mib", 16, "Largest Jaeger thrift HTTP request body accepted (after gzip), in MiB.")
	f.StringVar(&p.GRPC.Endpoint, prefix+".grpc.endpoint", "0.0.0.0:14250", "Jaeger gRPC collector (api_v2 PostSpans) listen address; empty turns it off.")
	f.IntVar(&p.GRPC.MaxRecvMsgSizeMiB, prefix+".grpc.max-recv-msg-size-mib", 16, "Largest Jaeger gRPC request accepted, in MiB.")
	registerUDP(&p.ThriftBinary, prefix+".thrift-binary", "0.0.0.0:6832", "thrift binary", f)
	registerUDP(&p.ThriftCompact, prefix+".thrift-compact", "0.0.0.0:6831", "thrift compact", f)
}

func registerUDP(e *UDPEndpoint, prefix, endpoint, what string, f *flag.FlagSet) {
	f.StringVar(&e.Endpoint, prefix+".endpoint", endpoint, "Jaeger agent UDP ("+what+" emitBatch) listen address; empty turns it off.")
	f.IntVar(&e.QueueSize, prefix+".queue-size", 1000, "Datagrams queued for the workers; more are dropped.")
	f.IntVar(&e.MaxPacketSize, prefix+".max-packet-size", 65000, "Largest datagram accepted, in bytes.")
	f.IntVar(&e.Workers, prefix+".workers", 10, "Workers decoding and pushing datagrams.")
	f.IntVar(&e.SocketBufferSize, prefix+".socket-buffer-size", 0, "Socket receive buffer in bytes; 0 keeps the OS default.")
}

// Validate checks the config.
func (c *Config) Validate() error {
	p := &c.Protocols
	if p.ThriftHTTP.MaxRecvMsgSizeMiB <= 0 || p.GRPC.MaxRecvMsgSizeMiB <= 0 {
		return errors.New("distributor.receivers.jaeger: max_recv_msg_size_mib must be positive")
	}
	for name, e := range map[string]UDPEndpoint{"thrift_binary": p.ThriftBinary, "thrift_compact": p.ThriftCompact} {
		switch {
		case e.QueueSize <= 0 || e.Workers <= 0:
			return fmt.Errorf("distributor.receivers.jaeger.protocols.%s: queue_size and workers must be positive", name)
		case e.MaxPacketSize <= 0 || e.MaxPacketSize > maxUDPPayload:
			return fmt.Errorf("distributor.receivers.jaeger.protocols.%s: max_packet_size must be between 1 and %d", name, maxUDPPayload)
		case e.SocketBufferSize < 0:
			return fmt.Errorf("distributor.receivers.jaeger.protocols.%s: socket_buffer_size must not be negative", name)
		}
	}
	return nil
}

// maxUDPPayload is the largest payload of a UDP datagram (IPv6, no jumbograms).
const maxUDPPayload = 65527
