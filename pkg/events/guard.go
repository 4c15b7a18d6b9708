package events

import (
	"errors"
	"fmt"
)

// MaxSubjectLength bounds every subject this package sends, KV subjects
// ($KV.<bucket>.<key>) and JetStream API subjects that carry a stream or
// consumer name included. nats-server closes a connection for good when a
// protocol line exceeds its max_control_line (4 KiB by default): the line
// holds the subject, the reply inbox and two sizes, so 1 KiB leaves room
// for a server configured well below the default and is four times the
// longest Kubernetes name (253).
const MaxSubjectLength = 1024

// ErrSubjectTooLong is returned, before anything is sent, for a subject
// (or a KV key, stream or consumer name that ends up in one) longer than
// MaxSubjectLength.
var ErrSubjectTooLong = errors.New("events: subject too long")

// CheckSubject refuses a subject that could make the server close the
// connection. The error names the length, not the subject: it may be an
// identifier a caller sent.
func CheckSubject(subject string) error {
	if len(subject) > MaxSubjectLength {
		return fmt.Errorf("%w: %d bytes, at most %d", ErrSubjectTooLong, len(subject), MaxSubjectLength)
	}
	return nil
}

// checkSubjects is CheckSubject for several subjects.
func checkSubjects(subjects ...string) error {
	for _, s := range subjects {
		if err := CheckSubject(s); err != nil {
			return err
		}
	}
	return nil
}

// kvSubject is the subject of a key in a KV bucket.
func kvSubject(bucket, key string) string { return "$KV." + bucket + "." + key }

// apiSubject approximates the longest JetStream API subject a call about
// stream (and consumer, with its filters) sends, for the length check.
func apiSubject(stream, consumer string, filters ...string) string {
	s := "$JS.API.CONSUMER.CREATE." + stream + "." + consumer
	if len(filters) == 1 {
		s += "." + filters[0]
	}
	return s
}
