// Package app wires Vivace's roles into one process: the root config, the
// dskit module graph and the HTTP and gRPC servers. It sits on top: nothing
// imports it but main.
package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/grafana/dskit/dns"
	"github.com/grafana/dskit/kv"
	"github.com/grafana/dskit/kv/codec"
	"github.com/grafana/dskit/kv/consul"
	"github.com/grafana/dskit/kv/memberlist"
	"github.com/grafana/dskit/modules"
	"github.com/grafana/dskit/ring"
	ringclient "github.com/grafana/dskit/ring/client"
	"github.com/grafana/dskit/server"
	"github.com/grafana/dskit/services"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	"google.golang.org/grpc/health/grpc_health_v1"

	"github.com/vivace-dev/vivace/compactor"
	"github.com/vivace-dev/vivace/distributor"
	"github.com/vivace-dev/vivace/distributor/receiver/datadog"
	"github.com/vivace-dev/vivace/distributor/receiver/jaeger"
	"github.com/vivace-dev/vivace/distributor/receiver/opencensus"
	"github.com/vivace-dev/vivace/distributor/receiver/otlp"
	"github.com/vivace-dev/vivace/distributor/receiver/zipkin"
	"github.com/vivace-dev/vivace/frontend"
	"github.com/vivace-dev/vivace/ingester"
	"github.com/vivace-dev/vivace/ingester/client"
	"github.com/vivace-dev/vivace/internal/logging"
	"github.com/vivace-dev/vivace/internal/membership"
	"github.com/vivace-dev/vivace/internal/overrides"
	"github.com/vivace-dev/vivace/internal/vivacepb"
	"github.com/vivace-dev/vivace/querier"
	"github.com/vivace-dev/vivace/storage"
	"github.com/vivace-dev/vivace/storage/blocklist"
	"github.com/vivace-dev/vivace/storage/fs"
	"github.com/vivace-dev/vivace/storage/s3"
)

// Version is set at build time with -ldflags "-X ...app.Version=...".
var Version = "dev"

// Module names; "all" runs every role.
const (
	moduleServer        = "server"
	moduleMemberlistKV  = "memberlist-kv"
	moduleRing          = "ring" // the ingester ring, as distributors and queriers read it
	moduleStore         = "store"
	moduleBlocklist     = "blocklist"
	moduleIngester      = "ingester"
	moduleDistributor   = "distributor"
	moduleQuerier       = "querier"
	moduleQueryFrontend = "query-frontend"
	moduleCompactor     = "compactor"
	moduleOverrides     = "overrides"
)

// App is one Vivace process.
type App struct {
	cfg    *Config
	logger *slog.Logger
	reg    *prometheus.Registry

	server        *server.Server
	memberlistKV  *memberlist.KVInitService
	ingesterRing  *ring.Ring
	ingesterPool  *ringclient.Pool
	overrides     *overrides.Overrides
	bucket        storage.Bucket
	blocklist     *blocklist.List
	ingester      *ingester.Ingester
	distributor   *distributor.Distributor
	querier       *querier.Querier
	frontend      *frontend.Frontend
	compactor     *compactor.Compactor
	compactorOwns func(key string) bool // set by the compactor module

	manager *services.Manager
	stop    context.CancelFunc
}

// New builds the process for cfg.Target; nothing runs until Run.
func New(cfg *Config) (*App, error) {
	logger, err := logging.New(os.Stderr, cfg.Server.LogLevel.String(), cfg.Server.LogFormat)
	if err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return &App{cfg: cfg, logger: logger, reg: reg}, nil
}

// Run starts the target's modules and serves until ctx is done or a module
// fails, then stops everything gracefully.
func (a *App) Run(ctx context.Context) error {
	ctx, a.stop = context.WithCancel(ctx)
	defer a.stop()
	mm := modules.NewManager(logging.GoKit(a.logger))
	mm.RegisterModule(moduleServer, a.initServer, modules.UserInvisibleModule)
	mm.RegisterModule(moduleMemberlistKV, a.initMemberlistKV, modules.UserInvisibleModule)
	mm.RegisterModule(moduleRing, a.initRing, modules.UserInvisibleModule)
	mm.RegisterModule(moduleStore, a.initStore, modules.UserInvisibleModule)
	mm.RegisterModule(moduleOverrides, a.initOverrides, modules.UserInvisibleModule)
	mm.RegisterModule(moduleBlocklist, a.initBlocklist, modules.UserInvisibleModule)
	mm.RegisterModule(moduleIngester, a.initIngester)
	mm.RegisterModule(moduleDistributor, a.initDistributor)
	mm.RegisterModule(moduleQuerier, a.initQuerier)
	mm.RegisterModule(moduleQueryFrontend, a.initQueryFrontend)
	mm.RegisterModule(moduleCompactor, a.initCompactor)
	mm.RegisterModule(TargetAll, nil)
	deps := map[string][]string{
		moduleMemberlistKV:  {moduleServer},
		moduleRing:          {moduleServer, moduleMemberlistKV},
		moduleBlocklist:     {moduleStore},
		moduleOverrides:     {moduleServer},
		moduleIngester:      {moduleServer, moduleStore, moduleMemberlistKV, moduleOverrides},
		moduleDistributor:   {moduleServer, moduleRing, moduleOverrides},
		moduleQuerier:       {moduleServer, moduleBlocklist, moduleRing},
		moduleQueryFrontend: {moduleServer, moduleOverrides},
		moduleCompactor:     {moduleServer, moduleBlocklist, moduleMemberlistKV, moduleOverrides},
		TargetAll:           {moduleDistributor, moduleIngester, moduleQuerier, moduleQueryFrontend, moduleCompactor},
	}
	if a.cfg.Target == TargetAll {
		// In one process the distributor stops before the ingester it
		// pushes to, and the frontend's in-process workers use the querier.
		deps[moduleDistributor] = append(deps[moduleDistributor], moduleIngester)
		deps[moduleQueryFrontend] = append(deps[moduleQueryFrontend], moduleQuerier)
	}
	for m, d := range deps {
		if err := mm.AddDependency(m, d...); err != nil {
			return err
		}
	}
	svcs, err := mm.InitModuleServices(a.cfg.Target)
	if err != nil {
		return err
	}
	list := make([]services.Service, 0, len(svcs))
	for _, s := range svcs {
		list = append(list, s)
	}
	if a.manager, err = services.NewManager(list...); err != nil {
		return err
	}
	failed := make(chan error, 1)
	a.manager.AddListener(services.NewManagerListener(nil, nil, func(s services.Service) {
		select {
		case failed <- s.FailureCase():
		default:
		}
	}))
	start := time.Now()
	if err := a.manager.StartAsync(context.Background()); err != nil {
		return err
	}
	if err := a.manager.AwaitHealthy(ctx); err != nil {
		a.shutdown()
		return fmt.Errorf("start: %w", err)
	}
	a.logger.Info("vivace is ready", "target", a.cfg.Target, "version", Version, "startup", time.Since(start))
	select {
	case <-ctx.Done():
		a.logger.Info("shutting down")
	case err = <-failed:
		a.logger.Error("a module failed; shutting down", "err", err)
	}
	a.shutdown()
	return err
}

func (a *App) shutdown() {
	a.manager.StopAsync()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := a.manager.AwaitStopped(ctx); err != nil {
		a.logger.Error("stopping", "err", err)
	}
}

// ready answers 200 once every module runs, the ingester is in its ring and
// a distributor has an ingester to write to; 503 before and after.
func (a *App) ready(w http.ResponseWriter, r *http.Request) {
	if err := a.checkReady(r.Context()); err != nil {
		http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	http.Error(w, "ready", http.StatusOK)
}

func (a *App) checkReady(ctx context.Context) error {
	if a.manager == nil || !a.manager.IsHealthy() {
		return errors.New("not every module is running")
	}
	if a.ingester != nil {
		if err := a.ingester.CheckReady(ctx); err != nil {
			return fmt.Errorf("ingester: %w", err)
		}
	}
	if a.distributor != nil {
		rs, err := a.ingesterRing.GetAllHealthy(ring.WriteNoExtend)
		if err != nil || len(rs.Instances) == 0 {
			return errors.New("distributor: no healthy ingester in the ring")
		}
	}
	return nil
}

func (a *App) initServer() (services.Service, error) {
	cfg := a.cfg.Server
	cfg.Log = logging.GoKit(a.logger.With("component", "server"))
	cfg.Registerer, cfg.Gatherer = a.reg, a.reg
	cfg.MetricsNamespace = "vivace"
	cfg.SignalHandler = noSignals{make(chan struct{})} // main owns signals
	cfg.GRPCMiddleware = append(cfg.GRPCMiddleware, client.ReceiveTenant)
	cfg.ExcludeRequestInLog = true // requests are spans: too large and too private to log
	srv, err := server.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	a.server = srv
	// Ingester clients check their connection with the standard health service.
	grpc_health_v1.RegisterHealthServer(srv.GRPC, health.NewServer())
	srv.HTTP.HandleFunc("/ready", a.ready)
	srv.HTTP.HandleFunc("/api/status/buildinfo", buildInfo)
	srv.HTTP.HandleFunc("/status/buildinfo", buildInfo)
	srv.HTTP.HandleFunc("/status/config", a.statusConfig)
	srv.HTTP.HandleFunc("/shutdown", func(w http.ResponseWriter, _ *http.Request) {
		a.logger.Info("shutdown requested over HTTP")
		w.WriteHeader(http.StatusNoContent)
		go a.stop()
	})
	return newServerService(srv), nil
}

// newServerService serves HTTP and gRPC while running. As a module it stops
// after every module that depends on it, so in-flight requests finish.
func newServerService(srv *server.Server) services.Service {
	running := func(ctx context.Context) error {
		errc := make(chan error, 1)
		go func() { errc <- srv.Run() }()
		select {
		case err := <-errc:
			return fmt.Errorf("server: %w", err)
		case <-ctx.Done():
			srv.Stop()
			return nil
		}
	}
	stopping := func(error) error {
		srv.Shutdown()
		return nil
	}
	return services.NewBasicService(nil, running, stopping).WithName(moduleServer)
}

type noSignals struct{ stop chan struct{} }

func (s noSignals) Loop() { <-s.stop }
func (s noSignals) Stop() { close(s.stop) }

func buildInfo(w http.ResponseWriter, _ *http.Request) {
	info := map[string]string{"version": Version, "revision": "", "branch": "", "buildUser": "", "buildDate": "", "goVersion": runtime.Version()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				info["revision"] = s.Value
			case "vcs.time":
				info["buildDate"] = s.Value
			}
		}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(info)
}

// initMemberlistKV gives every ring its KV store: memberlist, or in a
// monolithic process that joins no one, memory.
func (a *App) initMemberlistKV() (services.Service, error) {
	kvs := []*kv.Config{&a.cfg.Ingester.Lifecycler.RingConfig.KVStore, &a.cfg.Distributor.Ring.KVStore, &a.cfg.Compactor.Ring.KVStore}
	if !a.cfg.usesMemberlist() {
		store, closer := consul.NewInMemoryClient(ring.GetCodec(), logging.GoKit(a.logger), nil)
		for _, c := range kvs {
			c.Mock = store
		}
		a.server.HTTP.HandleFunc("/memberlist", func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "This instance does not use memberlist: its rings live in memory.", http.StatusOK)
		})
		return services.NewIdleService(nil, func(error) error { return closer.Close() }).WithName(moduleMemberlistKV), nil
	}
	cfg := &a.cfg.Memberlist
	cfg.MetricsNamespace = "vivace"
	cfg.Codecs = []codec.Codec{ring.GetCodec()}
	logger := logging.GoKit(a.logger.With("component", "memberlist"))
	a.memberlistKV = memberlist.NewKVInitService(cfg, logger, dns.NewProvider(dns.GolangResolverType, 0, logger, a.reg), a.reg)
	for _, c := range kvs {
		c.MemberlistKV = a.memberlistKV.GetMemberlistKV
	}
	a.server.HTTP.Handle("/memberlist", a.memberlistKV)
	return a.memberlistKV, nil
}

// initRing reads the ingester ring and keeps a gRPC client per ingester.
func (a *App) initRing() (services.Service, error) {
	var err error
	a.ingesterRing, err = ring.New(a.cfg.Ingester.Lifecycler.RingConfig, "ingester", ingester.RingKey, logging.GoKit(a.logger), a.reg)
	if err != nil {
		return nil, fmt.Errorf("ingester ring: %w", err)
	}
	a.ingesterPool = client.NewPool(a.cfg.IngesterClient, a.ingesterRing, a.logger, a.reg)
	a.server.HTTP.Handle("/ingester/ring", a.ingesterRing)
	return newGroupService(moduleRing, a.ingesterRing, a.ingesterPool)
}

// ingesterFor is the client of one ingester: the ingester itself when it runs
// in this process (no network, same code behind), else a pooled gRPC client.
func (a *App) ingesterFor(inst ring.InstanceDesc) (interface {
	distributor.IngesterClient
	querier.IngesterClient
}, error) {
	if a.ingester != nil && inst.Id == a.ingester.InstanceID() {
		return a.ingester, nil
	}
	c, err := a.ingesterPool.GetClientForInstance(inst)
	if err != nil {
		return nil, err
	}
	return c.(*client.Client), nil
}

func (a *App) initStore() (services.Service, error) {
	t := a.cfg.Storage.Trace
	var err error
	switch t.Backend {
	case "local":
		a.bucket, err = fs.New(t.Local.Path)
	case "s3":
		a.bucket, err = s3.New(t.S3, a.logger)
	default:
		err = fmt.Errorf("unknown backend %q", t.Backend)
	}
	if err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	return nil, nil
}

// initOverrides loads the per-tenant limits, and reloads the runtime
// overrides file while running.
func (a *App) initOverrides() (services.Service, error) {
	var err error
	if a.overrides, err = overrides.New(a.cfg.Overrides, a.logger, a.reg); err != nil {
		return nil, err
	}
	a.server.HTTP.HandleFunc("/status/runtime_config", a.statusRuntimeConfig)
	return a.overrides, nil
}

func (a *App) initBlocklist() (services.Service, error) {
	cfg := a.cfg.Storage.Trace.Blocklist
	// The owner of index/<tenant> on the compactor ring writes the tenant's
	// index; everyone else reads it. Without a compactor here, only read.
	cfg.BuildIndex = func(tenant string) bool {
		owns := a.compactorOwns
		return owns != nil && owns("index/"+tenant)
	}
	var err error
	if a.blocklist, err = blocklist.NewWithConfig(cfg, a.bucket, a.logger, a.reg); err != nil {
		return nil, err
	}
	return a.blocklist, nil
}

func (a *App) initIngester() (services.Service, error) {
	lc := &a.cfg.Ingester.Lifecycler
	lc.ListenPort = a.cfg.Server.GRPCListenPort
	if lc.ID == "" {
		host, err := os.Hostname()
		if err != nil {
			return nil, err
		}
		lc.ID = host
	}
	if !a.cfg.usesMemberlist() && lc.Addr == "" {
		lc.Addr = "127.0.0.1" // alone: no one else dials it
	}
	var err error
	if a.ingester, err = ingester.New(a.cfg.Ingester, a.bucket, a.overrides, a.logger, a.reg); err != nil {
		return nil, err
	}
	vivacepb.RegisterPusherServer(a.server.GRPC, a.ingester)
	vivacepb.RegisterQuerierServer(a.server.GRPC, a.ingester)
	flush := func(w http.ResponseWriter, _ *http.Request) {
		if err := a.ingester.Flush(); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
	a.server.HTTP.HandleFunc("/flush", flush).Methods(http.MethodGet, http.MethodPost)
	return a.ingester, nil
}

func (a *App) initDistributor() (services.Service, error) {
	ingesters := distributor.Ingesters{
		Ring:    a.ingesterRing,
		Client:  func(inst ring.InstanceDesc) (distributor.IngesterClient, error) { return a.ingesterFor(inst) },
		Timeout: a.cfg.IngesterClient.RemoteTimeout,
	}
	// The distributors' own ring, for /distributor/ring and for global
	// rate limits, which each distributor enforces its share of.
	dr := &a.cfg.Distributor.Ring
	if !a.cfg.usesMemberlist() && dr.InstanceAddr == "" {
		dr.InstanceAddr = "127.0.0.1"
	}
	lifecycler, err := dr.Lifecycler("distributor", a.cfg.Server.GRPCListenPort, logging.GoKit(a.logger), a.reg)
	if err != nil {
		return nil, fmt.Errorf("distributor ring: %w", err)
	}
	if a.distributor, err = distributor.New(a.cfg.Distributor, ingesters, a.overrides, lifecycler.HealthyInstancesCount, a.logger, a.reg); err != nil {
		return nil, err
	}
	distributors, err := ring.New(dr.RingConfig(), "distributor", "distributor", logging.GoKit(a.logger), a.reg)
	if err != nil {
		return nil, fmt.Errorf("distributor ring: %w", err)
	}
	a.server.HTTP.Handle("/distributor/ring", distributors)
	rc, mt := a.cfg.Distributor.Receivers, a.cfg.MultitenancyEnabled
	otlpRecv, err := otlp.New(rc.OTLP, mt, a.distributor, a.logger, a.reg)
	if err != nil {
		return nil, err
	}
	zipkinRecv, err := zipkin.New(rc.Zipkin, mt, a.distributor, a.logger, a.reg)
	if err != nil {
		return nil, err
	}
	jaegerRecv, err := jaeger.New(rc.Jaeger, mt, a.distributor, a.logger, a.reg)
	if err != nil {
		return nil, err
	}
	datadogRecv, err := datadog.New(rc.Datadog, mt, a.distributor, a.logger, a.reg)
	if err != nil {
		return nil, err
	}
	ocRecv, err := opencensus.New(rc.OpenCensus, mt, a.distributor, a.logger, a.reg)
	if err != nil {
		return nil, err
	}
	return newGroupService(moduleDistributor, lifecycler, distributors, otlpRecv, zipkinRecv, jaegerRecv, datadogRecv, ocRecv)
}

// newGroupService runs several services as one: it is running once all
// are, and fails when any does.
func newGroupService(name string, svcs ...services.Service) (services.Service, error) {
	m, err := services.NewManager(svcs...)
	if err != nil {
		return nil, err
	}
	failed := make(chan error, 1)
	m.AddListener(services.NewManagerListener(nil, nil, func(s services.Service) {
		select {
		case failed <- s.FailureCase():
		default:
		}
	}))
	starting := func(ctx context.Context) error {
		if err := m.StartAsync(ctx); err != nil {
			return err
		}
		if err := m.AwaitHealthy(ctx); err != nil {
			m.StopAsync() // release what did start, such as bound ports
			return err
		}
		return nil
	}
	running := func(ctx context.Context) error {
		select {
		case <-ctx.Done():
			return nil
		case err := <-failed:
			return err
		}
	}
	stopping := func(error) error {
		m.StopAsync()
		return m.AwaitStopped(context.Background())
	}
	return services.NewBasicService(starting, running, stopping).WithName(name), nil
}

func (a *App) initQuerier() (services.Service, error) {
	ingesters := querier.Ingesters{
		Ring:    a.ingesterRing,
		Client:  func(inst ring.InstanceDesc) (querier.IngesterClient, error) { return a.ingesterFor(inst) },
		Timeout: a.cfg.IngesterClient.RemoteTimeout,
	}
	a.querier = querier.New(ingesters, a.bucket, a.blocklist, a.logger, a.reg)
	if a.cfg.Target == TargetAll {
		return nil, nil // the frontend runs its jobs on this querier in process
	}
	return querier.NewWorker(a.cfg.Querier, a.querier, a.logger, a.reg)
}

func (a *App) initQueryFrontend() (services.Service, error) {
	var err error
	if a.frontend, err = frontend.New(a.cfg.QueryFrontend, a.overrides, a.cfg.MultitenancyEnabled, a.logger, a.reg); err != nil {
		return nil, err
	}
	if a.querier != nil {
		a.frontend.RunLocalWorkers(a.querier, a.cfg.Querier.MaxConcurrentQueries)
	}
	vivacepb.RegisterFrontendServer(a.server.GRPC, a.frontend)
	a.frontend.RegisterRoutes(a.server.HTTP)
	// Tempo's StreamingQuerier: on the gRPC port, as Tempo serves it, and on
	// the HTTP port (h2c), where Grafana's Tempo data source calls it.
	a.frontend.RegisterStreaming(a.server.GRPC)
	streaming := grpc.NewServer(
		grpc.MaxRecvMsgSize(a.cfg.Server.GRPCServerMaxRecvMsgSize),
		grpc.MaxSendMsgSize(a.cfg.Server.GRPCServerMaxSendMsgSize),
	)
	a.frontend.RegisterStreaming(streaming)
	frontend.ServeGRPC(a.server.HTTPServer, streaming)
	return a.frontend, nil
}

// initCompactor runs the compactor, which shares jobs with the other
// compactors through their ring: each job goes to the owner of its key.
func (a *App) initCompactor() (services.Service, error) {
	rc := &a.cfg.Compactor.Ring
	if !a.cfg.usesMemberlist() && rc.InstanceAddr == "" {
		rc.InstanceAddr = "127.0.0.1"
	}
	lifecycler, err := rc.Lifecycler("compactor", a.cfg.Server.GRPCListenPort, logging.GoKit(a.logger), a.reg)
	if err != nil {
		return nil, fmt.Errorf("compactor ring: %w", err)
	}
	compactors, err := ring.New(rc.RingConfig(), "compactor", "compactor", logging.GoKit(a.logger), a.reg)
	if err != nil {
		return nil, fmt.Errorf("compactor ring: %w", err)
	}
	a.server.HTTP.Handle("/compactor/ring", compactors)
	owns := func(key string) bool {
		if compactors.State() != services.Running {
			return false
		}
		ok, err := membership.Owns(compactors, lifecycler.ID, key)
		if err != nil {
			// Not in the ring yet, or no healthy compactor: skip the job
			// this cycle rather than risk doing it twice.
			a.logger.Debug("compactor ring", "key", key, "err", err)
			return false
		}
		return ok
	}
	a.compactorOwns = owns
	tempDir := filepath.Join(a.cfg.Storage.Trace.WAL.Path, "compactor")
	if err := os.MkdirAll(tempDir, 0o755); err != nil {
		return nil, err
	}
	a.compactor, err = compactor.New(a.cfg.Compactor.Config, a.bucket, a.blocklist, owns, a.overrides.BlockRetention, a.cfg.Storage.Trace.Block, tempDir, a.logger, a.reg)
	if err != nil {
		return nil, err
	}
	return newGroupService(moduleCompactor, lifecycler, compactors, a.compactor)
}
