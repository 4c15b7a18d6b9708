package engine

import (
	"context"
	"encoding/json"
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

// gatedWriter stores writes of single keys at once and holds writes with a
// group of several keys until open is closed: the state a process leaves
// when it dies after a commit and before the write that follows it.
type gatedWriter struct {
	real groupWriter
	open chan struct{}

	mu     sync.Mutex
	single [][]byte // the values of the single keys stored, in order
	groups int      // writes with groups of several keys stored
}

func (w *gatedWriter) PutGroups(ctx context.Context, groups [][]events.KVPut) events.KVBatches {
	several := false
	for _, g := range groups {
		several = several || len(g) > 1
	}
	if several {
		select {
		case <-w.open:
		case <-ctx.Done():
		}
	}
	st := w.real.PutGroups(ctx, groups)
	w.mu.Lock()
	defer w.mu.Unlock()
	if several {
		w.groups++
	}
	for _, g := range groups {
		if len(g) == 1 && g[0].Err == nil {
			w.single = append(w.single, g[0].Value)
		}
	}
	return st
}

// stateJSON is the state of ns in memory, as JSON.
func stateJSON(t *testing.T, e *Engine, ns string) string {
	t.Helper()
	e.store.mu.Lock()
	en := e.store.entries[ns]
	e.store.mu.Unlock()
	en.mu.Lock()
	defer en.mu.Unlock()
	js, err := json.Marshal(en.st)
	if err != nil {
		t.Fatal(err)
	}
	return string(js)
}

// storedJSON is the state of ns read afresh from KV, as JSON, and the
// envelope of its namespace's key.
func storedJSON(t *testing.T, e *Engine, ns string) (string, statecodec.Envelope) {
	t.Helper()
	st, _, err := loadState(t.Context(), e.kv, ns)
	if err != nil {
		t.Fatal(err)
	}
	js, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	entry, err := e.kv.Get(t.Context(), key(ns))
	if err != nil {
		t.Fatal(err)
	}
	env, err := statecodec.Unwrap(entry.Value(), model.NewState(ns))
	if err != nil {
		t.Fatal(err)
	}
	return string(js), env
}

// A commit that changed PVCs' parts is one key, the namespace's, carrying
// the part inline; a process that dies before the next write leaves a
// state that reads whole (the part's key still holds the older facts,
// superseded); the next write — the outbox's removal of the published
// decisions — moves the part to its key, all or nothing with the
// namespace's key.
func TestACommitCarriesItsPartsInline(t *testing.T) {
	c := natstest.Client(t, natstest.Run(t))
	var mu sync.Mutex
	published := map[string]int{}
	e := startEngineWith(t, Options{Client: c, Rules: model.DefaultRules(), Workers: 2,
		OnPublished: func(ns string, _ time.Time, ds []model.Decision) {
			mu.Lock()
			published[ns] += len(ds)
			mu.Unlock()
		}})
	m := scenario.MixedStream{Apps: 4, PerNS: 4, Start: scenario.T0}
	ns, _ := m.Names(0)
	evs := m.Certs()
	for k := range 6 {
		evs = append(evs, m.Slot(k)...)
	}
	for _, ev := range evs {
		if err := e.Handle(t.Context(), ev); err != nil {
			t.Fatal(err)
		}
	}
	// Quiet: the removals of the published decisions are stored.
	waitFor(t, func() bool {
		_, env := storedJSON(t, e, ns)
		return len(env.Inline) == 0 && len(env.Outbox) == 0
	}, "the namespace's key with no inline part and an empty outbox")

	w := &gatedWriter{real: e.store.w, open: make(chan struct{})}
	e.store.w = w
	// The namespace's next events until one decides something (a write
	// follows its commit to remove its decisions from the outbox); those
	// that decide nothing are commits with no write after them.
	decided := false
	for k := 6; k < 40 && !decided; k++ {
		for _, ev := range m.Slot(k) {
			mu.Lock()
			before := published[ns]
			mu.Unlock()
			if err := e.Handle(t.Context(), ev); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			decided = published[ns] > before
			mu.Unlock()
			if decided {
				break
			}
		}
	}
	if !decided {
		t.Fatal("no event of slots 6 to 39 decided anything: the test does not exercise the write after a commit")
	}

	// The commits: single keys, the last carrying a PVC's part inline.
	w.mu.Lock()
	if len(w.single) == 0 || w.groups != 0 {
		t.Fatalf("the commits wrote %d single keys and %d groups; want single keys only", len(w.single), w.groups)
	}
	env, err := statecodec.Unwrap(w.single[len(w.single)-1], model.NewState(ns))
	w.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	part := ""
	for name := range env.Inline {
		if !strings.HasPrefix(name, "u") {
			part = name
		}
	}
	if env.Layout != statecodec.Layout || part == "" {
		t.Fatalf("the commit's envelope: layout %d, inline parts %v; want layout %d with a PVC's part inline", env.Layout, keysOf(env.Inline), statecodec.Layout)
	}

	// Dead here: what KV holds reads as the state in memory.
	want := stateJSON(t, e, ns)
	got, _ := storedJSON(t, e, ns)
	if got != want {
		t.Fatalf("after the commit with its part inline, the state read back differs from the one in memory:\n%s", cmp.Diff(want, got))
	}
	old, err := e.kv.Get(t.Context(), partKey(ns, part))
	if err != nil {
		t.Fatal(err)
	}
	if penv, _, err := statecodec.DecodePart(old.Value(), ns); err != nil || penv.Gen != env.Parts[part] {
		t.Fatalf("part %s's key before the next write: generation %d (%v); want %d, the manifest's", part, penv.Gen, err, env.Parts[part])
	}

	// The next write moves the part to its key.
	close(w.open)
	waitFor(t, func() bool {
		_, env := storedJSON(t, e, ns)
		return len(env.Inline) == 0 && len(env.Outbox) == 0
	}, "the part moved to its key and the outbox emptied")
	got, env = storedJSON(t, e, ns)
	if want := stateJSON(t, e, ns); got != want {
		t.Fatalf("after the part moved to its key, the state read back differs from the one in memory:\n%s", cmp.Diff(want, got))
	}
	moved, err := e.kv.Get(t.Context(), partKey(ns, part))
	if err != nil {
		t.Fatal(err)
	}
	if penv, _, err := statecodec.DecodePart(moved.Value(), ns); err != nil || penv.Gen != env.Parts[part] {
		t.Fatalf("part %s's key after the next write: generation %d (%v); want %d", part, penv.Gen, err, env.Parts[part])
	}
	if moved.Revision() == old.Revision() {
		t.Errorf("part %s's key was not written again after its inline commit", part)
	}
}

func keysOf[V any](m map[string]V) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

// waitFor polls cond until it holds, or fails the test after a minute.
func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited a minute for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
