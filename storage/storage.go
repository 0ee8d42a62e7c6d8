// Package storage is the object store seen by every role: a small Bucket
// interface with a local-directory (storage/fs) and an S3 (storage/s3)
// implementation, and the key layout of what Vivace keeps there.
package storage

import (
	"context"
	"errors"
	"io"
)

// ErrNotFound is returned (wrapped) by Get and GetRange for a missing key.
var ErrNotFound = errors.New("object not found")

// ErrOutOfRange is returned (wrapped) by GetRange for a range that starts at
// or past the end of the object: the object is shorter than its reader
// believed, which a network failure cannot cause.
var ErrOutOfRange = errors.New("range starts past the end of the object")

// Bucket is an object store. Keys are slash-separated paths without a leading
// slash. Implementations must be safe for concurrent use.
type Bucket interface {
	// Put stores size bytes read from r at key, replacing any object there.
	// An object is visible to readers only once it is complete.
	Put(ctx context.Context, key string, r io.Reader, size int64) error
	// Get opens the whole object at key.
	Get(ctx context.Context, key string) (io.ReadCloser, error)
	// GetRange opens length bytes of the object at key from offset off. A
	// range running past the end is cut short; one starting at or past the
	// end fails with ErrOutOfRange.
	GetRange(ctx context.Context, key string, off, length int64) (io.ReadCloser, error)
	// List returns the names directly under dir ("" or ending in "/"), sorted:
	// objects as their full key, sub-folders as their full prefix ending in "/".
	List(ctx context.Context, dir string) ([]string, error)
	// Delete removes the object at key; deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
}
