// Package membership is how a role without data of its own (a distributor,
// a compactor) joins its ring, and how work is shared on such a ring.
package membership

import (
	"flag"
	"fmt"
	"hash/fnv"
	"os"
	"time"

	"github.com/go-kit/log"
	"github.com/grafana/dskit/flagext"
	"github.com/grafana/dskit/kv"
	"github.com/grafana/dskit/ring"
	"github.com/prometheus/client_golang/prometheus"
)

// Config is a role's ring in the config file, with Tempo's keys
// (distributor.ring, compactor.ring).
type Config struct {
	KVStore                kv.Config           `yaml:"kvstore"`
	HeartbeatPeriod        time.Duration       `yaml:"heartbeat_period"`
	HeartbeatTimeout       time.Duration       `yaml:"heartbeat_timeout"`
	InstanceID             string              `yaml:"instance_id"`
	InstanceInterfaceNames flagext.StringSlice `yaml:"instance_interface_names"`
	InstanceAddr           string              `yaml:"instance_addr"`
}

// RegisterFlagsAndApplyDefaults registers the flags under prefix (such as
// "distributor.ring.") and sets the defaults.
func (c *Config) RegisterFlagsAndApplyDefaults(prefix string, f *flag.FlagSet) {
	c.KVStore.Store = "memberlist"
	c.KVStore.RegisterFlagsWithPrefix(prefix, "collectors/", f)
	f.DurationVar(&c.HeartbeatPeriod, prefix+"heartbeat-period", 5*time.Second, "How often the instance updates its entry in the ring.")
	f.DurationVar(&c.HeartbeatTimeout, prefix+"heartbeat-timeout", time.Minute, "An instance not heard from for this long is unhealthy.")
	f.StringVar(&c.InstanceID, prefix+"instance-id", "", "The instance's ID in the ring; empty means the hostname.")
	c.InstanceInterfaceNames = []string{"eth0", "en0"}
	f.Var(&c.InstanceInterfaceNames, prefix+"instance-interface-names", "Network interfaces to take the advertised address from.")
	f.StringVar(&c.InstanceAddr, prefix+"instance-addr", "", "The address advertised in the ring; empty means the first address of instance_interface_names.")
}

// Validate checks the config.
func (c *Config) Validate(name string) error {
	if c.HeartbeatPeriod <= 0 || c.HeartbeatTimeout <= 0 {
		return fmt.Errorf("%s: heartbeat_period and heartbeat_timeout must be positive", name)
	}
	return nil
}

// Lifecycler makes the lifecycler of this instance on the ring ringName,
// advertising port. It holds one token: these rings share work by key, not
// data.
func (c *Config) Lifecycler(ringName string, port int, logger log.Logger, reg prometheus.Registerer) (*ring.Lifecycler, error) {
	id := c.InstanceID
	if id == "" {
		var err error
		if id, err = os.Hostname(); err != nil {
			return nil, err
		}
	}
	lc := ring.LifecyclerConfig{
		RingConfig: ring.Config{
			KVStore:           c.KVStore,
			HeartbeatTimeout:  c.HeartbeatTimeout,
			ReplicationFactor: 1,
		},
		NumTokens:        1,
		HeartbeatPeriod:  c.HeartbeatPeriod,
		HeartbeatTimeout: c.HeartbeatTimeout,
		InfNames:         c.InstanceInterfaceNames,
		Addr:             c.InstanceAddr,
		Port:             port,
		ID:               id,
		// Sharing work needs no warm-up: a new instance takes its share at once.
		UnregisterOnShutdown: true,
	}
	return ring.NewLifecycler(lc, ring.NewNoopFlushTransferer(), ringName, ringName, false, logger, reg)
}

// RingConfig is the config of a client reading the ring.
func (c *Config) RingConfig() ring.Config {
	return ring.Config{KVStore: c.KVStore, HeartbeatTimeout: c.HeartbeatTimeout, ReplicationFactor: 1}
}

// Owns tells whether instanceID is the owner of key on r: the healthy
// instance whose token follows the key's hash. Every instance computes the
// same owner from the same ring, so each key is worked on by one instance.
func Owns(r ring.ReadRing, instanceID, key string) (bool, error) {
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	rs, err := r.Get(h.Sum32(), ring.Write, nil, nil, nil)
	if err != nil {
		return false, err
	}
	return len(rs.Instances) > 0 && rs.Instances[0].Id == instanceID, nil
}
