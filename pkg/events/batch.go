package events

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/nats-io/nats.go"
	"github.com/synadia-io/orbit.go/jetstreamext"
)

// MaxBatch is the most events one atomic batch carries: nats-server's
// default max_batch_size. maxBatchBytes bounds a batch's payload, so a batch
// never sits whole in the server's ingest queue.
//
// MinBatch is the fewest events worth an atomic batch. A single server
// stages each atomic batch of a file-backed stream in a file store of its
// own, made and removed per batch, and syncs it before the commit writes
// the events with one more sync; an event published alone costs one sync.
// BenchmarkOrderedRun (nats-server 2.15.2, sync_interval: always, a
// caller's run of n events stored in order; 7 December 2026, 2 shared
// cores at load 6–13) measured the atomic batch against the events sent
// one by one at 11–14× the time for one event, 5.7–11× for two, 3.2–3.4×
// for four, 1.5–1.6× for ten, 0.75–1.65× for sixteen (one caller), and
// 5.5–7.5× for two, 1.1–2.2× for ten, 0.84–0.99× for sixteen with 32
// callers at once. Fewer events go one by one, as Publish sends them.
// (A fast batch — allow_batched, orbit's FastPublisher — pipelines a run
// but the server still syncs each event on its own: measured once, with a
// third way in the same benchmark, at 0.85–1.05× the time of one by one
// for a run of 2 to 16 events with one caller and 0.81–1.33× with 32, so
// it is not used.)
const (
	MaxBatch      = 1000
	MinBatch      = 16
	maxBatchBytes = 8 << 20
)

// PublishBatch stores events like Publish, but writes them to disk together:
// the events of each stream go to JetStream as atomic batches (nats-server
// 2.12+, streams with allow_atomic, which EnsureStreams sets), from MinBatch
// to MaxBatch events each, stored all at once or not at all (fewer than
// MinBatch events of a stream go one by one, which is faster for them). A single server with
// sync_interval: always syncs once per batch instead of once per event; a
// cluster replicates the batch as one proposal. A batch the server refuses
// as a whole — an event in it was stored before (same Nats-Msg-Id), the
// stream does not allow atomic publishing, the commit timed out — is sent
// again event by event as Publish does, which stores each event once and
// keeps each stream's events in the order given. It returns nil once every
// event is stored.
func (c *Client) PublishBatch(ctx context.Context, evs ...Event) error {
	out, err := c.prepare(ctx, evs)
	if err != nil {
		return err
	}
	errs := make([]error, len(out))
	var wg sync.WaitGroup
	for _, idx := range byStream(out) {
		wg.Go(func() {
			msgs := make([]outgoing, len(idx))
			for i, j := range idx {
				msgs[i] = out[j]
			}
			for i, err := range c.sendBatched(ctx, msgs, []int{len(msgs)}) {
				errs[idx[i]] = err
			}
		})
	}
	wg.Wait()
	return c.finish(out, errs)
}

// byStream groups the indexes of out by stream, in order.
func byStream(out []outgoing) map[string][]int {
	m := map[string][]int{}
	for i := range out {
		m[out[i].stream] = append(m[out[i].stream], i)
	}
	return m
}

// sendBatched stores msgs, all of one stream, in atomic batches. groups are
// the sizes of the callers' runs of messages in msgs: a batch never splits a
// group unless the group alone exceeds the limits, and when a batch fails
// each of its groups is sent again on its own, message by message in order
// (sendEach); a group's messages after one that failed are not sent. The
// result has one entry per message.
func (c *Client) sendBatched(ctx context.Context, msgs []outgoing, groups []int) []error {
	errs := make([]error, len(msgs))
	start := 0
	for len(groups) > 0 {
		// Take whole groups while they fit.
		n, size, g := 0, 0, 0
		for g < len(groups) {
			gs := groups[g]
			gb := 0
			for _, o := range msgs[start+n : start+n+gs] {
				gb += len(o.msg.Data) + headerSize(o.msg.Header)
			}
			if n > 0 && (n+gs > MaxBatch || size+gb > maxBatchBytes) {
				break
			}
			n, size = n+gs, size+gb
			g++
		}
		batch := msgs[start : start+n]
		sizes := groups[:g]
		groups = groups[g:]
		if len(batch) < MinBatch {
			copy(errs[start:start+n], c.sendEach(ctx, batch, groupChains(sizes)))
			start += n
			continue
		}
		skip := 0 // the rest of a group too long for one batch whose first part failed
		for len(batch) > 0 {
			if skip > 0 {
				m := min(skip, len(batch))
				for i := range m {
					errs[start+i] = fmt.Errorf("not sent: %w", ErrEarlierEventFailed)
				}
				sizes, batch, start, skip = trimGroups(sizes, m), batch[m:], start+m, skip-m
				continue
			}
			k := min(len(batch), MaxBatch)
			if err := c.storeAtomic(ctx, batch[:k]); err != nil {
				c.metrics.batches.WithLabelValues(batch[0].stream, "fallback").Inc()
				c.log.Info("atomic batch refused, publishing its events one by one", "stream", batch[0].stream, "events", k, "error", err)
				// The batch may hold several callers' events: send each
				// caller's again on its own, so one caller's refused event
				// fails only that caller.
				var wg sync.WaitGroup
				off := 0
				for _, gs := range groupsWithin(sizes, k) {
					part := batch[off : off+gs]
					res := errs[start+off : start+off+gs]
					wg.Go(func() { copy(res, c.sendEach(ctx, part, groupChains([]int{gs}))) })
					off += gs
				}
				wg.Wait()
				within := groupsWithin(sizes, k)
				if last := len(within) - 1; within[last] < sizes[last] && slices.ContainsFunc(errs[start+k-within[last]:start+k], func(err error) bool { return err != nil }) {
					skip = sizes[last] - within[last]
				}
			} else {
				c.metrics.batches.WithLabelValues(batch[0].stream, "atomic").Inc()
				c.metrics.batchSize.Observe(float64(k))
			}
			sizes = trimGroups(sizes, k)
			batch = batch[k:]
			start += k
		}
	}
	return errs
}

// groupsWithin returns the group sizes covering the first k messages.
func groupsWithin(sizes []int, k int) []int {
	var out []int
	for _, s := range sizes {
		if k <= 0 {
			break
		}
		out = append(out, min(s, k))
		k -= s
	}
	return out
}

// trimGroups drops the first k messages from the group sizes.
func trimGroups(sizes []int, k int) []int {
	sizes = slices.Clone(sizes)
	for k > 0 && len(sizes) > 0 {
		if sizes[0] <= k {
			k -= sizes[0]
			sizes = sizes[1:]
		} else {
			sizes[0] -= k
			k = 0
		}
	}
	return sizes
}

func headerSize(h nats.Header) int {
	n := 0
	for k, vs := range h {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return n
}

// storeAtomic sends the messages of out as one atomic batch and waits for
// its commit. The batch headers go onto the messages themselves (copying
// every header map was a twentieth of the correlator's allocations) and come
// off again before returning, so a fallback sends them as Publish would.
func (c *Client) storeAtomic(ctx context.Context, out []outgoing) error {
	msgs := make([]*nats.Msg, len(out))
	for i := range out {
		msgs[i] = out[i].msg
	}
	defer func() {
		for _, m := range msgs {
			m.Header.Del(jetstreamext.BatchIDHeader)
			m.Header.Del(jetstreamext.BatchSeqHeader)
			m.Header.Del(jetstreamext.BatchCommitHeader)
			m.Reply = ""
		}
	}()
	ctx, cancel := context.WithTimeout(ctx, c.stallWait)
	defer cancel()
	// No ack for the first message: the commit's answer says whether the
	// server took the batch, and waiting for the first would add a round
	// trip to every batch.
	_, err := jetstreamext.PublishMsgBatch(ctx, c.js, msgs, jetstreamext.BatchFlowControl{AckFirst: false})
	return err
}

// Batcher merges the events that concurrent callers publish into shared
// atomic batches, per stream: a group commit. While a stream's batch is
// being stored, the next callers' events queue and go together in the next
// batch, so under load one disk sync covers the events of many callers; a
// lone caller's few events go one by one (fewer than MinBatch). Each caller's events stay
// together in one batch (up to MaxBatch); when a batch is refused, each
// caller's events are sent again on their own (see PublishBatch), so one
// caller's refused event does not fail another. Close it when done.
type Batcher struct {
	c    *Client
	stop chan struct{}
	wg   sync.WaitGroup
	// minQueued (tests only) holds each round until that many callers
	// are queued, so a test knows which callers share a batch.
	minQueued atomic.Int64

	mu     sync.Mutex
	lanes  map[string]*lane
	closed bool
}

// lane is one stream's queue and its sender.
type lane struct {
	kick  chan struct{}
	mu    sync.Mutex
	queue []*request
}

// request is one caller's events of one stream; err is set, and the
// events' spans ended, before done closes.
type request struct {
	ctx  context.Context // the caller's: a request it gave up on is not sent
	msgs []outgoing
	err  error
	done chan struct{}
}

// NewBatcher returns a Batcher publishing through c.
func (c *Client) NewBatcher() *Batcher {
	return &Batcher{c: c, stop: make(chan struct{}), lanes: map[string]*lane{}}
}

// Publish stores evs, batched with other callers' events, and returns nil
// once every one is stored; errors are per event, as Publish's. When ctx
// ends first, Publish returns its error and the events may still be stored.
func (b *Batcher) Publish(ctx context.Context, evs ...Event) error {
	out, err := b.c.prepare(ctx, evs)
	if err != nil {
		return err
	}
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		errs := make([]error, len(out))
		for i := range errs {
			errs[i] = ErrClosed
		}
		return b.c.finish(out, errs)
	}
	var reqs []*request
	for stream, idx := range byStream(out) {
		r := &request{ctx: ctx, msgs: make([]outgoing, len(idx)), done: make(chan struct{})}
		for i, j := range idx {
			r.msgs[i] = out[j]
		}
		reqs = append(reqs, r)
		b.laneLocked(stream).add(r)
	}
	b.mu.Unlock()
	var errs []error
	for _, r := range reqs {
		select {
		case <-r.done:
			errs = append(errs, r.err)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return errors.Join(errs...)
}

func (b *Batcher) laneLocked(stream string) *lane {
	l := b.lanes[stream]
	if l == nil {
		l = &lane{kick: make(chan struct{}, 1)}
		b.lanes[stream] = l
		b.wg.Go(func() { b.run(l) })
	}
	return l
}

func (l *lane) add(r *request) {
	l.mu.Lock()
	l.queue = append(l.queue, r)
	l.mu.Unlock()
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

// run sends a lane's queue, one round after the other, until the batcher
// closes and the queue is empty.
func (b *Batcher) run(l *lane) {
	stopping := false
	for {
		if !stopping {
			select {
			case <-l.kick:
			case <-b.stop:
				stopping = true
			}
		}
		l.mu.Lock()
		if !stopping && int64(len(l.queue)) < b.minQueued.Load() {
			l.mu.Unlock()
			continue
		}
		q := l.queue
		l.queue = nil
		l.mu.Unlock()
		// A caller that gave up (its context ended) was told its events
		// may not be stored and sends them again: sending them too would
		// pile copies of a slow caller's events into the rounds.
		q = slices.DeleteFunc(q, func(r *request) bool {
			if err := r.ctx.Err(); err != nil {
				r.err = b.c.finish(r.msgs, slices.Repeat([]error{err}, len(r.msgs)))
				close(r.done)
				return true
			}
			return false
		})
		if len(q) == 0 {
			if stopping {
				return
			}
			continue
		}
		var msgs []outgoing
		groups := make([]int, 0, len(q))
		for _, r := range q {
			msgs = append(msgs, r.msgs...)
			groups = append(groups, len(r.msgs))
		}
		// The callers' contexts are theirs to give up on; the round
		// itself is bounded by the ack timeout and the retries.
		errs := b.c.sendBatched(context.Background(), msgs, groups)
		for _, r := range q {
			r.err = b.c.finish(r.msgs, errs[:len(r.msgs)])
			errs = errs[len(r.msgs):]
			close(r.done)
		}
	}
}

// Close stops taking events, stores what is queued and returns when done.
func (b *Batcher) Close() {
	b.mu.Lock()
	if !b.closed {
		b.closed = true
		close(b.stop)
	}
	b.mu.Unlock()
	b.wg.Wait()
}
