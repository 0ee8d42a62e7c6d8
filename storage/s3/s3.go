// Package s3 is a storage.Bucket on S3 or an S3-compatible store, via minio-go.
//
// It needs only s3:PutObject, GetObject, ListBucket and DeleteObject on the
// bucket: it never creates the bucket, and with a region set it never asks
// for the bucket's location.
package s3

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/vivace-dev/vivace/storage"
)

// Bucket is a storage.Bucket on one S3 bucket.
type Bucket struct {
	cfg    Config
	core   minio.Core // Core.GetObject fails at once on a missing key, in one request
	logger *slog.Logger
}

var _ storage.Bucket = (*Bucket)(nil)

// New returns a Bucket for cfg. It makes no request.
func New(cfg Config, logger *slog.Logger) (*Bucket, error) {
	return newBucket(cfg, logger, nil)
}

// newBucket lets tests wrap the HTTP transport to see every request.
func newBucket(cfg Config, logger *slog.Logger, wrap func(http.RoundTripper) http.RoundTripper) (*Bucket, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var rt http.RoundTripper
	rt, err := minio.DefaultTransport(!cfg.Insecure)
	if err != nil {
		return nil, fmt.Errorf("s3 transport: %w", err)
	}
	if wrap != nil {
		rt = wrap(rt)
	}
	creds := credentials.NewStaticV4(cfg.AccessKey, cfg.SecretKey.String(), "")
	if cfg.AccessKey == "" {
		creds = credentials.NewChainCredentials([]credentials.Provider{
			&credentials.EnvAWS{},
			&credentials.EnvMinio{},
			&credentials.IAM{Client: &http.Client{Transport: rt}},
		})
	}
	client, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds:     creds,
		Secure:    !cfg.Insecure,
		Transport: rt,
		// With Region set minio-go skips GetBucketLocation.
		Region: cfg.Region,
		// Path style works with every S3-compatible store and any bucket name.
		BucketLookup: minio.BucketLookupPath,
	})
	if err != nil {
		return nil, fmt.Errorf("s3 client %s: %w", cfg.Endpoint, err)
	}
	logger = logger.With("component", "s3")
	logger.Debug("s3 bucket", "endpoint", cfg.Endpoint, "bucket", cfg.Bucket, "region", cfg.Region)
	return &Bucket{cfg: cfg, core: minio.Core{Client: client}, logger: logger}, nil
}

// withTimeoutFor is withTimeout for a transfer of size bytes.
func (b *Bucket) withTimeoutFor(ctx context.Context, size int64) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, b.cfg.Timeout+time.Duration(size>>22)*time.Second)
}

// withTimeout gives ctx the configured deadline unless it has one already.
func (b *Bucket) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, b.cfg.Timeout)
}

// Put uploads size bytes from r; S3 makes the object visible only when complete.
func (b *Bucket) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	if err := checkKey(key); err != nil {
		return err
	}
	if size < 0 {
		return fmt.Errorf("put %s: negative size %d", key, size)
	}
	// The timeout bounds waiting on a slow store, not moving a large block:
	// a put gets one more second per 4 MiB (assumes at least 4 MiB/s).
	ctx, cancel := b.withTimeoutFor(ctx, size)
	defer cancel()
	for attempt := 0; ; attempt++ {
		_, err := b.core.Client.PutObject(ctx, b.cfg.Bucket, key, r, size, minio.PutObjectOptions{
			ContentType: "application/octet-stream",
		})
		if err == nil {
			return nil
		}
		// A single-drive MinIO answers AccessDenied to a put that races the
		// delete of the last object under the same prefix (it removes the
		// directory under the put). A real denial repeats; this does not.
		seeker, ok := r.(io.Seeker)
		if !ok || attempt == 2 || minio.ToErrorResponse(err).Code != "AccessDenied" || ctx.Err() != nil {
			return fmt.Errorf("put %s: %w", key, err)
		}
		if _, serr := seeker.Seek(0, io.SeekStart); serr != nil {
			return fmt.Errorf("put %s: %w", key, err)
		}
		time.Sleep(time.Duration(attempt+1) * 20 * time.Millisecond)
	}
}

// Get opens the object at key. The body must be read within the deadline.
func (b *Bucket) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	rc, err := b.get(ctx, key, minio.GetObjectOptions{})
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	return rc, nil
}

// GetRange opens length bytes from off; a range past the end is cut short.
func (b *Bucket) GetRange(ctx context.Context, key string, off, length int64) (io.ReadCloser, error) {
	if off < 0 || length <= 0 {
		return nil, fmt.Errorf("get range %s: invalid range off=%d length=%d", key, off, length)
	}
	var opts minio.GetObjectOptions
	if err := opts.SetRange(off, off+length-1); err != nil {
		return nil, fmt.Errorf("get range %s: %w", key, err)
	}
	rc, err := b.get(ctx, key, opts)
	if err != nil {
		return nil, fmt.Errorf("get range %s: %w", key, err)
	}
	return rc, nil
}

func (b *Bucket) get(ctx context.Context, key string, opts minio.GetObjectOptions) (io.ReadCloser, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	ctx, cancel := b.withTimeout(ctx)
	body, _, _, err := b.core.GetObject(ctx, b.cfg.Bucket, key, opts)
	if err != nil {
		cancel()
		switch minio.ToErrorResponse(err).Code {
		case minio.NoSuchKey:
			return nil, fmt.Errorf("%w: %w", storage.ErrNotFound, err)
		case "InvalidRange":
			return nil, fmt.Errorf("%w: %w", storage.ErrOutOfRange, err)
		}
		return nil, err
	}
	return &cancelOnClose{ReadCloser: body, cancel: cancel}, nil
}

// cancelOnClose releases the request's context when the body is closed.
type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c *cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}

// List returns the objects and sub-folders directly under dir.
func (b *Bucket) List(ctx context.Context, dir string) ([]string, error) {
	if dir != "" && (!strings.HasSuffix(dir, "/") || checkKey(strings.TrimSuffix(dir, "/")) != nil) {
		return nil, fmt.Errorf("list %q: folder must be empty or a key ending in /", dir)
	}
	// Cancelling also stops ListObjects' goroutine if we return early.
	ctx, cancel := b.withTimeout(ctx)
	defer cancel()
	var out []string
	for obj := range b.core.Client.ListObjects(ctx, b.cfg.Bucket, minio.ListObjectsOptions{Prefix: dir, Recursive: false}) {
		if obj.Err != nil {
			return nil, fmt.Errorf("list %q: %w", dir, obj.Err)
		}
		// A folder marker object named like the folder itself is not a child.
		if obj.Key == dir {
			continue
		}
		out = append(out, obj.Key)
	}
	// minio-go yields a page's objects before its folders.
	slices.Sort(out)
	return out, nil
}

// Delete removes the object at key; S3 reports success for a missing key.
func (b *Bucket) Delete(ctx context.Context, key string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	ctx, cancel := b.withTimeout(ctx)
	defer cancel()
	err := b.core.Client.RemoveObject(ctx, b.cfg.Bucket, key, minio.RemoveObjectOptions{})
	if err != nil && minio.ToErrorResponse(err).Code != minio.NoSuchKey {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	return nil
}

// checkKey rejects keys the fs bucket could not store, so both backends
// accept the same keys.
func checkKey(key string) error {
	if key == "" || path.Clean(key) != key || strings.HasPrefix(key, "/") || key == ".." || strings.HasPrefix(key, "../") {
		return fmt.Errorf("invalid key %q", key)
	}
	return nil
}
