package model

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stateguard/stateguard/pkg/events"
	scenario "github.com/stateguard/stateguard/services/correlator/internal/scenariotest"
)

// safetyStory is the event sequence the snapshotter's Restore executor
// really produces around a restore of claim "data" from mon1 (its phases:
// Pending, SafetySnapshot, ScalingDown, Restoring, Verifying, ScalingUp;
// on a failure RollingBack), with version `running` deployed at 25h:
//
//   - 30h: the safety snapshot is cut while the workloads still run (it is
//     taken before the scale-down); its snapshot.completed names
//     safetyRuns (the snapshotter annotates it with what mounts the claim
//     then, as it does for scheduled snapshots);
//   - 30h10m: the workloads are scaled down (workload.observed: none);
//   - completed: scaled up again on the restored claim (observed just
//     before completed_at), then restore.completed at 31h;
//   - rolled back: the old claim is bound again and the workloads scaled
//     up at 31h; restore.failed, which changes no data, is not a fact of
//     the lineage.
//
// observed false leaves out every workload.observed (a producer without
// the observer): the snapshots are then the only samples. A scheduled
// snapshot at 50h follows either way.
func safetyStory(running string, safetyRuns []scenario.Run, completed, observed bool) []events.Event {
	ns, app, pvc := "safety", "db", "data"
	run := func(v string) scenario.Run { return scenario.Run{App: app, Versions: []string{v}} }
	evs := []events.Event{
		scenario.SARIF(ns, app, "u1", "v1", hr(0)),
		scenario.SARIF(ns, app, "u2", "v2", hr(0), scenario.Critical),
		scenario.Observed(ns, pvc, hr(0), nil, run("v1")),
		scenario.Snapshot(ns, pvc, "mon1", hr(1), run("v1")),
		scenario.Observed(ns, pvc, hr(25), nil, run(running)),
		scenario.Snapshot(ns, pvc, "tue1", hr(26), run(running)),
		scenario.Snapshot(ns, pvc, "restore-1-safety", hr(30), safetyRuns...),
		scenario.Observed(ns, pvc, hr(30).Add(10*time.Minute), nil),
	}
	if completed {
		evs = append(evs,
			scenario.Observed(ns, pvc, hr(31).Add(-time.Minute), nil, run(running)),
			scenario.RestoredTaken(ns, pvc, "mon1", "", hr(1), hr(31)))
	} else {
		evs = append(evs, scenario.Observed(ns, pvc, hr(31), nil, run(running)))
	}
	evs = append(evs, scenario.Snapshot(ns, pvc, "wed1", hr(50), run(running)))
	if observed {
		return evs
	}
	return slices.DeleteFunc(evs, func(ev events.Event) bool { return ev.Type() == events.TypeWorkloadObserved })
}

// What the README's rules promise for safetyStory, fed in order, checked
// after the restore (before the 50h snapshot) and at the end.
func TestSafetySnapshotIsASampleOfWhatRan(t *testing.T) {
	safetyRuns := func(v string) []scenario.Run { return []scenario.Run{{App: "db", Versions: []string{v}}} }
	for _, tc := range []struct {
		running             string
		completed, observed bool
		classes             []string // of mon1, tue1, the safety snapshot, wed1
		knownGood           string
		incidents           []string // "start version open|closed restore-point", by start
		firstSpanEnd        time.Time
	}{
		// A vulnerable version: its first incident is closed by the
		// restore, and since it was scaled up again on the restored data
		// it opens the next one at the restore (31h) — with or without
		// observations.
		{running: "v2", completed: true, observed: true,
			classes: []string{"clean", "tainted", "tainted", "tainted"}, knownGood: "mon1",
			incidents: []string{"25h v2 closed mon1", "31h v2 open mon1"}},
		{running: "v2", completed: true, observed: false,
			classes: []string{"clean", "tainted", "tainted", "tainted"}, knownGood: "mon1",
			incidents: []string{"26h v2 closed mon1", "31h v2 open mon1"}},
		// Rolled back: one incident, its start where v2 began; the
		// scale-down is a real gap, not a second incident.
		{running: "v2", completed: false, observed: true,
			classes: []string{"clean", "tainted", "tainted", "tainted"}, knownGood: "mon1",
			incidents: []string{"25h v2 open mon1"}, firstSpanEnd: hr(30).Add(10 * time.Minute)},
		{running: "v2", completed: false, observed: false,
			classes: []string{"clean", "tainted", "tainted", "tainted"}, knownGood: "mon1",
			incidents: []string{"26h v2 open mon1"}},
		// A clean version: the safety snapshot is clean, and the newest
		// clean ready snapshot before the restore — the known-good until
		// wed1 (clean: v1 wrote to the restored data) replaces it.
		{running: "v1", completed: true, observed: true,
			classes: []string{"clean", "clean", "clean", "clean"}, knownGood: "wed1"},
		{running: "v1", completed: false, observed: false,
			classes: []string{"clean", "clean", "clean", "clean"}, knownGood: "wed1"},
	} {
		name := fmt.Sprintf("%s completed=%t observed=%t", tc.running, tc.completed, tc.observed)
		t.Run(name, func(t *testing.T) {
			evs := safetyStory(tc.running, safetyRuns(tc.running), tc.completed, tc.observed)
			st := NewState("safety")
			// After the restore (or the rollback), before wed1: the
			// incidents are already what they will be.
			feed(t, DefaultRules(), st, evs[:len(evs)-1]...)
			checkSafetyIncidents(t, st, "before wed1", tc.incidents, tc.firstSpanEnd)
			if tc.running == "v1" {
				if kg := knownGoodOf(t, st); kg != "restore-1-safety" {
					t.Errorf("known-good before wed1 %q, want the safety snapshot (clean, the newest ready)", kg)
				}
			}
			feed(t, DefaultRules(), st, evs[len(evs)-1])
			checkSafetyIncidents(t, st, "at the end", tc.incidents, tc.firstSpanEnd)
			want := []string{"mon1=" + tc.classes[0], "tue1=" + tc.classes[1], "restore-1-safety=" + tc.classes[2], "wed1=" + tc.classes[3]}
			if got := classesOf(t, st, "db"); !slices.Equal(got, want) {
				t.Errorf("classes %v, want %v", got, want)
			}
			if kg := knownGoodOf(t, st); kg != tc.knownGood {
				t.Errorf("known-good %q, want %q", kg, tc.knownGood)
			}
		})
	}
}

func knownGoodOf(t *testing.T, st *State) string {
	t.Helper()
	av, _ := Derive(DefaultRules(), st).App("db")
	return strings.Join(av.KnownGood["data"], ",")
}

// checkSafetyIncidents compares db's incidents with want ("start version
// open|closed restore-point"), and, when firstSpanEnd is set, that the
// first incident's lineage ends v2's first span there (the scale-down).
func checkSafetyIncidents(t *testing.T, st *State, when string, want []string, firstSpanEnd time.Time) {
	t.Helper()
	av, _ := Derive(DefaultRules(), st).App("db")
	var got []string
	for _, inc := range av.Incidents {
		var rps []string
		for _, rp := range inc.RestorePoints {
			rps = append(rps, rp.Name)
		}
		status := map[bool]string{true: "open", false: "closed"}[inc.Open]
		var versions []string
		for _, v := range inc.Versions {
			versions = append(versions, versionName(v))
		}
		got = append(got, fmt.Sprintf("%dh %s %s %s", int(inc.StartTime.Sub(hr(0)).Hours()), strings.Join(versions, ","), status, strings.Join(rps, ",")))
	}
	if !slices.Equal(got, want) {
		t.Fatalf("%s: incidents %v, want %v", when, got, want)
	}
	if firstSpanEnd.IsZero() || len(av.Incidents) == 0 {
		return
	}
	for _, sp := range av.Incidents[0].Lineage {
		if versionName(sp.Version) == "v2" && sp.Via == "" {
			if sp.To == nil || !sp.To.Equal(firstSpanEnd) {
				t.Errorf("%s: v2's first span ends at %v, want %v (the scale-down: the safety snapshot is cut while it runs)", when, sp.To, firstSpanEnd)
			}
			return
		}
	}
	t.Errorf("%s: the first incident's lineage %+v has no span of v2", when, av.Incidents[0].Lineage)
}

// versionName is the scenario's name of version (a digest), or version.
func versionName(version string) string {
	for _, v := range []string{"v1", "v2"} {
		if scenario.Digest(v) == version {
			return v
		}
	}
	return version
}

// A snapshot that names no workload (an idle volume's) is a sample where
// nothing runs: it ends the spans of what ran on its volume, so the views
// of those applications change though the snapshot names none of them
// (feed's checkCache compares the kept views with a fresh derivation).
func TestIdleSnapshotRederivesTheAppsThatRanOnItsVolume(t *testing.T) {
	ns, pvc := "idle", "data"
	run := func(v string) scenario.Run { return scenario.Run{App: "db", Versions: []string{v}} }
	st := NewState(ns)
	feed(t, DefaultRules(), st,
		scenario.SARIF(ns, "db", "u2", "v2", hr(0), scenario.Critical),
		scenario.Snapshot(ns, pvc, "mon1", hr(1), run("v2")),
		scenario.Snapshot(ns, pvc, "idle1", hr(2)),
	)
	av, _ := Derive(DefaultRules(), st).App("db")
	if len(av.Running) != 0 {
		t.Errorf("running %v after a snapshot of the idle volume, want nothing", av.Running)
	}
	if len(av.Incidents) != 1 || av.Incidents[0].Lineage[len(av.Incidents[0].Lineage)-1].To == nil {
		t.Errorf("incidents %+v: want v2's span ended by the idle snapshot (2h)", av.Incidents)
	}
}
