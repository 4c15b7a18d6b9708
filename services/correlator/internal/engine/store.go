package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/services/correlator/internal/model"
)

// store keeps the namespace states in memory and writes changed ones to the
// KV bucket in group commits: a handler applies its event to the state in
// memory, marks the namespace dirty and waits; one writer takes every dirty
// namespace at once, writes each with a compare-and-set on its revision
// (pipelined, not one round trip after the other) and then releases the
// handlers whose changes are on disk, which acknowledge their events. Under
// load a namespace that several events touched is written once for all of
// them; at a trickle each event waits for one KV write, as before.
type store struct {
	kv     jetstream.KeyValue
	js     jetstream.JetStream
	bucket string
	limit  int
	m      *metrics
	writes atomic.Int64 // state writes stored, for the benchmark
	// bufs are encoding buffers whose writes are acknowledged, for the
	// next ones: a state is tens of kilobytes, and allocating one per
	// write was a fifth of the correlator's allocations.
	bufs sync.Pool

	mu      sync.Mutex
	entries map[string]*entry
	dirty   map[*entry]struct{}
	kick    chan struct{}
}

// entry is one namespace's state. mu serialises the namespace's handlers
// inside the process (a handler holds it from applying its event until its
// decisions are published); the write bookkeeping has its own short lock, so
// the writer never waits for a handler's publication.
type entry struct {
	ns string

	mu    sync.Mutex
	st    *model.State
	gen   uint64 // bumped by every change
	codec codec  // encodes st, reusing what did not change

	wmu     sync.Mutex
	rev     uint64 // KV revision st was read from or last written as
	durable uint64 // gen that is in KV
	waiters []waiter

	// gone is set when the entry left the cache after a failure or an
	// eviction; a handler that finds it gone takes a fresh entry.
	gone atomic.Bool
	refs int // handlers holding the entry (under store.mu)
}

type waiter struct {
	gen  uint64
	done chan error
}

// flushChunk bounds the writes in flight in one group commit.
const flushChunk = 1024

func newStore(kv jetstream.KeyValue, js jetstream.JetStream, bucket string, limit int, m *metrics) *store {
	return &store{kv: kv, js: js, bucket: bucket, limit: limit, m: m,
		entries: map[string]*entry{}, dirty: map[*entry]struct{}{}, kick: make(chan struct{}, 1)}
}

// acquire returns the namespace's entry, locked and loaded; release it.
func (s *store) acquire(ctx context.Context, ns string) (*entry, error) {
	for {
		s.mu.Lock()
		en := s.entries[ns]
		if en == nil {
			s.evictLocked()
			en = &entry{ns: ns}
			s.entries[ns] = en
		}
		en.refs++
		s.mu.Unlock()

		en.mu.Lock()
		if en.gone.Load() {
			en.mu.Unlock()
			s.unref(en)
			continue
		}
		if en.st == nil {
			st, rev, err := readState(ctx, s.kv, ns)
			if err != nil {
				en.mu.Unlock()
				s.unref(en)
				return nil, err
			}
			en.st = st
			en.wmu.Lock()
			en.rev = rev
			en.wmu.Unlock()
		}
		return en, nil
	}
}

// release unlocks en. When the handler changed the state, it then waits
// until the change is in KV; any failure there comes back as the error.
func (s *store) release(ctx context.Context, en *entry, changed bool) error {
	if changed {
		en.gen++
	}
	gen := en.gen
	en.mu.Unlock()
	defer s.unref(en)
	if changed {
		s.mu.Lock()
		s.dirty[en] = struct{}{}
		s.mu.Unlock()
		select {
		case s.kick <- struct{}{}:
		default:
		}
	}
	en.wmu.Lock()
	if en.gone.Load() {
		en.wmu.Unlock()
		return fmt.Errorf("state of %s was dropped before it was stored", en.ns)
	}
	if gen <= en.durable {
		en.wmu.Unlock()
		return nil
	}
	// Also an unchanged handler (a duplicate) waits when the state is not
	// yet written: its first delivery may be the change in memory.
	w := make(chan error, 1)
	en.waiters = append(en.waiters, waiter{gen: gen, done: w})
	en.wmu.Unlock()
	select {
	case err := <-w:
		return err
	case <-ctx.Done():
		return fmt.Errorf("state of %s not yet stored: %w", en.ns, ctx.Err())
	}
}

// discard drops en from the cache after a failure: the handlers waiting for
// its write get err and their events come again; the next handler of the
// namespace reads its state from KV.
func (s *store) discard(en *entry, err error) {
	en.wmu.Lock()
	en.gone.Store(true)
	for _, w := range en.waiters {
		w.done <- err
	}
	en.waiters = nil
	en.wmu.Unlock()
	s.mu.Lock()
	if s.entries[en.ns] == en {
		delete(s.entries, en.ns)
	}
	delete(s.dirty, en)
	s.mu.Unlock()
}

func (s *store) unref(en *entry) {
	s.mu.Lock()
	en.refs--
	s.mu.Unlock()
}

// evictLocked keeps the cache under its limit by dropping a tenth of the
// entries that are written and idle. Evicted states are read again from KV
// when their namespace comes back.
func (s *store) evictLocked() {
	if len(s.entries) < s.limit {
		return
	}
	target := s.limit * 9 / 10
	for ns, en := range s.entries {
		if len(s.entries) <= target {
			return
		}
		if en.refs > 0 || !en.mu.TryLock() {
			continue
		}
		en.wmu.Lock()
		if en.gen == en.durable && len(en.waiters) == 0 {
			en.gone.Store(true)
			delete(s.entries, ns)
			delete(s.dirty, en)
		}
		en.wmu.Unlock()
		en.mu.Unlock()
	}
}

// run writes dirty namespaces until ctx ends.
func (s *store) run(ctx context.Context) {
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.kick:
		case <-retry.C:
		}
		if s.flush(ctx) {
			// Some namespaces were busy publishing decisions: come back
			// for them soon even if nothing else changes.
			retry.Reset(time.Millisecond)
		}
	}
}

type write struct {
	en   *entry
	gen  uint64
	data []byte
	size int
	ack  jetstream.PubAckFuture
	rev  uint64
	err  error
}

// flush writes every dirty namespace once. A namespace whose handler is
// publishing decisions is left dirty for the next round (its state must not
// reach KV before its decisions do); busy reports whether there was one.
func (s *store) flush(ctx context.Context) (busy bool) {
	s.mu.Lock()
	batch := make([]*entry, 0, len(s.dirty))
	for en := range s.dirty {
		batch = append(batch, en)
	}
	clear(s.dirty)
	s.mu.Unlock()
	for len(batch) > 0 {
		n := min(len(batch), flushChunk)
		busy = s.write(ctx, batch[:n]) || busy
		batch = batch[n:]
	}
	return busy
}

func (s *store) write(ctx context.Context, batch []*entry) (busy bool) {
	ws := make([]write, 0, len(batch))
	for _, en := range batch {
		if en.gone.Load() {
			continue
		}
		if !en.mu.TryLock() {
			s.mu.Lock()
			s.dirty[en] = struct{}{}
			s.mu.Unlock()
			busy = true
			continue
		}
		en.wmu.Lock()
		rev, durable := en.rev, en.durable
		en.wmu.Unlock()
		if en.gen == durable {
			en.mu.Unlock()
			continue
		}
		w := write{en: en, gen: en.gen}
		var buf []byte
		if b, ok := s.bufs.Get().(*[]byte); ok {
			buf = *b
		}
		data, err := en.codec.encode(buf, en.st)
		en.mu.Unlock()
		if err == nil {
			w.data, w.size = data, len(data)
			w.ack, err = s.js.PublishAsync(kvSubject(s.bucket, key(en.ns)), data, jetstream.WithExpectLastSequencePerSubject(rev))
		}
		w.err = err
		ws = append(ws, w)
	}
	for i := range ws {
		w := &ws[i]
		if w.err != nil {
			continue
		}
		select {
		case pa := <-w.ack.Ok():
			w.rev = pa.Sequence
			// Stored: the client no longer needs the data (on an error or
			// a timeout it may, so the buffer is left to the GC).
			buf := w.data
			s.bufs.Put(&buf)
			w.data = nil
		case w.err = <-w.ack.Err():
		case <-ctx.Done():
			w.err = ctx.Err()
		}
	}
	for _, w := range ws {
		en := w.en
		if w.err != nil {
			var apiErr *jetstream.APIError
			if errors.As(w.err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence {
				// Another replica wrote the namespace: its events come again
				// and apply to the state it stored.
				s.m.conflicts.Inc()
			}
			s.discard(en, fmt.Errorf("store state of %s: %w", en.ns, w.err))
			continue
		}
		en.wmu.Lock()
		en.rev = w.rev
		en.durable = w.gen
		kept := en.waiters[:0]
		for _, wt := range en.waiters {
			if wt.gen <= en.durable {
				wt.done <- nil
			} else {
				kept = append(kept, wt)
			}
		}
		en.waiters = kept
		en.wmu.Unlock()
		s.m.stateSize.Observe(float64(w.size))
		s.writes.Add(1)
	}
	return busy
}

func kvSubject(bucket, key string) string { return "$KV." + bucket + "." + key }

// readState reads a namespace's state from KV; rev is 0 when there is none.
func readState(ctx context.Context, kv jetstream.KeyValue, ns string) (*model.State, uint64, error) {
	entry, err := kv.Get(ctx, key(ns))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return model.NewState(ns), 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("load state of %s: %w", ns, err)
	}
	st := model.NewState(ns)
	if err := decodeState(entry.Value(), st); err != nil {
		return nil, 0, events.Permanent(fmt.Errorf("decode state of %s: %w", ns, err))
	}
	return st, entry.Revision(), nil
}
