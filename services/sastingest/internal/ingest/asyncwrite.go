package ingest

import (
	"io"
	"sync"
)

// asyncWriter hands what is written to it to another goroutine, which
// writes it to its writers (the gzip copy, the SHA-256): the parser, which
// reads the same bytes, runs on one core while compressing and hashing run
// on another. Writes copy the bytes (the caller reuses its buffer); at most
// asyncDepth chunks wait, so memory stays bounded.
type asyncWriter struct {
	ch   chan []byte
	done chan struct{}
	pool sync.Pool
	ws   []io.Writer

	mu  sync.Mutex
	err error
}

const asyncDepth = 16

func newAsyncWriter(ws ...io.Writer) *asyncWriter {
	a := &asyncWriter{ch: make(chan []byte, asyncDepth), done: make(chan struct{}), ws: ws}
	go a.run()
	return a
}

func (a *asyncWriter) run() {
	defer close(a.done)
	for b := range a.ch {
		if a.failed() == nil {
			for _, w := range a.ws {
				if _, err := w.Write(b); err != nil {
					a.mu.Lock()
					a.err = err
					a.mu.Unlock()
					break
				}
			}
		}
		a.pool.Put(b[:0]) //nolint:staticcheck // a slice header is small next to the buffer it saves
	}
}

func (a *asyncWriter) failed() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.err
}

// Write queues a copy of p. An error of an earlier write is returned.
func (a *asyncWriter) Write(p []byte) (int, error) {
	if err := a.failed(); err != nil {
		return 0, err
	}
	b, _ := a.pool.Get().([]byte)
	b = append(b[:0], p...)
	a.ch <- b
	return len(p), nil
}

// Close waits until everything queued is written and returns the first
// error. It must be called once, after the last Write.
func (a *asyncWriter) Close() error {
	close(a.ch)
	<-a.done
	return a.failed()
}
