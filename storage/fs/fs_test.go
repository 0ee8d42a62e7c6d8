package fs_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vivace-dev/vivace/storage"
	"github.com/vivace-dev/vivace/storage/fs"
	"github.com/vivace-dev/vivace/storage/storagetest"
)

func newBucket(t *testing.T) *fs.Bucket {
	b, err := fs.New(t.TempDir())
	require.NoError(t, err)
	return b
}

func TestContract(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Bucket { return newBucket(t) })
}

func TestNewCreatesDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	_, err := fs.New(dir)
	require.NoError(t, err)
	require.DirExists(t, dir)
}

func TestKeysStayInRoot(t *testing.T) {
	parent := t.TempDir()
	root := filepath.Join(parent, "root")
	b, err := fs.New(root)
	require.NoError(t, err)
	for _, key := range []string{"../escape", "a/../../escape", "/tmp/escape", "..", ".tmp-x", "a/.tmp-x"} {
		require.Error(t, b.Put(t.Context(), key, strings.NewReader("x"), 1), key)
	}
	entries, err := os.ReadDir(parent)
	require.NoError(t, err)
	require.Len(t, entries, 1, "only the root folder")
}

func TestListSkipsTempFiles(t *testing.T) {
	root := t.TempDir()
	b, err := fs.New(root)
	require.NoError(t, err)
	require.NoError(t, b.Put(t.Context(), "t/obj", strings.NewReader("x"), 1))
	// A Put that crashed before its rename.
	require.NoError(t, os.WriteFile(filepath.Join(root, "t", ".tmp-123"), []byte("half"), 0o644))

	names, err := b.List(t.Context(), "t/")
	require.NoError(t, err)
	require.Equal(t, []string{"t/obj"}, names)
}
