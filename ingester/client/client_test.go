package client_test

import (
	"context"
	"net"
	"testing"

	"github.com/grafana/dskit/user"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	"google.golang.org/grpc/health/grpc_health_v1"

	"github.com/vivace-dev/vivace/ingester/client"
	"github.com/vivace-dev/vivace/internal/model"
	"github.com/vivace-dev/vivace/internal/vivacepb"
)

func TestToken(t *testing.T) {
	id := model.TraceID{1, 2, 3}
	require.Equal(t, client.Token("a", id), client.Token("a", id), "stable")
	require.NotEqual(t, client.Token("a", id), client.Token("b", id), "tenants hash apart")
	require.NotEqual(t, client.Token("a", id), client.Token("a", model.TraceID{1, 2, 4}))
}

// pusher records the tenant each push arrived with.
type pusher struct {
	vivacepb.UnimplementedPusherServer
	tenants chan string
}

func (p *pusher) Push(ctx context.Context, _ *vivacepb.PushRequest) (*vivacepb.PushResponse, error) {
	tenant, err := user.ExtractOrgID(ctx)
	if err != nil {
		return nil, err
	}
	p.tenants <- tenant
	return &vivacepb.PushResponse{}, nil
}

// The tenant travels with every call that has one; health checks have none
// and still pass.
func TestTenantCrossesTheWire(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := grpc.NewServer(grpc.UnaryInterceptor(client.ReceiveTenant))
	p := &pusher{tenants: make(chan string, 1)}
	vivacepb.RegisterPusherServer(srv, p)
	grpc_health_v1.RegisterHealthServer(srv, health.NewServer())
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(srv.Stop)

	var cfg client.Config
	cfg.MaxMsgSize = 1 << 20
	c, err := client.New(cfg, l.Addr().String())
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })

	_, err = c.Push(user.InjectOrgID(context.Background(), "team-a"), &vivacepb.PushRequest{})
	require.NoError(t, err)
	require.Equal(t, "team-a", <-p.tenants)

	resp, err := c.Check(context.Background(), &grpc_health_v1.HealthCheckRequest{})
	require.NoError(t, err)
	require.Equal(t, grpc_health_v1.HealthCheckResponse_SERVING, resp.Status)
}
