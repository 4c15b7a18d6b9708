package engine

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/pkg/harness/natstest"
	"github.com/stateguard/stateguard/services/correlator/internal/model"
	scenario "github.com/stateguard/stateguard/services/correlator/internal/scenariotest"
	"github.com/stateguard/stateguard/services/correlator/internal/statecodec"
)

// changeAll applies one new snapshot to each namespace through Update,
// all at once; the returned function waits for the Updates. It returns
// once every namespace is dirty, so one flush writes them all.
func changeAll(t *testing.T, s *store, nss []string, round int) func() []error {
	t.Helper()
	errs := make([]error, len(nss))
	var wg sync.WaitGroup
	for i, ns := range nss {
		in, err := model.FromEvent(scenario.Snapshot(ns, "data", fmt.Sprintf("snap-%d", round), scenario.T0.Add(time.Duration(round)*time.Minute),
			scenario.Run{App: "db", Versions: []string{"v1"}}))
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			errs[i] = s.Update(t.Context(), ns, func(st *model.State) (bool, *statecodec.Pending, error) {
				_, changed, err := model.Apply(model.DefaultRules(), st, in)
				if err == nil && !changed {
					err = fmt.Errorf("apply to %s changed nothing", ns)
				}
				return changed, nil, err
			})
		})
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		s.mu.Lock()
		n := len(s.dirty)
		s.mu.Unlock()
		if n == len(nss) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d namespaces dirty", n, len(nss))
		}
		time.Sleep(5 * time.Millisecond)
	}
	return func() []error { wg.Wait(); return errs }
}

// flushRound changes every namespace, writes them in one flush and checks
// that each was stored, except failing, which must fail with the server's
// refusal.
func flushRound(t *testing.T, s *store, nss []string, round int, failing string) {
	t.Helper()
	wait := changeAll(t, s, nss, round)
	s.flush(t.Context(), s.takeDirty())
	for i, err := range wait() {
		if (err != nil) != (nss[i] == failing) {
			t.Errorf("%s: error %v", nss[i], err)
		}
		var apiErr *jetstream.APIError
		if nss[i] == failing && !errors.As(err, &apiErr) {
			t.Errorf("%s failed with %v, want the server's wrong-last-sequence refusal", failing, err)
		}
	}
}

// The writer stores a flush's namespaces as one atomic batch and knows the
// revision each got; when another replica wrote one of them, the batch is
// refused whole and written again one by one: only that namespace fails.
func TestStoreWritesOneAtomicBatchAndIsolatesAConflict(t *testing.T) {
	srv := natstest.Run(t)
	c := natstest.Client(t, srv)
	e, err := New(t.Context(), Options{Client: c, Rules: model.DefaultRules(), Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	s := e.store
	var nss []string
	for i := range 30 {
		nss = append(nss, fmt.Sprintf("batch-%02d", i))
	}
	kv, err := c.JetStream().KeyValue(t.Context(), "stateguard-correlator")
	if err != nil {
		t.Fatal(err)
	}
	checkRevisions := func(skip string) {
		t.Helper()
		for _, ns := range nss {
			if ns == skip {
				continue
			}
			entry, err := kv.Get(t.Context(), key(ns))
			if err != nil {
				t.Fatalf("%s: %v", ns, err)
			}
			s.mu.Lock()
			en := s.entries[ns]
			s.mu.Unlock()
			en.wmu.Lock()
			rev := en.rev
			en.wmu.Unlock()
			if rev != entry.Revision() {
				t.Errorf("%s: the writer knows revision %d, KV has %d", ns, rev, entry.Revision())
			}
		}
	}

	flushRound(t, s, nss, 1, "")
	if got := testutil.ToFloat64(e.m.batches.WithLabelValues("atomic")); got != 1 {
		t.Errorf("%v atomic batches for one flush, want 1", got)
	}
	checkRevisions("")

	// Another replica writes batch-07.
	if _, err := kv.Put(t.Context(), key("batch-07"), []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	flushRound(t, s, nss, 2, "batch-07")
	if got := testutil.ToFloat64(e.m.batches.WithLabelValues("fallback")); got != 1 {
		t.Errorf("%v batches refused, want 1", got)
	}
	if got := testutil.ToFloat64(e.m.conflicts); got != 1 {
		t.Errorf("%v conflicts, want 1", got)
	}
	if got := s.writes.Load(); got != 30+29 {
		t.Errorf("%d writes stored, want 59", got)
	}
	checkRevisions("batch-07")

	// And the next round is one batch again.
	flushRound(t, s, nss, 3, "")
	if got := testutil.ToFloat64(e.m.batches.WithLabelValues("atomic")); got != 2 {
		t.Errorf("%v atomic batches after three flushes, want 2", got)
	}
	checkRevisions("")
}

// Update stores what its function changed and returns once it is in KV; a
// function that fails leaves nothing behind: its error comes back and the
// next Update reads the state stored before.
func TestUpdateStoresOrDiscards(t *testing.T) {
	c := natstest.Client(t, natstest.Run(t))
	e, err := New(t.Context(), Options{Client: c, Rules: model.DefaultRules(), Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	go e.store.run(t.Context())
	snapshot := func(name string) model.Input {
		in, err := model.FromEvent(scenario.Snapshot("upd", "data", name, scenario.T0, scenario.Run{App: "db", Versions: []string{"v1"}}))
		if err != nil {
			t.Fatal(err)
		}
		return in
	}
	apply := func(in model.Input, fail error) func(*model.State) (bool, *statecodec.Pending, error) {
		return func(st *model.State) (bool, *statecodec.Pending, error) {
			_, changed, err := model.Apply(model.DefaultRules(), st, in)
			if err != nil {
				return false, nil, err
			}
			return changed, nil, fail
		}
	}
	if err := e.store.Update(t.Context(), "upd", apply(snapshot("kept"), nil)); err != nil {
		t.Fatal(err)
	}
	st, ok, err := e.State(t.Context(), "upd")
	if err != nil || !ok || st.Snapshots["kept"] == nil {
		t.Fatalf("after a successful Update KV holds %v (known %t, %v), want snapshot kept", st, ok, err)
	}
	boom := errors.New("publication failed")
	if err := e.store.Update(t.Context(), "upd", apply(snapshot("lost"), boom)); !errors.Is(err, boom) {
		t.Fatalf("a failing function: Update returned %v, want its error", err)
	}
	var seen []string
	err = e.store.Update(t.Context(), "upd", func(st *model.State) (bool, *statecodec.Pending, error) {
		seen = st.SnapshotNames()
		return false, nil, nil
	})
	if err != nil || len(seen) != 1 || seen[0] != "kept" {
		t.Errorf("after a failed Update the next one sees snapshots %v (%v), want only the stored one", seen, err)
	}
}

// TestIdleNamespacesDropTheirViews: the derived views of a namespace no
// event touched for viewsIdle are dropped, those of a busy one are kept,
// and the idle one's next event derives them again, deciding as the
// views it lost would have.
func TestIdleNamespacesDropTheirViews(t *testing.T) {
	c := natstest.Client(t, natstest.Run(t))
	e, err := New(t.Context(), Options{Client: c, Rules: model.DefaultRules(), Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	go e.store.run(t.Context())
	r := model.DefaultRules()
	apply := func(ns string, ev events.Event) []model.Decision {
		t.Helper()
		in, err := model.FromEvent(ev)
		if err != nil {
			t.Fatal(err)
		}
		var ds []model.Decision
		err = e.store.Update(t.Context(), ns, func(st *model.State) (bool, *statecodec.Pending, error) {
			var changed bool
			ds, changed, err = model.Apply(r, st, in)
			return changed, nil, err
		})
		if err != nil {
			t.Fatal(err)
		}
		return ds
	}
	views := func(ns string) bool {
		t.Helper()
		e.store.mu.Lock()
		en := e.store.entries[ns]
		e.store.mu.Unlock()
		en.mu.Lock()
		defer en.mu.Unlock()
		return en.st.ViewsKept()
	}
	run := scenario.Run{App: "db", Versions: []string{"v1"}}
	for _, ns := range []string{"idle", "busy"} {
		apply(ns, scenario.SARIF(ns, "db", "u1", "v1", scenario.T0))
		apply(ns, scenario.Snapshot(ns, "data", "s1", scenario.T0.Add(time.Minute), run))
	}
	if !views("idle") || !views("busy") {
		t.Fatal("no views kept after the first events")
	}
	// What the decisions do, without the namespace that their ids carry.
	brief := func(ds []model.Decision) []string {
		var out []string
		for _, d := range ds {
			switch p := d.Payload.(type) {
			case events.SnapshotPinRequested:
				out = append(out, "pin "+p.VolumeSnapshot)
			case events.SnapshotUnpinRequested:
				out = append(out, "unpin "+p.VolumeSnapshot)
			default:
				out = append(out, d.Type)
			}
		}
		return out
	}
	cut := time.Now()
	busy := brief(apply("busy", scenario.Snapshot("busy", "data", "s2", scenario.T0.Add(2*time.Minute), run)))
	e.store.dropViewsIdleSince(cut)
	if views("idle") {
		t.Error("the idle namespace kept its views")
	}
	if !views("busy") {
		t.Error("the busy namespace lost its views")
	}
	// The same event decides alike with the views dropped and kept: s2
	// becomes the known-good, s1 is unpinned.
	idle := brief(apply("idle", scenario.Snapshot("idle", "data", "s2", scenario.T0.Add(2*time.Minute), run)))
	if !slices.Equal(idle, busy) || !slices.Contains(busy, "pin s2") {
		t.Errorf("the idle namespace's next event decided %v, the busy one's (views kept) %v: want the same, pinning s2", idle, busy)
	}
	if !views("idle") {
		t.Error("the idle namespace's next event kept no views")
	}
}
