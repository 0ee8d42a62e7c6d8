package blocklist

import "errors"

var (
	// errCorruptIndex is wrapped by every error about a tenant index that
	// does not decode, is of an unknown version, or does not agree with its
	// tenant. Readers list the tenant's blocks instead.
	errCorruptIndex = errors.New("corrupt tenant index")
	// errStaleIndex is wrapped when a tenant index is older than the stale
	// bound: its builder has stopped. Readers list the tenant's blocks instead.
	errStaleIndex = errors.New("stale tenant index")
)
