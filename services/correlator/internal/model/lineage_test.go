package model

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stateguard/stateguard/pkg/events"
	scenario "github.com/stateguard/stateguard/services/correlator/internal/scenariotest"
)

func hr(n int) time.Time { return scenario.T0.Add(time.Duration(n) * time.Hour) }

func classesOf(t *testing.T, st *State, app string) []string {
	t.Helper()
	av, ok := Derive(DefaultRules(), st).App(app)
	if !ok {
		t.Fatalf("no view of %s", app)
	}
	var out []string
	for _, s := range av.Snapshots {
		out = append(out, s.Name+"="+s.Class)
	}
	return out
}

func TestPureLineageRules(t *testing.T) {
	w := func(app string, vs ...string) []Workload { return []Workload{{App: app, Versions: vs}} }
	spans := spansOf("data", []sample{
		{time: hr(1), eventID: "a", workloads: w("db", "v1")},
		{time: hr(2), eventID: "b", workloads: w("db", "v1", "v2")},
		{time: hr(3), eventID: "c", workloads: w("db", "v1")},
	})
	to3 := hr(3)
	want := []Span{
		{PVC: "data", App: "db", Version: "v1", From: hr(1), Cause: "a"},
		{PVC: "data", App: "db", Version: "v2", From: hr(2), To: &to3, Cause: "b"},
	}
	if diff := cmp.Diff(want, spans); diff != "" {
		t.Fatalf("spans (-want +got):\n%s", diff)
	}
	spans[0].Verdict, spans[1].Verdict = Clean, Vulnerable
	for at, class := range map[int]string{0: Unknown, 1: Clean, 2: Tainted, 5: Tainted} {
		if got := classify(spans, hr(at), false); got != class {
			t.Errorf("class at %dh = %s, want %s", at, got, class)
		}
	}
	spans[1].Verdict = Unknown
	if got := classify(spans, hr(4), false); got != Unknown {
		t.Errorf("a version never scanned: class %s, want unknown", got)
	}
	if got := classify(spans, hr(4), true); got != Clean {
		t.Errorf("a version never scanned with unknown_is_clean: class %s, want clean", got)
	}
}

// Problem 1: a vulnerable version deployed between two snapshots and
// rolled back before the next one taints it.
func TestVulnerableVersionBetweenSnapshotsTaintsTheLaterOne(t *testing.T) {
	ns, app, pvc := "weekly", "db", "data"
	run := func(v string) scenario.Run { return scenario.Run{App: app, Versions: []string{v}} }
	st := NewState(ns)
	ds := feed(t, DefaultRules(), st,
		scenario.SARIF(ns, app, "u1", "v1", hr(0)),
		scenario.Snapshot(ns, pvc, "mon1", hr(1), run("v1")),
		scenario.Observed(ns, pvc, hr(25), nil, run("v2")), // Tuesday
		scenario.Observed(ns, pvc, hr(73), nil, run("v1")), // Thursday: rolled back
		scenario.Snapshot(ns, pvc, "mon2", hr(169), run("v1")),
		scenario.SARIF(ns, app, "u2", "v2", hr(170), scenario.Critical),
	)
	if diff := cmp.Diff([]string{"mon1=clean", "mon2=tainted"}, classesOf(t, st, app)); diff != "" {
		t.Errorf("classes (-want +got):\n%s", diff)
	}
	if !slices.Contains(brief(ds), "restore data from mon1") {
		t.Errorf("no restore from mon1 recommended: %v", brief(ds))
	}
	if _, pinned := st.Ledger.Pinned["mon2"]; pinned {
		t.Error("mon2 is pinned as known-good though v2 wrote to its data")
	}
	av, _ := Derive(DefaultRules(), st).App(app)
	inc := av.Incidents[0]
	if !inc.Open || len(inc.Lineage) != 3 || inc.Lineage[1].Version != scenario.Digest("v2") || inc.Lineage[1].To == nil || !inc.Lineage[1].To.Equal(hr(73)) {
		t.Errorf("incident %+v: want open with v2's interval 25h–73h in its lineage", inc)
	}
}

// Problem 2: the incident opens on the upload, before any later snapshot.
func TestIncidentOpensOnTheUpload(t *testing.T) {
	ns, app, pvc := "early", "db", "data"
	st := NewState(ns)
	feed(t, DefaultRules(), st,
		scenario.SARIF(ns, app, "u1", "v1", hr(0)),
		scenario.Snapshot(ns, pvc, "s1", hr(1), scenario.Run{App: app, Versions: []string{"v1"}}),
		scenario.Observed(ns, pvc, hr(2), nil, scenario.Run{App: app, Versions: []string{"v2"}}),
	)
	ds := feed(t, DefaultRules(), st, scenario.SARIF(ns, app, "u2", "v2", hr(3), scenario.Critical))
	if _, pinned := st.Ledger.Pinned["s1"]; !pinned {
		t.Error("s1 is not pinned")
	}
	// s1, known-good until now, is pinned again as the incident's restore point.
	if diff := cmp.Diff([]string{"pin s1", "incident.opened db", "restore data from s1"}, brief(ds)); diff != "" {
		t.Errorf("decisions on the upload (-want +got):\n%s", diff)
	}
}

// Problem 3: the fix keeps the incident open and the restore point
// pinned; a restore from a clean snapshot, or an operator's resolution
// once no vulnerable version runs, closes it.
func TestIncidentEndsWithARestoreOrAResolution(t *testing.T) {
	closeWith := map[string]func(incident string) events.Event{
		"restore.completed from the clean snapshot": func(string) events.Event {
			return scenario.Restored(scenario.CaseNS, scenario.CasePVC, "s2", hr(6))
		},
		"incident.resolved by an operator": func(id string) events.Event { return scenario.Resolved(scenario.CaseNS, id, hr(6)) },
	}
	for name, ev := range closeWith {
		t.Run(name, func(t *testing.T) {
			st := NewState(scenario.CaseNS)
			feed(t, DefaultRules(), st, scenario.CaseStudy()...)
			av, _ := Derive(DefaultRules(), st).App(scenario.CaseApp)
			if len(av.Incidents) != 1 || !av.Incidents[0].Open {
				t.Fatalf("after the fix: incidents %+v, want one open", av.Incidents)
			}
			id := av.Incidents[0].ID
			if p := st.Ledger.Pinned["s2"]; p.Incident != id {
				t.Fatalf("s2 pinned as %+v, want the restore point of %s", p, id)
			}
			ds := feed(t, DefaultRules(), st, ev(id))
			if !slices.Contains(brief(ds), "incident.closed db") {
				t.Errorf("decisions %v: want incident.closed", brief(ds))
			}
			if st.Ledger.Incidents[id].Status != StatusClosed {
				t.Errorf("incident %s is %s", id, st.Ledger.Incidents[id].Status)
			}
		})
	}
}

func TestResolutionWaitsUntilNoVulnerableVersionRuns(t *testing.T) {
	ns, app, pvc := "still", "db", "data"
	st := NewState(ns)
	feed(t, DefaultRules(), st,
		scenario.SARIF(ns, app, "u1", "v1", hr(0)),
		scenario.Snapshot(ns, pvc, "s1", hr(1), scenario.Run{App: app, Versions: []string{"v1"}}),
		scenario.Observed(ns, pvc, hr(2), nil, scenario.Run{App: app, Versions: []string{"v2"}}),
		scenario.SARIF(ns, app, "u2", "v2", hr(3), scenario.Critical),
	)
	av, _ := Derive(DefaultRules(), st).App(app)
	id := av.Incidents[0].ID
	feed(t, DefaultRules(), st, scenario.Resolved(ns, id, hr(4)))
	if st.Ledger.Incidents[id].Status != StatusOpen {
		t.Fatal("a resolution closed the incident while the vulnerable version still runs")
	}
	ds := feed(t, DefaultRules(), st, scenario.Observed(ns, pvc, hr(5), nil, scenario.Run{App: app, Versions: []string{"v1"}}))
	if !slices.Contains(brief(ds), "incident.closed db") {
		t.Errorf("decisions %v once v2 stopped: want incident.closed", brief(ds))
	}
}

// Problem 4: a Secret mounted by the app (observed, with a 200-day
// certificate) is rotated once when a leaked-credential finding arrives.
func TestKeyExposureRotatesEveryMountedSecretOnce(t *testing.T) {
	ns, app, pvc := "keys", "db", "data"
	st := NewState(ns)
	ds := feed(t, DefaultRules(), st,
		scenario.Cert(ns, "db-tls", "01", scenario.T0.Add(200*24*time.Hour), 200, nil, nil),
		scenario.SARIF(ns, app, "u1", "v1", hr(0)),
		scenario.Snapshot(ns, pvc, "s1", hr(1), scenario.Run{App: app, Versions: []string{"v1"}}),
		scenario.Observed(ns, pvc, hr(2), []string{"db-peer-tls", "db-tls"}, scenario.Run{App: app, Versions: []string{"v2"}}),
		scenario.SARIF(ns, app, "u2", "v2", hr(3), scenario.Leak),
		scenario.SARIF(ns, app, "u2", "v2", hr(3), scenario.Leak), // again
	)
	var rotations []string
	for _, b := range brief(ds) {
		if len(b) > 7 && b[:7] == "rotate " {
			rotations = append(rotations, b)
		}
	}
	if diff := cmp.Diff([]string{"rotate db-peer-tls", "rotate db-tls"}, rotations); diff != "" {
		t.Errorf("rotations (-want +got):\n%s", diff)
	}
}

// A dismissed or suppressed finding does not make a version vulnerable.
func TestDismissedOrSuppressedFindingIsNotOpen(t *testing.T) {
	ns, app, pvc := "fp", "db", "data"
	suppressed := scenario.SARIF(ns, app, "u2", "v2", hr(3), scenario.Critical)
	p, _ := events.Decode[events.SARIFUploaded](suppressed)
	p.Suppressed = &events.SeverityCounts{Critical: 1}
	p.Findings[0].Suppressed = true
	suppressed = events.MustNewEvent(events.TypeSARIFUploaded, scenario.Source, suppressed.ID(), p)
	for name, evs := range map[string][]events.Event{
		"dismissed by an operator": {scenario.SARIF(ns, app, "u2", "v2", hr(3), scenario.Critical), scenario.Dismissed(ns, app, scenario.Critical, hr(4))},
		"suppressed in the SARIF":  {suppressed},
	} {
		t.Run(name, func(t *testing.T) {
			st := NewState(ns)
			feed(t, DefaultRules(), st,
				scenario.SARIF(ns, app, "u1", "v1", hr(0)),
				scenario.Snapshot(ns, pvc, "s1", hr(1), scenario.Run{App: app, Versions: []string{"v1"}}),
				scenario.Observed(ns, pvc, hr(2), nil, scenario.Run{App: app, Versions: []string{"v2"}}))
			feed(t, DefaultRules(), st, evs...)
			av, _ := Derive(DefaultRules(), st).App(app)
			for _, inc := range av.Incidents {
				if inc.Open {
					t.Errorf("open incident %s for a finding that is not open", inc.ID)
				}
			}
			for _, v := range av.Versions {
				if v.Version == scenario.Digest("v2") && v.Verdict != Clean {
					t.Errorf("v2 is %s, want clean", v.Verdict)
				}
			}
		})
	}
}

// A restore from a tainted snapshot keeps the incident open; the restored
// PVC inherits the snapshot's lineage.
func TestRestoreFromATaintedSnapshotKeepsTheIncident(t *testing.T) {
	st := NewState(scenario.CaseNS)
	feed(t, DefaultRules(), st, scenario.CaseStudy()...)
	feed(t, DefaultRules(), st, scenario.Restored(scenario.CaseNS, scenario.CasePVC, "s3", hr(6)))
	av, _ := Derive(DefaultRules(), st).App(scenario.CaseApp)
	if len(av.Incidents) != 1 || !av.Incidents[0].Open {
		t.Errorf("incidents %+v after restoring s3: want the one incident open", av.Incidents)
	}
}

// An incident closed by a restore, opened again by a later restore from a
// tainted snapshot and closed again by an operator: each opening and each
// closing is published with an id of its own (a generation per opening),
// so JetStream keeps the second close instead of dropping it as a
// duplicate of the first.
func TestReopenedIncidentClosesWithANewID(t *testing.T) {
	st := NewState(scenario.CaseNS)
	feed(t, DefaultRules(), st, scenario.CaseStudy()...)
	av, _ := Derive(DefaultRules(), st).App(scenario.CaseApp)
	id := av.Incidents[0].ID
	type step struct {
		ev     events.Event
		status string
	}
	var ds []Decision
	for _, s := range []step{
		{scenario.Restored(scenario.CaseNS, scenario.CasePVC, "s2", hr(6)), StatusClosed},
		{scenario.Restored(scenario.CaseNS, scenario.CasePVC, "s3", hr(7)), StatusOpen},
		{scenario.Resolved(scenario.CaseNS, id, hr(8)), StatusClosed},
	} {
		ds = append(ds, feed(t, DefaultRules(), st, s.ev)...)
		if got := st.Ledger.Incidents[id].Status; got != s.status {
			t.Fatalf("after %s the incident is %s, want %s", s.ev.ID(), got, s.status)
		}
	}
	var cycle []string
	ids := map[string]bool{}
	for _, d := range ds {
		if d.Type == events.TypeIncidentOpened || d.Type == events.TypeIncidentClosed {
			cycle = append(cycle, brief([]Decision{d})[0])
			ids[d.ID] = true
		}
	}
	if diff := cmp.Diff([]string{"incident.closed db", "incident.opened db", "incident.closed db"}, cycle); diff != "" {
		t.Errorf("incident decisions (-want +got):\n%s", diff)
	}
	if len(ids) != len(cycle) {
		t.Errorf("%d incident decisions with %d ids: an id is taken twice", len(cycle), len(ids))
	}
	checkIDsOnce(t, "restore, restore from a tainted snapshot, resolution", ds)
}

// The Restore executor scales the workloads up before it publishes
// restore.completed, so the version it brings back is observed just before
// the restore's time. That version writes to the restored data: a
// vulnerable one opens the next incident at the restore, not at the next
// sample (a week later with weekly snapshots).
func TestVersionRunningThroughARestoreWritesToTheRestoredData(t *testing.T) {
	ns, app, pvc := "through", "db", "data"
	run := func(v string) scenario.Run { return scenario.Run{App: app, Versions: []string{v}} }
	st := NewState(ns)
	ds := feed(t, DefaultRules(), st,
		scenario.SARIF(ns, app, "u1", "v1", hr(0)),
		scenario.SARIF(ns, app, "u2", "v2", hr(0), scenario.Critical),
		scenario.Snapshot(ns, pvc, "mon1", hr(1), run("v1")),
		scenario.Observed(ns, pvc, hr(25), nil, run("v2")),
		scenario.Observed(ns, pvc, hr(30), nil),                              // scaled down for the restore
		scenario.Observed(ns, pvc, hr(31).Add(-time.Minute), nil, run("v2")), // scaled up, still v2
		scenario.Restored(ns, pvc, "mon1", hr(31)),
	)
	av, _ := Derive(DefaultRules(), st).App(app)
	var open []IncidentView
	for _, inc := range av.Incidents {
		if inc.Open {
			open = append(open, inc)
		}
	}
	if len(av.Incidents) != 2 || len(open) != 1 || !open[0].StartTime.Equal(hr(31)) {
		t.Fatalf("incidents %+v: want v2's first closed by the restore and the next open since the restore (31h)", av.Incidents)
	}
	if n := countBrief(brief(ds), "incident.opened db"); n != 2 {
		t.Errorf("%d incidents opened, want 2: %v", n, brief(ds))
	}
}

func countBrief(list []string, s string) int {
	n := 0
	for _, e := range list {
		if e == s {
			n++
		}
	}
	return n
}

// A late scan of a version that ran before the fix still recommends the
// restore (the data was exposed).
func TestLateScanAfterTheFixStillRecommends(t *testing.T) {
	evs := scenario.CaseStudy()
	i := slices.IndexFunc(evs, func(ev events.Event) bool { return ev.ID() == "sarif-u2" })
	late := append(slices.Delete(slices.Clone(evs), i, i+1), evs[i])
	st := NewState(scenario.CaseNS)
	ds := feed(t, DefaultRules(), st, late...)
	if !slices.Contains(brief(ds), "restore data-db-0 from s2") {
		t.Errorf("decisions %v: want the restore from s2", brief(ds))
	}
}

// The key exposure rule's reach does not depend on the fact index: a
// certificate whose users name the app's workload by its owner's name
// (not the app's), one that names only a pod of the app, and one another
// app mounts, with a hundred other applications' certificates around.
func TestSecretsOfAnAppThroughItsOwnersAndPods(t *testing.T) {
	ns := "reach"
	snap := scenario.Snapshot(ns, "data", "s1", hr(1), scenario.Run{App: "db", Versions: []string{"v1"}})
	p, err := events.Decode[events.SnapshotCompleted](snap)
	if err != nil {
		t.Fatal(err)
	}
	p.Workloads[0].Owner.Name = "db-primary"
	snap = events.MustNewEvent(events.TypeSnapshotCompleted, scenario.Source, snap.ID(), p)
	evs := []events.Event{
		scenario.Cert(ns, "by-owner", "01", hr(24*200), 200, []events.ObjectRef{{Kind: "StatefulSet", Namespace: ns, Name: "db-primary"}}, nil),
		scenario.Cert(ns, "other", "02", hr(24*200), 200, []events.ObjectRef{{Kind: "StatefulSet", Namespace: ns, Name: "web"}}, nil),
	}
	byPod := scenario.Cert(ns, "by-pod", "03", hr(24*200), 200, nil, nil)
	cp, err := events.Decode[events.CertificateExpiring](byPod)
	if err != nil {
		t.Fatal(err)
	}
	cp.Users.Pods = []events.ObjectRef{{Kind: "Pod", Namespace: ns, Name: p.Workloads[0].Pod}}
	evs = append(evs, events.MustNewEvent(events.TypeCertificateExpiring, scenario.Source, byPod.ID(), cp))
	for i := range 100 {
		app := fmt.Sprintf("app-%03d", i)
		evs = append(evs, scenario.Cert(ns, app+"-tls", "x", hr(24*200), 200, []events.ObjectRef{{Kind: "StatefulSet", Namespace: ns, Name: app}}, nil))
	}
	st := NewState(ns)
	feed(t, DefaultRules(), st, append(evs, snap, scenario.SARIF(ns, "db", "u1", "v1", hr(2)))...)
	for name, v := range map[string]View{"kept by Apply": st.derive(DefaultRules()), "from scratch": Derive(DefaultRules(), st)} {
		av, ok := v.App("db")
		if !ok {
			t.Fatalf("%s: no view of db", name)
		}
		if diff := cmp.Diff([]string{"by-owner", "by-pod"}, av.Secrets); diff != "" {
			t.Errorf("%s: secrets of db (-want +got):\n%s", name, diff)
		}
	}
}
