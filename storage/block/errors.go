package block

import "errors"

var (
	// ErrOutOfOrder is returned by Writer.Add for a trace ID that is not
	// greater than the previous one.
	ErrOutOfOrder = errors.New("trace IDs out of order")
	// ErrInvalidTrace is returned by Writer.Add and Writer.AddEncoded for a
	// trace they cannot store (no spans, a span whose trace_id is not the
	// trace's ID, and for AddEncoded bytes proto.Unmarshal would reject).
	ErrInvalidTrace = errors.New("invalid trace")
	// ErrEmptyBlock is returned by Writer.Finish when no trace was added.
	ErrEmptyBlock = errors.New("block has no traces")
	// ErrWriterClosed is returned by a Writer used after Finish or Abort.
	ErrWriterClosed = errors.New("block writer is closed")
	// ErrCorrupt is wrapped by every error about a block file that does not
	// decode or does not agree with the block's meta.json.
	ErrCorrupt = errors.New("corrupt block")
	// ErrUnsupportedVersion is wrapped when meta.json names a format version
	// this package does not read.
	ErrUnsupportedVersion = errors.New("unsupported block version")
)
