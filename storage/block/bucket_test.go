package block

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/vivace-dev/vivace/internal/model/modeltest"
	"github.com/vivace-dev/vivace/storage"
	"github.com/vivace-dev/vivace/storage/fs"
	"github.com/vivace-dev/vivace/storage/storagetest"
)

// memBucket is an in-memory storage.Bucket for tests.
type memBucket struct {
	mu      sync.RWMutex
	objects map[string][]byte
}

func newMemBucket() *memBucket { return &memBucket{objects: map[string][]byte{}} }

func (b *memBucket) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	if err := checkKey(key); err != nil {
		return err
	}
	if size < 0 {
		return fmt.Errorf("put %s: negative size %d", key, size)
	}
	data, err := io.ReadAll(io.LimitReader(r, size+1))
	if err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	if int64(len(data)) != size {
		return fmt.Errorf("put %s: read %d bytes, size says %d", key, len(data), size)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.objects[key] = data
	return nil
}

// checkKey rejects what no real bucket stores: empty, absolute, trailing
// slash, empty or dot segments.
func checkKey(key string) error {
	if key == "" || strings.HasPrefix(key, "/") || strings.HasSuffix(key, "/") {
		return fmt.Errorf("invalid key %q", key)
	}
	for _, seg := range strings.Split(key, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("invalid key %q", key)
		}
	}
	return nil
}

func (b *memBucket) get(key string) ([]byte, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	b.mu.RLock()
	defer b.mu.RUnlock()
	data, ok := b.objects[key]
	if !ok {
		return nil, fmt.Errorf("%s: %w", key, storage.ErrNotFound)
	}
	return data, nil
}

func (b *memBucket) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	data, err := b.get(key)
	if err != nil {
		return nil, err
	}
	return io.NopCloser(bytes.NewReader(data)), nil
}

func (b *memBucket) GetRange(ctx context.Context, key string, off, length int64) (io.ReadCloser, error) {
	data, err := b.get(key)
	if err != nil {
		return nil, err
	}
	if off < 0 || length <= 0 {
		return nil, fmt.Errorf("get %s bytes %d+%d of %d", key, off, length, len(data))
	}
	if off >= int64(len(data)) {
		return nil, fmt.Errorf("get %s bytes %d+%d of %d: %w", key, off, length, len(data), storage.ErrOutOfRange)
	}
	end := min(off+length, int64(len(data)))
	return io.NopCloser(bytes.NewReader(data[off:end])), nil
}

func (b *memBucket) List(ctx context.Context, dir string) ([]string, error) {
	if dir != "" {
		if err := checkKey(strings.TrimSuffix(dir, "/")); err != nil || !strings.HasSuffix(dir, "/") {
			return nil, fmt.Errorf("invalid folder %q", dir)
		}
	}
	b.mu.RLock()
	defer b.mu.RUnlock()
	seen := map[string]bool{}
	for k := range b.objects {
		if !strings.HasPrefix(k, dir) {
			continue
		}
		rest := k[len(dir):]
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			seen[dir+rest[:i+1]] = true
		} else {
			seen[k] = true
		}
	}
	out := make([]string, 0, len(seen))
	for k := range seen {
		out = append(out, k)
	}
	sort.Strings(out)
	return out, nil
}

func (b *memBucket) Delete(ctx context.Context, key string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.objects, key)
	return nil
}

// keys returns the stored keys, sorted.
func (b *memBucket) keys() []string {
	b.mu.RLock()
	defer b.mu.RUnlock()
	var out []string
	for k := range b.objects {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// writeDir stores every object as a file under dir.
func (b *memBucket) writeDir(t testing.TB, dir string) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	for k, v := range b.objects {
		p := filepath.Join(dir, filepath.FromSlash(k))
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, v, 0o644))
	}
}

// loadDir reads every file under dir as an object.
func loadDir(t testing.TB, dir string) *memBucket {
	b := newMemBucket()
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		data, err := os.ReadFile(p)
		b.objects[filepath.ToSlash(rel)] = data
		return err
	})
	require.NoError(t, err)
	return b
}

// call is one Bucket call seen by countingBucket.
type call struct {
	op, key     string
	off, length int64
}

func (c call) String() string {
	if c.op == "GetRange" {
		return fmt.Sprintf("%s %s %d+%d", c.op, c.key, c.off, c.length)
	}
	return c.op + " " + c.key
}

// countingBucket records every call to the bucket it wraps.
type countingBucket struct {
	storage.Bucket
	mu    sync.Mutex
	calls []call
}

func (b *countingBucket) record(c call) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls = append(b.calls, c)
}

// take returns the calls so far and forgets them.
func (b *countingBucket) take() []call {
	b.mu.Lock()
	defer b.mu.Unlock()
	c := b.calls
	b.calls = nil
	return c
}

func (b *countingBucket) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	b.record(call{op: "Put", key: key})
	return b.Bucket.Put(ctx, key, r, size)
}

func (b *countingBucket) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	b.record(call{op: "Get", key: key})
	return b.Bucket.Get(ctx, key)
}

func (b *countingBucket) GetRange(ctx context.Context, key string, off, length int64) (io.ReadCloser, error) {
	b.record(call{op: "GetRange", key: key, off: off, length: length})
	return b.Bucket.GetRange(ctx, key, off, length)
}

func (b *countingBucket) List(ctx context.Context, dir string) ([]string, error) {
	b.record(call{op: "List", key: dir})
	return b.Bucket.List(ctx, dir)
}

func (b *countingBucket) Delete(ctx context.Context, key string) error {
	b.record(call{op: "Delete", key: key})
	return b.Bucket.Delete(ctx, key)
}

// The test bucket keeps the same contract as the real ones.
func TestMemBucketContract(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Bucket { return newMemBucket() })
}

// TestDirBucket writes and reads a block through the directory bucket.
func TestDirBucket(t *testing.T) {
	ctx := context.Background()
	bkt, err := fs.New(t.TempDir())
	require.NoError(t, err)
	rng := rand.New(rand.NewPCG(3, 4))
	ids, traces := modeltest.Traces(rng, 100, 20)
	w, err := NewWriter(WriterConfig{RowGroupSpans: 300, BloomShardMaxBytes: 64}, t.TempDir(), testTenant, uuid.New())
	require.NoError(t, err)
	for i, id := range ids {
		require.NoError(t, w.Add(id, traces[i]))
	}
	meta, err := w.Finish(ctx, bkt)
	require.NoError(t, err)

	names, err := bkt.List(ctx, storage.BlockDir(testTenant, meta.BlockID))
	require.NoError(t, err)
	require.Len(t, names, 3+meta.BloomShards)

	got, err := ReadMeta(ctx, bkt, testTenant, meta.BlockID)
	require.NoError(t, err)
	require.Equal(t, meta, got)
	r := NewReader(bkt, got)
	for i, id := range ids {
		td, err := r.FindTraceByID(ctx, id)
		require.NoError(t, err)
		require.True(t, proto.Equal(traces[i], td))
	}
	_, err = ReadMeta(ctx, bkt, testTenant, uuid.NewString())
	require.ErrorIs(t, err, storage.ErrNotFound)
}
