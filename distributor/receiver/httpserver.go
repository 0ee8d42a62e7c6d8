package receiver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/grafana/dskit/services"
)

// HTTPServer serves one receiver's handler on its endpoint as a dskit
// service owning the listener. An empty endpoint means the receiver is off:
// the service runs and serves nothing.
type HTTPServer struct {
	services.Service

	name     string // for errors, e.g. "Zipkin"
	endpoint string
	handler  http.Handler
	logger   *slog.Logger

	lis net.Listener
	srv *http.Server
}

// NewHTTPServer makes the server of receiver name.
func NewHTTPServer(name, endpoint string, handler http.Handler, logger *slog.Logger) *HTTPServer {
	s := &HTTPServer{name: name, endpoint: endpoint, handler: handler, logger: logger}
	s.Service = services.NewBasicService(s.starting, s.running, s.stopping)
	return s
}

// Addr is the bound address once started, nil if the receiver is off.
func (s *HTTPServer) Addr() net.Addr {
	if s.lis == nil {
		return nil
	}
	return s.lis.Addr()
}

func (s *HTTPServer) starting(context.Context) error {
	if s.endpoint == "" {
		return nil
	}
	var err error
	if s.lis, err = net.Listen("tcp", s.endpoint); err != nil {
		return fmt.Errorf("%s listen: %w", s.name, err)
	}
	s.srv = &http.Server{Handler: s.handler, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: time.Minute}
	s.logger.Info("listening", "addr", s.lis.Addr().String())
	return nil
}

func (s *HTTPServer) running(ctx context.Context) error {
	if s.srv == nil {
		<-ctx.Done()
		return nil
	}
	errc := make(chan error, 1)
	go func() {
		if err := s.srv.Serve(s.lis); !errors.Is(err, http.ErrServerClosed) {
			errc <- err
		}
	}()
	select {
	case <-ctx.Done():
		return nil
	case err := <-errc:
		return fmt.Errorf("%s receiver: %w", s.name, err)
	}
}

func (s *HTTPServer) stopping(error) error {
	if s.srv == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return s.srv.Shutdown(ctx)
}
