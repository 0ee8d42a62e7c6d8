package app

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/grafana/dskit/kv/memberlist"
	"github.com/grafana/dskit/server"
	"gopkg.in/yaml.v3"

	"github.com/vivace-dev/vivace/compactor"
	"github.com/vivace-dev/vivace/distributor"
	"github.com/vivace-dev/vivace/frontend"
	"github.com/vivace-dev/vivace/ingester"
	"github.com/vivace-dev/vivace/ingester/client"
	"github.com/vivace-dev/vivace/internal/membership"
	"github.com/vivace-dev/vivace/internal/overrides"
	"github.com/vivace-dev/vivace/querier"
	"github.com/vivace-dev/vivace/storage/block"
	"github.com/vivace-dev/vivace/storage/blocklist"
	"github.com/vivace-dev/vivace/storage/s3"
)

// Config is the whole config file. Keys follow Tempo's where the concept is
// the same, so a Tempo user's file mostly loads.
type Config struct {
	Target              string              `yaml:"target"`
	MultitenancyEnabled bool                `yaml:"multitenancy_enabled"`
	Server              server.Config       `yaml:"server"`
	Memberlist          memberlist.KVConfig `yaml:"memberlist"`
	Distributor         distributor.Config  `yaml:"distributor"`
	IngesterClient      client.Config       `yaml:"ingester_client"`
	Ingester            ingester.Config     `yaml:"ingester"`
	Querier             querier.Config      `yaml:"querier"`
	QueryFrontend       frontend.Config     `yaml:"query_frontend"`
	Compactor           CompactorConfig     `yaml:"compactor"`
	Storage             StorageConfig       `yaml:"storage"`
	Overrides           overrides.Config    `yaml:"overrides"`
}

// usesMemberlist tells whether the rings are shared over memberlist. A
// monolithic process that joins no one keeps its rings in memory.
func (c *Config) usesMemberlist() bool {
	return c.Target != TargetAll || len(c.Memberlist.JoinMembers) > 0
}

// CompactorConfig is compactor in the config file: what to compact and
// keep, and the compactors' ring, which shares the jobs out.
type CompactorConfig struct {
	compactor.Config `yaml:",inline"`
	Ring             membership.Config `yaml:"ring"`
}

// StorageConfig is storage in the config file.
type StorageConfig struct {
	Trace TraceStorageConfig `yaml:"trace"`
}

// TraceStorageConfig is storage.trace: the backend, the WAL and block options.
type TraceStorageConfig struct {
	Backend string `yaml:"backend"`
	Local   struct {
		Path string `yaml:"path"`
	} `yaml:"local"`
	S3  s3.Config `yaml:"s3"`
	WAL struct {
		Path string `yaml:"path"`
	} `yaml:"wal"`
	Blocklist blocklist.Config   `yaml:",inline"`
	Block     block.WriterConfig `yaml:"block"`
}

// Targets a process can run: every role, or one.
const (
	TargetAll = "all"
)

var targets = []string{TargetAll, moduleDistributor, moduleIngester, moduleQuerier, moduleQueryFrontend, moduleCompactor}

// RegisterFlagsAndApplyDefaults registers every flag and sets every default.
func (c *Config) RegisterFlagsAndApplyDefaults(f *flag.FlagSet) {
	f.StringVar(&c.Target, "target", TargetAll, "The role this process runs: all (monolithic), or one of "+strings.Join(targets[1:], ", ")+".")
	f.BoolVar(&c.MultitenancyEnabled, "multitenancy.enabled", false, "Take the tenant from the X-Scope-OrgID header; off, every request is tenant single-tenant.")

	c.Server.RegisterFlags(f)
	setDefault(f, "server.http-listen-port", "3200")
	setDefault(f, "server.grpc-listen-port", "9095")

	// Pushes and trace parts are as large as the receivers' requests.
	setDefault(f, "server.grpc-max-recv-msg-size-bytes", strconv.Itoa(32<<20))
	setDefault(f, "server.grpc-max-send-msg-size-bytes", strconv.Itoa(32<<20))

	c.Memberlist.RegisterFlags(f)
	c.Distributor.RegisterFlagsAndApplyDefaults("distributor", f)
	c.IngesterClient.RegisterFlagsAndApplyDefaults("ingester-client", f)
	c.Ingester.RegisterFlagsAndApplyDefaults("ingester", f)
	// Monolithic mode has one ingester; the Helm chart's distributed mode sets 3.
	setDefault(f, "ingester.distributor.replication-factor", "1")
	// Ready at once: Kubernetes rollouts set min_ready_duration themselves.
	setDefault(f, "ingester.min-ready-duration", "0s")
	// Defaults that do not depend on the machine: the hostname is filled in at start.
	setDefault(f, "ingester.lifecycler.ID", "")
	c.Ingester.Lifecycler.InfNames = []string{"eth0", "en0"}
	f.Lookup("ingester.lifecycler.interface").DefValue = "eth0,en0"
	c.Querier.RegisterFlagsAndApplyDefaults("querier", f)
	c.QueryFrontend.RegisterFlagsAndApplyDefaults("query-frontend", f)
	c.Compactor.RegisterFlagsAndApplyDefaults("compactor", f)
	c.Compactor.Ring.RegisterFlagsAndApplyDefaults("compactor.ring.", f)

	t := &c.Storage.Trace
	f.StringVar(&t.Backend, "storage.trace.backend", "local", "Where blocks are stored: local or s3.")
	f.StringVar(&t.Local.Path, "storage.trace.local.path", "vivace-data/traces", "Directory of the local backend.")
	f.StringVar(&t.WAL.Path, "storage.trace.wal.path", "vivace-data/wal", "Directory of the ingester's write-ahead log.")
	t.Blocklist.RegisterFlagsAndApplyDefaults("storage.trace", f)
	t.S3.RegisterFlagsAndApplyDefaults("storage.trace.s3", f)
	t.Block.RegisterFlagsAndApplyDefaults("storage.trace.block.", f)

	c.Overrides.RegisterFlagsAndApplyDefaults("overrides", f)
}

// setDefault changes the default of a flag another package registered.
func setDefault(f *flag.FlagSet, name, value string) {
	fl := f.Lookup(name)
	if fl == nil {
		panic("no flag " + name) // a programming error, caught by every test
	}
	if err := fl.Value.Set(value); err != nil {
		panic(err)
	}
	fl.DefValue = value
}

// Validate checks the whole config.
func (c *Config) Validate() error {
	var errs []error
	if !slices.Contains(targets, c.Target) {
		errs = append(errs, fmt.Errorf("target %q: want one of %s", c.Target, strings.Join(targets, ", ")))
	}
	if c.Target == moduleQuerier && c.Querier.FrontendWorker.FrontendAddress == "" {
		errs = append(errs, errors.New("a querier pulls its work from a query-frontend: set querier.frontend_worker.frontend_address"))
	}
	if c.usesMemberlist() {
		errs = append(errs, c.Memberlist.Validate())
	}
	t := &c.Storage.Trace
	switch t.Backend {
	case "local":
		if t.Local.Path == "" {
			errs = append(errs, errors.New("storage.trace.local.path must be set"))
		}
	case "s3":
		errs = append(errs, t.S3.Validate())
	default:
		errs = append(errs, fmt.Errorf("storage.trace.backend %q: want local or s3", t.Backend))
	}
	errs = append(errs, t.Blocklist.Validate())
	if d := t.Blocklist.MaxListDelay(); c.Ingester.CompleteBlockTimeout <= d {
		errs = append(errs, fmt.Errorf("ingester.complete_block_timeout (%s) must be longer than the longest a new block can take to reach the readers' block list (%s: the stale tenant index bound plus one blocklist_poll), or flushed traces vanish meanwhile",
			c.Ingester.CompleteBlockTimeout, d))
	}
	errs = append(errs, t.Block.Validate(), c.Distributor.Validate(), c.IngesterClient.Validate(), c.Querier.Validate(), c.QueryFrontend.Validate(),
		c.Compactor.Validate(), c.Compactor.Ring.Validate("compactor.ring"), c.Overrides.Validate())
	c.Ingester.WALPath, c.Ingester.Block = t.WAL.Path, t.Block
	errs = append(errs, c.Ingester.Validate())
	return errors.Join(errs...)
}

// Load builds the config from defaults, then the YAML file named by
// -config.file (strict: unknown keys fail), then the other flags.
func Load(args []string) (cfg *Config, printDefaults bool, err error) {
	// A first pass finds the file; the second applies defaults, the file,
	// then the flags once each (list flags append, so never twice).
	var configFile string
	var expandEnv bool
	newFlags := func(cfg *Config) *flag.FlagSet {
		f := flag.NewFlagSet("vivace", flag.ContinueOnError)
		cfg.RegisterFlagsAndApplyDefaults(f)
		f.StringVar(&configFile, "config.file", "", "YAML config file; flags override it.")
		f.BoolVar(&expandEnv, "config.expand-env", false, "Replace ${VAR} and ${VAR:default} in the config file with environment variables.")
		f.BoolVar(&printDefaults, "config.print-defaults", false, "Print the default config as YAML and exit.")
		return f
	}
	cfg = &Config{}
	if err := newFlags(cfg).Parse(args); err != nil {
		return nil, false, err
	}
	if printDefaults {
		cfg = &Config{}
		newFlags(cfg) // defaults only
		return cfg, true, nil
	}
	if configFile == "" {
		return cfg, false, cfg.Validate()
	}
	b, err := os.ReadFile(configFile)
	if err != nil {
		return nil, false, fmt.Errorf("read config file: %w", err)
	}
	if expandEnv {
		b = expandEnvVars(b)
	}
	cfg = &Config{}
	f := newFlags(cfg)
	if err := decodeYAML(b, cfg); err != nil {
		return nil, false, fmt.Errorf("config file %s: %w", configFile, err)
	}
	if err := f.Parse(args); err != nil {
		return nil, false, err
	}
	return cfg, false, cfg.Validate()
}

func decodeYAML(b []byte, cfg *Config) error {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	// An empty file decodes to io.EOF: it means all defaults.
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(:([^}]*))?\}`)

// expandEnvVars replaces ${VAR} and ${VAR:default}, as Tempo does.
func expandEnvVars(b []byte) []byte {
	return envRef.ReplaceAllFunc(b, func(m []byte) []byte {
		parts := envRef.FindSubmatch(m)
		if v, ok := os.LookupEnv(string(parts[1])); ok {
			return []byte(v)
		}
		return parts[3]
	})
}

// DefaultYAML renders a config as YAML.
func DefaultYAML(cfg *Config) ([]byte, error) {
	var b strings.Builder
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(cfg); err != nil {
		return nil, err
	}
	return []byte(b.String()), nil
}
