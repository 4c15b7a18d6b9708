package marks

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/stateguard/stateguard/pkg/harness/natstest"
)

func revision(t *testing.T, kv jetstream.KeyValue, key string) uint64 {
	t.Helper()
	e, err := kv.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	return e.Revision()
}

func TestAConsultedMarkIsRewrittenAfterHalfItsTTL(t *testing.T) {
	js := natstest.Client(t, natstest.Run(t)).JetStream()
	ctx := t.Context()
	clk := clocktesting.NewFakeClock(time.Now())
	s, err := Open(ctx, js, "marks", 1, time.Hour, WithClock(clk))
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, "marks")
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := kv.Status(ctx); st.TTL() != time.Hour {
		t.Fatalf("bucket TTL = %s", st.TTL())
	}
	if err := s.Put(ctx, "expiry.a", []byte("event-1")); err != nil {
		t.Fatal(err)
	}
	first := revision(t, kv, "expiry.a")

	steps := []struct {
		name      string
		advance   time.Duration
		rewritten bool
	}{
		{"fresh: answered from memory", 10 * time.Minute, false},
		{"still younger than half the TTL", 15 * time.Minute, false},
		{"older than half the TTL: written again", 10 * time.Minute, true},
		{"fresh again", 5 * time.Minute, false},
	}
	rev := first
	for _, st := range steps {
		clk.Step(st.advance)
		ok, err := s.Has(ctx, "expiry.a")
		if err != nil || !ok {
			t.Fatalf("%s: Has = %v, %v", st.name, ok, err)
		}
		got := revision(t, kv, "expiry.a")
		if (got != rev) != st.rewritten {
			t.Errorf("%s: revision %d → %d", st.name, rev, got)
		}
		rev = got
	}
	e, err := kv.Get(ctx, "expiry.a")
	if err != nil || string(e.Value()) != "event-1" {
		t.Errorf("the rewritten mark holds %q (%v)", e.Value(), err)
	}

	// A restarted certwatcher (no memory) reads the bucket.
	restarted, err := Open(ctx, js, "marks", 1, time.Hour, WithClock(clk))
	if err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]bool{"expiry.a": true, "expiry.never": false} {
		if ok, err := restarted.Has(ctx, key); err != nil || ok != want {
			t.Errorf("after restart Has(%s) = %v, %v; want %v", key, ok, err, want)
		}
	}
}

func TestMarksNotConsultedExpire(t *testing.T) {
	js := natstest.Client(t, natstest.Run(t)).JetStream()
	ctx := t.Context()
	const ttl = 3 * time.Second
	s, err := Open(ctx, js, "marks", 1, ttl)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, "marks")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"expiry.kept", "expiry.dropped"} {
		if err := s.Put(ctx, k, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	// Consult one mark, as the notifier does for a certificate still
	// present, until the other one is gone from the bucket.
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		if ok, err := s.Has(ctx, "expiry.kept"); err != nil || !ok {
			t.Fatalf("consulted mark: Has = %v, %v", ok, err)
		}
		if _, err := kv.Get(ctx, "expiry.dropped"); errors.Is(err, jetstream.ErrKeyNotFound) {
			break
		}
		select {
		case <-wctx.Done():
			t.Fatal("a mark nobody consulted never expired")
		case <-time.After(100 * time.Millisecond):
		}
	}
	restarted, err := Open(ctx, js, "marks", 1, ttl)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := restarted.Has(ctx, "expiry.kept"); err != nil || !ok {
		t.Errorf("the consulted mark is gone: %v, %v", ok, err)
	}
}
