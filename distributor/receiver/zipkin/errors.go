package zipkin

import (
	"errors"
	"fmt"
)

// errEmptyBody is an empty request body, which is no JSON or proto list.
var errEmptyBody = errors.New("the request body is empty")

// spanError is a span Zipkin would refuse; index counts from 0 in the
// request's own list (v1 spans for /api/v1/spans).
type spanError struct {
	index int
	err   error
}

func (e *spanError) Error() string { return fmt.Sprintf("span %d: %v", e.index, e.err) }
func (e *spanError) Unwrap() error { return e.err }

// fieldError says a field holds the wrong JSON type.
func fieldError(d *scanner, field, want string) error {
	if d.peek() == 0 {
		return d.unexpected(want)
	}
	return fmt.Errorf("%s must be %s, not %s", field, want, d.kind())
}
