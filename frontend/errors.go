package frontend

import (
	"fmt"
	"net/http"
)

// httpError is an error with the status code it is answered with.
type httpError struct {
	code int
	msg  string
}

func (e *httpError) Error() string { return e.msg }

func badRequest(format string, args ...any) error {
	return &httpError{http.StatusBadRequest, fmt.Sprintf(format, args...)}
}

var (
	errTraceNotFound = &httpError{http.StatusNotFound, "trace not found"}
	errStopping      = &httpError{http.StatusServiceUnavailable, "query-frontend is stopping"}
)
