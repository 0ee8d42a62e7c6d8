package distributor_test

import (
	"flag"
	"testing"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/vivace-dev/vivace/distributor"
)

type endpoints struct {
	otlpGRPC, otlpHTTP, zipkin, thriftHTTP, jaegerGRPC, thriftBinary, thriftCompact, datadog, opencensus string
}

func endpointsOf(c *distributor.Config) endpoints {
	r := &c.Receivers
	j := &r.Jaeger.Protocols
	return endpoints{r.OTLP.Protocols.GRPC.Endpoint, r.OTLP.Protocols.HTTP.Endpoint, r.Zipkin.Endpoint,
		j.ThriftHTTP.Endpoint, j.GRPC.Endpoint, j.ThriftBinary.Endpoint, j.ThriftCompact.Endpoint, r.Datadog.Endpoint, r.OpenCensus.Endpoint}
}

// TestReceiversAsTempo: a receivers section turns on exactly what it lists,
// each on its usual port unless it names another.
func TestReceiversAsTempo(t *testing.T) {
	all := endpoints{"0.0.0.0:4317", "0.0.0.0:4318", "0.0.0.0:9411", "0.0.0.0:14268", "0.0.0.0:14250", "0.0.0.0:6832", "0.0.0.0:6831", "0.0.0.0:8126", "0.0.0.0:55678"}
	tempos := all
	tempos.datadog, tempos.opencensus = "", ""
	tests := []struct {
		name   string
		yaml   string
		want   endpoints
		errHas string
	}{
		{"no section: all on", "log_received_spans:\n  enabled: true\n", all, ""},
		{"zipkin alone", "receivers:\n  zipkin:\n", endpoints{zipkin: "0.0.0.0:9411"}, ""},
		{"otlp grpc with an address", "receivers:\n  otlp:\n    protocols:\n      grpc:\n        endpoint: 127.0.0.1:5317\n",
			endpoints{otlpGRPC: "127.0.0.1:5317"}, ""},
		{"jaeger two protocols", "receivers:\n  jaeger:\n    protocols:\n      thrift_http:\n      thrift_compact: {}\n",
			endpoints{thriftHTTP: "0.0.0.0:14268", thriftCompact: "0.0.0.0:6831"}, ""},
		{"tempo's usual set", "receivers:\n  otlp:\n    protocols:\n      grpc:\n      http:\n  zipkin:\n  jaeger:\n    protocols:\n      thrift_http:\n      grpc:\n      thrift_binary:\n      thrift_compact:\n", tempos, ""},
		{"datadog alone", "receivers:\n  datadog:\n", endpoints{datadog: "0.0.0.0:8126"}, ""},
		{"datadog with an address", "receivers:\n  datadog:\n    endpoint: 127.0.0.1:18126\n", endpoints{datadog: "127.0.0.1:18126"}, ""},
		{"opencensus alone", "receivers:\n  opencensus:\n", endpoints{opencensus: "0.0.0.0:55678"}, ""},
		{"unknown receiver", "receivers:\n  kafka:\n", endpoints{}, "field kafka not found"},
		{"unknown protocol key", "receivers:\n  otlp:\n    protocols:\n      grpc:\n        endpoit: x\n", endpoints{}, "field endpoit not found"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var cfg distributor.Config
			cfg.RegisterFlagsAndApplyDefaults("distributor", flag.NewFlagSet("t", flag.ContinueOnError))
			err := yaml.Unmarshal([]byte(tc.yaml), &cfg)
			if tc.errHas != "" {
				require.ErrorContains(t, err, tc.errHas)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, endpointsOf(&cfg))
		})
	}
}
