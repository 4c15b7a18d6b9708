package model

import (
	"fmt"
	"hash/fnv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stateguard/stateguard/pkg/events"

	scenario "github.com/stateguard/stateguard/services/correlator/internal/scenariotest"
)

// PartsOf takes each part's facts from its per-PVC index; after every
// event (snapshots pruned, observations and certificates coming) they are
// exactly the facts of the PVCs hashing to the part, found by going over
// every fact.
func TestPartsOfFollowsTheFacts(t *testing.T) {
	partOf := func(pvc string) string {
		h := fnv.New32a()
		h.Write([]byte(pvc))
		return fmt.Sprintf("%02x", h.Sum32()%8)
	}
	ns := "parts"
	var evs []events.Event
	for k := range 12 {
		at := scenario.T0.Add(time.Duration(k) * time.Minute)
		for _, app := range []string{"a", "b", "c", "d", "e"} {
			run := scenario.Run{App: app, Versions: []string{app + "-v1"}}
			evs = append(evs, scenario.Snapshot(ns, "data-"+app, fmt.Sprintf("%s-s%d", app, k), at, run))
			if k%3 == 0 {
				evs = append(evs, scenario.Observed(ns, "data-"+app, at.Add(time.Second), nil, run))
			}
		}
	}
	st := NewState(ns)
	all := []string{}
	for i := range 8 {
		all = append(all, fmt.Sprintf("%02x", i))
	}
	r := DefaultRules()
	r.History = 3 // snapshots pruned all along
	pruned := 0
	for _, ev := range evs {
		in, err := FromEvent(ev)
		if err != nil {
			t.Fatal(err)
		}
		before := len(st.Snapshots)
		if _, _, err := Apply(r, st, in); err != nil {
			t.Fatal(err)
		}
		if in.Snapshot != nil && len(st.Snapshots) <= before {
			pruned++
		}
		rest, parts := st.PartsOf(partOf, all)
		want := map[string]map[string]bool{}
		add := func(part, kind, id string) {
			if want[part] == nil {
				want[part] = map[string]bool{}
			}
			want[part][kind+"/"+id] = true
		}
		for name, s := range st.Snapshots {
			if s.PVC == "" {
				add("rest", "snapshot", name)
			} else {
				add(partOf(s.PVC), "snapshot", name)
			}
		}
		for id, o := range st.Observations {
			add(partOf(o.PVC), "observation", id)
		}
		got := map[string]map[string]bool{}
		gadd := func(part, kind, id string) {
			if got[part] == nil {
				got[part] = map[string]bool{}
			}
			got[part][kind+"/"+id] = true
		}
		for name := range rest.Snapshots {
			gadd("rest", "snapshot", name)
		}
		for part, p := range parts {
			for name := range p.Snapshots {
				gadd(part, "snapshot", name)
			}
			for id := range p.Observations {
				gadd(part, "observation", id)
			}
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("after %s, the parts' facts (-every fact +PartsOf):\n%s", ev.ID(), diff)
		}
	}
	if pruned == 0 {
		t.Fatal("no snapshot was pruned: the test does not cover it")
	}
}

// A snapshot's pin generation goes with its PVC's part; that of a snapshot
// without a PVC or not known stays in the namespace's own key (rest), also
// once the state was read back (the namespace's key first, then its parts)
// and written again with none of its parts changed.
func TestPinGenerationsGoWithTheirSnapshotsPart(t *testing.T) {
	partOf := func(pvc string) string { return "p-" + pvc }
	st := NewState("ns")
	st.Snapshots = map[string]*Snapshot{
		"a": {Name: "a", PVC: "data", Time: scenario.T0},
		"b": {Name: "b", Time: scenario.T0},
	}
	st.Journal.PinGeneration = map[string]int{"a": 1, "b": 2, "c": 3}
	st.MarkAllPartsChanged()
	rest, parts := st.PartsOf(partOf, []string{"p-data"})
	if diff := cmp.Diff(map[string]int{"b": 2, "c": 3}, rest.Journal.PinGeneration); diff != "" {
		t.Errorf("pin generations in the namespace's key (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]int{"a": 1}, parts["p-data"].PinGeneration); diff != "" {
		t.Errorf("pin generations in the part of data (-want +got):\n%s", diff)
	}

	// Read back: the namespace's key, then the part.
	back := NewState("ns")
	back.Snapshots = map[string]*Snapshot{"b": st.Snapshots["b"]}
	back.Journal.PinGeneration = rest.Journal.PinGeneration
	back.MarkPinGenerationsApart()
	back.AddPart(parts["p-data"])
	if diff := cmp.Diff(st.Journal.PinGeneration, back.Journal.PinGeneration); diff != "" {
		t.Errorf("pin generations read back (-written +read):\n%s", diff)
	}
	// A snapshot not known pinned meanwhile (decide's way).
	back.Journal.PinGeneration["d"] = 1
	back.pinGenerationChanged("d")
	again, _ := back.PartsOf(partOf, nil)
	if diff := cmp.Diff(map[string]int{"b": 2, "c": 3, "d": 1}, again.Journal.PinGeneration); diff != "" {
		t.Errorf("pin generations in the namespace's key written again (-want +got):\n%s", diff)
	}
}
