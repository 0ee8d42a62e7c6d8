// Package storagetest holds the one contract suite every storage.Bucket must
// pass, and a harness that runs a real MinIO server for tests.
package storagetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vivace-dev/vivace/storage"
)

// Run checks every behaviour of storage.Bucket. newBucket must return an
// empty bucket each call; subtests run in parallel.
func Run(t *testing.T, newBucket func(t *testing.T) storage.Bucket) {
	tests := []struct {
		name string
		test func(t *testing.T, b storage.Bucket)
	}{
		{"RoundTrip", testRoundTrip},
		{"Overwrite", testOverwrite},
		{"GetRange", testGetRange},
		{"InvalidRange", testInvalidRange},
		{"NotFound", testNotFound},
		{"List", testList},
		{"Delete", testDelete},
		{"DeleteBlockFolder", testDeleteBlockFolder},
		{"InvalidKey", testInvalidKey},
		{"FailedPutIsInvisible", testFailedPut},
		{"ConcurrentPuts", testConcurrentPuts},
		{"ConcurrentPutDelete", testConcurrentPutDelete},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.test(t, newBucket(t))
		})
	}
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

func put(t *testing.T, b storage.Bucket, key string, data []byte) {
	t.Helper()
	require.NoError(t, b.Put(ctxFor(t), key, bytes.NewReader(data), int64(len(data))), "put %s", key)
}

// onlyReader hides bytes.Reader's Seek/ReadAt/WriterTo, as a real stream would.
type onlyReader struct{ io.Reader }

func get(t *testing.T, b storage.Bucket, key string) []byte {
	t.Helper()
	rc, err := b.Get(ctxFor(t), key)
	require.NoError(t, err, "get %s", key)
	defer rc.Close()
	data, err := io.ReadAll(rc)
	require.NoError(t, err, "read %s", key)
	return data
}

func getRange(t *testing.T, b storage.Bucket, key string, off, length int64) []byte {
	t.Helper()
	rc, err := b.GetRange(ctxFor(t), key, off, length)
	require.NoError(t, err, "get range %s %d+%d", key, off, length)
	defer rc.Close()
	data, err := io.ReadAll(rc)
	require.NoError(t, err)
	return data
}

func list(t *testing.T, b storage.Bucket, dir string) []string {
	t.Helper()
	names, err := b.List(ctxFor(t), dir)
	require.NoError(t, err, "list %q", dir)
	return names
}

func testRoundTrip(t *testing.T, b storage.Bucket) {
	tests := []struct {
		name string
		key  string
		data []byte
	}{
		{"empty", "empty", []byte{}},
		{"small", "t/b/meta.json", []byte(`{"format":"v1"}`)},
		{"5MiB", "t/b/data.parquet", randomBytes(5 << 20)},
		// Above minio-go's 16 MiB part size: a multipart upload.
		{"17MiB", "t/b2/data.parquet", randomBytes(17 << 20)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// A plain stream, not a seekable bytes.Reader.
			r := onlyReader{bytes.NewReader(tc.data)}
			require.NoError(t, b.Put(ctxFor(t), tc.key, r, int64(len(tc.data))))
			got := get(t, b, tc.key)
			require.Len(t, got, len(tc.data))
			require.True(t, bytes.Equal(tc.data, got), "content differs")
		})
	}
}

func testOverwrite(t *testing.T, b storage.Bucket) {
	put(t, b, "k", []byte("a longer first version"))
	put(t, b, "k", []byte("second"))
	require.Equal(t, "second", string(get(t, b, "k")))
	require.Equal(t, []string{"k"}, list(t, b, ""))
}

func testGetRange(t *testing.T, b storage.Bucket) {
	data := randomBytes(1000)
	put(t, b, "t/obj", data)
	tests := []struct {
		name        string
		off, length int64
		want        []byte
	}{
		{"start", 0, 10, data[:10]},
		{"middle", 500, 100, data[500:600]},
		{"end", 990, 10, data[990:]},
		{"whole", 0, 1000, data},
		{"last byte", 999, 1, data[999:]},
		{"past end is cut short", 995, 100, data[995:]},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, getRange(t, b, "t/obj", tc.off, tc.length))
		})
	}
}

func testInvalidRange(t *testing.T, b storage.Bucket) {
	put(t, b, "obj", randomBytes(100))
	tests := []struct {
		name        string
		off, length int64
	}{
		{"negative offset", -1, 10},
		{"zero length", 0, 0},
		{"negative length", 10, -5},
		{"offset at end", 100, 10},
		{"offset past end", 200, 10},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rc, err := b.GetRange(ctxFor(t), "obj", tc.off, tc.length)
			if err == nil {
				rc.Close()
			}
			require.Error(t, err)
			require.NotErrorIs(t, err, storage.ErrNotFound)
			require.Equal(t, tc.off >= 100, errors.Is(err, storage.ErrOutOfRange), "%v", err)
		})
	}
}

func testNotFound(t *testing.T, b storage.Bucket) {
	put(t, b, "t/b/meta.json", []byte("{}"))
	tests := []struct {
		name string
		key  string
	}{
		{"empty bucket folder", "missing"},
		{"missing in existing folder", "t/b/data.parquet"},
		{"missing folder", "t/nope/meta.json"},
		{"below an object", "t/b/meta.json/x"},
		{"a folder is not an object", "t/b"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rc, err := b.Get(ctxFor(t), tc.key)
			if err == nil {
				rc.Close()
			}
			require.ErrorIs(t, err, storage.ErrNotFound)

			rc, err = b.GetRange(ctxFor(t), tc.key, 0, 10)
			if err == nil {
				rc.Close()
			}
			require.ErrorIs(t, err, storage.ErrNotFound)
		})
	}
}

func testList(t *testing.T, b storage.Bucket) {
	require.Empty(t, list(t, b, ""), "new bucket")
	for _, k := range []string{
		"t1/b1/meta.json", "t1/b1/data.parquet", "t1/b1/bloom-0",
		"t1/b2/meta.json", "t1/index.json", "t2/b3/meta.json",
		"a.b", "a/c", "z",
	} {
		put(t, b, k, []byte(k))
	}
	tests := []struct {
		dir  string
		want []string
	}{
		// "a.b" sorts before "a/" ('.' < '/'), as S3 orders them.
		{"", []string{"a.b", "a/", "t1/", "t2/", "z"}},
		{"t1/", []string{"t1/b1/", "t1/b2/", "t1/index.json"}},
		{"t1/b1/", []string{"t1/b1/bloom-0", "t1/b1/data.parquet", "t1/b1/meta.json"}},
		{"t2/b3/", []string{"t2/b3/meta.json"}},
		{"missing/", nil},
		{"t1/missing/", nil},
		{"t/", nil}, // a prefix of a folder name is not that folder
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%q", tc.dir), func(t *testing.T) {
			got := list(t, b, tc.dir)
			if tc.want == nil {
				require.Empty(t, got)
				return
			}
			require.Equal(t, tc.want, got)
		})
	}
	t.Run("folder without slash", func(t *testing.T) {
		_, err := b.List(ctxFor(t), "t1")
		require.Error(t, err)
	})
}

func testDelete(t *testing.T, b storage.Bucket) {
	put(t, b, "t/k1", []byte("1"))
	put(t, b, "t/k2", []byte("2"))

	require.NoError(t, b.Delete(ctxFor(t), "t/k1"))
	_, err := b.Get(ctxFor(t), "t/k1")
	require.ErrorIs(t, err, storage.ErrNotFound)
	require.Equal(t, []string{"t/k2"}, list(t, b, "t/"))
	require.Equal(t, "2", string(get(t, b, "t/k2")))

	// Idempotent, and a key that never existed is fine too.
	require.NoError(t, b.Delete(ctxFor(t), "t/k1"))
	require.NoError(t, b.Delete(ctxFor(t), "never/was"))
	require.Equal(t, []string{"t/"}, list(t, b, ""))
}

func testDeleteBlockFolder(t *testing.T, b storage.Bucket) {
	keep := storage.MetaKey("tenant", "keep")
	put(t, b, keep, []byte("{}"))
	keys := []string{
		storage.DataKey("tenant", "gone"), storage.IndexKey("tenant", "gone"),
		storage.BloomKey("tenant", "gone", 0), storage.MetaKey("tenant", "gone"),
	}
	for _, k := range keys {
		put(t, b, k, []byte(k))
	}
	require.Equal(t, []string{storage.BlockDir("tenant", "gone"), storage.BlockDir("tenant", "keep")}, list(t, b, "tenant/"))

	for _, k := range keys {
		require.NoError(t, b.Delete(ctxFor(t), k))
	}
	require.Equal(t, []string{storage.BlockDir("tenant", "keep")}, list(t, b, "tenant/"))
	require.Empty(t, list(t, b, storage.BlockDir("tenant", "gone")))

	require.NoError(t, b.Delete(ctxFor(t), keep))
	require.Empty(t, list(t, b, ""), "the tenant folder goes with its last object")
}

func testInvalidKey(t *testing.T, b storage.Bucket) {
	for _, key := range []string{"", "/abs", "../x", "a/../../x", "a/../b", "./a", "a//b", "a/", ".."} {
		t.Run(fmt.Sprintf("%q", key), func(t *testing.T) {
			require.Error(t, b.Put(ctxFor(t), key, strings.NewReader("x"), 1))
			_, err := b.Get(ctxFor(t), key)
			require.Error(t, err)
			require.Error(t, b.Delete(ctxFor(t), key))
		})
	}
	require.Empty(t, list(t, b, ""), "no invalid key stored anything")
}

func testFailedPut(t *testing.T, b storage.Bucket) {
	tests := []struct {
		name string
		put  func(ctx context.Context, key string) error
	}{
		{"short reader", func(ctx context.Context, key string) error {
			return b.Put(ctx, key, onlyReader{strings.NewReader("only 13 bytes")}, 100)
		}},
		{"reader error", func(ctx context.Context, key string) error {
			r := io.MultiReader(strings.NewReader("some bytes"), errReader{})
			return b.Put(ctx, key, onlyReader{r}, 100)
		}},
		{"negative size", func(ctx context.Context, key string) error {
			return b.Put(ctx, key, strings.NewReader("x"), -1)
		}},
		{"cancelled context", func(ctx context.Context, key string) error {
			ctx, cancel := context.WithCancel(ctx)
			cancel()
			return b.Put(ctx, key, strings.NewReader("x"), 1)
		}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			key := fmt.Sprintf("t/failed-%d", i)
			require.Error(t, tc.put(ctxFor(t), key))
			_, err := b.Get(ctxFor(t), key)
			require.ErrorIs(t, err, storage.ErrNotFound)
		})
	}
	require.Empty(t, list(t, b, "t/"))
	require.Empty(t, list(t, b, ""))
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("broken reader") }

func testConcurrentPuts(t *testing.T, b storage.Bucket) {
	const n = 16
	versions := make([][]byte, n)
	for i := range versions {
		versions[i] = bytes.Repeat([]byte{byte('a' + i)}, 64<<10+i)
	}
	ctx := ctxFor(t)
	errs := make(chan error, 2*n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			// Distinct keys in one folder, and all writers on one key.
			errs <- b.Put(ctx, fmt.Sprintf("t/b/k%02d", i), bytes.NewReader(versions[i]), int64(len(versions[i])))
			errs <- b.Put(ctx, "t/b/same", bytes.NewReader(versions[i]), int64(len(versions[i])))
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}

	names := list(t, b, "t/b/")
	require.Len(t, names, n+1)
	for i := range n {
		require.Equal(t, versions[i], get(t, b, fmt.Sprintf("t/b/k%02d", i)))
	}
	// The last writer wins whole: never a mix of two versions.
	require.Contains(t, versions, get(t, b, "t/b/same"))
}

// testConcurrentPutDelete races Puts with Deletes that empty the folder, as
// the compactor deletes blocks while ingesters flush new ones next to them.
func testConcurrentPutDelete(t *testing.T, b storage.Bucket) {
	const n, rounds = 8, 10
	ctx := ctxFor(t)
	errs := make(chan error, 2*n*rounds)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			key := fmt.Sprintf("tenant/block/k%d", i)
			for range rounds {
				errs <- b.Put(ctx, key, strings.NewReader("data"), 4)
				errs <- b.Delete(ctx, key)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.Empty(t, list(t, b, ""))
}
