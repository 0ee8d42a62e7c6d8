package querier

import "errors"

// errBadJob marks a job a frontend should not have sent; it is answered 400.
var errBadJob = errors.New("bad job")
