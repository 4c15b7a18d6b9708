package logtest

import "github.com/stateguard/stateguard/pkg/events/eventstest"

// Buffer is a bytes.Buffer that goroutines may write to at the same time as
// a test reads it (eventstest.LogBuffer, so that pkg/events' own tests share
// it without importing pkg/harness).
type Buffer = eventstest.LogBuffer
