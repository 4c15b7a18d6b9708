package model

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stateguard/stateguard/pkg/events"
	scenario "github.com/stateguard/stateguard/services/correlator/internal/scenariotest"
)

// observedStory is one application on one PVC, a snapshot a minute with
// an observation of the same pods half a minute later, and between them
// what a PVC's observations must keep: a version that ran only between two
// snapshots (two observations), a version only a snapshot saw between two
// identical observations, a Secret that only one observation names, and a
// restore between two identical observations. "bad" is not scanned (the
// snapshots after it are unknown); "worse" is vulnerable: the incident it
// opens keeps the snapshots from its start, shop-s08, while the
// observations around it are pruned.
func observedStory(ns string) []events.Event {
	const app, pvc = "shop", "data-shop"
	at := func(minute int, second int) time.Time {
		return scenario.T0.Add(time.Duration(minute)*time.Minute + time.Duration(second)*time.Second)
	}
	run := func(v string) scenario.Run { return scenario.Run{App: app, Versions: []string{v}} }
	secrets := []string{"shop-tls"}
	evs := []events.Event{
		scenario.SARIF(ns, app, "u-good", "good", at(0, 0)),
		scenario.SARIF(ns, app, "u-worse", "worse", at(0, 0), scenario.Critical),
	}
	for k := range 24 {
		version := "good"
		if k == 8 {
			version = "worse" // only this snapshot saw it
		}
		evs = append(evs, scenario.Snapshot(ns, pvc, fmt.Sprintf("shop-s%02d", k), at(k, 0), run(version)))
		mounted := secrets
		if k == 3 {
			mounted = []string{"old-tls", "shop-tls"} // only this observation names old-tls
		}
		if k == 12 {
			// The data of shop-s09 back at 12:15: a new epoch that begins
			// with the observation at 12:30, identical to the samples
			// before the restore.
			evs = append(evs, scenario.Restored(ns, pvc, "shop-s09", at(k, 15)))
		}
		evs = append(evs, scenario.Observed(ns, pvc, at(k, 30), mounted, run("good")))
		if k == 5 {
			// bad ran from 5:40 to 5:50, between two snapshots.
			evs = append(evs, scenario.Observed(ns, pvc, at(k, 40), secrets, run("bad")),
				scenario.Observed(ns, pvc, at(k, 50), secrets, run("good")))
		}
	}
	return evs
}

// TestPruneObservationsKeepsTheLineage: the observations pruned beyond
// the history are only those that change nothing — the lineage's spans
// and the view derived from scratch are those of all the observations.
func TestPruneObservationsKeepsTheLineage(t *testing.T) {
	r := DefaultRules()
	r.History = 6
	const ns = "obs"
	evs := observedStory(ns)
	st := NewState(ns)
	feed(t, r, st, evs...)

	// Every fact fed, observations included, without any pruning of
	// observations: what the pruned state must agree with.
	all := &State{Namespace: ns, Uploads: st.Uploads, Snapshots: st.Snapshots, Certs: st.Certs, Restores: st.Restores,
		Resolutions: st.Resolutions, Dismissals: st.Dismissals, Observations: map[string]*Observation{}}
	for _, ev := range evs {
		in, err := FromEvent(ev)
		if errors.Is(err, ErrIgnored) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if in.Observation != nil {
			all.Observations[in.Observation.EventID] = in.Observation
		}
	}
	pruned := &State{Namespace: ns, Uploads: st.Uploads, Snapshots: st.Snapshots, Certs: st.Certs, Restores: st.Restores,
		Resolutions: st.Resolutions, Dismissals: st.Dismissals, Observations: st.Observations}

	if len(pruned.Observations) >= len(all.Observations) {
		t.Fatalf("%d of %d observations kept: none pruned", len(pruned.Observations), len(all.Observations))
	}
	// The observations within the history are all kept.
	horizon := completedByPVC(st)["data-shop"]
	horizonTime := horizon[len(horizon)-r.History].Time
	for id, o := range all.Observations {
		if _, kept := pruned.Observations[id]; !kept && !o.Time.Before(horizonTime) {
			t.Errorf("observation at %s dropped: it is within the history (from %s)", o.Time.Format(time.TimeOnly), horizonTime.Format(time.TimeOnly))
		}
	}

	spans := func(s *State) [][]Span {
		lx := newLineages(s, completedByPVC(s), func(string, Workload, string) string { return Clean })
		var out [][]Span
		for _, ep := range lx.epochs("data-shop") {
			out = append(out, ep.spans)
		}
		return out
	}
	if diff := cmp.Diff(spans(all), spans(pruned)); diff != "" {
		t.Errorf("lineage with all observations (-) and after pruning (+):\n%s", diff)
	}
	view := func(s *State) string {
		b, err := json.Marshal(Derive(r, s))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if diff := cmp.Diff(view(all), view(pruned)); diff != "" {
		t.Errorf("view with all observations (-) and after pruning (+):\n%s", diff)
	}
	av := Derive(r, pruned).Apps[0]
	if !slices.Contains(av.Secrets, "old-tls") {
		t.Errorf("secrets %v: old-tls, named by one pruned-away observation, is gone", av.Secrets)
	}
}

// TestPruneObservationsIsOrderIndependent: the observations kept, like
// everything else, are the same whatever order the story's events come in
// within the history (each event up to eight places — four snapshots of
// the PVC — late, one to three times).
func TestPruneObservationsIsOrderIndependent(t *testing.T) {
	r := DefaultRules()
	r.History = 6
	const ns = "obs"
	evs := observedStory(ns)
	inOrder := NewState(ns)
	feed(t, r, inOrder, evs...)
	want := outcomeOf(t, r, inOrder)
	for seed := range uint64(16) {
		st := NewState(ns)
		feed(t, r, st, delay(evs, 8, seed)...)
		if diff := cmp.Diff(want, outcomeOf(t, r, st)); diff != "" {
			t.Fatalf("order %d: outcome differs from the in-order run (-want +got):\n%s", seed, diff)
		}
	}
}
