package receiver

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"

	"google.golang.org/grpc/metadata"

	"github.com/vivace-dev/vivace/internal/model"
)

var gzipReaders sync.Pool // *gzip.Reader

// ReadBody reads an HTTP request body, gunzipped if need be, up to limit
// bytes before and after gunzip. On error it also returns the status code
// to answer: 400 (bad gzip), 413 (too large) or 415 (unknown encoding).
func ReadBody(req *http.Request, limit int64) ([]byte, int, error) {
	var body io.Reader = http.MaxBytesReader(nil, req.Body, limit)
	switch enc := req.Header.Get("Content-Encoding"); enc {
	case "", "identity":
	case "gzip":
		zr, _ := gzipReaders.Get().(*gzip.Reader)
		var err error
		if zr == nil {
			zr, err = gzip.NewReader(body)
		} else {
			err = zr.Reset(body)
		}
		if err != nil {
			return nil, http.StatusBadRequest, fmt.Errorf("invalid gzip body: %w", err)
		}
		defer gzipReaders.Put(zr)
		body = zr
	default:
		return nil, http.StatusUnsupportedMediaType, fmt.Errorf("content encoding %q is not supported: use gzip or none", enc)
	}
	var buf bytes.Buffer
	if n := req.ContentLength; n > 0 && n <= limit {
		buf.Grow(int(n) + bytes.MinRead)
	}
	_, err := buf.ReadFrom(io.LimitReader(body, limit+1))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig) || int64(buf.Len()) > limit:
		return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("request body is over the limit of %d bytes", limit)
	case err != nil:
		return nil, http.StatusBadRequest, fmt.Errorf("read body: %w", err)
	}
	return buf.Bytes(), 0, nil
}

// TenantFromGRPC resolves the tenant of a gRPC call from its x-scope-orgid
// metadata (see model.ResolveTenant).
func TenantFromGRPC(ctx context.Context, multitenancy bool) (string, error) {
	var header string
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if v := md.Get("x-scope-orgid"); len(v) > 0 {
			header = v[0]
		}
	}
	return model.ResolveTenant(multitenancy, header)
}
