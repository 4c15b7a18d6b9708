package ingest

import (
	"errors"
	"fmt"
	"io"
)

// ErrTooLarge is returned when the uncompressed log exceeds its limit.
var ErrTooLarge = errors.New("uncompressed log exceeds the limit")

// TooLargeError says which limit was exceeded.
type TooLargeError struct{ Limit int64 }

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("uncompressed log exceeds the limit of %d bytes", e.Limit)
}

// Is makes errors.Is(err, ErrTooLarge) true.
func (e *TooLargeError) Is(target error) bool { return target == ErrTooLarge }

// limitReader fails with *TooLargeError once more than n bytes were read.
type limitReader struct {
	r     io.Reader
	n     int64
	limit int64
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.n > l.limit {
		return 0, &TooLargeError{Limit: l.limit}
	}
	if int64(len(p)) > l.limit-l.n+1 {
		p = p[:l.limit-l.n+1]
	}
	n, err := l.r.Read(p)
	l.n += int64(n)
	if l.n > l.limit {
		return n, &TooLargeError{Limit: l.limit}
	}
	return n, err
}

// GzipError is a compressed body that cannot be inflated (not gzip,
// corrupt, or truncated). It does not wrap the cause, so a truncated gzip
// stream is not mistaken for truncated JSON.
type GzipError struct{ Reason string }

func (e *GzipError) Error() string { return "gzip: " + e.Reason }

// rawReader remembers the error of the body under a gzip reader, so that a
// body that failed (over its size limit, the client gone) is reported as
// such and not as a gzip error.
type rawReader struct {
	r   io.Reader
	err error
}

func (r *rawReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		r.err = err
	}
	return n, err
}

type gzipErrReader struct {
	r   io.Reader
	raw *rawReader
}

func (g gzipErrReader) Read(p []byte) (int, error) {
	n, err := g.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		if g.raw.err != nil {
			return n, g.raw.err
		}
		var tl *TooLargeError
		if errors.As(err, &tl) {
			return n, err
		}
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return n, &GzipError{Reason: "the compressed stream is truncated"}
		}
		return n, &GzipError{Reason: err.Error()}
	}
	return n, err
}
