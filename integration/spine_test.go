package integration

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vivace-dev/vivace/internal/model"
)

// TestLocalBackend: traces sent with the SDK over gRPC and HTTP and raw OTLP
// with every value type come back exactly while live, after a flush, and
// after a restart with the WAL gone (so only blocks can answer).
func TestLocalBackend(t *testing.T) {
	v := startVivace(t, "", nil)
	want := merge(
		sendSDK(t, v, "grpc", "", 10).traces(t),
		sendSDK(t, v, "http", "", 10).traces(t),
		sendRaw(t, v, "", 1, 20).traces(t),
	)
	requireAllFound(t, v, want, "") // live, from the WAL

	v.flushAndWait(1)
	requireAllFound(t, v, want, "") // WAL and block both answer; no duplicates

	v.stop()
	require.NoError(t, os.RemoveAll(filepath.Join(v.dataDir, "wal")))
	v.start()
	requireAllFound(t, v, want, "") // blocks only

	metas, err := filepath.Glob(filepath.Join(v.dataDir, "blocks", model.SingleTenant, "*", "meta.json"))
	require.NoError(t, err)
	require.Len(t, metas, 1)
	for _, name := range []string{"data.parquet", "index", "bloom-0"} {
		require.FileExists(t, filepath.Join(filepath.Dir(metas[0]), name))
	}
}

// TestKill9ReplaysWAL: spans acknowledged just before SIGKILL are served
// again after the restart and then flushed to a block.
func TestKill9ReplaysWAL(t *testing.T) {
	v := startVivace(t, "", nil)
	want := merge(sendSDK(t, v, "grpc", "", 20).traces(t), sendRaw(t, v, "", 2, 20).traces(t))
	v.kill()

	v.start()
	requireAllFound(t, v, want, "")
	// The replayed segment is flushed on start; then only blocks hold it.
	v.flushAndWait(1)
	v.stop()
	require.NoError(t, os.RemoveAll(filepath.Join(v.dataDir, "wal")))
	v.start()
	requireAllFound(t, v, want, "")
}

// TestTenancy: with multitenancy on, the tenant comes from X-Scope-OrgID and
// no tenant sees another's traces.
func TestTenancy(t *testing.T) {
	v := startVivace(t, "multitenancy_enabled: true\n", nil)
	a := sendSDK(t, v, "http", "tenant-a", 3).traces(t)
	b := sendRaw(t, v, "tenant-b", 3, 3).traces(t)
	requireAllFound(t, v, a, "tenant-a")
	requireAllFound(t, v, b, "tenant-b")
	for id := range a {
		code, _ := fetch(t, v, id, "v2", false, "tenant-b")
		require.Equal(t, http.StatusNotFound, code)
		code, _ = fetch(t, v, id, "v1", false, "")
		require.Equal(t, http.StatusUnauthorized, code)
	}
	v.flushAndWait(2) // one block per tenant
	for id := range b {
		code, _ := fetch(t, v, id, "v1", true, "tenant-a")
		require.Equal(t, http.StatusNotFound, code)
	}
	requireAllFound(t, v, b, "tenant-b")
}

// TestReadAPIErrors: what the read API answers to bad and unknown IDs and
// to a trace over max_bytes_per_trace.
func TestReadAPIErrors(t *testing.T) {
	// The trace is stored under no limit; then the runtime overrides file
	// limits the tenant's traces, and reads obey it without a restart.
	overridesFile := filepath.Join(t.TempDir(), "overrides.yaml")
	require.NoError(t, os.WriteFile(overridesFile, nil, 0o644))
	v := startVivace(t, fmt.Sprintf("overrides:\n  per_tenant_override_config: %s\n  per_tenant_override_period: 100ms\n", overridesFile), nil)
	big := sendRaw(t, v, "", 4, 1).traces(t) // ~20 spans, well over 3000 bytes
	var bigID model.TraceID
	for id := range big {
		bigID = id
	}
	require.NoError(t, os.WriteFile(overridesFile, []byte("overrides:\n  single-tenant:\n    global:\n      max_bytes_per_trace: 3000\n"), 0o644))
	require.Eventually(t, func() bool {
		code, _, _ := v.get("/api/traces/" + bigID.String())
		return code == 422
	}, 10*time.Second, 50*time.Millisecond, "the new limit applies")
	_, rc, _ := v.get("/status/runtime_config")
	require.Contains(t, string(rc), "max_bytes_per_trace: 3000")
	tests := []struct {
		name, path string
		code       int
		body       string
	}{
		{"unknown v1", "/api/traces/0123456789abcdef0123456789abcdef", 404, "trace not found"},
		{"unknown v2", "/api/v2/traces/0123456789abcdef0123456789abcdef", 404, "trace not found"},
		{"not hex", "/api/traces/xyz", 400, "only hex digits are allowed"},
		{"too long", "/api/v2/traces/0123456789abcdef0123456789abcdef0", 400, "at most 32 hex digits"},
		{"bad start", "/api/traces/0123?start=yesterday", 400, "not a time in unix seconds"},
		{"end before start", "/api/traces/0123?start=200&end=100", 400, "before start"},
		{"too large v1", "/api/traces/" + bigID.String(), 422, "trace exceeds max size (max bytes: 3000)"},
		{"too large v2 is partial", "/api/v2/traces/" + bigID.String(), 200, `"status":"PARTIAL"`},
		{"echo", "/api/echo", 200, "echo"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, body, _ := v.get(tc.path)
			require.Equal(t, tc.code, code, string(body))
			require.Contains(t, strings.ReplaceAll(string(body), " ", ""), strings.ReplaceAll(tc.body, " ", ""))
		})
	}
	// A short ID is padded: the 64-bit form of a zero-padded ID finds it.
	code, _, _ := v.get("/api/traces/" + strings.TrimLeft(bigID.String(), "0"))
	require.Equal(t, 422, code)
}

// TestHeadCutBySizeAndAge: without /flush, the head becomes a block once it
// is older than max_block_duration or larger than max_block_bytes.
func TestHeadCutBySizeAndAge(t *testing.T) {
	tests := []struct {
		name string
		flag string
	}{
		{"age", "-ingester.max-block-duration=300ms"},
		{"size", "-ingester.max-block-bytes=1000"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := startVivace(t, "", nil, tc.flag)
			want := sendRaw(t, v, "", 6, 5).traces(t)
			require.Eventually(t, func() bool {
				return v.metric("vivace_ingester_blocks_flushed_total") >= 1
			}, time.Minute, 50*time.Millisecond)
			requireAllFound(t, v, want, "")
		})
	}
}
