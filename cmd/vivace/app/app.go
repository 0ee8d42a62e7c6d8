// Package app wires Vivace's roles into one process: the root config, the
// dskit module graph and the HTTP and gRPC servers. It sits on top: nothing
// imports it but main.
package app

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/grafana/dskit/modules"
	"github.com/grafana/dskit/server"
	"github.com/grafana/dskit/services"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/vivace-dev/vivace/distributor"
	"github.com/vivace-dev/vivace/distributor/receiver/jaeger"
	"github.com/vivace-dev/vivace/distributor/receiver/otlp"
	"github.com/vivace-dev/vivace/distributor/receiver/zipkin"
	"github.com/vivace-dev/vivace/frontend"
	"github.com/vivace-dev/vivace/ingester"
	"github.com/vivace-dev/vivace/internal/logging"
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
	moduleStore         = "store"
	moduleBlocklist     = "blocklist"
	moduleIngester      = "ingester"
	moduleDistributor   = "distributor"
	moduleQuerier       = "querier"
	moduleQueryFrontend = "query-frontend"
)

// App is one Vivace process.
type App struct {
	cfg    *Config
	logger *slog.Logger
	reg    *prometheus.Registry

	server      *server.Server
	bucket      storage.Bucket
	blocklist   *blocklist.List
	ingester    *ingester.Ingester
	distributor *distributor.Distributor
	querier     *querier.Querier
	frontend    *frontend.Frontend

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
	mm.RegisterModule(moduleStore, a.initStore, modules.UserInvisibleModule)
	mm.RegisterModule(moduleBlocklist, a.initBlocklist, modules.UserInvisibleModule)
	mm.RegisterModule(moduleIngester, a.initIngester)
	mm.RegisterModule(moduleDistributor, a.initDistributor)
	mm.RegisterModule(moduleQuerier, a.initQuerier)
	mm.RegisterModule(moduleQueryFrontend, a.initQueryFrontend)
	mm.RegisterModule(TargetAll, nil)
	deps := map[string][]string{
		moduleBlocklist:     {moduleStore},
		moduleIngester:      {moduleServer, moduleStore},
		moduleDistributor:   {moduleServer, moduleIngester},
		moduleQuerier:       {moduleServer, moduleBlocklist, moduleIngester},
		moduleQueryFrontend: {moduleServer, moduleQuerier},
		TargetAll:           {moduleDistributor, moduleIngester, moduleQuerier, moduleQueryFrontend},
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

// ready answers 200 once every module runs, 503 before and after.
func (a *App) ready(w http.ResponseWriter, _ *http.Request) {
	if a.manager == nil || !a.manager.IsHealthy() {
		http.Error(w, "not ready", http.StatusServiceUnavailable)
		return
	}
	http.Error(w, "ready", http.StatusOK)
}

func (a *App) initServer() (services.Service, error) {
	cfg := a.cfg.Server
	cfg.Log = logging.GoKit(a.logger.With("component", "server"))
	cfg.Registerer, cfg.Gatherer = a.reg, a.reg
	cfg.MetricsNamespace = "vivace"
	cfg.SignalHandler = noSignals{make(chan struct{})} // main owns signals
	srv, err := server.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	a.server = srv
	srv.HTTP.HandleFunc("/ready", a.ready)
	srv.HTTP.HandleFunc("/api/status/buildinfo", buildInfo)
	srv.HTTP.HandleFunc("/status/buildinfo", buildInfo)
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

func (a *App) initBlocklist() (services.Service, error) {
	a.blocklist = blocklist.New(a.bucket, a.cfg.Storage.Trace.BlocklistPoll, a.logger, a.reg)
	return a.blocklist, nil
}

func (a *App) initIngester() (services.Service, error) {
	var err error
	if a.ingester, err = ingester.New(a.cfg.Ingester, a.bucket, a.logger, a.reg); err != nil {
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
	var err error
	// Monolithic: the local ingester is the client, through the same interface.
	if a.distributor, err = distributor.New(a.cfg.Distributor, a.ingester, a.logger, a.reg); err != nil {
		return nil, err
	}
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
	return newGroupService(moduleDistributor, otlpRecv, zipkinRecv, jaegerRecv)
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
	a.querier = querier.New(a.ingester, a.bucket, a.blocklist, a.logger, a.reg)
	return nil, nil
}

func (a *App) initQueryFrontend() (services.Service, error) {
	var err error
	if a.frontend, err = frontend.New(a.cfg.QueryFrontend, a.querier, &a.cfg.Overrides, a.cfg.MultitenancyEnabled, a.logger, a.reg); err != nil {
		return nil, err
	}
	a.frontend.RegisterRoutes(a.server.HTTP)
	return nil, nil
}
