package membership_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/go-kit/log"
	"github.com/grafana/dskit/kv/consul"
	"github.com/grafana/dskit/ring"
	"github.com/grafana/dskit/services"
	"github.com/stretchr/testify/require"

	"github.com/vivace-dev/vivace/internal/membership"
)

// threeInstances is a ring of three healthy instances with one token each.
func threeInstances(t *testing.T) *ring.Ring {
	t.Helper()
	desc := ring.NewDesc()
	now := time.Now()
	for i, token := range []uint32{1 << 30, 2 << 30, 3 << 30} {
		id := fmt.Sprintf("compactor-%d", i)
		desc.AddIngester(id, id, "", []uint32{token}, ring.ACTIVE, now, false, time.Time{}, nil)
	}
	store, closer := consul.NewInMemoryClient(ring.GetCodec(), log.NewNopLogger(), nil)
	t.Cleanup(func() { closer.Close() })
	require.NoError(t, store.CAS(context.Background(), "compactor", func(any) (any, bool, error) { return desc, false, nil }))
	r, err := ring.NewWithStoreClientAndStrategy(ring.Config{HeartbeatTimeout: time.Minute, ReplicationFactor: 1}, "compactor", "compactor", store, ring.NewDefaultReplicationStrategy(), nil, log.NewNopLogger())
	require.NoError(t, err)
	require.NoError(t, services.StartAndAwaitRunning(context.Background(), r))
	t.Cleanup(func() { _ = services.StopAndAwaitTerminated(context.Background(), r) })
	return r
}

// Every key has exactly one owner, and the work spreads over instances.
func TestOwns(t *testing.T) {
	r := threeInstances(t)
	owners := map[string]int{}
	for k := range 300 {
		key := fmt.Sprintf("tenant-a/window-%d", k)
		n := 0
		for i := range 3 {
			id := fmt.Sprintf("compactor-%d", i)
			ok, err := membership.Owns(r, id, key)
			require.NoError(t, err)
			if ok {
				n++
				owners[id]++
			}
		}
		require.Equal(t, 1, n, "key %s has one owner", key)
	}
	require.Len(t, owners, 3, "every instance owns some keys")
}
