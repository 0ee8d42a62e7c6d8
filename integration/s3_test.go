package integration

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/stretchr/testify/require"

	"github.com/vivace-dev/vivace/internal/model"
	"github.com/vivace-dev/vivace/storage/storagetest"
)

// TestS3Backend runs against a real MinIO with a user that may only put,
// get, list and delete objects (and their tags) in its bucket: ingest with
// the SDK, flush, restart without the WAL, and read every trace back exactly.
func TestS3Backend(t *testing.T) {
	m := storagetest.StartMinIO(t)
	config := `
storage:
  trace:
    backend: s3
    s3:
      bucket: ${VIVACE_TEST_BUCKET}
      endpoint: ${VIVACE_TEST_ENDPOINT}
      access_key: ${VIVACE_TEST_ACCESS_KEY}
      secret_key: ${VIVACE_TEST_SECRET_KEY}
      region: ${VIVACE_TEST_REGION:us-east-1}
      insecure: true
`
	env := []string{
		"VIVACE_TEST_BUCKET=" + m.Bucket,
		"VIVACE_TEST_ENDPOINT=" + m.Endpoint,
		"VIVACE_TEST_ACCESS_KEY=" + m.AccessKey,
		"VIVACE_TEST_SECRET_KEY=" + m.SecretKey,
	}
	v := startVivace(t, config, env, "-config.expand-env=true")
	want := merge(
		sendSDK(t, v, "grpc", "", 10).traces(t),
		sendSDK(t, v, "http", "", 10).traces(t),
		sendRaw(t, v, "", 5, 10).traces(t),
	)
	v.flushAndWait(1)

	// The block is in the bucket, in Tempo's layout, meta.json included.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var keys []string
	for obj := range m.RootClient().ListObjects(ctx, m.Bucket, minio.ListObjectsOptions{Recursive: true}) {
		require.NoError(t, obj.Err)
		keys = append(keys, obj.Key)
	}
	require.Len(t, keys, 4, "keys: %v", keys)
	blockDir := filepath.Dir(keys[0])
	require.True(t, strings.HasPrefix(blockDir, model.SingleTenant+"/"), blockDir)
	var names []string
	for _, k := range keys {
		require.Equal(t, blockDir, filepath.Dir(k))
		names = append(names, filepath.Base(k))
	}
	slices.Sort(names)
	require.Equal(t, []string{"bloom-0", "data.parquet", "index", "meta.json"}, names)

	v.stop()
	require.NoError(t, os.RemoveAll(filepath.Join(v.dataDir, "wal")))
	v.start()
	requireAllFound(t, v, want, "")
}
