package events_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/pkg/events/eventstest"
)

// longID is an identifier a caller could send (the probe's 5,000-character
// upload id): as a subject it exceeds the server's max_control_line (4 KiB).
var longID = strings.Repeat("a", 5000)

// TestLongIdentifiersAreRefusedBeforeTheyReachTheServer builds subjects
// and keys from an over-long identifier on every path a service has (KV
// get, put, create, delete; JetStream publish, sync and async; a consumer's
// filter; a stream lookup): each returns ErrSubjectTooLong, and the
// connection is still up and working afterwards. Before the check, the
// first of them made nats-server close the connection for good.
func TestLongIdentifiersAreRefusedBeforeTheyReachTheServer(t *testing.T) {
	srv := eventstest.Run(t)
	c := eventstest.Client(t, srv)
	ctx := t.Context()
	js := c.JetStream()
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "guard"})
	if err != nil {
		t.Fatal(err)
	}
	calls := map[string]func() error{
		"kv get":    func() error { _, err := kv.Get(ctx, "upload."+longID); return err },
		"kv put":    func() error { _, err := kv.Put(ctx, longID, []byte("x")); return err },
		"kv create": func() error { _, err := kv.Create(ctx, longID, []byte("x")); return err },
		"kv delete": func() error { return kv.Delete(ctx, longID) },
		"kv bucket": func() error { _, err := js.KeyValue(ctx, longID); return err },
		"publish":   func() error { _, err := js.Publish(ctx, "sarif."+longID, nil); return err },
		"publish async": func() error {
			_, err := js.PublishMsgAsync(&nats.Msg{Subject: "$KV.guard." + longID, Data: []byte("x")})
			return err
		},
		"consume filter": func() error {
			_, err := c.Consume(ctx, events.ConsumerConfig{Stream: events.StreamSARIF, Name: "guard", Subjects: []string{"sarif." + longID}},
				func(context.Context, events.Event) error { return nil })
			return err
		},
		"consumer name": func() error {
			_, err := c.Consume(ctx, events.ConsumerConfig{Stream: events.StreamSARIF, Name: longID},
				func(context.Context, events.Event) error { return nil })
			return err
		},
		"stream": func() error { _, err := js.Stream(ctx, longID); return err },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, events.ErrSubjectTooLong) {
			t.Errorf("%s with a %d-byte identifier: %v, want ErrSubjectTooLong", name, len(longID), err)
		}
	}
	if st := c.Conn().Status(); st != nats.CONNECTED {
		t.Fatalf("connection %s after the refused calls, want CONNECTED (last error %v)", st, c.Conn().LastError())
	}
	// The checks refuse only what is too long: a key of the longest size
	// allowed still works.
	okKey := strings.Repeat("k", events.MaxSubjectLength-len("$KV.guard."))
	if _, err := kv.Put(ctx, okKey, []byte("v")); err != nil {
		t.Fatalf("put of a key at the limit: %v", err)
	}
	if e, err := kv.Get(ctx, okKey); err != nil || string(e.Value()) != "v" {
		t.Fatalf("get of a key at the limit: %v", err)
	}
	if err := c.Publish(ctx, snapshotEvent(t, 1)); err != nil {
		t.Fatalf("publish after the refused calls: %v", err)
	}
}

// TestConnectionClosedForGoodIsRecreatedAndConsumersResume makes
// nats-server close the client's connection for good ("maximum control
// line exceeded", from a raw publish that bypasses the checks): the client
// dials again, the consumer pulls again on the new connection, a KV handle
// taken before the close works on it, and the client is ready and live.
func TestConnectionClosedForGoodIsRecreatedAndConsumersResume(t *testing.T) {
	srv := eventstest.Run(t)
	var logs eventstest.LogBuffer
	c := eventstest.Client(t, srv, events.WithLogger(slog.New(slog.NewJSONHandler(&logs, nil))))
	ctx := t.Context()
	kv, err := c.JetStream().CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "state"})
	if err != nil {
		t.Fatal(err)
	}
	col := newCollector()
	sub, err := c.Consume(ctx, events.ConsumerConfig{Stream: events.StreamSnapshot, Name: "resume"}, col.handle)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Stop(context.Background())
	if err := c.Publish(ctx, snapshotEvent(t, 1)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the first event consumed", func() bool { return col.count("snap-0001") == 1 })

	old := c.Conn()
	// The server refuses the line and closes the connection for good.
	_ = old.Publish("x."+longID, nil)
	_ = old.Flush()
	eventually(t, "the old connection closed", func() bool { return old.Status() == nats.CLOSED })
	if err := old.LastError(); err == nil || !strings.Contains(err.Error(), "maximum control line exceeded") {
		t.Fatalf("the old connection closed with %v, want maximum control line exceeded", err)
	}

	eventually(t, "a new connection", func() bool { return c.Conn() != old && c.Conn().Status() == nats.CONNECTED })
	if err := c.Publish(ctx, snapshotEvent(t, 2)); err != nil {
		t.Fatalf("publish on the new connection: %v", err)
	}
	eventually(t, "the second event consumed on the new connection", func() bool { return col.count("snap-0002") == 1 })
	if _, err := kv.Put(ctx, "shop", []byte("state")); err != nil {
		t.Fatalf("put through the KV handle taken before the close: %v", err)
	}
	if e, err := kv.Get(ctx, "shop"); err != nil || string(e.Value()) != "state" {
		t.Fatalf("get through the KV handle taken before the close: %v", err)
	}
	if err := c.Ready(ctx); err != nil {
		t.Errorf("Ready after the re-creation: %v", err)
	}
	if err := c.Live(ctx); err != nil {
		t.Errorf("Live after the re-creation: %v", err)
	}
	if !strings.Contains(logs.String(), `"msg":"nats connection re-created"`) {
		t.Errorf("the client did not log the re-creation:\n%s", logs.String())
	}
}

// fakeClock is a clock the test moves; nats.go's callback goroutine reads it.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fakeClock) Add(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
}

// TestLiveFailsOnlyPastTheGrace stops the server under a client: Ready
// fails at once, Live only once the clock is past the grace; when the
// server is back both pass again.
func TestLiveFailsOnlyPastTheGrace(t *testing.T) {
	port, err := eventstest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	srv := eventstest.Run(t, eventstest.WithStoreDir(dir), eventstest.WithPort(port))
	clock := &fakeClock{now: time.Unix(1_000_000, 0)}
	c := eventstest.Client(t, srv, events.WithDownGrace(time.Minute), events.WithClock(clock.Now))
	ctx := t.Context()
	if err := c.Live(ctx); err != nil {
		t.Fatalf("Live while connected: %v", err)
	}
	srv.Shutdown()
	srv.WaitForShutdown()
	eventually(t, "Ready to fail", func() bool { return c.Ready(ctx) != nil })
	if err := c.Live(ctx); err != nil {
		t.Errorf("Live right after the disconnect: %v, want nil (within the grace)", err)
	}
	clock.Add(time.Minute - time.Second)
	if err := c.Live(ctx); err != nil {
		t.Errorf("Live 59s after the disconnect: %v, want nil (within the grace)", err)
	}
	clock.Add(2 * time.Second)
	if err := c.Live(ctx); err == nil {
		t.Error("Live passes 61s after the disconnect, want an error past the 60s grace")
	}
	eventstest.Run(t, eventstest.WithStoreDir(dir), eventstest.WithPort(port))
	eventually(t, "Ready again", func() bool { return c.Ready(ctx) == nil })
	if err := c.Live(ctx); err != nil {
		t.Errorf("Live after the reconnect: %v", err)
	}
}
