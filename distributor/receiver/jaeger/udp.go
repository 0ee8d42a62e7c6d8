package jaeger

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/vivace-dev/vivace/distributor/receiver"
	"github.com/vivace-dev/vivace/internal/model"
)

// udpPushTimeout bounds one datagram's push: UDP senders wait for nothing.
const udpPushTimeout = 10 * time.Second

// udpServer reads Agent.emitBatch datagrams on one socket. One goroutine
// reads into a bounded buffer and hands each datagram to a bounded queue
// without ever waiting on it; workers decode, translate and push. A
// datagram that finds the queue full is dropped and counted: the read loop
// never waits on a slow push.
type udpServer struct {
	protocol string // metric label
	compact  bool   // thrift compact, else thrift binary
	cfg      UDPEndpoint
	conn     net.PacketConn

	queue   chan []byte
	cancel  context.CancelFunc // cancels the workers' pushes
	reader  sync.WaitGroup
	workers sync.WaitGroup
	started bool
}

func listenUDP(cfg UDPEndpoint, protocol string, compact bool) (*udpServer, error) {
	conn, err := net.ListenPacket("udp", cfg.Endpoint)
	if err != nil {
		return nil, fmt.Errorf("jaeger %s listen: %w", protocol, err)
	}
	if cfg.SocketBufferSize > 0 {
		if uc, ok := conn.(*net.UDPConn); ok {
			if err := uc.SetReadBuffer(cfg.SocketBufferSize); err != nil {
				conn.Close()
				return nil, fmt.Errorf("jaeger %s socket buffer: %w", protocol, err)
			}
		}
	}
	return &udpServer{protocol: protocol, compact: compact, cfg: cfg, conn: conn, queue: make(chan []byte, cfg.QueueSize)}, nil
}

func (u *udpServer) start(r *Receiver) {
	ctx, cancel := context.WithCancel(context.Background())
	u.cancel = cancel
	u.started = true
	u.reader.Add(1)
	go func() {
		defer u.reader.Done()
		u.read(r)
	}()
	for range u.cfg.Workers {
		u.workers.Add(1)
		go func() {
			defer u.workers.Done()
			for dg := range u.queue {
				if ctx.Err() != nil {
					r.m.dropped.WithLabelValues(u.protocol, "shutdown").Inc()
					continue
				}
				r.handleDatagram(ctx, u.protocol, u.compact, dg)
			}
		}()
	}
}

// stop closes the socket, lets the workers finish the queue for up to
// stopGrace, then cancels their pushes and drops what is left.
func (u *udpServer) stop() {
	u.conn.Close()
	if !u.started {
		return
	}
	u.reader.Wait()
	close(u.queue)
	done := make(chan struct{})
	go func() { u.workers.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(stopGrace):
		u.cancel()
		<-done
	}
	u.cancel()
}

func (u *udpServer) read(r *Receiver) {
	buf := make([]byte, u.cfg.MaxPacketSize+1) // one more byte tells a truncated datagram
	for {
		n, _, err := u.conn.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			r.logger.Warn("UDP read failed", "protocol", u.protocol, "err", err)
			time.Sleep(10 * time.Millisecond) // do not spin on a persistent error
			continue
		}
		if n > u.cfg.MaxPacketSize {
			r.refuse(u.protocol, &badRequest{reason: "too_large"})
			continue
		}
		select {
		case u.queue <- bytes.Clone(buf[:n]):
		default:
			r.m.dropped.WithLabelValues(u.protocol, "queue_full").Inc()
		}
	}
}

// handleDatagram decodes, translates and pushes one emitBatch datagram.
// Garbage is counted and dropped: there is no one to answer.
func (r *Receiver) handleDatagram(ctx context.Context, protocol string, compact bool, dg []byte) {
	if r.multitenancy {
		r.refuse(protocol, &badRequest{reason: "tenant"})
		return
	}
	batch, err := decodeEmitBatch(dg, compact)
	if err != nil {
		r.refuse(protocol, err.(*badRequest))
		r.logger.Debug("refused datagram", "protocol", protocol, "err", err)
		return
	}
	otlp, spans, err := thriftToOTLP(batch)
	if err != nil {
		r.refuse(protocol, err.(*badRequest))
		r.logger.Debug("refused datagram", "protocol", protocol, "err", err)
		return
	}
	ctx, cancel := context.WithTimeout(ctx, udpPushTimeout)
	defer cancel()
	if err := r.pushOTLP(ctx, protocol, model.SingleTenant, otlp, spans); err != nil {
		var br *badRequest
		if errors.As(err, &br) {
			r.refuse(protocol, br)
			r.logger.Debug("refused datagram", "protocol", protocol, "err", err)
			return
		}
		receiver.LogPushFailure(r.logger, err, "tenant", model.SingleTenant, "protocol", protocol)
	}
}
