package isakmp

import "errors"

// Sentinel errors; decoders wrap them with context.
var (
	ErrInvalidMajorVersion = errors.New("invalid major version")
	ErrMalformed           = errors.New("payload malformed")
	ErrTrailing            = errors.New("trailing bytes after last payload")
)
