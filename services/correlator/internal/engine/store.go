package engine

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/services/correlator/internal/model"
	"github.com/stateguard/stateguard/services/correlator/internal/statecodec"
)

// store keeps the namespace states in memory and writes changed ones to the
// KV bucket in group commits: a handler's event is applied to the state in
// memory (with the other events of its namespace that queued meanwhile,
// Update), the namespace marked dirty, and the handler waits; one writer takes every dirty
// namespace at once, writes each with a compare-and-set on its revision —
// in JetStream atomic batches of up to 1,000 states, one disk sync each,
// or, for fewer than events.MinBatch, one by one, pipelined — and then
// releases the handlers whose changes are on disk, which publish the
// decisions those changes stored in the namespace's outbox
// (PublishAfterCommit) and then acknowledge their events. Under load a namespace that several events touched is written
// once for all of them; at a trickle each event waits for one KV write.
type store struct {
	kv     jetstream.KeyValue
	w      groupWriter
	limit  int
	m      *metrics
	writes atomic.Int64 // state writes stored, for the benchmark
	// partWrites are the parts stored with them.
	partWrites atomic.Int64
	// bufs are encoding buffers whose writes are acknowledged, for the
	// next ones: a state is tens of kilobytes, and allocating one per
	// write was a fifth of the correlator's allocations.
	bufs sync.Pool

	// publish publishes records of a namespace's outbox, in order, and
	// returns once JetStream acknowledged them (Engine.publishRecords).
	publish func(ctx context.Context, ns string, recs []statecodec.Pending) error

	mu      sync.Mutex
	entries map[string]*entry
	dirty   map[*entry]struct{}
	// ready are writes that handlers encoded for the writer (flushReq).
	ready []write
	kick  chan struct{}
}

// entry is one namespace's state. mu serialises the namespace's handlers
// inside the process (the handler applying the queued events holds it
// while it applies a batch of them; their decisions are published after
// the commit, outside it); the queue, the write bookkeeping and the outbox
// have their own short locks.
type entry struct {
	ns string

	mu    sync.Mutex
	st    *model.State
	gen   uint64           // bumped by every change
	codec statecodec.Codec // encodes st, reusing what did not change
	// omu guards the outbox: the decisions of the namespace's events not
	// yet known to be on the streams, stored with the state
	// (statecodec.Envelope). lastSeq is the Seq of its newest record; ogen
	// counts removals of published records (a change of the stored value
	// that no handler waits for), odurable is the ogen that is in KV. A
	// record is added under mu too, so it is written with the state that
	// made it; publishers take only omu, never waiting for the handlers
	// that queue for mu.
	omu      sync.Mutex
	outbox   []statecodec.Pending
	lastSeq  uint64
	ogen     uint64
	odurable uint64

	// qmu guards the queue of the handlers' functions waiting to be
	// applied (Update) and combining, set while a handler applies it.
	qmu       sync.Mutex
	queue     []*applyReq
	combining bool

	// flushReq is set by the writer when it found mu held: the next
	// handler to release mu encodes the state for it (store.release), so a
	// namespace that handlers keep busy is still written.
	flushReq atomic.Bool

	// pubMu serialises the publication of the outbox, so records go out in
	// the order of their Seq; published is the newest Seq this entry put
	// on the streams (under pubMu).
	pubMu     sync.Mutex
	published uint64

	wmu     sync.Mutex
	rev     uint64 // KV revision of the namespace's key read or last written
	durable uint64 // gen that is in KV
	// durableSeq is the newest outbox record that is in KV: records up to
	// it may be published.
	durableSeq uint64
	// inflight is set while a write of the namespace is on its way (one
	// at a time: each is a compare-and-set on the revision before it).
	inflight bool
	waiters  []waiter
	// stored is the split layout's bookkeeping of what is in KV: the
	// namespace's write generation and the generation of each PVC's key.
	stored layoutGen

	// gone is set when the entry left the cache after a failure or an
	// eviction; a handler that finds it gone takes a fresh entry.
	gone atomic.Bool
	refs int // handlers holding the entry (under store.mu)
	// used is when a handler last took the entry (unix nanoseconds, under
	// store.mu): dropIdleViews drops the derived views of idle ones.
	used int64
}

type waiter struct {
	gen  uint64
	done chan error
}

// flushChunk bounds the writes in flight in one group commit.
const flushChunk = 1024

// groupWriter stores groups of keys all or nothing (events.KVWriter; tests
// put a writer that crashes half way in its place).
type groupWriter interface {
	PutGroups(ctx context.Context, groups [][]events.KVPut) events.KVBatches
}

func newStore(kv jetstream.KeyValue, w groupWriter, limit int, m *metrics) *store {
	return &store{kv: kv, w: w, limit: limit, m: m,
		entries: map[string]*entry{}, dirty: map[*entry]struct{}{}, kick: make(chan struct{}, 1)}
}

// updateFn applies an event to a namespace's state (Update).
type updateFn func(*model.State) (changed bool, rec *statecodec.Pending, err error)

// Update runs fn on the namespace's state, which no other handler of the
// process touches meanwhile (bbolt's db.Update shape): fn applies an event,
// says whether it changed the state and returns the decisions it calls for
// (nil for none), which go in the namespace's outbox, stored with the
// state. When fn fails, the state is dropped from memory (the next handler
// reads it again from KV: a failed fn may have changed it half way) and
// its error is returned. Otherwise Update waits until the state is in KV —
// also for an unchanged state whose last change is not yet stored, as a
// duplicate's first delivery may be that change — and then publishes the
// outbox (PublishAfterCommit): it returns once the event's decisions are
// on the streams, or with the error of the write or the publication.
//
// The handlers of a namespace queue their functions; one of them (the
// first to find none running) takes the namespace's lock once, applies the
// queue in order as one batch, hands each handler its result and what
// queued meanwhile to the next handler waiting in it (combine): a
// namespace that many events keep busy applies them back to back instead
// of waking each handler in turn to take the lock. A batch
// is written by the same group commit, and each of its handlers returns
// only once its change is in KV: a commit that fails fails them all and
// publishes none of their decisions.
func (s *store) Update(ctx context.Context, ns string, fn updateFn) error {
	for {
		en := s.entryOf(ns)
		req := &applyReq{fn: fn, done: make(chan applyResult, 1)}
		if s.enqueue(en, req) {
			s.combine(ctx, en)
		}
		res := <-req.done
		if res.lead {
			// The handler before handed on the queue, this one in it.
			s.combine(ctx, en)
			res = <-req.done
		}
		if res.retry {
			// The entry left the cache before fn ran: a fresh one.
			s.unref(en)
			continue
		}
		if res.err != nil {
			s.unref(en)
			return res.err
		}
		if err := s.waitStored(ctx, en, res.gen); err != nil {
			s.unref(en)
			return err
		}
		retry, err := s.publishStored(ctx, en)
		s.unref(en)
		if !retry {
			return err
		}
		return s.PublishAfterCommit(ctx, ns)
	}
}

// applyReq is a handler's function queued on its namespace's entry, and
// where its result goes.
type applyReq struct {
	fn   updateFn
	done chan applyResult
}

// applyResult is what applying a queued function did: gen is the state's
// generation once it ran (the handler waits until it is in KV); retry says
// that the entry left the cache before it ran. lead hands a handler whose
// function has not run yet the queue to apply (combine).
type applyResult struct {
	gen   uint64
	err   error
	retry bool
	lead  bool
}

// enqueue queues r on en; lead says that no handler is applying en's queue
// and the caller must (combine).
func (s *store) enqueue(en *entry, r *applyReq) (lead bool) {
	en.qmu.Lock()
	defer en.qmu.Unlock()
	en.queue = append(en.queue, r)
	if en.combining {
		return false
	}
	en.combining = true
	return true
}

// combine applies en's queue as one batch: what queued while it waited for
// the lock. What queued meanwhile goes to the first handler waiting in the
// queue, which applies it in turn (its result is the lead), so that no
// handler keeps applying others' events while its own waits to be
// acknowledged.
func (s *store) combine(ctx context.Context, en *entry) {
	en.mu.Lock()
	en.qmu.Lock()
	batch := en.queue
	en.queue = nil
	en.qmu.Unlock()
	if len(batch) > 0 {
		s.applyBatch(ctx, en, batch) // unlocks en.mu
	} else {
		en.mu.Unlock()
	}
	en.qmu.Lock()
	defer en.qmu.Unlock()
	if len(en.queue) == 0 {
		en.combining = false
		return
	}
	en.queue[0].done <- applyResult{lead: true}
}

// applyBatch runs the functions of batch on en's state in order — the
// caller holds en.mu, which it releases — and hands each its result. A
// function that fails drops the state (discard): the functions before it
// fail with the write they waited for, those after it run again on a
// fresh entry.
func (s *store) applyBatch(ctx context.Context, en *entry, batch []*applyReq) {
	results := make([]applyResult, len(batch))
	err := s.loadLocked(ctx, en)
	changed := false
	for i, r := range batch {
		switch {
		case en.gone.Load():
			results[i] = applyResult{retry: true}
			continue
		case err != nil:
			results[i] = applyResult{err: err}
			continue
		}
		ch, rec, ferr := r.fn(en.st)
		if ferr != nil {
			s.discard(en, fmt.Errorf("state of %s reloaded after a failed handler: %w", en.ns, ferr))
			results[i] = applyResult{err: ferr}
			continue
		}
		if ch && rec != nil && len(rec.Decisions) > 0 {
			en.omu.Lock()
			en.lastSeq++
			rec.Seq = en.lastSeq
			en.outbox = append(en.outbox, *rec)
			en.omu.Unlock()
		}
		if ch {
			en.gen++
			changed = true
		}
		results[i] = applyResult{gen: en.gen}
	}
	if en.gone.Load() {
		en.mu.Unlock()
	} else {
		s.releaseLocked(en)
		if changed {
			s.mu.Lock()
			s.dirty[en] = struct{}{}
			s.mu.Unlock()
			s.wake()
		}
	}
	for i, r := range batch {
		r.done <- results[i]
	}
}

// PublishAfterCommit is the rule of the outbox: an event's decisions are
// published only once the state that made them is in KV (a write that
// fails drops them with the state: its event comes again and decides
// anew), in the order of the namespace's events, and removed from the
// outbox only once JetStream acknowledged them — by a later write that no
// handler waits for, which rides with the next group commit. A record
// published again (a publication that failed half way, a replica that
// died before the removal was stored) carries its decisions' ids, which
// JetStream's duplicate window de-duplicates.
//
// It publishes every stored record of ns not yet published, its own and
// those of any other handler or process, and returns once they are on the
// streams; it is called after each event and by the sweep at start.
func (s *store) PublishAfterCommit(ctx context.Context, ns string) error {
	for {
		en, err := s.acquire(ctx, ns)
		if err != nil {
			return err
		}
		en.mu.Unlock()
		retry, err := s.publishStored(ctx, en)
		s.unref(en)
		if !retry {
			return err
		}
	}
}

// publishStored publishes the records of en's outbox that are in KV and not
// yet published, then marks them gone from the outbox. retry says that en
// left the cache (a write failed): what KV holds is read again.
func (s *store) publishStored(ctx context.Context, en *entry) (retry bool, err error) {
	en.pubMu.Lock()
	defer en.pubMu.Unlock()
	if en.gone.Load() {
		return true, nil
	}
	en.wmu.Lock()
	durable := en.durableSeq
	en.wmu.Unlock()
	en.omu.Lock()
	var recs []statecodec.Pending
	for _, r := range en.outbox {
		if r.Seq > en.published && r.Seq <= durable {
			recs = append(recs, r)
		}
	}
	en.omu.Unlock()
	if len(recs) == 0 || s.publish == nil {
		return false, nil
	}
	if err := s.publish(ctx, en.ns, recs); err != nil {
		return false, err
	}
	last := recs[len(recs)-1].Seq
	en.published = last
	en.omu.Lock()
	en.outbox = slices.DeleteFunc(en.outbox, func(r statecodec.Pending) bool { return r.Seq <= last })
	en.ogen++
	en.omu.Unlock()
	if en.gone.Load() {
		return false, nil
	}
	s.mu.Lock()
	s.dirty[en] = struct{}{}
	s.mu.Unlock()
	s.wake()
	return false, nil
}

// entryOf returns the namespace's entry, referenced (unref when done).
func (s *store) entryOf(ns string) *entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	en := s.entries[ns]
	if en == nil {
		s.evictLocked()
		en = &entry{ns: ns}
		s.entries[ns] = en
	}
	en.refs++
	en.used = time.Now().UnixNano()
	return en
}

// acquire returns the namespace's entry, locked and loaded.
func (s *store) acquire(ctx context.Context, ns string) (*entry, error) {
	for {
		en := s.entryOf(ns)
		en.mu.Lock()
		if en.gone.Load() {
			en.mu.Unlock()
			s.unref(en)
			continue
		}
		if err := s.loadLocked(ctx, en); err != nil {
			en.mu.Unlock()
			s.unref(en)
			return nil, err
		}
		return en, nil
	}
}

// loadLocked reads en's state from KV unless it is in memory; the caller
// holds en.mu.
func (s *store) loadLocked(ctx context.Context, en *entry) error {
	if en.st != nil || en.gone.Load() {
		return nil
	}
	st, lg, err := loadState(ctx, s.kv, en.ns)
	if err != nil {
		return err
	}
	en.st = st
	en.omu.Lock()
	en.outbox = lg.outbox
	if n := len(en.outbox); n > 0 {
		en.lastSeq = en.outbox[n-1].Seq
	}
	seq := en.lastSeq
	en.omu.Unlock()
	lg.outbox = nil
	en.wmu.Lock()
	en.rev, en.stored, en.durableSeq = lg.rev, lg, seq
	en.wmu.Unlock()
	return nil
}

// release unlocks en. When the handler changed the state, it then waits
// until the change is in KV; any failure there comes back as the error.
func (s *store) release(ctx context.Context, en *entry, changed bool) error {
	if changed {
		en.gen++
	}
	gen := en.gen
	s.releaseLocked(en)
	defer s.unref(en)
	if changed {
		s.mu.Lock()
		s.dirty[en] = struct{}{}
		s.mu.Unlock()
		s.wake()
	}
	return s.waitStored(ctx, en, gen)
}

// waitStored waits until the generation gen of en's state is in KV.
func (s *store) waitStored(ctx context.Context, en *entry, gen uint64) error {
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

// releaseLocked unlocks en.mu; when the writer asked for the state
// (flushReq: it found mu held by the handlers that keep the namespace
// busy) and no write of it is on its way, it encodes the state for the
// writer's next group commit first.
func (s *store) releaseLocked(en *entry) {
	if !en.flushReq.Load() {
		en.mu.Unlock()
		return
	}
	en.wmu.Lock()
	busy := en.inflight
	en.wmu.Unlock()
	if busy || !en.flushReq.CompareAndSwap(true, false) {
		en.mu.Unlock()
		return
	}
	w, ok := s.encode(en) // unlocks en.mu
	if !ok {
		return
	}
	s.mu.Lock()
	s.ready = append(s.ready, w)
	s.mu.Unlock()
	s.wake()
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

// viewsIdle is how long a namespace goes without an event before its
// state's derived views are dropped (model.State.DropViews): they are a
// good part of a state in memory (#14), rebuilt by its next event.
const viewsIdle = 10 * time.Minute

// dropIdleViews drops, every idle/2 until ctx ends, the derived views of
// the namespaces no handler took for idle; the states stay.
func (s *store) dropIdleViews(ctx context.Context, idle time.Duration) {
	tick := time.NewTicker(idle / 2)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			s.dropViewsIdleSince(time.Now().Add(-idle))
		}
	}
}

// dropViewsIdleSince drops the derived views of the states whose
// namespace no handler took since t (those a handler holds are left), and
// their codecs' kept PVC encodings.
func (s *store) dropViewsIdleSince(t time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, en := range s.entries {
		if en.refs > 0 || en.used >= t.UnixNano() || !en.mu.TryLock() {
			continue
		}
		if en.st != nil {
			en.st.DropViews()
		}
		en.codec.DropKept()
		en.mu.Unlock()
	}
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
		en.omu.Lock()
		written := en.ogen == en.odurable
		en.omu.Unlock()
		if en.gen == en.durable && written && len(en.waiters) == 0 && !en.inflight {
			en.gone.Store(true)
			delete(s.entries, ns)
			delete(s.dirty, en)
		}
		en.wmu.Unlock()
		en.mu.Unlock()
	}
}

// run writes dirty namespaces until ctx ends. One group commit at a time:
// while it is stored the next one gathers (tried: three at once, which
// made the batches smaller and cost a third more CPU per event on two cores).
func (s *store) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.kick:
		}
		if s.flush(ctx, s.takeDirty()) {
			// Some namespaces were busy applying events: come back
			// for them soon even if nothing else changes.
			time.AfterFunc(time.Millisecond, s.wake)
		}
	}
}

// wake makes the writer look at the dirty namespaces.
func (s *store) wake() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

type write struct {
	en   *entry
	gen  uint64
	data []byte
	size int
	rev  uint64 // the revision written over, then the one written
	seq  uint64 // the newest outbox record written
	ogen uint64 // the outbox's removals written
	err  error
	// parts are the keys of the PVCs written with the namespace's key (all
	// or nothing), and stored what KV holds once they are.
	parts  []events.KVPut
	stored layoutGen
}

// takeDirty takes the dirty namespaces.
func (s *store) takeDirty() []*entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	batch := make([]*entry, 0, len(s.dirty))
	for en := range s.dirty {
		batch = append(batch, en)
	}
	clear(s.dirty)
	return batch
}

// flush writes the namespaces of batch once. A namespace whose handler is
// applying an event is left dirty for the next round, and the next handler
// to release it encodes it (releaseLocked); busy reports whether there was
// one.
func (s *store) flush(ctx context.Context, batch []*entry) (busy bool) {
	// At least one round: handlers may have encoded writes (ready).
	for first := true; first || len(batch) > 0; first = false {
		n := min(len(batch), flushChunk)
		busy = s.write(ctx, batch[:n]) || busy
		batch = batch[n:]
	}
	return busy
}

func (s *store) write(ctx context.Context, batch []*entry) (busy bool) {
	s.mu.Lock()
	ws := append(make([]write, 0, len(batch)+len(s.ready)), s.ready...)
	s.ready = s.ready[:0]
	s.mu.Unlock()
	for _, en := range batch {
		if en.gone.Load() {
			continue
		}
		if !en.mu.TryLock() {
			// Handlers keep it busy: the next to release it encodes it.
			en.flushReq.Store(true)
			s.mu.Lock()
			s.dirty[en] = struct{}{}
			s.mu.Unlock()
			busy = true
			continue
		}
		en.wmu.Lock()
		inflight := en.inflight
		en.wmu.Unlock()
		if inflight {
			// A handler encoded it for this round (ready) after all.
			en.mu.Unlock()
			s.mu.Lock()
			s.dirty[en] = struct{}{}
			s.mu.Unlock()
			busy = true
			continue
		}
		en.flushReq.Store(false)
		if w, ok := s.encode(en); ok {
			ws = append(ws, w)
		}
	}
	if len(ws) == 0 {
		return busy
	}
	// The states go in atomic batches, written side by side: one disk
	// sync stores a whole batch. A namespace's key and its PVCs' keys are
	// one group, stored together or not at all.
	groups := make([][]events.KVPut, len(ws))
	for i, w := range ws {
		g := make([]events.KVPut, 0, 1+len(w.parts))
		g = append(g, events.KVPut{Key: key(w.en.ns), Value: w.data, Rev: w.rev, Err: w.err})
		groups[i] = append(g, w.parts...)
	}
	stats := s.w.PutGroups(ctx, groups)
	s.m.batches.WithLabelValues("atomic").Add(float64(stats.Atomic))
	s.m.batches.WithLabelValues("fallback").Add(float64(stats.Fallback))
	for i := range ws {
		ws[i].rev, ws[i].err = groups[i][0].Rev, groupErr(groups[i])
		s.settle(ws[i])
	}
	return busy
}

// encode encodes the state of en, which the caller locked (and encode
// unlocks), for a write; false when it is in KV already. A write it
// returns is in flight until settle.
func (s *store) encode(en *entry) (write, bool) {
	en.omu.Lock()
	outbox := slices.Clone(en.outbox)
	seq, ogen, odurable := en.lastSeq, en.ogen, en.odurable
	en.omu.Unlock()
	en.wmu.Lock()
	rev, durable := en.rev, en.durable
	if en.gen == durable && ogen == odurable {
		en.wmu.Unlock()
		en.mu.Unlock()
		return write{}, false
	}
	en.inflight = true
	en.wmu.Unlock()
	w := write{en: en, gen: en.gen, rev: rev, seq: seq, ogen: ogen}
	rest, parts, next, err := s.split(en)
	var js []byte
	if err == nil {
		js, err = en.codec.Encode(s.buf(), rest)
	}
	en.mu.Unlock()
	// Compressed outside the namespace's lock: its next events apply
	// meanwhile.
	var puts []events.KVPut
	if err == nil {
		puts, err = s.wrapParts(en.ns, next.gen, parts)
	}
	if err == nil {
		w.data, err = statecodec.Wrap(s.buf(), statecodec.Envelope{Layout: statecodec.Layout, Gen: next.gen, Parts: next.parts, Outbox: outbox}, js)
	}
	s.putBuf(js)
	w.err, w.parts, w.stored = err, puts, next
	w.size = len(w.data)
	for _, p := range puts {
		w.size += len(p.Value)
	}
	return w, true
}

// settle ends a write: a stored state releases the handlers waiting for
// it; a failed one is dropped from memory, and its handlers get the error.
func (s *store) settle(w write) {
	en := w.en
	if w.err != nil {
		var apiErr *jetstream.APIError
		if errors.As(w.err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence {
			// Another replica wrote the namespace: its events come again
			// and apply to the state it stored.
			s.m.conflicts.Inc()
		}
		s.discard(en, fmt.Errorf("store state of %s: %w", en.ns, w.err))
		return
	}
	// Stored: the buffers serve the next writes (on an error the client
	// may still hold them, so they are left to the GC).
	s.putBuf(w.data)
	for _, p := range w.parts {
		s.putBuf(p.Value)
	}
	en.wmu.Lock()
	en.rev = w.rev
	en.stored = w.stored
	en.durable = w.gen
	en.durableSeq = max(en.durableSeq, w.seq)
	en.inflight = false
	en.omu.Lock()
	en.odurable = max(en.odurable, w.ogen)
	en.omu.Unlock()
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
	s.partWrites.Add(int64(len(w.parts)))
}

// readState reads a namespace's state from KV; rev is 0 when there is none.
func readState(ctx context.Context, kv jetstream.KeyValue, ns string) (*model.State, uint64, error) {
	st, lg, err := loadState(ctx, kv, ns)
	return st, lg.rev, err
}

// The stored layout (statecodec.Layout): a namespace's state is the key
// ns.<ns> — its facts but those of PVCs and the uploads, the ledger, the
// journal but the pin generations of snapshots in parts, and the manifest
// of its parts — up to Parts keys ns.<ns>.part.<xx> holding the snapshots
// (with their pin generations), workload observations and restores of the
// PVCs whose name hashes to xx (partOf), and up to
// UploadParts keys ns.<ns>.part.u<xx> holding the SARIF uploads whose id
// hashes to xx (uploadPartOf): at 1,000 applications in a namespace the
// uploads were most of its key, written with every commit. A write stores the namespace's key (compare-and-set
// on its revision, which also keeps two replicas apart) and the parts whose
// PVCs changed as one group of a JetStream atomic batch
// (events.KVWriter.PutGroups): all or nothing, so a crash between two keys
// cannot leave a torn state — the server drops a batch whose commit never
// came. The manifest maps each part to the write generation that stored
// it, so a reader also detects a state read while another replica wrote it
// (and reads it again).
//
// Why an atomic batch rather than a commit marker (parts written first, the
// namespace's key last naming the generation in force): the marker needs
// each part's previous value kept (KV history) to read a state whose
// marker was not yet written, and a write in several round trips, while
// nats-server 2.12+ stores an atomic batch with one disk sync, which the
// group commits use anyway. Revisited with measurements (#14, README
// "where the latency spikes come from"): a single server stages each
// atomic batch in a file store of its own (several times one message
// alone), so a commit was tried as one key — the changed parts inline in
// the namespace's key, moved to their keys by the outbox's removal in an
// atomic batch — and reverted: on a quiet machine the commit's p50 fell
// only in the first of four A/B rounds, p99 did not move and the
// throughput fell by 6–19%, since each group commit's round still held the
// removals' batches (and storing those in the background did not help). Why parts by hash rather than one key per PVC:
// an atomic batch holds at most max_batch_size (1,000) messages, and one
// event can change the facts of every PVC of a namespace (closing an
// incident lets old snapshots of all of them go); with Parts keys a
// namespace's group is never larger than Parts+1, whatever its PVCs. At
// 1,000 PVCs in a namespace a part holds about four.

// Parts is the most part keys a namespace's PVCs are spread over.
const Parts = 256

// partOf names the part of a PVC: the FNV-1a hash of its name, in hex.
func partOf(pvc string) string {
	h := fnv.New32a()
	h.Write([]byte(pvc))
	return fmt.Sprintf("%02x", h.Sum32()%Parts)
}

// UploadParts is the most part keys a namespace's uploads are spread over
// (layout 3). With Parts, a namespace's write is never a group of more
// than 1+Parts+UploadParts keys, under an atomic batch's 1,000.
const UploadParts = 64

// uploadPartOf names the part of an upload: u and the FNV-1a hash of its
// id, in hex.
func uploadPartOf(id string) string {
	h := fnv.New32a()
	h.Write([]byte(id))
	return fmt.Sprintf("u%02x", h.Sum32()%UploadParts)
}

// layoutGen is what KV holds of a namespace in the split layout: the
// namespace's write generation and each part's generation.
type layoutGen struct {
	rev    uint64
	gen    uint64
	parts  map[string]uint64
	legacy bool // read from an older layout: the next write stores it in this one
	// outbox is the namespace's outbox as read (loadState only).
	outbox []statecodec.Pending
}

// layoutKey marks a bucket whose states were all migrated to the split
// layout.
const layoutKey = "layout"

// partKey is the key of a part of a namespace's state.
func partKey(ns, part string) string { return key(ns) + ".part." + part }

// partJSON is a part's facts encoded, before compression.
type partJSON struct {
	name string
	js   []byte
}

// split takes the PVCs and uploads of en's state that changed and returns
// what goes in the namespace's key, the encodings of their parts, and what
// KV will hold once they are stored. The caller holds en.mu.
func (s *store) split(en *entry) (*model.State, []partJSON, layoutGen, error) {
	en.wmu.Lock()
	cur := en.stored
	en.wmu.Unlock()
	next := layoutGen{gen: cur.gen + 1, parts: maps.Clone(cur.parts)}
	if next.parts == nil {
		next.parts = map[string]uint64{}
	}
	var names, unames []string
	changed := en.st.TakeChangedParts()
	for _, pvc := range changed {
		if p := partOf(pvc); !slices.Contains(names, p) {
			names = append(names, p)
		}
	}
	for _, id := range en.st.TakeChangedUploads() {
		if p := uploadPartOf(id); !slices.Contains(unames, p) {
			unames = append(unames, p)
		}
	}
	slices.Sort(names)
	slices.Sort(unames)
	// The namespace's own facts; each part's from its PVCs' (PartPVCs,
	// PVCFacts), the kept encodings of a part's PVCs serving while they
	// did not change (changed is sorted).
	rest, facts := en.st.PartsOf(partOf, nil)
	if len(unames) > 0 {
		facts = en.st.UploadsOf(uploadPartOf, unames)
		en.codec.ForgetUploads(en.st)
	}
	pvcChanged := func(pvc string) bool {
		_, found := slices.BinarySearch(changed, pvc)
		return found
	}
	out := make([]partJSON, 0, len(names)+len(unames))
	for i, name := range append(names, unames...) {
		var js []byte
		var empty bool
		var err error
		if i < len(names) {
			js, empty, err = en.codec.EncodeSplitPart(s.buf(), en.ns, name, en.st.PartPVCs(partOf, name), pvcChanged, en.st.PVCFacts)
		} else {
			p := facts[name]
			js, err = en.codec.EncodePart(s.buf(), en.ns, p)
			empty = p.Empty()
		}
		if err != nil {
			return nil, nil, next, fmt.Errorf("encode part %s of %s: %w", name, en.ns, err)
		}
		if empty {
			delete(next.parts, name)
		} else {
			next.parts[name] = next.gen
		}
		out = append(out, partJSON{name: name, js: js})
	}
	if len(next.parts) == 0 {
		next.parts = nil
	}
	return rest, out, next, nil
}

// wrapParts compresses the parts of a write, each with its envelope, and
// hands their JSON buffers back to the store.
func (s *store) wrapParts(ns string, gen uint64, parts []partJSON) ([]events.KVPut, error) {
	puts := make([]events.KVPut, 0, len(parts))
	for _, p := range parts {
		data, err := statecodec.Wrap(s.buf(), statecodec.Envelope{Layout: statecodec.Layout, Gen: gen, Part: p.name}, p.js)
		s.putBuf(p.js)
		if err != nil {
			return nil, fmt.Errorf("part %s of %s: %w", p.name, ns, err)
		}
		puts = append(puts, events.KVPut{Key: partKey(ns, p.name), Value: data, Any: true})
	}
	return puts, nil
}

// buf is a buffer for an encoding, from those of earlier writes; putBuf
// hands one back once nothing refers to it.
func (s *store) buf() []byte {
	if b, ok := s.bufs.Get().(*[]byte); ok {
		return (*b)[:0]
	}
	return nil
}

func (s *store) putBuf(b []byte) {
	if cap(b) > 0 {
		s.bufs.Put(&b)
	}
}

// groupErr is the error of a group's write: its keys were stored together
// or not at all.
func groupErr(g []events.KVPut) error {
	for _, p := range g {
		if p.Err != nil {
			return p.Err
		}
	}
	return nil
}

// loadAttempts bounds the reads of a state another replica keeps writing
// while it is read.
const loadAttempts = 5

// errTorn says that the keys of a state did not belong to one write.
var errTorn = errors.New("the keys of the state belong to different writes")

// loadState reads a namespace's state from KV, in either layout; a state of
// the single-key layout has every PVC marked changed, so that its next
// write splits it. rev is 0 when there is none.
func loadState(ctx context.Context, kv jetstream.KeyValue, ns string) (*model.State, layoutGen, error) {
	var err error
	for range loadAttempts {
		var st *model.State
		var lg layoutGen
		st, lg, err = loadOnce(ctx, kv, ns)
		if !errors.Is(err, errTorn) {
			return st, lg, err
		}
	}
	return nil, layoutGen{}, fmt.Errorf("load state of %s: %w", ns, err)
}

func loadOnce(ctx context.Context, kv jetstream.KeyValue, ns string) (*model.State, layoutGen, error) {
	entry, err := kv.Get(ctx, key(ns))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return model.NewState(ns), layoutGen{}, nil
	}
	if err != nil {
		return nil, layoutGen{}, fmt.Errorf("load state of %s: %w", ns, err)
	}
	st := model.NewState(ns)
	env, err := statecodec.Unwrap(entry.Value(), st)
	if err != nil {
		return nil, layoutGen{}, events.Permanent(fmt.Errorf("decode state of %s: %w", ns, err))
	}
	lg := layoutGen{rev: entry.Revision(), gen: env.Gen, parts: env.Parts, outbox: env.Outbox}
	// What the namespace's key holds of the pin generations stays there
	// until their snapshots are found in a part.
	st.MarkPinGenerationsApart()
	if env.Layout == 0 {
		st.MarkAllPartsChanged()
		lg.legacy = true
		return st, lg, nil
	}
	if env.Layout < statecodec.Layout {
		// Layout 2: the uploads and the pin generations, read from the
		// namespace's key, move to their parts with the next write.
		st.MarkAllPartsChanged()
		lg.legacy = true
	}
	parts, err := loadParts(ctx, kv, ns, env.Parts)
	if err != nil {
		return nil, layoutGen{}, err
	}
	for _, p := range parts {
		st.AddPart(p)
	}
	return st, lg, nil
}

// loadParts reads the parts the manifest names, a few at a time.
func loadParts(ctx context.Context, kv jetstream.KeyValue, ns string, manifest map[string]uint64) ([]*model.PartFacts, error) {
	var (
		mu    sync.Mutex
		out   []*model.PartFacts
		errs  []error
		wg    sync.WaitGroup
		slots = make(chan struct{}, 16)
	)
	for part, gen := range manifest {
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			p, err := loadPart(ctx, kv, ns, part, gen)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			out = append(out, p)
		})
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

func loadPart(ctx context.Context, kv jetstream.KeyValue, ns, part string, gen uint64) (*model.PartFacts, error) {
	entry, err := kv.Get(ctx, partKey(ns, part))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, fmt.Errorf("part %s of %s: %w (its key is missing)", part, ns, errTorn)
	}
	if err != nil {
		return nil, fmt.Errorf("load part %s of %s: %w", part, ns, err)
	}
	env, p, err := statecodec.DecodePart(entry.Value(), ns)
	if err != nil {
		return nil, events.Permanent(fmt.Errorf("decode part %s of %s: %w", part, ns, err))
	}
	if env.Gen != gen || env.Part != part {
		return nil, fmt.Errorf("part %s of %s: generation %d, the namespace's names %d: %w", part, ns, env.Gen, gen, errTorn)
	}
	return p, nil
}

// namespaceOf returns the namespace of a state key ns.<ns> (not of a part
// ns.<ns>.part.<xx>).
func namespaceOf(k string) (string, bool) {
	ns, ok := strings.CutPrefix(k, "ns.")
	return ns, ok && !strings.Contains(ns, ".")
}

// migrate writes every state of the single-key layout again, split, once
// per bucket (the layout key marks it done); the state writer must run.
// It returns how many states it rewrote.
func (s *store) migrate(ctx context.Context) (int, error) {
	if e, err := s.kv.Get(ctx, layoutKey); err == nil && string(e.Value()) == fmt.Sprint(statecodec.Layout) {
		return 0, nil
	} else if err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0, fmt.Errorf("read the state layout: %w", err)
	}
	lister, err := s.kv.ListKeys(ctx)
	if err != nil && !errors.Is(err, jetstream.ErrNoKeysFound) {
		return 0, fmt.Errorf("list state keys: %w", err)
	}
	var nss []string
	if lister != nil {
		for k := range lister.Keys() {
			if ns, ok := namespaceOf(k); ok {
				nss = append(nss, ns)
			}
		}
	}
	n := 0
	for _, ns := range nss {
		en, err := s.acquire(ctx, ns)
		if err != nil {
			return n, fmt.Errorf("migrate state of %s: %w", ns, err)
		}
		en.wmu.Lock()
		legacy := en.stored.legacy
		en.wmu.Unlock()
		if err := s.release(ctx, en, legacy); err != nil {
			return n, fmt.Errorf("migrate state of %s: %w", ns, err)
		}
		if legacy {
			n++
		}
	}
	if _, err := s.kv.Put(ctx, layoutKey, []byte(fmt.Sprint(statecodec.Layout))); err != nil {
		return n, fmt.Errorf("mark the state layout: %w", err)
	}
	return n, nil
}
