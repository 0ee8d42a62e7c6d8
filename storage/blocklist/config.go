package blocklist

import (
	"errors"
	"flag"
	"fmt"
	"time"
)

// Config is how a List polls: Tempo's storage.trace.blocklist_poll keys.
type Config struct {
	// PollInterval is how often the store is polled.
	PollInterval time.Duration `yaml:"blocklist_poll"`
	// StaleTenantIndex is the age past which a tenant index is not trusted
	// and the tenant's blocks are listed instead. 0 means
	// DefaultStaleFactor × PollInterval.
	StaleTenantIndex time.Duration `yaml:"blocklist_poll_stale_tenant_index"`
	// BuildIndex tells whether this List writes the tenant's index: it is
	// asked at every poll, for every tenant. nil means never: the List only
	// reads indexes. The app sets it to "owns the tenant's index key on the
	// compactor ring", so that one poller per tenant lists the blocks.
	BuildIndex func(tenant string) bool `yaml:"-"`
}

// DefaultStaleFactor times blocklist_poll is the default stale bound. A
// healthy builder rewrites the index every poll, so a reader finds it at
// most about one poll old: twice leaves a poll of margin for slow listings
// and clock skew. Not more, because a block flushed while the builder is
// down reaches readers only when they give up on its index (bound + one
// poll), and ingesters must serve it until then: with the default 30s poll
// that is 1m30s, within the default complete_block_timeout of 2m.
const DefaultStaleFactor = 2

// RegisterFlagsAndApplyDefaults registers the flags under prefix (e.g.
// "storage.trace") and sets the defaults.
func (c *Config) RegisterFlagsAndApplyDefaults(prefix string, f *flag.FlagSet) {
	f.DurationVar(&c.PollInterval, prefix+".blocklist-poll", 30*time.Second, "How often readers list the backend's blocks, or read the tenant index.")
	f.DurationVar(&c.StaleTenantIndex, prefix+".blocklist-poll-stale-tenant-index", 0,
		fmt.Sprintf("List a tenant's blocks instead of reading its tenant index when the index is older than this. 0 means %d × blocklist_poll.", DefaultStaleFactor))
}

// Validate checks the config.
func (c *Config) Validate() error {
	var errs []error
	if c.PollInterval <= 0 {
		errs = append(errs, errors.New("storage.trace.blocklist_poll must be positive"))
	}
	if c.StaleTenantIndex < 0 || (c.StaleTenantIndex > 0 && c.StaleTenantIndex <= c.PollInterval) {
		// The index is rewritten once a poll: a smaller bound would reject
		// healthy indexes and list at every poll.
		errs = append(errs, fmt.Errorf("storage.trace.blocklist_poll_stale_tenant_index (%s) must be 0 or longer than storage.trace.blocklist_poll (%s)",
			c.StaleTenantIndex, c.PollInterval))
	}
	return errors.Join(errs...)
}

// StaleAfter is the stale bound in effect: StaleTenantIndex, or its default.
func (c *Config) StaleAfter() time.Duration {
	if c.StaleTenantIndex > 0 {
		return c.StaleTenantIndex
	}
	return DefaultStaleFactor * c.PollInterval
}

// MaxListDelay bounds how long a complete block can stay out of a reader's
// list: the builder lists it within a poll and readers read the index
// within another; if the builder is down, readers list it themselves within
// a poll of the index going stale. Ingesters must keep serving a flushed
// block's traces longer than this (ingester.complete_block_timeout).
func (c *Config) MaxListDelay() time.Duration { return c.StaleAfter() + c.PollInterval }
