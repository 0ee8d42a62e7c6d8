package block

import (
	"math/bits"
	"sync"
)

// pageAlloc is the memory.Allocator of the parquet readers: it recycles the
// buffers pages are decompressed into. A lookup decompresses one page of
// each column, about a megabyte in all, and with Go's allocator that garbage
// was most of what the garbage collector had to chase on a read-heavy
// querier. Values never alias these buffers once read: ReadBatch clones byte
// arrays, and readIDs copies what ReadBatchInPage returns.
var pageAlloc = &pooledAllocator{}

// Buffers from 4 KiB to 4 MiB are pooled by power-of-two size; others are
// left to the garbage collector.
const (
	minPooledShift = 12
	maxPooledShift = 22
)

type pooledAllocator struct {
	pools [maxPooledShift - minPooledShift + 1]sync.Pool // of *[]byte
}

// class returns the pool of buffers with capacity 1<<shift, the smallest
// that holds size bytes, or -1 when size is not pooled.
func class(size int) int {
	if size <= 0 || size > 1<<maxPooledShift {
		return -1
	}
	shift := max(bits.Len(uint(size-1)), minPooledShift)
	return shift - minPooledShift
}

// Allocate returns size zeroed bytes, as Go's allocator does.
func (a *pooledAllocator) Allocate(size int) []byte {
	c := class(size)
	if c < 0 {
		return make([]byte, size)
	}
	if p, ok := a.pools[c].Get().(*[]byte); ok {
		b := (*p)[:size]
		clear(b)
		return b
	}
	return make([]byte, size, 1<<(c+minPooledShift))
}

func (a *pooledAllocator) Reallocate(size int, b []byte) []byte {
	if size <= cap(b) {
		return b[:size]
	}
	nb := a.Allocate(size)
	copy(nb, b)
	a.Free(b)
	return nb
}

// Free takes back a buffer Allocate returned; any other is dropped.
func (a *pooledAllocator) Free(b []byte) {
	c := class(cap(b))
	if c < 0 || cap(b) != 1<<(c+minPooledShift) {
		return
	}
	b = b[:0]
	a.pools[c].Put(&b)
}
