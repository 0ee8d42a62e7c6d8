package block

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestPooledAllocatorClass(t *testing.T) {
	tests := []struct {
		size, class int
	}{
		{0, -1},
		{1, 0},
		{4 << 10, 0},
		{4<<10 + 1, 1},
		{1 << 20, 8},
		{4 << 20, 10},
		{4<<20 + 1, -1},
	}
	for _, tt := range tests {
		require.Equal(t, tt.class, class(tt.size), "size %d", tt.size)
	}
}

func TestPooledAllocator(t *testing.T) {
	a := &pooledAllocator{}
	b := a.Allocate(5000)
	require.Len(t, b, 5000)
	require.Equal(t, 8<<10, cap(b))
	for i := range b {
		b[i] = 0xaa
	}
	b = a.Reallocate(6000, b) // fits the capacity: the same memory
	require.Len(t, b, 6000)
	require.Equal(t, byte(0xaa), b[4999])

	grown := a.Reallocate(10000, b)
	require.Len(t, grown, 10000)
	require.Equal(t, byte(0xaa), grown[0], "copied")
	require.Equal(t, byte(0), grown[9999])

	// b went back to its pool on Reallocate; what comes out again is zeroed.
	for range 100 {
		c := a.Allocate(5000)
		require.Equal(t, make([]byte, 5000), c)
		a.Free(c)
	}

	// Buffers the allocator did not make are dropped, not pooled.
	a.Free(make([]byte, 5000))
	a.Free(make([]byte, 100<<20))
	a.Free(nil)
	require.Len(t, a.Allocate(100<<20), 100<<20)
}
