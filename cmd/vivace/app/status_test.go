package app

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

func TestStatusConfig(t *testing.T) {
	cfg, _, err := Load([]string{
		"-storage.trace.backend=s3", "-storage.trace.s3.bucket=traces", "-storage.trace.s3.endpoint=127.0.0.1:9000",
		"-storage.trace.s3.access-key=ak", "-storage.trace.s3.secret-key=very-secret",
		"-server.http-listen-port=3300",
	})
	require.NoError(t, err)
	a := &App{cfg: cfg}
	get := func(query string) (int, string) {
		rec := httptest.NewRecorder()
		a.statusConfig(rec, httptest.NewRequest(http.MethodGet, "/status/config"+query, nil))
		return rec.Code, rec.Body.String()
	}

	code, body := get("")
	require.Equal(t, http.StatusOK, code)
	require.NotContains(t, body, "very-secret")
	require.Contains(t, body, "http_listen_port: 3300")
	require.Contains(t, body, "secret_key: '********'")

	code, body = get("?mode=defaults")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, "http_listen_port: 3200")

	code, body = get("?mode=diff")
	require.Equal(t, http.StatusOK, code)
	var diff map[string]any
	require.NoError(t, yaml.Unmarshal([]byte(body), &diff))
	require.Equal(t, map[string]any{
		"server": map[string]any{"http_listen_port": 3300},
		"storage": map[string]any{"trace": map[string]any{
			"backend": "s3",
			"s3":      map[string]any{"bucket": "traces", "endpoint": "127.0.0.1:9000", "access_key": "ak", "secret_key": "********"},
		}},
	}, diff)

	code, body = get("?mode=everything")
	require.Equal(t, http.StatusBadRequest, code)
	require.Contains(t, body, `mode "everything"`)
}
