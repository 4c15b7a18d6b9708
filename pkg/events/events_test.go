package events_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/pkg/events/eventstest"
)

func snapshotEvent(t testing.TB, i int) events.Event {
	t.Helper()
	return events.MustNewEvent(events.TypeSnapshotCompleted, "/test", fmt.Sprintf("snap-%04d", i), events.SnapshotCompleted{
		Namespace: "shop", PVC: "data", VolumeSnapshot: fmt.Sprintf("data-%04d", i), CreationTime: time.Unix(int64(i), 0).UTC(),
		Workloads: []events.VolumeWorkload{},
	})
}

// collector records the ids a handler saw, and how often.
type collector struct {
	mu   sync.Mutex
	seen map[string]int
	n    atomic.Int64
}

func newCollector() *collector { return &collector{seen: map[string]int{}} }

func (c *collector) handle(_ context.Context, ev events.Event) error {
	c.mu.Lock()
	c.seen[ev.ID()]++
	c.mu.Unlock()
	c.n.Add(1)
	return nil
}

func (c *collector) count(id string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.seen[id]
}

func (c *collector) snapshot() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int, len(c.seen))
	for k, v := range c.seen {
		out[k] = v
	}
	return out
}

// eventually polls cond until it holds or the test's deadline nears.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestPublishedEventsAreConsumedExactlyOnceDespiteResends(t *testing.T) {
	srv := eventstest.Run(t)
	c := eventstest.Client(t, srv)
	const n = 200
	evs := make([]events.Event, n)
	for i := range evs {
		evs[i] = snapshotEvent(t, i)
	}
	ctx := t.Context()
	if err := c.Publish(ctx, evs...); err != nil {
		t.Fatalf("publish: %v", err)
	}
	// The publisher re-sends everything (a retry after a lost ack), with the
	// same ids: JetStream must drop the copies.
	if err := c.Publish(ctx, evs...); err != nil {
		t.Fatalf("re-publish: %v", err)
	}
	st, err := c.JetStream().Stream(ctx, events.StreamSnapshot)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != n {
		t.Errorf("stream holds %d messages, want %d", info.State.Msgs, n)
	}
	col := newCollector()
	sub, err := c.Consume(ctx, events.ConsumerConfig{Stream: events.StreamSnapshot, Name: "exactly"}, col.handle)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "all events consumed", func() bool { return col.n.Load() >= n })
	// Give a duplicate a chance to show up before judging.
	time.Sleep(200 * time.Millisecond)
	if err := sub.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	want := map[string]int{}
	for i := range n {
		want[fmt.Sprintf("snap-%04d", i)] = 1
	}
	if diff := cmp.Diff(want, col.snapshot()); diff != "" {
		t.Errorf("deliveries per id (-want +got):\n%s", diff)
	}
}

func TestTransientFailureIsRedelivered(t *testing.T) {
	srv := eventstest.Run(t)
	c := eventstest.Client(t, srv)
	ctx := t.Context()
	var attempts atomic.Int32
	done := make(chan struct{})
	_, err := c.Consume(ctx, events.ConsumerConfig{Stream: events.StreamSnapshot, Name: "flaky", RetryDelay: 10 * time.Millisecond},
		func(_ context.Context, ev events.Event) error {
			if attempts.Add(1) < 3 {
				return errors.New("database briefly unavailable")
			}
			close(done)
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Publish(ctx, snapshotEvent(t, 1)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatalf("event not redelivered after transient failures (attempts=%d)", attempts.Load())
	}
	if got := attempts.Load(); got != 3 {
		t.Errorf("handler ran %d times, want 3", got)
	}
}

func TestPermanentFailureIsDeadLetteredAndTheStreamFlows(t *testing.T) {
	srv := eventstest.Run(t)
	c := eventstest.Client(t, srv)
	ctx := t.Context()
	col := newCollector()
	_, err := c.Consume(ctx, events.ConsumerConfig{Stream: events.StreamSnapshot, Name: "picky"},
		func(ctx context.Context, ev events.Event) error {
			if ev.ID() == "snap-0001" {
				return events.Permanent(errors.New("pvc name is not a DNS label"))
			}
			return col.handle(ctx, ev)
		})
	if err != nil {
		t.Fatal(err)
	}
	// A message that is not a CloudEvent at all, between good ones.
	if err := c.Publish(ctx, snapshotEvent(t, 0), snapshotEvent(t, 1)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.JetStream().Publish(ctx, "stateguard.snapshot.completed", []byte("not an event")); err != nil {
		t.Fatal(err)
	}
	if err := c.Publish(ctx, snapshotEvent(t, 2)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "events after the poison ones", func() bool { return col.count("snap-0002") == 1 })

	dl, err := c.JetStream().OrderedConsumer(ctx, events.StreamDeadLetter, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	reasons := map[string]string{}
	for len(reasons) < 2 {
		m, err := dl.Next(jetstream.FetchMaxWait(10 * time.Second))
		if err != nil {
			t.Fatalf("dead letters: got %v, then %v", reasons, err)
		}
		if got, want := m.Subject(), events.DeadLetterSubject(events.StreamSnapshot, "picky"); got != want {
			t.Errorf("dead letter subject %q, want %q", got, want)
		}
		id := m.Headers().Get("ce-id")
		if id == "" {
			id = string(m.Data())
		}
		reasons[id] = m.Headers().Get(events.HeaderDeadLetterReason)
	}
	if r := reasons["snap-0001"]; r != "permanent: pvc name is not a DNS label" {
		t.Errorf("reason for snap-0001 = %q", r)
	}
	if r := reasons["not an event"]; r == "" || r[:15] != "malformed event" {
		t.Errorf("reason for the malformed message = %q, want malformed event: …", r)
	}
	if col.count("snap-0000") != 1 {
		t.Error("event before the poison one was not handled")
	}
}

func TestExhaustedDeliveriesAreDeadLettered(t *testing.T) {
	srv := eventstest.Run(t)
	c := eventstest.Client(t, srv)
	ctx := t.Context()
	_, err := c.Consume(ctx, events.ConsumerConfig{Stream: events.StreamSnapshot, Name: "doomed", MaxDeliver: 3, RetryDelay: 5 * time.Millisecond},
		func(context.Context, events.Event) error { return errors.New("always down") })
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Publish(ctx, snapshotEvent(t, 7)); err != nil {
		t.Fatal(err)
	}
	dl, err := c.JetStream().OrderedConsumer(ctx, events.StreamDeadLetter, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := dl.Next(jetstream.FetchMaxWait(20 * time.Second))
	if err != nil {
		t.Fatalf("no dead letter: %v", err)
	}
	if got, want := m.Headers().Get(events.HeaderDeadLetterReason), "max deliveries (3) exhausted: always down"; got != want {
		t.Errorf("reason %q, want %q", got, want)
	}
	if got := m.Headers().Get(events.HeaderDeadLetterDeliveries); got != "3" {
		t.Errorf("deliveries header %q, want 3", got)
	}
}

func TestConsumerStoppedMidBatchLosesNothing(t *testing.T) {
	dir := t.TempDir()
	srv := eventstest.Run(t, eventstest.WithStoreDir(dir))
	c := eventstest.Client(t, srv)
	ctx := t.Context()
	const n = 50
	evs := make([]events.Event, n)
	for i := range evs {
		evs[i] = snapshotEvent(t, i)
	}
	if err := c.Publish(ctx, evs...); err != nil {
		t.Fatal(err)
	}
	// The first consumer acknowledges ten events, then hangs on the
	// eleventh as a crashing process would, and is stopped.
	first := newCollector()
	release := make(chan struct{})
	var handled atomic.Int32
	sub, err := c.Consume(ctx, events.ConsumerConfig{Stream: events.StreamSnapshot, Name: "resumable", AckWait: time.Second},
		func(ctx context.Context, ev events.Event) error {
			if handled.Add(1) > 10 {
				<-release
				return errors.New("stopped before finishing")
			}
			return first.handle(ctx, ev)
		})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "ten events handled", func() bool { return first.n.Load() == 10 })
	stopCtx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	_ = sub.Stop(stopCtx) // times out: the handler is stuck
	cancel()
	close(release)

	// A new consumer with the same durable name, after restart, gets the
	// rest — at least once each; none is lost.
	second := newCollector()
	c2 := eventstest.Client(t, srv)
	if _, err := c2.Consume(ctx, events.ConsumerConfig{Stream: events.StreamSnapshot, Name: "resumable", AckWait: time.Second}, second.handle); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the remaining events", func() bool {
		for i := 10; i < n; i++ {
			if second.count(fmt.Sprintf("snap-%04d", i)) == 0 {
				return false
			}
		}
		return true
	})
	for i := range 10 {
		if id := fmt.Sprintf("snap-%04d", i); second.count(id) != 0 {
			t.Errorf("acknowledged event %s delivered again", id)
		}
	}
}

// With Concurrency, handlers run side by side: eight handlers that each wait
// for all eight to arrive (a group commit does much the same) finish, and
// Stop waits for the events in hand.
func TestConcurrentHandlersRunSideBySide(t *testing.T) {
	srv := eventstest.Run(t)
	c := eventstest.Client(t, srv)
	ctx := t.Context()
	const width, n = 8, 64
	evs := make([]events.Event, n)
	for i := range evs {
		evs[i] = snapshotEvent(t, i)
	}
	if err := c.Publish(ctx, evs...); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	arrived := 0
	full := make(chan struct{})
	var inHand, most atomic.Int32
	done := newCollector()
	sub, err := c.Consume(ctx, events.ConsumerConfig{Stream: events.StreamSnapshot, Name: "wide", Concurrency: width},
		func(ctx context.Context, ev events.Event) error {
			now := inHand.Add(1)
			defer inHand.Add(-1)
			for {
				m := most.Load()
				if now <= m || most.CompareAndSwap(m, now) {
					break
				}
			}
			mu.Lock()
			arrived++
			if arrived == width {
				close(full)
			}
			mu.Unlock()
			select {
			case <-full:
			case <-ctx.Done():
				return ctx.Err()
			}
			return done.handle(ctx, ev)
		})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "every event handled", func() bool { return done.n.Load() >= n })
	if err := sub.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if got := most.Load(); got != width {
		t.Errorf("at most %d handlers ran at once, want %d", got, width)
	}
	for i := range n {
		if id := fmt.Sprintf("snap-%04d", i); done.count(id) != 1 {
			t.Errorf("event %s handled %d times, want 1", id, done.count(id))
		}
	}
}

func TestTraceContextTravelsFromPublisherToConsumer(t *testing.T) {
	srv := eventstest.Run(t)
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	c := eventstest.Client(t, srv, events.WithTracerProvider(tp))
	ctx := t.Context()
	got := make(chan trace.SpanContext, 1)
	_, err := c.Consume(ctx, events.ConsumerConfig{Stream: events.StreamSnapshot, Name: "traced"},
		func(ctx context.Context, ev events.Event) error {
			got <- trace.SpanContextFromContext(ctx)
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	pctx, parent := tp.Tracer("test").Start(ctx, "ci job")
	if err := c.Publish(pctx, snapshotEvent(t, 1)); err != nil {
		t.Fatal(err)
	}
	parent.End()
	var sc trace.SpanContext
	select {
	case sc = <-got:
	case <-time.After(20 * time.Second):
		t.Fatal("not consumed")
	}
	if sc.TraceID() != parent.SpanContext().TraceID() {
		t.Errorf("consumer trace id %s, want the publisher's %s", sc.TraceID(), parent.SpanContext().TraceID())
	}
	eventually(t, "spans ended", func() bool { return len(rec.Ended()) >= 3 })
	kinds := map[trace.SpanKind]string{}
	for _, s := range rec.Ended() {
		if s.SpanContext().TraceID() != parent.SpanContext().TraceID() {
			t.Errorf("span %q in another trace", s.Name())
		}
		kinds[s.SpanKind()] = s.Name()
	}
	want := map[trace.SpanKind]string{
		trace.SpanKindInternal: "ci job",
		trace.SpanKindProducer: "send stateguard.snapshot.completed",
		trace.SpanKindConsumer: "process stateguard.snapshot.completed",
	}
	if diff := cmp.Diff(want, kinds); diff != "" {
		t.Errorf("spans (-want +got):\n%s", diff)
	}
}

func TestWireFormatIsBinaryModeWithMsgID(t *testing.T) {
	srv := eventstest.Run(t)
	c := eventstest.Client(t, srv)
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	sub, err := nc.SubscribeSync("stateguard.>")
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	ev := snapshotEvent(t, 3)
	ev.SetSubject("shop/data 100%")
	if err := c.Publish(t.Context(), ev); err != nil {
		t.Fatal(err)
	}
	m, err := sub.NextMsg(10 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for h, want := range map[string]string{
		"ce-specversion": "1.0",
		"ce-type":        events.TypeSnapshotCompleted,
		"ce-source":      "/test",
		"ce-id":          "snap-0003",
		"ce-subject":     "shop/data%20100%25",
		"Nats-Msg-Id":    "snap-0003",
		"Content-Type":   "application/json",
	} {
		if got := m.Header.Get(h); got != want {
			t.Errorf("header %s = %q, want %q", h, got, want)
		}
	}
	if m.Header.Get("traceparent") == "" && m.Header.Get("ce-traceparent") == "" {
		// No span in the context: no trace headers is right. With one, see
		// the tracing test.
		t.Log("no trace context (none was active)")
	}
	back, err := events.DecodeMsg(m)
	if err != nil {
		t.Fatal(err)
	}
	if back.Subject() != "shop/data 100%" || back.ID() != ev.ID() || string(back.Data()) != string(ev.Data()) {
		t.Errorf("round trip changed the event: %v", back)
	}
}
