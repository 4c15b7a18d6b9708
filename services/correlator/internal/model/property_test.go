package model

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stateguard/stateguard/pkg/events"
	scenario "github.com/stateguard/stateguard/services/correlator/internal/scenariotest"
)

// randomScenario builds a namespace's history from a seed: two apps with
// their PVCs (now and then one both write to), snapshots of whichever
// version ran, scans (clean, critical, a leaked credential, later
// re-scans), restore tests, failures, certificates and rotations, and the
// lineage facts: observations between snapshots, restores (also from the
// other app's snapshots; most carry the snapshot's time and claim as the
// Restore executor sends them, one in three is an older producer's
// without), dismissals and resolutions.
func randomScenario(seed uint64) []events.Event {
	rnd := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	ns := "prop"
	var evs []events.Event
	at := scenario.T0
	apps := []string{"a", "b"}
	for _, app := range apps {
		evs = append(evs, scenario.Cert(ns, app+"-tls", "s-"+app, scenario.T0.Add(time.Duration(3+rnd.IntN(40))*24*time.Hour), float64(3+rnd.IntN(40)),
			[]events.ObjectRef{scenario.Workload(ns, "StatefulSet", app)}, nil))
	}
	evs = append(evs, scenario.Cert(ns, "cm-tls", "cm", scenario.T0.Add(4*24*time.Hour), 4,
		[]events.ObjectRef{scenario.Workload(ns, "StatefulSet", "a")}, ptr(scenario.T0.Add(3*24*time.Hour))))
	if rnd.IntN(2) == 0 {
		evs = append(evs, scenario.Rotated(ns, "a-tls", "s-a", "s-a2"))
	}
	upload := 0
	once := map[string]bool{}
	taken := map[string]takenOf{}
	for i := range 6 + rnd.IntN(10) {
		at = at.Add(time.Duration(1+rnd.IntN(3)) * time.Hour)
		app := apps[rnd.IntN(len(apps))]
		version := fmt.Sprintf("%s-v%d", app, rnd.IntN(4))
		pvc := fmt.Sprintf("%s-data-%d", app, rnd.IntN(2))
		name := fmt.Sprintf("snap-%d", i)
		runs := []scenario.Run{{App: app, Versions: []string{version}}}
		if rnd.IntN(8) == 0 {
			// A PVC the other app writes to as well.
			other := apps[(slices.Index(apps, app)+1)%len(apps)]
			runs = append(runs, scenario.Run{App: other, Versions: []string{fmt.Sprintf("%s-v%d", other, rnd.IntN(4))}})
		}
		taken[name] = takenOf{pvc, at}
		evs = append(evs, scenario.Snapshot(ns, pvc, name, at, runs...))
		if i%4 == 3 {
			// A snapshot of the next slot that fails and never completes
			// (no random draw: the scenarios stay what they were).
			evs = append(evs, scenario.SnapshotFailedAt(ns, pvc, fmt.Sprintf("failed-%d", i), at.Add(30*time.Minute)))
		}
		switch rnd.IntN(6) {
		case 0:
			evs = append(evs, scenario.SnapshotFailed(ns, pvc, name))
		case 1:
			evs = append(evs, scenario.Verified(ns, pvc, name, rnd.IntN(3) > 0))
		}
		for range rnd.IntN(3) {
			upload++
			var findings []events.Finding
			switch rnd.IntN(4) {
			case 0:
				findings = []events.Finding{scenario.Critical}
			case 1:
				findings = []events.Finding{scenario.Leak, scenario.Medium}
			case 2:
				findings = []events.Finding{scenario.Medium}
			}
			evs = append(evs, scenario.SARIF(ns, app, fmt.Sprintf("u%d", upload), version, at.Add(time.Duration(rnd.IntN(600))*time.Minute), findings...))
		}
		// Lineage facts: what runs between two snapshots, a restore of
		// an earlier snapshot, an operator's dismissal.
		switch rnd.IntN(5) {
		case 0:
			next := fmt.Sprintf("%s-v%d", app, rnd.IntN(4))
			evs = append(evs, scenario.Observed(ns, pvc, at.Add(time.Duration(1+rnd.IntN(50))*time.Minute), []string{app + "-tls"},
				scenario.Run{App: app, Versions: []string{next}}))
		case 1:
			evs = append(evs, scenario.Observed(ns, pvc, at.Add(time.Duration(1+rnd.IntN(50))*time.Minute), nil))
		case 2:
			// One event per id: the id names the PVC and the snapshot.
			from := fmt.Sprintf("snap-%d", rnd.IntN(i+1))
			if !once[pvc+"/"+from] {
				once[pvc+"/"+from] = true
				evs = append(evs, restoredEvent(ns, pvc, from, taken[from], at.Add(time.Duration(1+rnd.IntN(50))*time.Minute), i%3 != 0))
			}
		case 3:
			if !once["dismissed/"+app] && rnd.IntN(3) == 0 {
				once["dismissed/"+app] = true
				evs = append(evs, scenario.Dismissed(ns, app, scenario.Leak, at))
			}
		}
	}
	return append(evs, resolutions(rnd, ns, evs, at)...)
}

// resolutions are an operator's resolutions of some of the incidents the
// events open, as the operator would see them in the view (the ids are
// hashes of the facts), one of them before the events end.
func resolutions(rnd *rand.Rand, ns string, evs []events.Event, end time.Time) []events.Event {
	st := NewState(ns)
	for _, ev := range evs {
		in, err := FromEvent(ev)
		if err != nil {
			continue
		}
		if _, _, err := Apply(DefaultRules(), st, in); err != nil {
			panic(err)
		}
	}
	var out []events.Event
	for _, av := range Derive(DefaultRules(), st).Apps {
		for _, inc := range av.Incidents {
			if rnd.IntN(2) == 0 {
				at := inc.StartTime.Add(time.Duration(rnd.Int64N(max(int64(end.Sub(inc.StartTime)), 0) + 1)))
				out = append(out, scenario.Resolved(ns, inc.ID, at))
			}
		}
	}
	return out
}

func ptr[T any](v T) *T { return &v }

// permute shuffles evs and inserts duplicates.
func permute(evs []events.Event, seed uint64) []events.Event {
	rnd := rand.New(rand.NewPCG(seed, 42))
	out := slices.Clone(evs)
	rnd.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	for range 1 + rnd.IntN(len(evs)) {
		dup := evs[rnd.IntN(len(evs))]
		out = slices.Insert(out, rnd.IntN(len(out)+1), dup)
	}
	return out
}

// outcome is what must not depend on the order: the facts, the derived
// view, and the decisions in force.
type outcome struct {
	Facts   string
	View    string
	InForce map[string]string
}

func outcomeOf(t *testing.T, r Rules, st *State) outcome {
	t.Helper()
	facts, err := json.Marshal(struct {
		U   map[string]*Upload
		S   map[string]*Snapshot
		C   map[string]*Cert
		O   map[string]*Observation
		R   map[string]*Restore
		Res map[string]*Resolution
		D   map[string]*Dismissal
	}{st.Uploads, st.Snapshots, st.Certs, st.Observations, st.Restores, st.Resolutions, st.Dismissals})
	if err != nil {
		t.Fatal(err)
	}
	view, err := json.Marshal(Derive(r, st))
	if err != nil {
		t.Fatal(err)
	}
	return outcome{Facts: string(facts), View: string(view), InForce: st.Ledger.InForce()}
}

// replayPins applies the pin and unpin decisions in publication order, as
// the snapshotter would, and returns what stays pinned.
func replayPins(ds []Decision) []string {
	pinned := map[string]bool{}
	for _, d := range ds {
		switch p := d.Payload.(type) {
		case events.SnapshotPinRequested:
			pinned[p.VolumeSnapshot] = true
		case events.SnapshotUnpinRequested:
			delete(pinned, p.VolumeSnapshot)
		}
	}
	return slices.Sorted(mapsKeys(pinned))
}

// checkIDsOnce fails when one run of the model took two decisions with the
// same id: JetStream would store only the first (Nats-Msg-Id), so the
// stream's last word would not be the model's — on a snapshot's pin (a
// forgotten snapshot's pin generation is dropped, so this holds only as
// long as a forgotten snapshot is never pinned again), or on an incident
// closed, reopened and closed again (each opening is a generation of the
// incident).
func checkIDsOnce(t *testing.T, what string, ds []Decision) {
	t.Helper()
	seen := map[string]Decision{}
	for _, d := range ds {
		if prev, ok := seen[d.ID]; ok {
			t.Errorf("%s: decision id %s taken twice: %s %+v, then %s %+v", what, d.ID, prev.Type, prev.Payload, d.Type, d.Payload)
			return
		}
		seen[d.ID] = d
	}
}

func mapsKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// seeds is how many random scenarios a property test runs: all of them in
// `make test`, an eighth (at least ten) in `make unit`'s -short loop.
func seeds(full uint64) uint64 {
	if testing.Short() {
		return max(full/8, 10)
	}
	return full
}

func TestOrderAndDuplicatesDoNotMatter(t *testing.T) {
	r := DefaultRules()
	for seed := range seeds(120) {
		evs := randomScenario(seed)
		inOrder := NewState("prop")
		wantDecisions := feed(t, r, inOrder, evs...)
		want := outcomeOf(t, r, inOrder)
		for p := range uint64(6) {
			st := NewState("prop")
			got := feed(t, r, st, permute(evs, seed*100+p)...)
			checkIDsOnce(t, fmt.Sprintf("seed %d permutation %d", seed, p), got)
			if diff := cmp.Diff(want, outcomeOf(t, r, st)); diff != "" {
				t.Fatalf("seed %d permutation %d: outcome differs from the in-order run (-want +got):\n%s", seed, p, diff)
			}
			if diff := cmp.Diff(replayPins(wantDecisions), replayPins(got)); diff != "" {
				t.Fatalf("seed %d permutation %d: pins after replaying the decisions (-in order +permuted):\n%s", seed, p, diff)
			}
			if diff := cmp.Diff(slices.Sorted(mapsKeys(st.Ledger.Pinned)), replayPins(got)); diff != "" {
				t.Fatalf("seed %d permutation %d: ledger vs published pins (-ledger +published):\n%s", seed, p, diff)
			}
		}
	}
}

// The generator must produce the situations the property is about, or the
// test proves little.
func TestRandomScenariosCoverIncidentsAndPins(t *testing.T) {
	seen := map[string]int{}
	for seed := range uint64(150) {
		st := NewState("prop")
		for _, d := range feed(t, DefaultRules(), st, randomScenario(seed)...) {
			seen[d.Type]++
			if c, ok := d.Payload.(events.IncidentClosed); ok {
				switch {
				case strings.HasPrefix(c.Reason, "resolved by"):
					seen["closed by a resolution"]++
				case strings.Contains(c.Reason, "was restored from"):
					seen["closed by a restore"]++
				}
			}
		}
		if len(st.Observations) > 0 {
			seen["observations"]++
		}
	}
	for _, fact := range []string{"closed by a resolution", "closed by a restore", "observations"} {
		if seen[fact] == 0 {
			t.Errorf("no incident %s in 150 random scenarios", fact)
		}
	}
	for _, typ := range []string{events.TypeSnapshotPinRequested, events.TypeSnapshotUnpinRequested, events.TypeIncidentOpened,
		events.TypeIncidentClosed, events.TypeRestoreRecommended, events.TypeCertificateRotationRequest} {
		if seen[typ] == 0 {
			t.Errorf("no %s in 150 random scenarios", typ)
		}
	}
}

// delay moves each event of evs up to k places later and delivers it one
// to three times: events late as redeliveries make them, not shuffled.
func delay(evs []events.Event, k int, seed uint64) []events.Event {
	rnd := rand.New(rand.NewPCG(seed, 7))
	type late struct {
		at int
		ev events.Event
	}
	var ls []late
	for i, ev := range evs {
		for range 1 + rnd.IntN(3) {
			ls = append(ls, late{i + rnd.IntN(k+1), ev})
		}
	}
	slices.SortStableFunc(ls, func(a, b late) int { return a.at - b.at })
	out := make([]events.Event, len(ls))
	for i, l := range ls {
		out[i] = l.ev
	}
	return out
}

// Late events agree with the in-order run — the facts, the view and the
// decisions in force — as long as none comes after `history` newer
// snapshots of its PVC (beyond it only the decisions in force are the same:
// TestLateEventsBeyondTheHistoryDoNotMatter; a snapshot forgotten in one
// order may stay as a boundary in another). The benchmark's stream
// prunes: 60 snapshots per PVC against a history of 32; an event moved up
// to 240 places is late by up to about 24 snapshots of its PVC.
func TestLateEventsWithinTheHistoryDoNotMatter(t *testing.T) {
	r := DefaultRules()
	// The third namespace's first incident opens at the 21st snapshot:
	// before it the snapshots are pruned.
	mix := scenario.MixedStream{Apps: 12, PerNS: 4, Start: scenario.T0, ObserveEvery: 5}
	ns, _ := mix.Names(8)
	var evs []events.Event
	for _, ev := range slices.Concat(mix.Certs(), slices.Concat(sliceOf(60, mix.Slot)...)) {
		if in, err := FromEvent(ev); err == nil && in.Namespace == ns {
			evs = append(evs, ev)
		}
	}
	inOrder := NewState(ns)
	wantDecisions := feed(t, r, inOrder, evs...)
	want := outcomeOf(t, r, inOrder)
	if len(inOrder.Snapshots) >= 4*60 {
		t.Fatalf("%d snapshots kept of %d: the story does not prune", len(inOrder.Snapshots), 4*60)
	}
	// Four orders (two in -short): each delivers some 600 events with
	// checkCache after every one.
	orders := uint64(4)
	if testing.Short() {
		orders = 2
	}
	for seed := range orders {
		st := NewState(ns)
		got := feed(t, r, st, delay(evs, 240, seed)...)
		if diff := cmp.Diff(want, outcomeOf(t, r, st)); diff != "" {
			t.Fatalf("order %d: outcome differs from the in-order run (-want +got):\n%s", seed, diff)
		}
		if diff := cmp.Diff(replayPins(wantDecisions), replayPins(got)); diff != "" {
			t.Fatalf("order %d: pins after replaying the decisions (-in order +late):\n%s", seed, diff)
		}
	}
}

func sliceOf[T any](n int, f func(int) T) []T {
	out := make([]T, n)
	for i := range n {
		out[i] = f(i)
	}
	return out
}

// Beyond the history the facts remembered may differ with the order (a
// snapshot forgotten in one order may come after its successors in
// another, and stay as a boundary), but the decisions in force do not:
// prune keeps every lineage boundary (lineageBoundaries). The random
// scenarios with a history of 2 (most snapshots beyond it), every event in
// any order, some twice: 60 × 4 orders (on the old prune about half of
// such orders ended with other decisions in force: 648 of 1,200).
func TestOrderDoesNotMatterBeyondTheHistory(t *testing.T) {
	r := DefaultRules()
	r.History = 2
	forgotten := 0
	for seed := range seeds(60) {
		evs := randomScenario(seed)
		inOrder := NewState("prop")
		wantDecisions := feed(t, r, inOrder, evs...)
		forgotten += countFailures(evs) - len(failedOnly(inOrder))
		for p := range uint64(4) {
			st := NewState("prop")
			got := feed(t, r, st, permute(evs, seed*100+p)...)
			checkIDsOnce(t, fmt.Sprintf("seed %d permutation %d", seed, p), got)
			if diff := cmp.Diff(failedOnly(inOrder), failedOnly(st)); diff != "" {
				t.Fatalf("seed %d permutation %d: failures remembered (-in order +permuted):\n%s", seed, p, diff)
			}
			if diff := cmp.Diff(inOrder.Ledger.InForce(), st.Ledger.InForce()); diff != "" {
				t.Fatalf("seed %d permutation %d: decisions in force (-in order +permuted):\n%s", seed, p, diff)
			}
			if diff := cmp.Diff(replayPins(wantDecisions), replayPins(got)); diff != "" {
				t.Fatalf("seed %d permutation %d: pins after replaying the decisions (-in order +permuted):\n%s", seed, p, diff)
			}
		}
	}
	if forgotten == 0 {
		t.Errorf("no failure of a snapshot that never completed was forgotten: the scenarios do not exercise forgettableFailures")
	}
}

// countFailures counts the snapshots evs report failed and never
// completed.
func countFailures(evs []events.Event) int {
	failed, completed := map[string]bool{}, map[string]bool{}
	for _, ev := range evs {
		in, err := FromEvent(ev)
		switch {
		case err != nil:
		case in.SnapshotFailed != nil:
			failed[in.SnapshotFailed.Name] = true
		case in.Snapshot != nil:
			completed[in.Snapshot.Name] = true
		}
	}
	n := 0
	for name := range failed {
		if !completed[name] {
			n++
		}
	}
	return n
}

// The mixed stream (60 snapshots per PVC against a history of 32; the
// partition test's namespaces with three incidents and with one) with
// events far later than the history: moved up to the whole stream's
// length, shuffled with duplicates, every scan after every snapshot (the
// SARIF stream lagging behind the SNAPSHOT stream), every snapshot after
// everything else. The decisions in force, and the pins the published
// decisions leave, are the in-order run's.
func TestLateEventsBeyondTheHistoryDoNotMatter(t *testing.T) {
	r := DefaultRules()
	mix := scenario.MixedStream{Apps: 16, PerNS: 4, Start: scenario.T0, ObserveEvery: 5}
	stream := slices.Concat(mix.Certs(), slices.Concat(sliceOf(60, mix.Slot)...))
	namespaces := []int{0, 12}
	if testing.Short() {
		namespaces = namespaces[:1]
	}
	for _, i := range namespaces {
		ns, _ := mix.Names(i)
		var evs []events.Event
		for _, ev := range stream {
			if in, err := FromEvent(ev); err == nil && in.Namespace == ns {
				evs = append(evs, ev)
			}
		}
		inOrder := NewState(ns)
		wantDecisions := feed(t, r, inOrder, evs...)
		if len(inOrder.Ledger.Incidents) == 0 {
			t.Fatalf("%s: the stream opens no incident: the test proves little", ns)
		}
		last := func(typ string) []events.Event {
			var first, then []events.Event
			for _, ev := range evs {
				if ev.Type() == typ {
					then = append(then, ev)
				} else {
					first = append(first, ev)
				}
			}
			return append(first, then...)
		}
		orders := map[string][]events.Event{
			"moved up to the stream's length": delay(evs, len(evs), 1),
			"shuffled, some twice":            permute(evs, 3),
			"every scan last":                 last(events.TypeSARIFUploaded),
			"every snapshot last":             last(events.TypeSnapshotCompleted),
		}
		for _, name := range slices.Sorted(mapsKeys(orders)) {
			st := NewState(ns)
			got := feed(t, r, st, orders[name]...)
			checkIDsOnce(t, ns+", "+name, got)
			if diff := cmp.Diff(inOrder.Ledger.InForce(), st.Ledger.InForce()); diff != "" {
				t.Errorf("%s, %s: decisions in force (-in order +late):\n%s", ns, name, diff)
			}
			if diff := cmp.Diff(replayPins(wantDecisions), replayPins(got)); diff != "" {
				t.Errorf("%s, %s: pins after replaying the decisions (-in order +late):\n%s", ns, name, diff)
			}
		}
	}
}
