package overrides

import "errors"

// ErrFileTooLarge is wrapped by the error about a runtime overrides file
// larger than MaxFileBytes.
var ErrFileTooLarge = errors.New("runtime overrides file is too large")

// ErrInvalidFile is wrapped by every other error about the content of a
// runtime overrides file.
var ErrInvalidFile = errors.New("invalid runtime overrides file")
