package distributor_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	commonv1 "go.opentelemetry.io/proto/otlp/common/v1"
	resourcev1 "go.opentelemetry.io/proto/otlp/resource/v1"
	tracev1 "go.opentelemetry.io/proto/otlp/trace/v1"

	"github.com/vivace-dev/vivace/distributor"
	"github.com/vivace-dev/vivace/internal/overrides"
)

func TestLogReceivedSpans(t *testing.T) {
	traceID := bytes.Repeat([]byte{0xab}, 16)
	span := func(id byte, code tracev1.Status_StatusCode) *tracev1.Span {
		return &tracev1.Span{TraceId: traceID, SpanId: bytes.Repeat([]byte{id}, 8), Name: "GET /cart",
			Kind: tracev1.Span_SPAN_KIND_SERVER, Status: &tracev1.Status{Code: code},
			Attributes: []*commonv1.KeyValue{{Key: "http.route", Value: &commonv1.AnyValue{Value: &commonv1.AnyValue_StringValue{StringValue: "/cart"}}}}}
	}
	td := &tracev1.TracesData{ResourceSpans: []*tracev1.ResourceSpans{{
		Resource: &resourcev1.Resource{Attributes: []*commonv1.KeyValue{
			{Key: "service.name", Value: &commonv1.AnyValue{Value: &commonv1.AnyValue_StringValue{StringValue: "cart"}}},
		}},
		ScopeSpans: []*tracev1.ScopeSpans{{Spans: []*tracev1.Span{span(1, tracev1.Status_STATUS_CODE_OK), span(2, tracev1.Status_STATUS_CODE_ERROR)}}},
	}}}
	tests := []struct {
		name    string
		cfg     distributor.LogReceivedSpansConfig
		spanIDs []string
		attrs   bool
	}{
		{"off", distributor.LogReceivedSpansConfig{}, nil, false},
		{"every span", distributor.LogReceivedSpansConfig{Enabled: true}, []string{"0101010101010101", "0202020202020202"}, false},
		{"errors only", distributor.LogReceivedSpansConfig{Enabled: true, FilterByStatusError: true}, []string{"0202020202020202"}, false},
		{"with attributes", distributor.LogReceivedSpansConfig{Enabled: true, IncludeAllAttributes: true}, []string{"0101010101010101", "0202020202020202"}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			cfg := defaultConfig()
			cfg.LogReceivedSpans = tc.cfg
			d, err := distributor.New(cfg, replicas(noopIngester{}), overrides.NewStatic(defaultLimits()), nil, slog.New(slog.NewJSONHandler(&buf, nil)), prometheus.NewRegistry())
			require.NoError(t, err)
			_, err = d.PushOTLP(context.Background(), "team-a", mustMarshal(t, td))
			require.NoError(t, err)
			var got []string
			dec := json.NewDecoder(&buf)
			for dec.More() {
				var line map[string]any
				require.NoError(t, dec.Decode(&line))
				require.Equal(t, "received span", line["msg"])
				require.Equal(t, "team-a", line["tenant"])
				require.Equal(t, "abababababababababababababababab", line["trace_id"])
				require.Equal(t, "cart", line["service"])
				if tc.attrs {
					require.Equal(t, "/cart", line["span.http.route"])
					require.Equal(t, "cart", line["resource.service.name"])
				} else {
					require.NotContains(t, line, "span.http.route")
				}
				got = append(got, line["span_id"].(string))
			}
			require.Equal(t, tc.spanIDs, got)
		})
	}
}
