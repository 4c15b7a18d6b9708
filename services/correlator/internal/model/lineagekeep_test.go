package model

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stateguard/stateguard/pkg/events"
	scenario "github.com/stateguard/stateguard/services/correlator/internal/scenariotest"
)

// The README's four minimal orders that differed while prune forgot every
// snapshot beyond the history: a history of 2, one PVC, snapshots s1…s4 an
// hour apart. Each case feeds the same events in an order where nothing
// comes late and in one where one event comes after the history, and wants
// the same decisions in force, the same remembered snapshots, and what the
// case is about (the incident's start, the restore point).
func TestLateBeyondTheHistory(t *testing.T) {
	const ns, app, pvc = "late", "api", "data"
	r := DefaultRules()
	r.History = 2
	at := func(i int) time.Time { return scenario.T0.Add(time.Duration(i) * time.Hour) }
	snap := func(i int, version string) events.Event {
		return scenario.Snapshot(ns, pvc, fmt.Sprintf("s%d", i), at(i), scenario.Run{App: app, Versions: []string{version}})
	}
	clean := func(id, version string, i int) events.Event { return scenario.SARIF(ns, app, id, version, at(i)) }
	critical := func(id, version string, i int) events.Event {
		return scenario.SARIF(ns, app, id, version, at(i), scenario.Critical)
	}
	tests := []struct {
		name         string
		early, late  []events.Event
		start        time.Time // of the one incident; zero: none
		restorePoint string    // pinned as the incident's restore point
	}{{
		// (1) The scan finds v1's first sample s2 forgotten: the incident
		// started at s3, with another id.
		name:  "late scan of the first sample's version",
		early: []events.Event{clean("u0", "v0", 0), critical("u1", "v1", 0), snap(1, "v0"), snap(2, "v1"), snap(3, "v1"), snap(4, "v1")},
		late:  []events.Event{clean("u0", "v0", 0), snap(1, "v0"), snap(2, "v1"), snap(3, "v1"), snap(4, "v1"), critical("u1", "v1", 0)},
		start: at(2), restorePoint: "s1",
	}, {
		// (2) s1 came older than the open incident's start, beyond the
		// history: dropped at once, the incident kept s2's start and id.
		name:  "late first snapshot of a vulnerable version",
		early: []events.Event{critical("u1", "v1", 0), snap(1, "v1"), snap(2, "v1"), snap(3, "v1"), snap(4, "v1")},
		late:  []events.Event{critical("u1", "v1", 0), snap(2, "v1"), snap(3, "v1"), snap(4, "v1"), snap(1, "v1")},
		start: at(1),
	}, {
		// (3) While v1 looked clean, s1 (the known-good) was unpinned and
		// forgotten: the incident had no restore point.
		name:  "rescan after the known-good was unpinned",
		early: []events.Event{clean("u0", "v0", 0), clean("u1", "v1", 0), critical("u2", "v1", 5), snap(1, "v0"), snap(2, "v1"), snap(3, "v1"), snap(4, "v1")},
		late:  []events.Event{clean("u0", "v0", 0), snap(1, "v0"), clean("u1", "v1", 0), snap(2, "v1"), snap(3, "v1"), snap(4, "v1"), critical("u2", "v1", 5)},
		start: at(2), restorePoint: "s1",
	}, {
		// (4) The failure of s1, forgotten, left a record without
		// completion that was never pruned.
		name:  "late failure of a forgotten snapshot",
		early: []events.Event{clean("u0", "v0", 0), clean("u1", "v1", 0), snap(1, "v0"), scenario.SnapshotFailed(ns, pvc, "s1"), snap(2, "v1"), snap(3, "v1"), snap(4, "v1")},
		late:  []events.Event{clean("u0", "v0", 0), clean("u1", "v1", 0), snap(1, "v0"), snap(2, "v1"), snap(3, "v1"), snap(4, "v1"), scenario.SnapshotFailed(ns, pvc, "s1")},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			early, late := NewState(ns), NewState(ns)
			feed(t, r, early, tt.early...)
			feed(t, r, late, tt.late...)
			if diff := cmp.Diff(early.Ledger.InForce(), late.Ledger.InForce()); diff != "" {
				t.Errorf("decisions in force (-nothing late +one event late):\n%s", diff)
			}
			if diff := cmp.Diff(slices.Sorted(maps.Keys(early.Snapshots)), slices.Sorted(maps.Keys(late.Snapshots))); diff != "" {
				t.Errorf("snapshots remembered (-nothing late +one event late):\n%s", diff)
			}
			for _, s := range late.Snapshots {
				if !s.Completed {
					t.Errorf("a record of %s without completion is kept", s.Name)
				}
			}
			for name, st := range map[string]*State{"nothing late": early, "one event late": late} {
				av, _ := Derive(r, st).App(app)
				if tt.start.IsZero() {
					if len(av.Incidents) != 0 {
						t.Errorf("%s: incidents %v, want none", name, av.Incidents)
					}
					continue
				}
				if len(av.Incidents) != 1 {
					t.Fatalf("%s: %d incidents, want 1", name, len(av.Incidents))
				}
				inc := av.Incidents[0]
				if !inc.StartTime.Equal(tt.start) {
					t.Errorf("%s: the incident starts at %s, want %s", name, inc.StartTime, tt.start)
				}
				var rps []string
				for _, rp := range inc.RestorePoints {
					rps = append(rps, rp.Name)
				}
				want := []string(nil)
				if tt.restorePoint != "" {
					want = []string{tt.restorePoint}
					if p := st.Ledger.Pinned[tt.restorePoint]; p.Incident != inc.ID {
						t.Errorf("%s: %s pinned as %+v, want the restore point of %s", name, tt.restorePoint, p, inc.ID)
					}
				}
				if diff := cmp.Diff(want, rps); diff != "" {
					t.Errorf("%s: restore points (-want +got):\n%s", name, diff)
				}
			}
		})
	}
}

// A restore.completed later than the history: s0 of a clean v0, then v1
// (critical) from s1 on, restored from s0 between s3 and s4 while v1 goes
// on running. In order, the restore comes before s4; late, after s6, when
// s4 — the first sample after the restore — is forgotten. The restore
// ends the incident of v1's first run, and v1, still running, opens the
// next: its start and id must not depend on which samples after the
// restore are still remembered.
func TestLateRestoreBeyondTheHistory(t *testing.T) {
	const ns, app, pvc = "late", "api", "data"
	r := DefaultRules()
	r.History = 2
	at := func(h float64) time.Time { return scenario.T0.Add(time.Duration(h * float64(time.Hour))) }
	snap := func(i int, version string) events.Event {
		return scenario.Snapshot(ns, pvc, fmt.Sprintf("s%d", i), at(float64(i)), scenario.Run{App: app, Versions: []string{version}})
	}
	restore := scenario.Restored(ns, pvc, "s0", at(3.5))
	base := []events.Event{scenario.SARIF(ns, app, "u0", "v0", at(0)), scenario.SARIF(ns, app, "u1", "v1", at(0), scenario.Critical), snap(0, "v0")}
	orders := map[string][]events.Event{
		"in order":           slices.Concat(base, []events.Event{snap(1, "v1"), snap(2, "v1"), snap(3, "v1"), restore, snap(4, "v1"), snap(5, "v1"), snap(6, "v1")}),
		"the restore late":   slices.Concat(base, []events.Event{snap(1, "v1"), snap(2, "v1"), snap(3, "v1"), snap(4, "v1"), snap(5, "v1"), snap(6, "v1"), restore}),
		"the restore first":  slices.Concat(base, []events.Event{restore, snap(1, "v1"), snap(2, "v1"), snap(3, "v1"), snap(4, "v1"), snap(5, "v1"), snap(6, "v1")}),
		"the snapshots last": slices.Concat([]events.Event{restore}, base[:2], []events.Event{snap(6, "v1"), snap(5, "v1"), snap(4, "v1"), snap(3, "v1"), snap(2, "v1"), snap(1, "v1"), snap(0, "v0")}),
	}
	want := NewState(ns)
	feed(t, r, want, orders["in order"]...)
	av, _ := Derive(r, want).App(app)
	var open []IncidentView
	for _, inc := range av.Incidents {
		if inc.Open {
			open = append(open, inc)
		}
	}
	if len(av.Incidents) != 2 || len(open) != 1 {
		t.Fatalf("in order: incidents %+v, want v1's first closed by the restore and one open", av.Incidents)
	}
	if !open[0].StartTime.Equal(at(3.5)) {
		t.Errorf("in order: the open incident starts at %s, want the restore's time %s (v1 runs on)", open[0].StartTime, at(3.5))
	}
	for _, name := range slices.Sorted(maps.Keys(orders)) {
		st := NewState(ns)
		feed(t, r, st, orders[name]...)
		if diff := cmp.Diff(want.Ledger.InForce(), st.Ledger.InForce()); diff != "" {
			t.Errorf("%s: decisions in force (-in order +%s):\n%s", name, name, diff)
		}
	}
}

// longRuns is a scenario of long runs of one version: one application on
// two PVCs, 20 to 30 snapshots an hour apart, its version (v1 critical,
// v0 and v2 clean) changing about every sixth, and now and then a restore
// of an earlier snapshot (of either PVC) a little after a snapshot. With
// timed, the restores carry the snapshot's time and claim as the Restore
// executor sends them; without, they are an older producer's.
func longRuns(seed uint64, timed bool) []events.Event {
	rnd := rand.New(rand.NewPCG(seed, 99))
	const ns, app = "runs", "api"
	evs := []events.Event{
		scenario.SARIF(ns, app, "u0", "v0", scenario.T0),
		scenario.SARIF(ns, app, "u1", "v1", scenario.T0, scenario.Critical),
		scenario.SARIF(ns, app, "u2", "v2", scenario.T0),
	}
	at, version := scenario.T0, "v0"
	restored := map[string]bool{}
	taken := map[string]takenOf{}
	for i := range 20 + rnd.IntN(10) {
		at = at.Add(time.Hour)
		if rnd.IntN(6) == 0 {
			version = fmt.Sprintf("v%d", rnd.IntN(3))
		}
		pvc, name := fmt.Sprintf("data-%d", rnd.IntN(2)), fmt.Sprintf("s%d", i)
		taken[name] = takenOf{pvc, at}
		evs = append(evs, scenario.Snapshot(ns, pvc, name, at, scenario.Run{App: app, Versions: []string{version}}))
		if rnd.IntN(7) == 0 {
			from := fmt.Sprintf("s%d", rnd.IntN(i+1))
			if !restored[pvc+"/"+from] { // one event per id: the id names the PVC and the snapshot
				restored[pvc+"/"+from] = true
				evs = append(evs, restoredEvent(ns, pvc, from, taken[from], at.Add(time.Duration(1+rnd.IntN(50))*time.Minute), timed))
			}
		}
	}
	return evs
}

// takenOf is a snapshot's claim and time, for the restore.completed
// events of the generated scenarios.
type takenOf struct {
	pvc string
	at  time.Time
}

// restoredEvent is a restore of snapshot from into pvc at at: with timed,
// as the Restore executor publishes it (snapshot_time, and snapshot_pvc
// for a snapshot of another claim); without, as a producer that predates
// the fields.
func restoredEvent(ns, pvc, from string, src takenOf, at time.Time, timed bool) events.Event {
	if !timed {
		return scenario.Restored(ns, pvc, from, at)
	}
	other := ""
	if src.pvc != pvc {
		other = src.pvc
	}
	return scenario.RestoredTaken(ns, pvc, from, other, src.at, at)
}

// Every restore.completed delivered after everything else, with a history
// of 2, on long runs of one version: the incidents (ids and whether open)
// are the in-order run's — in every scenario when the restores carry the
// snapshot's time as the Restore executor sends them, and, for an older
// producer's restores without it, whenever the snapshots restored are
// still remembered when the restores come (else the restored lineage is
// unknown). On the old rule — the versions running through a restore
// started at the first sample after it — 7 of the 115 compared of 400
// seeds (none in -short's 50) ended with other incidents; while the
// model ignored snapshot_time, 43 of the 385 timed scenarios did (5 in
// -short's; 100 of 967 of 1,000 seeds). What stays order-dependent is in
// the README (a known-good or restore point that is the newest ready
// snapshot before the restore may be forgotten).
func TestLateRestoresKeepTheIncidents(t *testing.T) {
	r := DefaultRules()
	r.History = 2
	incidents := func(st *State) map[string]string {
		out := map[string]string{}
		for k, v := range st.Ledger.InForce() {
			if strings.HasPrefix(k, "incident/") {
				out[k] = v
			}
		}
		return out
	}
	for _, timed := range []bool{true, false} {
		compared, scenarios := 0, 0
		for seed := range seeds(400) {
			evs := longRuns(seed, timed)
			restores := slices.DeleteFunc(slices.Clone(evs), func(ev events.Event) bool { return ev.Type() != events.TypeRestoreCompleted })
			if len(restores) == 0 {
				continue
			}
			scenarios++
			others := slices.DeleteFunc(slices.Clone(evs), func(ev events.Event) bool { return ev.Type() == events.TypeRestoreCompleted })
			inOrder, late := NewState("runs"), NewState("runs")
			feed(t, r, inOrder, evs...)
			checkIDsOnce(t, fmt.Sprintf("seed %d, restores last", seed), feed(t, r, late, slices.Concat(others, restores)...))
			if !timed && slices.ContainsFunc(slices.Collect(maps.Values(late.Restores)), func(rs *Restore) bool {
				s := late.Snapshots[rs.Snapshot]
				return s == nil || !s.Completed
			}) {
				continue // restored a snapshot forgotten before the restore came, and no time: its lineage is unknown
			}
			compared++
			if diff := cmp.Diff(incidents(inOrder), incidents(late)); diff != "" {
				t.Errorf("seed %d (restores with snapshot_time: %v): incidents (-in order +restores last):\n%s", seed, timed, diff)
			}
		}
		t.Logf("restores with snapshot_time %v: %d of %d scenarios compared", timed, compared, scenarios)
		if uint64(compared) < seeds(400)/5 {
			t.Fatalf("only %d scenarios compared: the test proves little", compared)
		}
	}
}

// A restore.completed that comes after the snapshot it restored was
// forgotten: a long run of a clean v0 on a PVC (s0…s6), then a critical v1
// (s7…s12); the PVC restored from s2 just after s3, while v0 runs. In
// order the restore comes before s4, when s2 is still remembered (and then
// kept: it was restored from); late, after s12, when prune has forgotten
// s2 (a snapshot in the middle of a run of one version). With the time the
// event carries (snapshot_time, and snapshot_pvc for a snapshot of
// another claim), the restored lineage is rebuilt from the samples kept —
// v0 from s0 — and the decisions are the in-order run's; without it, the
// late order can only call the lineage unknown (as before the field).
func TestLateRestoreOfAForgottenSnapshot(t *testing.T) {
	const ns, app = "late", "api"
	r := DefaultRules()
	r.History = 2
	at := func(h float64) time.Time { return scenario.T0.Add(time.Duration(h * float64(time.Hour))) }
	snap := func(pvc string, i int) events.Event {
		version := "v0"
		if i >= 7 {
			version = "v1"
		}
		return scenario.Snapshot(ns, pvc, fmt.Sprintf("%s-s%d", pvc, i), at(float64(i)), scenario.Run{App: app, Versions: []string{version}})
	}
	scans := []events.Event{scenario.SARIF(ns, app, "u0", "v0", at(0)), scenario.SARIF(ns, app, "u1", "v1", at(0), scenario.Critical)}
	cases := []struct {
		name     string
		pvcs     []string // the snapshots' claims
		restored string
		restore  events.Event
	}{
		{"of its own claim", []string{"data"}, "data-s2", scenario.RestoredTaken(ns, "data", "data-s2", "", at(2), at(3.5))},
		{"of another claim", []string{"old", "data"}, "old-s2", scenario.RestoredTaken(ns, "data", "old-s2", "old", at(2), at(3.5))},
	}
	// classes are the snapshots' classes, of those both states remember.
	classes := func(st, other *State) map[string]string {
		av, _ := Derive(r, st).App(app)
		out := map[string]string{}
		for _, sv := range av.Snapshots {
			if other.Snapshots[sv.Name] != nil {
				out[sv.Name] = sv.Class
			}
		}
		return out
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var before, after []events.Event // the snapshots before the restore's time, and after
			for i := range 13 {
				for _, pvc := range c.pvcs {
					if i <= 3 {
						before = append(before, snap(pvc, i))
					} else {
						after = append(after, snap(pvc, i))
					}
				}
			}
			want := NewState(ns)
			feed(t, r, want, slices.Concat(scans, before, []events.Event{c.restore}, after)...)
			late := NewState(ns)
			checkIDsOnce(t, "the restore late", feed(t, r, late, slices.Concat(scans, before, after, []events.Event{c.restore})...))
			if s := late.Snapshots[c.restored]; s != nil && s.Completed {
				t.Fatalf("%s is still remembered when the late restore comes: the test proves nothing", c.restored)
			}
			if diff := cmp.Diff(want.Ledger.InForce(), late.Ledger.InForce()); diff != "" {
				t.Errorf("decisions in force (-in order +restore late):\n%s", diff)
			}
			if diff := cmp.Diff(classes(want, late), classes(late, want)); diff != "" {
				t.Errorf("snapshot classes (-in order +restore late):\n%s", diff)
			}
		})
	}
}
