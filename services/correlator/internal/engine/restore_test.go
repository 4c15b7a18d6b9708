package engine

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/pkg/harness/natstest"
	scenario "github.com/stateguard/stateguard/services/correlator/internal/scenariotest"
)

// executorRestored is restore.completed as the snapshotter's Restore
// executor publishes it (issue 15): with the Restore, the request, the
// safety snapshot, both volumes, and the restored snapshot's time (taken,
// the snapshot of pvc's own).
func executorRestored(ns, pvc, snapshot string, taken, n int) events.Event {
	return events.MustNewEvent(events.TypeRestoreCompleted, "/stateguard/snapshotter", "restore-"+ns+"-uid1-completed", events.RestoreCompleted{
		RestoreID: "restore-0123", Restore: "restore-0123", RequestID: "rr-1", Namespace: ns, PVC: pvc, VolumeSnapshot: snapshot,
		PV: "pvc-new", OldPV: "pvc-old", SafetySnapshot: "restore-0123-safety", Incident: "", CompletedAt: at(n), SnapshotTime: new(at(taken)),
	})
}

// A Restore's restore.completed starts a new lineage for the claim: it
// inherits the restored snapshot's, so the vulnerable version that wrote
// to the replaced data no longer taints what is written after the restore
// (a later snapshot is known-good and pinned), and the incident closes. A
// restore from a tainted snapshot (an operator's choice) keeps the incident
// open, and a later snapshot stays tainted.
func TestRestoreCompletedStartsANewLineage(t *testing.T) {
	run := func(v string) scenario.Run { return scenario.Run{App: "db", Versions: []string{v}} }
	ns := "restored"
	history := []events.Event{
		scenario.SARIF(ns, "db", "u1", "v1", at(0)),
		scenario.Snapshot(ns, "data", "mon1", at(1), run("v1")),
		scenario.Observed(ns, "data", at(25), nil, run("v2")),
		scenario.Snapshot(ns, "data", "tainted", at(27), run("v2")),
		scenario.SARIF(ns, "db", "u2", "v2", at(28), scenario.Critical),
		scenario.Observed(ns, "data", at(30), nil, run("v3")),
		scenario.SARIF(ns, "db", "u3", "v3", at(31)),
	}
	after := scenario.Snapshot(ns, "data", "after", at(40), run("v3"))
	for _, tc := range []struct {
		name      string
		restore   []events.Event
		want      []string
		never     []string
		wantStays bool
	}{
		{
			name:  "without a restore, a snapshot after the fix is still tainted by v2",
			want:  []string{"incident.opened db", "restore data from mon1"},
			never: []string{"incident.closed db", "pin after"},
		},
		{
			name:    "a restore from the clean snapshot resets the lineage and closes the incident",
			restore: []events.Event{executorRestored(ns, "data", "mon1", 1, 33)},
			want:    []string{"incident.opened db", "restore data from mon1", "incident.closed db", "pin after"},
		},
		{
			name:    "a restore from a tainted snapshot keeps the incident open",
			restore: []events.Event{executorRestored(ns, "data", "tainted", 27, 33)},
			want:    []string{"incident.opened db", "restore data from mon1"},
			never:   []string{"incident.closed db", "pin after"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := natstest.Run(t)
			c := natstest.Client(t, srv)
			startEngine(t, c, &recorder{})
			evs := append(slices.Clone(history), tc.restore...)
			for _, ev := range append(evs, after) {
				publish(t, c, ev)
				drain(t, c)
			}
			got := briefs(t, stored(t, c, decisionTypes...))
			for _, w := range tc.want {
				if !slices.Contains(got, w) {
					t.Errorf("%q not published; all: %v", w, got)
				}
			}
			for _, w := range tc.never {
				if slices.Contains(got, w) {
					t.Errorf("%q published; all: %v", w, got)
				}
			}
		})
	}
}

// An incident closed by a restore, opened again by a later restore from a
// tainted snapshot, and resolved by an operator: the stream stores the
// second close, and the opening before it. With one id per incident, the
// second incident.closed had the first one's id and JetStream dropped it
// as a duplicate (Nats-Msg-Id), while the state held the incident open in
// between: the stream said "closed" throughout.
func TestReopenedIncidentsSecondCloseIsStored(t *testing.T) {
	srv := natstest.Run(t)
	c := natstest.Client(t, srv)
	startEngine(t, c, &recorder{})
	ns, pvc := scenario.CaseNS, scenario.CasePVC
	feedAll := func(evs ...events.Event) {
		for _, ev := range evs {
			publish(t, c, ev)
			drain(t, c)
		}
	}
	feedAll(scenario.CaseStudy()...)
	opened := stored(t, c, events.TypeIncidentOpened)
	if len(opened) != 1 {
		t.Fatalf("%d incidents opened by the case study, want 1", len(opened))
	}
	inc, err := events.Decode[events.IncidentOpened](opened[0])
	if err != nil {
		t.Fatal(err)
	}
	feedAll(
		scenario.Restored(ns, pvc, "s2", at(6)), // clean: closes it
		scenario.Restored(ns, pvc, "s3", at(7)), // tainted: opens it again
		scenario.Resolved(ns, inc.Incident, at(8)),
	)
	var got []string
	for _, ev := range stored(t, c, events.TypeIncidentOpened, events.TypeIncidentClosed) {
		got = append(got, ev.Type()+" "+ev.ID())
	}
	var types []string
	ids := map[string]bool{}
	for _, g := range got {
		typ, id, _ := strings.Cut(g, " ")
		types = append(types, typ)
		ids[id] = true
	}
	want := []string{events.TypeIncidentOpened, events.TypeIncidentClosed, events.TypeIncidentOpened, events.TypeIncidentClosed}
	if diff := cmp.Diff(want, types); diff != "" {
		t.Errorf("incident decisions stored (-want +got):\n%s\nall: %v", diff, got)
	}
	if len(ids) != len(got) {
		t.Errorf("%d incident decisions stored with %d ids: %v", len(got), len(ids), got)
	}
}
