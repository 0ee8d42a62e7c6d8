package querier

import (
	"errors"
	"flag"
	"fmt"
	"net"
)

// Config is querier in the config file.
type Config struct {
	// MaxConcurrentQueries is how many jobs the worker runs at once from each
	// query-frontend: one Process stream each.
	MaxConcurrentQueries int `yaml:"max_concurrent_queries"`
	FrontendWorker       struct {
		// FrontendAddress is the query-frontends' gRPC host:port; a DNS name
		// (such as a Kubernetes headless service) is resolved to every frontend.
		// Empty in monolithic mode, where the frontend runs jobs in process.
		FrontendAddress string `yaml:"frontend_address"`
	} `yaml:"frontend_worker"`
}

// RegisterFlagsAndApplyDefaults registers the flags and sets the defaults.
func (c *Config) RegisterFlagsAndApplyDefaults(prefix string, f *flag.FlagSet) {
	f.IntVar(&c.MaxConcurrentQueries, prefix+".max-concurrent-queries", 20, "Jobs run at once from each query-frontend.")
	f.StringVar(&c.FrontendWorker.FrontendAddress, prefix+".frontend-address", "", "host:port of the query-frontends' gRPC server to pull jobs from; a DNS name resolves to every frontend.")
}

// Validate checks the config.
func (c *Config) Validate() error {
	if c.MaxConcurrentQueries < 1 {
		return errors.New("querier.max_concurrent_queries must be at least 1")
	}
	if a := c.FrontendWorker.FrontendAddress; a != "" {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return fmt.Errorf("querier.frontend_worker.frontend_address %q is not host:port: %w", a, err)
		}
	}
	return nil
}
