package app

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// golden compares got with testdata/name (or rewrites it with -update).
func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(t, os.WriteFile(path, got, 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test ./cmd/vivace/app -update to create it")
	require.Equal(t, string(want), string(got), "run go test ./cmd/vivace/app -update and review the diff")
}

// TestDefaultConfig makes every change of a default visible in review.
func TestDefaultConfig(t *testing.T) {
	cfg, printDefaults, err := Load([]string{"-config.print-defaults"})
	require.NoError(t, err)
	require.True(t, printDefaults)
	b, err := DefaultYAML(cfg)
	require.NoError(t, err)
	golden(t, "testdata/default-config.yaml", b)

	// The printed defaults load strictly and change nothing.
	loaded, _, err := Load([]string{"-config.file=testdata/default-config.yaml"})
	require.NoError(t, err)
	again, err := DefaultYAML(loaded)
	require.NoError(t, err)
	require.Equal(t, string(b), string(again))
}

// TestReference keeps docs/configuration.md current.
func TestReference(t *testing.T) {
	doc := "# Configuration reference\n\n" +
		"Generated from the code by `go test ./cmd/vivace/app -update`; `vivace -config.print-defaults` prints the defaults as YAML.\n" +
		"Precedence: defaults, then the YAML file (`-config.file`, unknown keys fail), then flags.\n" +
		"With `-config.expand-env=true`, `${VAR}` and `${VAR:default}` in the file are replaced from the environment.\n\n" +
		Reference()
	golden(t, "../../../docs/configuration.md", []byte(doc))
	for _, key := range []string{
		"`server.http_listen_port` | `-server.http-listen-port` | `3200`",
		"`server.grpc_listen_port` | `-server.grpc-listen-port` | `9095`",
		"`distributor.receivers.otlp.protocols.grpc.endpoint` | `-distributor.receivers.otlp.grpc.endpoint` | `0.0.0.0:4317`",
		"`storage.trace.s3.secret_key`",
		"`overrides.defaults.global.max_bytes_per_trace`",
	} {
		require.Contains(t, doc, key)
	}
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "vivace.yaml")
	require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	return p
}

func TestLoad(t *testing.T) {
	tests := []struct {
		name   string
		file   string
		env    map[string]string
		flags  []string
		check  func(t *testing.T, c *Config)
		errHas string
	}{
		{
			name: "tempo keys",
			file: `
server:
  http_listen_port: 3201
  grpc_listen_port: 9096
multitenancy_enabled: true
distributor:
  receivers:
    otlp:
      protocols:
        grpc:
          endpoint: 127.0.0.1:14317
        http:
          endpoint: 127.0.0.1:14318
ingester:
  max_block_duration: 10m
storage:
  trace:
    backend: local
    local:
      path: /tmp/vivace/blocks
    wal:
      path: /tmp/vivace/wal
overrides:
  defaults:
    global:
      max_bytes_per_trace: 1000
`,
			check: func(t *testing.T, c *Config) {
				require.Equal(t, 3201, c.Server.HTTPListenPort)
				require.Equal(t, 9096, c.Server.GRPCListenPort)
				require.True(t, c.MultitenancyEnabled)
				require.Equal(t, "127.0.0.1:14317", c.Distributor.Receivers.OTLP.Protocols.GRPC.Endpoint)
				require.Equal(t, 10*time.Minute, c.Ingester.MaxBlockDuration)
				require.Equal(t, "/tmp/vivace/wal", c.Ingester.WALPath)
				require.Equal(t, 1000, c.Overrides.Defaults.Global.MaxBytesPerTrace)
			},
		},
		{
			name:  "flags win over the file",
			file:  "server:\n  http_listen_port: 3201\n",
			flags: []string{"-server.http-listen-port=3300"},
			check: func(t *testing.T, c *Config) { require.Equal(t, 3300, c.Server.HTTPListenPort) },
		},
		{
			name:  "expand env",
			file:  "storage:\n  trace:\n    backend: s3\n    s3:\n      bucket: ${VIVACE_T_BUCKET}\n      endpoint: ${VIVACE_T_UNSET:minio:9000}\n      access_key: vivace\n      secret_key: ${VIVACE_T_SECRET}\n",
			env:   map[string]string{"VIVACE_T_BUCKET": "traces", "VIVACE_T_SECRET": "s3cr3t"},
			flags: []string{"-config.expand-env=true"},
			check: func(t *testing.T, c *Config) {
				require.Equal(t, "traces", c.Storage.Trace.S3.Bucket)
				require.Equal(t, "minio:9000", c.Storage.Trace.S3.Endpoint)
				require.Equal(t, "s3cr3t", c.Storage.Trace.S3.SecretKey.String())
			},
		},
		{name: "unknown key", file: "storage:\n  trace:\n    bogus: 1\n", errHas: "field bogus not found"},
		{name: "bad backend", file: "storage:\n  trace:\n    backend: gcs\n", errHas: `storage.trace.backend "gcs"`},
		{name: "s3 without bucket", file: "storage:\n  trace:\n    backend: s3\n", errHas: "bucket"},
		{name: "unknown target", flags: []string{"-target=ingestor"}, errHas: `target "ingestor"`},
		{name: "querier without frontend", flags: []string{"-target=querier"}, errHas: "querier.frontend_worker.frontend_address"},
		{name: "one role", flags: []string{"-target=ingester"}, check: func(t *testing.T, c *Config) { require.True(t, c.usesMemberlist()) }},
		{name: "monolithic keeps rings in memory", check: func(t *testing.T, c *Config) { require.False(t, c.usesMemberlist()) }},
		{
			name:   "complete block timeout shorter than the poll",
			file:   "ingester:\n  complete_block_timeout: 10s\nstorage:\n  trace:\n    blocklist_poll: 30s\n",
			errHas: "complete_block_timeout",
		},
		{name: "empty file is all defaults", file: "", check: func(t *testing.T, c *Config) { require.Equal(t, 3200, c.Server.HTTPListenPort) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			args := append([]string{"-config.file=" + writeFile(t, tc.file)}, tc.flags...)
			cfg, _, err := Load(args)
			if tc.errHas != "" {
				require.Error(t, err)
				require.True(t, strings.Contains(err.Error(), tc.errHas), "error %q should mention %q", err, tc.errHas)
				return
			}
			require.NoError(t, err)
			tc.check(t, cfg)
		})
	}
}
