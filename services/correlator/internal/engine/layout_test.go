package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
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

// maxPayload is nats-server's default max payload, the largest value a KV
// key can hold.
const maxPayload = 1 << 20

// mixedState is the state of one namespace of apps applications after
// slots slots of the benchmark's mixed stream.
func mixedState(t *testing.T, apps, slots int) *model.State {
	t.Helper()
	m := scenario.MixedStream{Apps: apps, PerNS: apps, Start: scenario.T0, ObserveEvery: 20}
	ns, _ := m.Names(0)
	st := model.NewState(ns)
	evs := m.Certs()
	for k := range slots {
		evs = append(evs, m.Slot(k)...)
	}
	for _, ev := range evs {
		in, err := model.FromEvent(ev)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := model.Apply(model.DefaultRules(), st, in); err != nil {
			t.Fatal(err)
		}
	}
	return st
}

// bigState is the facts of one namespace of apps applications with slots
// snapshots each (and an observation per app), made directly: applying the
// mixed stream's 40,000 events to one namespace takes minutes.
func bigState(apps, slots int) *model.State {
	st := model.NewState("big")
	st.Snapshots = map[string]*model.Snapshot{}
	st.Observations = map[string]*model.Observation{}
	for i := range apps {
		app := fmt.Sprintf("app-%05d", i)
		pvc := "data-" + app
		ws := []model.Workload{{App: app, Pod: app + "-0", Owner: &events.ObjectRef{Kind: "StatefulSet", Namespace: "big", Name: app},
			Versions: []string{scenario.Digest(app + "-v1")}}}
		for k := range slots {
			name := fmt.Sprintf("%s-s%d", app, k)
			st.Snapshots[name] = &model.Snapshot{Name: name, PVC: pvc, EventID: "ev-" + name, Time: scenario.T0.Add(time.Duration(k) * time.Minute),
				Completed: true, RestoreSize: "1Gi", Workloads: ws}
		}
		st.Observations["obs-"+app] = &model.Observation{EventID: "obs-" + app, PVC: pvc, Time: scenario.T0, Workloads: ws,
			Secrets: map[string][]string{app: {app + "-tls"}}}
	}
	return st
}

// sameState fails unless got derives the same view and decisions as want.
func sameState(t *testing.T, want, got *model.State) {
	t.Helper()
	wv, _ := json.Marshal(model.Derive(model.DefaultRules(), want))
	gv, _ := json.Marshal(model.Derive(model.DefaultRules(), got))
	if string(wv) != string(gv) {
		t.Errorf("view of %s read back differs from the one written (%d bytes, want %d)", want.Namespace, len(gv), len(wv))
	}
	if diff := cmp.Diff(want.Ledger.InForce(), got.Ledger.InForce()); diff != "" {
		t.Errorf("decisions in force (-written +read):\n%s", diff)
	}
	wf, _ := json.Marshal(want)
	gf, _ := json.Marshal(got)
	if string(wf) != string(gf) {
		t.Errorf("facts of %s read back differ from the ones written", want.Namespace)
	}
}

// 1,000 applications in one namespace at the benchmark's steady history
// (40 snapshots per PVC): in the single-key layout one value over the max
// payload; split, every key under it, written in one group and read back
// the same.
func TestThousandAppsInOneNamespaceSplitUnderTheMaxPayload(t *testing.T) {
	st := bigState(1000, 40)
	var c statecodec.Codec
	js, err := c.Encode(nil, st)
	if err != nil {
		t.Fatal(err)
	}
	single := len(statecodec.Compress(nil, js))
	t.Logf("single key: %d bytes of JSON, %d stored", len(js), single)
	if single <= maxPayload {
		t.Fatalf("the single-key state is %d bytes, not over the max payload: the test does not exercise the split", single)
	}

	c1 := natstest.Client(t, natstest.Run(t))
	e := startEngineWith(t, Options{Client: c1, Rules: model.DefaultRules(), Workers: 2})
	st.MarkAllPartsChanged()
	if err := e.store.Update(t.Context(), st.Namespace, func(s *model.State) (bool, *statecodec.Pending, error) {
		*s = *st
		return true, nil, nil
	}); err != nil {
		t.Fatal(err)
	}
	lister, err := e.kv.ListKeys(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	keys, largest := 0, 0
	for k := range lister.Keys() {
		if !strings.HasPrefix(k, "ns.") {
			continue
		}
		en, err := e.kv.Get(t.Context(), k)
		if err != nil {
			t.Fatal(err)
		}
		keys++
		largest = max(largest, len(en.Value()))
	}
	t.Logf("split: %d keys, the largest %d bytes", keys, largest)
	if largest > maxPayload || keys < 2 || keys > 1+Parts+UploadParts {
		t.Errorf("%d keys, the largest %d bytes: want 2..%d keys, each under %d", keys, largest, 1+Parts+UploadParts, maxPayload)
	}
	got, _, err := e.State(t.Context(), st.Namespace)
	if err != nil {
		t.Fatal(err)
	}
	wf, _ := json.Marshal(st)
	gf, _ := json.Marshal(got)
	if string(wf) != string(gf) {
		t.Errorf("facts read back differ from the ones written (%d bytes of JSON, want %d)", len(gf), len(wf))
	}
}

// A bucket of the single-key layout is rewritten split when the
// correlator starts: the same state, read from the namespace's key and its
// parts, the bucket marked, and a second start rewrites nothing.
func TestStartMigratesTheSingleKeyLayout(t *testing.T) {
	c := natstest.Client(t, natstest.Run(t))
	e := startEngineWith(t, Options{Client: c, Rules: model.DefaultRules(), Workers: 2})
	states := []*model.State{mixedState(t, 3, 25)}
	cs := model.NewState(scenario.CaseNS)
	for _, ev := range scenario.CaseStudy() {
		in, err := model.FromEvent(ev)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := model.Apply(model.DefaultRules(), cs, in); err != nil {
			t.Fatal(err)
		}
	}
	states = append(states, cs)
	// What a correlator before the split stored: one key per namespace,
	// and no layout mark.
	if err := e.kv.Delete(t.Context(), layoutKey); err != nil {
		t.Fatal(err)
	}
	for _, st := range states {
		var codec statecodec.Codec
		js, err := codec.Encode(nil, st)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.kv.Put(t.Context(), key(st.Namespace), statecodec.Compress(nil, js)); err != nil {
			t.Fatal(err)
		}
	}

	n, err := e.store.migrate(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if n != len(states) {
		t.Errorf("%d states migrated, want %d", n, len(states))
	}
	for _, st := range states {
		en, err := e.kv.Get(t.Context(), key(st.Namespace))
		if err != nil {
			t.Fatal(err)
		}
		env, err := statecodec.Unwrap(en.Value(), model.NewState(st.Namespace))
		if err != nil {
			t.Fatal(err)
		}
		if env.Layout != statecodec.Layout || len(env.Parts) == 0 {
			t.Errorf("%s after the migration: layout %d, %d parts", st.Namespace, env.Layout, len(env.Parts))
		}
		// A fresh read, not the cache.
		got, _, err := loadState(t.Context(), e.kv, st.Namespace)
		if err != nil {
			t.Fatal(err)
		}
		sameState(t, st, got)
	}
	if m, err := e.kv.Get(t.Context(), layoutKey); err != nil || string(m.Value()) != fmt.Sprint(statecodec.Layout) {
		t.Errorf("layout mark: %v", err)
	}
	if n, err := e.store.migrate(t.Context()); err != nil || n != 0 {
		t.Errorf("second migration: %d states, %v; want none", n, err)
	}
	nss, err := e.Namespaces(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(nss) != len(states) {
		t.Errorf("namespaces %v: the parts' keys must not be listed as namespaces", nss)
	}
}

// layout2 stores st as a correlator of layout 2 did: the PVCs' facts in
// their parts, the uploads in the namespace's key.
func layout2(t *testing.T, e *Engine, st *model.State) {
	t.Helper()
	var names []string
	for _, pvc := range st.TakeChangedParts() {
		if p := partOf(pvc); !slices.Contains(names, p) {
			names = append(names, p)
		}
	}
	rest, facts := st.PartsOf(partOf, names)
	rest.Uploads = st.Uploads
	manifest := map[string]uint64{}
	for name, p := range facts {
		js, err := statecodec.EncodePart(st.Namespace, p)
		if err != nil {
			t.Fatal(err)
		}
		data, err := statecodec.Wrap(nil, statecodec.Envelope{Layout: 2, Gen: 1, Part: name}, js)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.kv.Put(t.Context(), partKey(st.Namespace, name), data); err != nil {
			t.Fatal(err)
		}
		manifest[name] = 1
	}
	var c statecodec.Codec
	js, err := c.Encode(nil, rest)
	if err != nil {
		t.Fatal(err)
	}
	data, err := statecodec.Wrap(nil, statecodec.Envelope{Layout: 2, Gen: 1, Parts: manifest}, js)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.kv.Put(t.Context(), key(st.Namespace), data); err != nil {
		t.Fatal(err)
	}
}

// A bucket of layout 2 (uploads in the namespace's key) is rewritten at
// start: the uploads move to their parts, the namespace's key keeps none,
// and the state reads back the same.
func TestStartMovesTheUploadsOfLayout2(t *testing.T) {
	c := natstest.Client(t, natstest.Run(t))
	e := startEngineWith(t, Options{Client: c, Rules: model.DefaultRules(), Workers: 2})
	st := mixedState(t, 3, 25)
	if len(st.Uploads) == 0 {
		t.Fatal("the mixed stream made no uploads: the test does not exercise their move")
	}
	layout2(t, e, st)
	if _, err := e.kv.Put(t.Context(), layoutKey, []byte("2")); err != nil {
		t.Fatal(err)
	}
	n, err := e.store.migrate(t.Context())
	if err != nil || n != 1 {
		t.Fatalf("migrated %d states, %v; want 1", n, err)
	}
	en, err := e.kv.Get(t.Context(), key(st.Namespace))
	if err != nil {
		t.Fatal(err)
	}
	own := model.NewState(st.Namespace)
	env, err := statecodec.Unwrap(en.Value(), own)
	if err != nil {
		t.Fatal(err)
	}
	uploadParts := 0
	for name := range env.Parts {
		if strings.HasPrefix(name, "u") {
			uploadParts++
		}
	}
	if len(st.Journal.PinGeneration) == 0 {
		t.Fatal("no pin generations: the test does not exercise their move")
	}
	for name := range own.Journal.PinGeneration {
		if s := st.Snapshots[name]; s != nil && s.PVC != "" {
			t.Errorf("the pin generation of %s, a snapshot of PVC %s, is in the namespace's key, not in its PVC's part", name, s.PVC)
		}
	}
	if env.Layout != statecodec.Layout || len(own.Uploads) != 0 || uploadParts == 0 {
		t.Errorf("namespace's key after the migration: layout %d, %d uploads in it, %d upload parts; want layout %d, none, some",
			env.Layout, len(own.Uploads), uploadParts, statecodec.Layout)
	}
	got, _, err := loadState(t.Context(), e.kv, st.Namespace)
	if err != nil {
		t.Fatal(err)
	}
	sameState(t, st, got)
	if n, err := e.store.migrate(t.Context()); err != nil || n != 0 {
		t.Errorf("second migration: %d states, %v; want none", n, err)
	}
}

// countingWriter records the keys of every group it stores.
type countingWriter struct {
	real groupWriter
	mu   sync.Mutex
	keys [][]string
}

func (w *countingWriter) PutGroups(ctx context.Context, groups [][]events.KVPut) events.KVBatches {
	w.mu.Lock()
	for _, g := range groups {
		var ks []string
		for _, p := range g {
			ks = append(ks, p.Key)
		}
		w.keys = append(w.keys, ks)
	}
	w.mu.Unlock()
	return w.real.PutGroups(ctx, groups)
}

func (w *countingWriter) take() [][]string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.keys
	w.keys = nil
	return out
}

// A write carries the parts of what changed: a snapshot writes its PVC's
// part and no upload part; an upload writes its upload part and no PVC's.
func TestAWriteCarriesOnlyThePartsThatChanged(t *testing.T) {
	c := natstest.Client(t, natstest.Run(t))
	e := startEngineWith(t, Options{Client: c, Rules: model.DefaultRules(), Workers: 2})
	w := &countingWriter{real: e.store.w}
	e.store.w = w
	m := scenario.MixedStream{Apps: 20, PerNS: 20, Start: scenario.T0}
	ns, _ := m.Names(0)
	// Everything the namespace has so far, written.
	evs := m.Certs()
	for k := range 20 {
		evs = append(evs, m.Slot(k)...)
	}
	for _, ev := range evs {
		if err := e.Handle(t.Context(), ev); err != nil {
			t.Fatal(err)
		}
	}
	w.take()
	var snap, upload events.Event
	var haveSnap, haveUpload bool
	for _, ev := range m.Slot(20) {
		switch {
		case ev.Type() == events.TypeSnapshotCompleted && !haveSnap:
			snap, haveSnap = ev, true
		case ev.Type() == events.TypeSARIFUploaded && !haveUpload:
			upload, haveUpload = ev, true
		}
	}
	if !haveSnap || !haveUpload {
		t.Fatal("slot 20 of the mixed stream has no snapshot or no upload: the test does not exercise both")
	}
	for _, tc := range []struct {
		ev         events.Event
		want, none string
	}{
		{snap, key(ns) + ".part.", key(ns) + ".part.u"},
		{upload, key(ns) + ".part.u", ""},
	} {
		if err := e.Handle(t.Context(), tc.ev); err != nil {
			t.Fatal(err)
		}
		// Groups without parts are the outbox's removals of published
		// decisions.
		groups, parts := w.take(), 0
		for _, g := range groups {
			if g[0] != key(ns) {
				t.Errorf("%s: a group headed by %s; want the namespace's key first", tc.ev.Type(), g[0])
			}
			for _, k := range g[1:] {
				parts++
				if !strings.HasPrefix(k, tc.want) || tc.none != "" && strings.HasPrefix(k, tc.none) {
					t.Errorf("%s wrote %s (group %v)", tc.ev.Type(), k, g)
				}
			}
		}
		if parts == 0 {
			t.Errorf("%s: groups written %v; want its part among them", tc.ev.Type(), groups)
		}
	}
}

// After every event the state read back from KV (the namespace's key and
// its parts, read afresh) is the state in memory: with snapshots pinned,
// unpinned and pruned all along (a history of 3), and uploads coming and
// going, nothing a write left out of its parts is lost.
func TestStoredStateReadsBackAsInMemoryAfterEveryEvent(t *testing.T) {
	c := natstest.Client(t, natstest.Run(t))
	r := model.DefaultRules()
	r.History = 3
	e := startEngineWith(t, Options{Client: c, Rules: r, Workers: 2})
	m := scenario.MixedStream{Apps: 6, PerNS: 6, Start: scenario.T0, ObserveEvery: 5}
	evs := m.Certs()
	for k := range 45 {
		evs = append(evs, m.Slot(k)...)
	}
	// The case study pins an old snapshot on a scan (its PVC's facts
	// unchanged) and unpins it when its incident closes; then its PVC is
	// restored by an event that carries the snapshot's time, which a
	// restart must not lose.
	evs = append(evs, scenario.CaseStudy()...)
	evs = append(evs, scenario.RestoredTaken(scenario.CaseNS, scenario.CasePVC, "s2", "", scenario.T0.Add(2*time.Hour), scenario.T0.Add(6*time.Hour)))
	// Rescans of one version: each upload drops the one before (in
	// another upload part, mostly).
	for i := range 8 {
		at := scenario.T0.Add(time.Duration(i) * time.Minute)
		evs = append(evs, scenario.SARIF("rescans", "a", fmt.Sprintf("a-u%d", i), "a-v1", at))
	}
	pinned := 0
	for i, ev := range evs {
		if err := e.Handle(t.Context(), ev); err != nil {
			t.Fatal(err)
		}
		in, err := model.FromEvent(ev)
		if err != nil || in.Namespace == "" {
			continue
		}
		ns := in.Namespace
		e.store.mu.Lock()
		en := e.store.entries[ns]
		e.store.mu.Unlock()
		en.mu.Lock()
		want, err := json.Marshal(en.st)
		pinned = max(pinned, len(en.st.Journal.PinGeneration))
		en.mu.Unlock()
		if err != nil {
			t.Fatal(err)
		}
		got, _, err := loadState(t.Context(), e.kv, ns)
		if err != nil {
			t.Fatal(err)
		}
		if gs, _ := json.Marshal(got); string(gs) != string(want) {
			t.Fatalf("after event %d (%s %s) the state of %s read back differs from the one in memory:\n%s",
				i, ev.Type(), ev.ID(), ns, cmp.Diff(string(want), string(gs)))
		}
	}
	if pinned == 0 {
		t.Fatal("no snapshot was ever pinned: the test does not exercise the pin generations")
	}
}

// The pin generations kept in the namespace's own key (of a snapshot not
// known or without a PVC) survive the state being read again from KV and
// written with a change elsewhere.
func TestPinGenerationsOfNoPartSurviveAReload(t *testing.T) {
	c := natstest.Client(t, natstest.Run(t))
	e := startEngineWith(t, Options{Client: c, Rules: model.DefaultRules(), Workers: 2})
	ns := "apart"
	st := model.NewState(ns)
	st.Snapshots = map[string]*model.Snapshot{"b": {Name: "b", Time: scenario.T0}}
	st.Journal.PinGeneration = map[string]int{"b": 2, "c": 3}
	st.MarkAllPartsChanged()
	if err := e.store.Update(t.Context(), ns, func(s *model.State) (bool, *statecodec.Pending, error) {
		*s = *st
		return true, nil, nil
	}); err != nil {
		t.Fatal(err)
	}
	// Out of the cache: the next handler reads the state from KV.
	e.store.mu.Lock()
	en := e.store.entries[ns]
	e.store.mu.Unlock()
	e.store.discard(en, errors.New("test: read again"))
	in, err := model.FromEvent(scenario.Snapshot(ns, "data", "s1", scenario.T0, scenario.Run{App: "a", Versions: []string{"a-v1"}}))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.store.Update(t.Context(), ns, func(s *model.State) (bool, *statecodec.Pending, error) {
		_, changed, err := model.Apply(model.DefaultRules(), s, in)
		return changed, nil, err
	}); err != nil {
		t.Fatal(err)
	}
	got, _, err := loadState(t.Context(), e.kv, ns)
	if err != nil {
		t.Fatal(err)
	}
	for name, n := range map[string]int{"b": 2, "c": 3} {
		if got.Journal.PinGeneration[name] != n {
			t.Errorf("pin generation of %s read back: %d, want %d (all: %v)", name, got.Journal.PinGeneration[name], n, got.Journal.PinGeneration)
		}
	}
}
