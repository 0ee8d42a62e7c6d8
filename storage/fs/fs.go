// Package fs is a storage.Bucket kept in a local directory, for single-binary
// deployments and tests. Keys map to files under the root directory.
package fs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/vivace-dev/vivace/storage"
)

// tmpPrefix marks files still being written by Put. List hides them and keys
// may not use the prefix, so a half-written object is never visible.
const tmpPrefix = ".tmp-"

// Bucket is a storage.Bucket backed by a directory.
type Bucket struct {
	root string
}

var _ storage.Bucket = (*Bucket)(nil)

// New returns a Bucket rooted at dir, creating dir if needed.
func New(dir string) (*Bucket, error) {
	if dir == "" {
		return nil, errors.New("fs bucket: empty directory")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("fs bucket %s: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, fmt.Errorf("fs bucket %s: %w", dir, err)
	}
	return &Bucket{root: abs}, nil
}

// Put writes to a temporary file next to the target and renames it into
// place, so readers see either the old object or the whole new one.
func (b *Bucket) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	name, err := b.path(key)
	if err != nil {
		return err
	}
	if size < 0 {
		return fmt.Errorf("put %s: negative size %d", key, size)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	dir := filepath.Dir(name)
	if err := b.put(ctx, dir, name, r, size); err != nil {
		b.removeEmptyDirs(dir)
		return fmt.Errorf("put %s: %w", key, err)
	}
	return nil
}

func (b *Bucket) put(ctx context.Context, dir, name string, r io.Reader, size int64) error {
	f, err := b.createTemp(dir)
	if err != nil {
		return err
	}
	tmp, renamed := f.Name(), false
	defer func() {
		_ = f.Close()
		if !renamed {
			_ = os.Remove(tmp)
		}
	}()
	if n, err := io.CopyN(f, r, size); err != nil {
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("read %d of %d bytes: %w", n, size, io.ErrUnexpectedEOF)
		}
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	// A cancelled Put must not replace the object.
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := os.Rename(tmp, name); err != nil {
		return err
	}
	renamed = true
	return syncDir(dir)
}

// createTemp creates a temp file in dir, creating dir first. A concurrent
// Delete may remove empty folders on the way, between or during our calls,
// so retry while a folder goes missing.
func (b *Bucket) createTemp(dir string) (*os.File, error) {
	var err error
	for range 10 {
		var f *os.File
		if err = os.MkdirAll(dir, 0o755); err == nil {
			f, err = os.CreateTemp(dir, tmpPrefix+"*")
		}
		if err == nil {
			// CreateTemp makes 0600 files; objects are as readable as any file.
			if err := f.Chmod(0o644); err != nil {
				_ = f.Close()
				_ = os.Remove(f.Name())
				return nil, err
			}
			return f, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
	return nil, err
}

// Get opens the object at key.
func (b *Bucket) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	f, _, err := b.open(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	return f, nil
}

// GetRange opens length bytes from off. As in S3, a range running past the
// end is cut short and one starting at or past the end is an error.
func (b *Bucket) GetRange(ctx context.Context, key string, off, length int64) (io.ReadCloser, error) {
	if off < 0 || length <= 0 {
		return nil, fmt.Errorf("get range %s: invalid range off=%d length=%d", key, off, length)
	}
	f, size, err := b.open(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("get range %s: %w", key, err)
	}
	if off >= size {
		_ = f.Close()
		return nil, fmt.Errorf("get range %s: %w: offset %d, size %d", key, storage.ErrOutOfRange, off, size)
	}
	return &sectionReadCloser{SectionReader: io.NewSectionReader(f, off, length), f: f}, nil
}

type sectionReadCloser struct {
	*io.SectionReader
	f *os.File
}

func (s *sectionReadCloser) Close() error { return s.f.Close() }

// open opens the object at key and returns its size.
func (b *Bucket) open(ctx context.Context, key string) (*os.File, int64, error) {
	name, err := b.path(key)
	if err != nil {
		return nil, 0, err
	}
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	f, err := os.Open(name)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			return nil, 0, fmt.Errorf("%w: %w", storage.ErrNotFound, err)
		}
		return nil, 0, err
	}
	st, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, 0, err
	}
	// A folder is not an object, as in S3.
	if st.IsDir() {
		_ = f.Close()
		return nil, 0, storage.ErrNotFound
	}
	return f, st.Size(), nil
}

// List returns the objects and sub-folders directly under dir.
func (b *Bucket) List(ctx context.Context, dir string) ([]string, error) {
	if dir != "" && !strings.HasSuffix(dir, "/") {
		return nil, fmt.Errorf("list %q: folder must be empty or end in /", dir)
	}
	name := b.root
	if dir != "" {
		var err error
		if name, err = b.path(strings.TrimSuffix(dir, "/")); err != nil {
			return nil, fmt.Errorf("list %q: %w", dir, err)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("list %q: %w", dir, err)
	}
	entries, err := os.ReadDir(name)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		// An empty or missing folder, as in S3.
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list %q: %w", dir, err)
	}
	out := make([]string, 0, len(entries))
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), tmpPrefix) {
			continue
		}
		if e.IsDir() {
			out = append(out, dir+e.Name()+"/")
		} else {
			out = append(out, dir+e.Name())
		}
	}
	// ReadDir sorts by name, but "a/" must sort after "a.b" as in S3.
	slices.Sort(out)
	return out, nil
}

// Delete removes the object at key and any folders it leaves empty, so a
// deleted block's folder disappears from List.
func (b *Bucket) Delete(ctx context.Context, key string) error {
	name, err := b.path(key)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	st, err := os.Lstat(name)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	if st.IsDir() {
		// Not an object; S3 would find nothing to delete either.
		return nil
	}
	if err := os.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	b.removeEmptyDirs(filepath.Dir(name))
	return nil
}

// removeEmptyDirs removes dir and its parents up to the root while they are
// empty. Failure is fine: the folder is not empty, or another call won.
func (b *Bucket) removeEmptyDirs(dir string) {
	for dir != b.root && strings.HasPrefix(dir, b.root+string(filepath.Separator)) {
		if err := os.Remove(dir); err != nil {
			return
		}
		dir = filepath.Dir(dir)
	}
}

// path maps key to a file under the root, rejecting keys that are not plain
// relative slash paths (so none can escape the root) or that use tmpPrefix.
func (b *Bucket) path(key string) (string, error) {
	if key == "" || path.Clean(key) != key || !filepath.IsLocal(filepath.FromSlash(key)) {
		return "", fmt.Errorf("invalid key %q", key)
	}
	for seg := range strings.SplitSeq(key, "/") {
		if strings.HasPrefix(seg, tmpPrefix) {
			return "", fmt.Errorf("invalid key %q: %s is reserved", key, tmpPrefix)
		}
	}
	return filepath.Join(b.root, filepath.FromSlash(key)), nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
