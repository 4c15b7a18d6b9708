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
