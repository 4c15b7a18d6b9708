package engine

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/pkg/harness/natstest"
	"github.com/stateguard/stateguard/services/correlator/internal/model"
	scenario "github.com/stateguard/stateguard/services/correlator/internal/scenariotest"
	"github.com/stateguard/stateguard/services/correlator/internal/statecodec"
)

// refusingWriter is a state writer whose writes fail (a CAS conflict, a
// partition) until it is opened; it counts the refused groups. Its first
// write waits for hold to close before it fails, so that the handlers
// apply every event to the state in memory meanwhile.
type refusingWriter struct {
	real *events.KVWriter
	hold chan struct{}

	mu      sync.Mutex
	open    bool
	refused int
}

var errRefused = errors.New("the write did not reach a quorum")

func (w *refusingWriter) PutGroups(ctx context.Context, groups [][]events.KVPut) events.KVBatches {
	select {
	case <-w.hold:
	case <-ctx.Done():
	}
	w.mu.Lock()
	open := w.open
	if !open {
		w.refused += len(groups)
	}
	w.mu.Unlock()
	if open {
		return w.real.PutGroups(ctx, groups)
	}
	for _, g := range groups {
		for i := range g {
			g[i].Err = errRefused
		}
	}
	return events.KVBatches{}
}

func (w *refusingWriter) refusals() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.refused
}

func (w *refusingWriter) accept() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.open = true
}

// TestNoDecisionBeforeItsStateIsStored: while the state's write is held
// and then fails, the case study is applied in memory — its pins decided —
// and nothing reaches the streams; once writes go through, the decisions
// are published, each once, and the state is the model's.
func TestNoDecisionBeforeItsStateIsStored(t *testing.T) {
	srv := natstest.Run(t)
	c := natstest.Client(t, srv)
	e, err := New(t.Context(), Options{Client: c, Rules: model.DefaultRules(), Workers: 64})
	if err != nil {
		t.Fatal(err)
	}
	w := &refusingWriter{real: c.KVWriter("stateguard-correlator"), hold: make(chan struct{})}
	e.store.w = w
	if err := e.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = e.Stop(ctx)
	})
	cs := scenario.CaseStudy()
	publish(t, c, cs...)
	// The write is held: the handlers apply the story in memory until the
	// state pins a snapshot — a decision taken, not stored.
	deadline := time.Now().Add(2 * time.Minute)
	for pinnedInMemory(e, scenario.CaseNS) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the state in memory pinned nothing")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := stored(t, c, decisionTypes...); len(got) > 0 {
		t.Fatalf("%d decisions on the streams while no state that made them was stored: %v", len(got), briefs(t, got))
	}
	close(w.hold) // the held write fails; the next ones too, until accepted
	for w.refusals() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no write refused")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := stored(t, c, decisionTypes...); len(got) > 0 {
		t.Fatalf("%d decisions on the streams after the state's write failed: %v", len(got), briefs(t, got))
	}
	w.accept()
	drain(t, c)
	var want []string
	{
		st := model.NewState(scenario.CaseNS)
		for _, ev := range cs {
			in, err := model.FromEvent(ev)
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := model.Apply(model.DefaultRules(), st, in); err != nil {
				t.Fatal(err)
			}
		}
		got, _, err := e.State(t.Context(), scenario.CaseNS)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(st.Ledger.InForce(), got.Ledger.InForce()); diff != "" {
			t.Fatalf("decisions in force (-model +stored):\n%s", diff)
		}
		for range st.Ledger.Pinned {
			want = append(want, "pinned")
		}
	}
	got := stored(t, c, decisionTypes...)
	if len(got) == 0 || len(want) == 0 {
		t.Fatalf("%d decisions stored, %d pins in force: the case study decides nothing", len(got), len(want))
	}
	seen := map[string]bool{}
	for _, ev := range got {
		if seen[ev.ID()] {
			t.Errorf("decision %s stored twice", ev.ID())
		}
		seen[ev.ID()] = true
	}
}

// TestOutboxLeftByADeadProcessIsPublishedAtStart: a state stored with
// decisions not yet published (its process died between its commit and
// its publication) has them published by the next process at start,
// though no event comes to its namespace, and its outbox emptied.
func TestOutboxLeftByADeadProcessIsPublishedAtStart(t *testing.T) {
	srv := natstest.Run(t)
	c := natstest.Client(t, srv)
	e0, err := New(t.Context(), Options{Client: c, Rules: model.DefaultRules()})
	if err != nil {
		t.Fatal(err)
	}
	pin := events.SnapshotPinRequested{Namespace: "left", VolumeSnapshot: "snap-1", Reason: "known-good"}
	payload, err := events.NewEvent(events.TypeSnapshotPinRequested, "test", "pin-left-snap-1", pin)
	if err != nil {
		t.Fatal(err)
	}
	env := statecodec.Envelope{Layout: statecodec.Layout, Gen: 1, Outbox: []statecodec.Pending{{
		Seq: 1, Cause: "snap-1-completed", CauseTime: scenario.T0,
		Decisions: []statecodec.PendingDecision{{ID: "pin-left-snap-1", Type: events.TypeSnapshotPinRequested, Payload: payload.Data()}},
	}}}
	var codec statecodec.Codec
	js, err := codec.Encode(nil, model.NewState("left"))
	if err != nil {
		t.Fatal(err)
	}
	data, err := statecodec.Wrap(nil, env, js)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e0.kv.Create(t.Context(), key("left"), data); err != nil {
		t.Fatal(err)
	}

	e := startEngineWith(t, Options{Client: c, Rules: model.DefaultRules()})
	deadline := time.Now().Add(time.Minute)
	for {
		got := stored(t, c, events.TypeSnapshotPinRequested)
		if len(got) == 1 && got[0].ID() == "pin-left-snap-1" {
			break
		}
		if len(got) > 1 || time.Now().After(deadline) {
			t.Fatalf("pins stored: %v, want the outbox's one", briefs(t, got))
		}
		time.Sleep(20 * time.Millisecond)
	}
	for {
		en, err := e.kv.Get(t.Context(), key("left"))
		if err != nil {
			t.Fatal(err)
		}
		out, err := statecodec.PeekOutbox(en.Value())
		if err != nil {
			t.Fatal(err)
		}
		if len(out) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the outbox still holds %d records after its publication", len(out))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// pinnedInMemory is how many snapshots the state of ns in memory pins.
func pinnedInMemory(e *Engine, ns string) int {
	e.store.mu.Lock()
	en := e.store.entries[ns]
	e.store.mu.Unlock()
	if en == nil {
		return 0
	}
	en.mu.Lock()
	defer en.mu.Unlock()
	if en.st == nil {
		return 0
	}
	return len(en.st.Ledger.Pinned)
}
