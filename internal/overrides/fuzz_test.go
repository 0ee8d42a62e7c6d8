package overrides_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vivace-dev/vivace/internal/overrides"
)

// FuzzParseFile feeds the runtime overrides file parser arbitrary bytes: it
// must refuse them with ErrInvalidFile or ErrFileTooLarge, or return valid
// limits that survive a round trip. Seeds are in testdata/fuzz/FuzzParseFile.
func FuzzParseFile(f *testing.F) {
	defaults := defaultConfig().Defaults
	f.Fuzz(func(t *testing.T, b []byte) {
		tenants, err := overrides.ParseFile(b, defaults)
		if err != nil {
			require.Nil(t, tenants)
			if len(b) > overrides.MaxFileBytes {
				require.ErrorIs(t, err, overrides.ErrFileTooLarge)
			} else {
				require.ErrorIs(t, err, overrides.ErrInvalidFile)
			}
			return
		}
		for tenant, l := range tenants {
			require.NoError(t, l.Validate(), "tenant %q", tenant)
		}
		// What parsed encodes to a file that parses to the same limits.
		again, err := overrides.MarshalFile(tenants)
		require.NoError(t, err)
		back, err := overrides.ParseFile(again, defaults)
		require.NoError(t, err, "%s", again)
		require.Equal(t, tenants, back)
	})
}
