package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/pkg/harness/natstest"
	"github.com/stateguard/stateguard/services/correlator/internal/model"
	"github.com/stateguard/stateguard/services/correlator/internal/statecodec"
)

// batchOf queues n Updates of ns while the test holds the namespace's
// lock, so that they are applied as one batch once it lets go: the i-th
// marks "event-<round>-<i>" published in the journal and decides a pin.
// ran gets the marks in the order the functions ran; the returned function
// waits for the Updates and returns their errors.
func batchOf(t *testing.T, s *store, ns string, round, n int, ran *[]string) func() []error {
	t.Helper()
	en, err := s.acquire(t.Context(), ns)
	if err != nil {
		t.Fatal(err)
	}
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		id := fmt.Sprintf("event-%d-%d", round, i)
		payload, err := json.Marshal(events.SnapshotPinRequested{Namespace: ns, VolumeSnapshot: "snap-" + id, PVC: "data", Reason: "known-good"})
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			errs[i] = s.Update(t.Context(), ns, func(st *model.State) (bool, *statecodec.Pending, error) {
				*ran = append(*ran, id)
				if st.Journal.Published == nil {
					st.Journal.Published = map[string]bool{}
				}
				st.Journal.Published[id] = true
				return true, &statecodec.Pending{Cause: id, CauseTime: time.Now(), Decisions: []statecodec.PendingDecision{
					{ID: "pin-" + id, Type: events.TypeSnapshotPinRequested, Payload: payload}}}, nil
			})
		})
	}
	deadline := time.Now().Add(time.Minute)
	for {
		en.qmu.Lock()
		queued := len(en.queue)
		en.qmu.Unlock()
		if queued == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d Updates queued", queued, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	en.mu.Unlock()
	s.unref(en)
	return func() []error { wg.Wait(); return errs }
}

// The events of a namespace that queue while it is busy are applied as one
// batch, in the order they queued, and stored by one group commit. When
// that commit fails, every handler of the batch fails (none acknowledges
// its event) and none of their decisions is published; once writes go
// through, a batch is acknowledged and published whole, in order.
func TestABatchIsCommittedWholeOrNotAtAll(t *testing.T) {
	c := natstest.Client(t, natstest.Run(t))
	var mu sync.Mutex
	var published []string
	e, err := New(t.Context(), Options{Client: c, Rules: model.DefaultRules(), Workers: 2,
		OnPublished: func(_ string, _ time.Time, ds []model.Decision) {
			mu.Lock()
			defer mu.Unlock()
			for _, d := range ds {
				published = append(published, d.ID)
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	w := &refusingWriter{real: c.KVWriter("stateguard-correlator"), hold: make(chan struct{})}
	close(w.hold)
	cw := &countingWriter{real: w}
	e.store.w = cw
	if err := e.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = e.Stop(ctx)
	})
	const ns, n = "batch", 8

	var ran []string
	for i, err := range batchOf(t, e.store, ns, 0, n, &ran)() {
		if err == nil {
			t.Errorf("handler %d returned no error though its commit failed: its event would be acknowledged", i)
		}
	}
	if len(ran) != n {
		t.Fatalf("%d functions ran, want %d", len(ran), n)
	}
	if groups := cw.take(); len(groups) != 1 {
		t.Errorf("the batch was written in %d groups, want one commit", len(groups))
	}
	mu.Lock()
	if len(published) > 0 {
		t.Errorf("decisions of a batch whose commit failed were published: %v", published)
	}
	mu.Unlock()

	w.accept()
	ran = nil
	for i, err := range batchOf(t, e.store, ns, 1, n, &ran)() {
		if err != nil {
			t.Errorf("handler %d: %v", i, err)
		}
	}
	if groups := cw.take(); len(groups) == 0 || len(groups[0]) == 0 || groups[0][0] != key(ns) {
		t.Errorf("groups written: %v; want the batch's commit first", groups)
	}
	var want []string
	for _, id := range ran {
		want = append(want, "pin-"+id)
	}
	mu.Lock()
	got := slices.Clone(published)
	mu.Unlock()
	if !slices.Equal(got, want) {
		t.Errorf("published %v, want the batch's decisions in the order its functions ran %v", got, want)
	}
	st, _, err := e.State(t.Context(), ns)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ran {
		if !st.Journal.Published[id] {
			t.Errorf("%s is not in the stored state", id)
		}
	}
	for i := range n {
		if id := fmt.Sprintf("event-0-%d", i); st.Journal.Published[id] {
			t.Errorf("%s of the failed batch is in the stored state", id)
		}
	}
}

// Many handlers of one namespace at once, each applying several events in
// a row: each queue applied is handed on to a handler still waiting, none
// is left waiting, and the stored state holds every event.
func TestEveryQueuedHandlerOfANamespaceFinishes(t *testing.T) {
	c := natstest.Client(t, natstest.Run(t))
	e := startEngineWith(t, Options{Client: c, Rules: model.DefaultRules(), Workers: 2})
	const ns, handlers, each = "busy", 32, 20
	errs := make(chan error, handlers*each)
	var wg sync.WaitGroup
	for h := range handlers {
		wg.Go(func() {
			for i := range each {
				id := fmt.Sprintf("event-%d-%d", h, i)
				errs <- e.store.Update(t.Context(), ns, func(st *model.State) (bool, *statecodec.Pending, error) {
					if st.Journal.Published == nil {
						st.Journal.Published = map[string]bool{}
					}
					st.Journal.Published[id] = true
					return true, nil, nil
				})
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		t.Fatalf("%d of %d Updates returned after 2 minutes: handlers left waiting in the queue", len(errs), handlers*each)
	}
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	st, _, err := e.State(t.Context(), ns)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Journal.Published) != handlers*each {
		t.Errorf("the stored state holds %d events, want %d", len(st.Journal.Published), handlers*each)
	}
}

// A handler that queues while a batch is applied, with no handler coming
// after it, is handed the queue and finishes.
func TestAHandlerQueuedDuringABatchIsHandedTheQueue(t *testing.T) {
	c := natstest.Client(t, natstest.Run(t))
	e := startEngineWith(t, Options{Client: c, Rules: model.DefaultRules(), Workers: 2})
	const ns = "handover"
	mark := func(id string) updateFn {
		return func(st *model.State) (bool, *statecodec.Pending, error) {
			if st.Journal.Published == nil {
				st.Journal.Published = map[string]bool{}
			}
			st.Journal.Published[id] = true
			return true, nil, nil
		}
	}
	second := make(chan error, 1)
	err := e.store.Update(t.Context(), ns, func(st *model.State) (bool, *statecodec.Pending, error) {
		go func() { second <- e.store.Update(t.Context(), ns, mark("second")) }()
		e.store.mu.Lock()
		en := e.store.entries[ns]
		e.store.mu.Unlock()
		deadline := time.Now().Add(time.Minute)
		for {
			en.qmu.Lock()
			queued := len(en.queue)
			en.qmu.Unlock()
			if queued == 1 {
				break
			}
			if time.Now().After(deadline) {
				return false, nil, fmt.Errorf("the second handler did not queue")
			}
			time.Sleep(time.Millisecond)
		}
		return mark("first")(st)
	})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-second:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Minute):
		t.Fatal("the handler queued during the batch was left waiting")
	}
	st, _, err := e.State(t.Context(), ns)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Journal.Published["first"] || !st.Journal.Published["second"] {
		t.Errorf("stored state holds %v, want first and second", st.Journal.Published)
	}
}
