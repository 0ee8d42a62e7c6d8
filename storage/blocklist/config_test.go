package blocklist_test

import (
	"flag"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vivace-dev/vivace/storage/blocklist"
)

func TestConfig(t *testing.T) {
	var def blocklist.Config
	def.RegisterFlagsAndApplyDefaults("storage.trace", flag.NewFlagSet("", flag.PanicOnError))
	require.NoError(t, def.Validate())
	require.Equal(t, 30*time.Second, def.PollInterval)
	require.Equal(t, time.Minute, def.StaleAfter(), "2 × blocklist_poll")
	require.Equal(t, 90*time.Second, def.MaxListDelay(), "within the default complete_block_timeout of 2m")

	tests := []struct {
		name        string
		poll, stale time.Duration
		staleAfter  time.Duration
		errHas      string
	}{
		{name: "default bound", poll: time.Minute, staleAfter: 2 * time.Minute},
		{name: "explicit bound", poll: time.Minute, stale: 5 * time.Minute, staleAfter: 5 * time.Minute},
		{name: "no poll", poll: 0, errHas: "blocklist_poll must be positive"},
		{name: "bound not above poll", poll: time.Minute, stale: time.Minute, errHas: "blocklist_poll_stale_tenant_index"},
		{name: "negative bound", poll: time.Minute, stale: -time.Second, errHas: "blocklist_poll_stale_tenant_index"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := blocklist.Config{PollInterval: tc.poll, StaleTenantIndex: tc.stale}
			err := cfg.Validate()
			if tc.errHas != "" {
				require.ErrorContains(t, err, tc.errHas)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.staleAfter, cfg.StaleAfter())
			require.Equal(t, tc.staleAfter+tc.poll, cfg.MaxListDelay())
		})
	}
}
