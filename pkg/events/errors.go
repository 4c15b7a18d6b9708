package events

import (
	"errors"
	"time"
)

// PermanentError marks a handler failure that redelivery cannot fix: the
// message is terminated and a copy with the reason goes to the dead-letter
// stream.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return "permanent: " + e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// Permanent wraps err so the consumer dead-letters the event instead of
// redelivering it.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &PermanentError{Err: err}
}

// IsPermanent reports whether err or an error it wraps is permanent.
func IsPermanent(err error) bool {
	var p *PermanentError
	return errors.As(err, &p)
}

// RetryError asks for redelivery after a given delay.
type RetryError struct {
	Err   error
	Delay time.Duration
}

func (e *RetryError) Error() string { return "retry: " + e.Err.Error() }
func (e *RetryError) Unwrap() error { return e.Err }

// RetryAfter wraps err so the consumer naks the event with this delay. Any
// other non-permanent error is retried with the consumer's backoff.
func RetryAfter(err error, delay time.Duration) error {
	if err == nil {
		return nil
	}
	return &RetryError{Err: err, Delay: delay}
}
