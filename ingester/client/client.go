// Package client is how other roles reach ingesters: which ingesters own a
// trace (its ring token), and a pool of gRPC clients to them.
package client

import (
	"context"
	"flag"
	"fmt"
	"hash/fnv"
	"log/slog"
	"time"

	"github.com/grafana/dskit/ring"
	ringclient "github.com/grafana/dskit/ring/client"
	"github.com/grafana/dskit/user"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health/grpc_health_v1"

	"github.com/vivace-dev/vivace/internal/logging"
	"github.com/vivace-dev/vivace/internal/model"
	"github.com/vivace-dev/vivace/internal/vivacepb"
)

// Token places a trace on the ring. Tenants hash apart, so one tenant's
// traces spread over every ingester.
func Token(tenant string, id model.TraceID) uint32 {
	h := fnv.New32a()
	_, _ = h.Write([]byte(tenant))
	_, _ = h.Write(id[:])
	return h.Sum32()
}

// Config is ingester_client in the config file.
type Config struct {
	// RemoteTimeout bounds one push or lookup on one ingester.
	RemoteTimeout time.Duration `yaml:"remote_timeout"`
	// MaxMsgSize bounds the messages sent and received, in bytes.
	MaxMsgSize int `yaml:"max_msg_size"`
}

// RegisterFlagsAndApplyDefaults registers the flags and sets the defaults.
func (c *Config) RegisterFlagsAndApplyDefaults(prefix string, f *flag.FlagSet) {
	f.DurationVar(&c.RemoteTimeout, prefix+".remote-timeout", 5*time.Second, "Timeout of one push to, or lookup on, one ingester.")
	f.IntVar(&c.MaxMsgSize, prefix+".max-msg-size", 32<<20, "Largest gRPC message sent to or received from an ingester, in bytes.")
}

// Validate checks the config.
func (c *Config) Validate() error {
	if c.RemoteTimeout <= 0 || c.MaxMsgSize <= 0 {
		return fmt.Errorf("ingester_client: remote_timeout and max_msg_size must be positive")
	}
	return nil
}

// Client is a connection to one ingester. Its methods have
// the ingester's own signatures, so callers take either.
type Client struct {
	grpc_health_v1.HealthClient
	pusher  vivacepb.PusherClient
	querier vivacepb.QuerierClient
	conn    *grpc.ClientConn
}

// Push appends traces to the ingester's WAL.
func (c *Client) Push(ctx context.Context, req *vivacepb.PushRequest) (*vivacepb.PushResponse, error) {
	return c.pusher.Push(ctx, req)
}

// FindTraceByID returns what the ingester holds of a trace.
func (c *Client) FindTraceByID(ctx context.Context, req *vivacepb.TraceByIDRequest) (*vivacepb.TraceByIDResponse, error) {
	return c.querier.FindTraceByID(ctx, req)
}

// Search runs a search over the ingester's live traces.
func (c *Client) Search(ctx context.Context, req *vivacepb.SearchJob) (*vivacepb.SearchResponse, error) {
	return c.querier.Search(ctx, req)
}

// SearchTags lists tag names or values of the ingester's live traces.
func (c *Client) SearchTags(ctx context.Context, req *vivacepb.TagsJob) (*vivacepb.TagsResult, error) {
	return c.querier.SearchTags(ctx, req)
}

// New connects to the ingester at addr (host:port). The connection is made
// lazily and kept up by gRPC.
func New(cfg Config, addr string) (*Client, error) {
	conn, err := grpc.NewClient(addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(cfg.MaxMsgSize), grpc.MaxCallSendMsgSize(cfg.MaxMsgSize)),
		grpc.WithUnaryInterceptor(sendTenant),
	)
	if err != nil {
		return nil, fmt.Errorf("ingester client %s: %w", addr, err)
	}
	return &Client{
		HealthClient: grpc_health_v1.NewHealthClient(conn),
		pusher:       vivacepb.NewPusherClient(conn),
		querier:      vivacepb.NewQuerierClient(conn),
		conn:         conn,
	}, nil
}

// sendTenant puts the context's tenant, if any, in the request metadata
// (health checks have none).
func sendTenant(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	if _, err := user.ExtractOrgID(ctx); err == nil {
		if ctx, err = user.InjectIntoGRPCRequest(ctx); err != nil {
			return err
		}
	}
	return invoker(ctx, method, req, reply, cc, opts...)
}

// ReceiveTenant is the server side of sendTenant: it moves the tenant, if
// any, from the request metadata to the context.
func ReceiveTenant(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if _, tctx, err := user.ExtractFromGRPCRequest(ctx); err == nil {
		ctx = tctx
	}
	return handler(ctx, req)
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// NewPool keeps one Client per ingester in r, dropping clients of ingesters
// that left the ring or fail their health check. It is a dskit service.
func NewPool(cfg Config, r ring.ReadRing, logger *slog.Logger, reg prometheus.Registerer) *ringclient.Pool {
	factory := ringclient.PoolAddrFunc(func(addr string) (ringclient.PoolClient, error) {
		return New(cfg, addr)
	})
	clients := promauto.With(reg).NewGauge(prometheus.GaugeOpts{
		Name: "vivace_ingester_clients", Help: "Open gRPC clients to ingesters.",
	})
	poolCfg := ringclient.PoolConfig{
		CheckInterval:      10 * time.Second,
		HealthCheckEnabled: true,
		HealthCheckTimeout: time.Second,
	}
	return ringclient.NewPool("ingester", poolCfg, ringclient.NewRingServiceDiscovery(r), factory, clients, logging.GoKit(logger))
}
