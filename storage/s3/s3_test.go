package s3

import (
	"context"
	"errors"
	"flag"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grafana/dskit/flagext"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/stretchr/testify/require"

	"github.com/vivace-dev/vivace/storage"
	"github.com/vivace-dev/vivace/storage/storagetest"
)

func testConfig(m *storagetest.MinIO, bucket string) Config {
	var cfg Config
	cfg.RegisterFlagsAndApplyDefaults("s3", flag.NewFlagSet("", flag.PanicOnError))
	cfg.Bucket = bucket
	cfg.Endpoint = m.Endpoint
	cfg.Region = m.Region
	cfg.AccessKey = m.AccessKey
	cfg.SecretKey = flagext.SecretWithValue(m.SecretKey)
	cfg.Insecure = true
	return cfg
}

// recorder is an http.RoundTripper that remembers requests a least-privilege
// user must never make. MinIO's AccessDenied for GetBucketLocation is
// swallowed by minio-go, so only the wire shows whether we asked.
type recorder struct {
	next      http.RoundTripper
	mu        sync.Mutex
	forbidden []string
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	bucketOnly := strings.Count(strings.Trim(req.URL.Path, "/"), "/") == 0
	switch {
	case req.URL.Query().Has("location"):
		r.note("GetBucketLocation " + req.URL.String())
	case req.Method == http.MethodPut && bucketOnly:
		r.note("bucket PUT (MakeBucket?) " + req.URL.String())
	}
	return r.next.RoundTrip(req)
}

func (r *recorder) note(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.forbidden = append(r.forbidden, s)
}

func newTestBucket(t *testing.T, cfg Config) *Bucket {
	rec := &recorder{}
	b, err := newBucket(cfg, slog.New(slog.DiscardHandler), func(next http.RoundTripper) http.RoundTripper {
		rec.next = next
		return rec
	})
	require.NoError(t, err)
	t.Cleanup(func() {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		require.Empty(t, rec.forbidden, "requests beyond the least-privilege policy")
	})
	return b
}

func TestContract(t *testing.T) {
	m := storagetest.StartMinIO(t)
	storagetest.Run(t, func(t *testing.T) storage.Bucket {
		return newTestBucket(t, testConfig(m, m.NewBucket(t)))
	})
}

// TestLeastPrivilege proves the harness user is really restricted, so the
// contract passing means Vivace needs no more than those rights.
func TestLeastPrivilege(t *testing.T) {
	m := storagetest.StartMinIO(t)
	user, err := minio.New(m.Endpoint, &minio.Options{
		Creds:        credentials.NewStaticV4(m.AccessKey, m.SecretKey, ""),
		Region:       m.Region,
		BucketLookup: minio.BucketLookupPath,
	})
	require.NoError(t, err)
	ctx := t.Context()
	// Made by root outside the harness, so not in the user's policy.
	const other = "other"
	require.NoError(t, m.RootClient().MakeBucket(ctx, other, minio.MakeBucketOptions{Region: m.Region}))

	t.Run("cannot create buckets", func(t *testing.T) {
		err := user.MakeBucket(ctx, "vivace-new", minio.MakeBucketOptions{Region: m.Region})
		require.Error(t, err)
		require.Equal(t, "AccessDenied", errorCode(err))
		ok, err := m.RootClient().BucketExists(ctx, "vivace-new")
		require.NoError(t, err)
		require.False(t, ok)
	})
	t.Run("sees only its own bucket", func(t *testing.T) {
		buckets, err := user.ListBuckets(ctx)
		require.NoError(t, err)
		require.Len(t, buckets, 1)
		require.Equal(t, m.Bucket, buckets[0].Name)
	})
	t.Run("cannot touch another bucket", func(t *testing.T) {
		b := newTestBucket(t, testConfig(m, other))
		err := b.Put(ctx, "k", strings.NewReader("x"), 1)
		require.Equal(t, "AccessDenied", errorCode(err))
		_, err = b.Get(ctx, "k")
		require.Equal(t, "AccessDenied", errorCode(err))
		_, err = b.List(ctx, "")
		require.Equal(t, "AccessDenied", errorCode(err))
	})
	t.Run("can use its own bucket", func(t *testing.T) {
		b := newTestBucket(t, testConfig(m, m.Bucket))
		require.NoError(t, b.Put(ctx, "k", strings.NewReader("x"), 1))
		require.NoError(t, b.Delete(ctx, "k"))
	})
}

// errorCode is the S3 error code in err's chain, or "".
func errorCode(err error) string {
	var resp minio.ErrorResponse
	if errors.As(err, &resp) {
		return resp.Code
	}
	return ""
}

func TestDefaultDeadline(t *testing.T) {
	// A server that never answers: only the configured timeout ends the call.
	stop := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-stop: // the server sees no disconnect before it reads a body
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(stop) }) // runs first

	cfg := Config{
		Bucket:    "traces",
		Endpoint:  strings.TrimPrefix(srv.URL, "http://"),
		Region:    "us-east-1",
		AccessKey: "key",
		SecretKey: flagext.SecretWithValue("secret-key"),
		Insecure:  true,
		Timeout:   200 * time.Millisecond,
	}
	b, err := New(cfg, slog.New(slog.DiscardHandler))
	require.NoError(t, err)

	calls := []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"Get", func(ctx context.Context) error { _, err := b.Get(ctx, "k"); return err }},
		{"GetRange", func(ctx context.Context) error { _, err := b.GetRange(ctx, "k", 0, 1); return err }},
		{"Put", func(ctx context.Context) error { return b.Put(ctx, "k", strings.NewReader("x"), 1) }},
		{"List", func(ctx context.Context) error { _, err := b.List(ctx, ""); return err }},
		{"Delete", func(ctx context.Context) error { return b.Delete(ctx, "k") }},
	}
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			err := c.call(context.Background())
			require.ErrorIs(t, err, context.DeadlineExceeded)
			require.Less(t, time.Since(start), 5*time.Second)
		})
	}
}

func TestConfigValidate(t *testing.T) {
	valid := func() Config {
		var cfg Config
		cfg.RegisterFlagsAndApplyDefaults("s3", flag.NewFlagSet("", flag.PanicOnError))
		cfg.Bucket = "traces"
		cfg.Endpoint = "minio:9000"
		return cfg
	}
	tests := []struct {
		name    string
		edit    func(*Config)
		wantErr string
	}{
		{"defaults plus bucket and endpoint", func(*Config) {}, ""},
		{"static keys", func(c *Config) { c.AccessKey = "a"; c.SecretKey = flagext.SecretWithValue("s") }, ""},
		{"no bucket", func(c *Config) { c.Bucket = "" }, "bucket is required"},
		{"no endpoint", func(c *Config) { c.Endpoint = "" }, "endpoint is required"},
		{"scheme in endpoint", func(c *Config) { c.Endpoint = "http://minio:9000" }, "without a scheme"},
		{"access key alone", func(c *Config) { c.AccessKey = "a" }, "set together"},
		{"secret key alone", func(c *Config) { c.SecretKey = flagext.SecretWithValue("s") }, "set together"},
		{"zero timeout", func(c *Config) { c.Timeout = 0 }, "timeout must be positive"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := valid()
			tc.edit(&cfg)
			err := cfg.Validate()
			if tc.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.wantErr)
		})
	}
}

func TestConfigFlags(t *testing.T) {
	var cfg Config
	f := flag.NewFlagSet("", flag.ContinueOnError)
	cfg.RegisterFlagsAndApplyDefaults("storage.s3", f)
	require.Equal(t, 30*time.Second, cfg.Timeout)
	require.NoError(t, f.Parse([]string{
		"-storage.s3.bucket=traces", "-storage.s3.endpoint=minio:9000", "-storage.s3.region=eu-west-1",
		"-storage.s3.access-key=ak", "-storage.s3.secret-key=sk", "-storage.s3.insecure", "-storage.s3.timeout=5s",
	}))
	require.Equal(t, Config{
		Bucket: "traces", Endpoint: "minio:9000", Region: "eu-west-1", AccessKey: "ak",
		SecretKey: flagext.SecretWithValue("sk"), Insecure: true, Timeout: 5 * time.Second,
	}, cfg)
}
