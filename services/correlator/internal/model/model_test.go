package model

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stateguard/stateguard/pkg/events"
	scenario "github.com/stateguard/stateguard/services/correlator/internal/scenariotest"
)

func TestCaseStudy(t *testing.T) {
	st := NewState(scenario.CaseNS)
	want := map[string][]string{
		"snapshot-shop-s1": {"pin s1"},
		"snapshot-shop-s2": {"pin s2", "unpin s1"},
		// s2 stays pinned, now as the incident's restore point: pinned again
		// so that its pinned-reason says so.
		"sarif-u2": {"pin s2", "incident.opened db", "restore data-db-0 from s2", "rotate db-peer-tls", "rotate db-tls"},
		// The fix without a restore: v2 wrote to the data, so s4 is
		// tainted, the incident stays open and s2 stays pinned.
		"sarif-u3": nil,
	}
	var all []Decision
	for _, ev := range scenario.CaseStudy() {
		ds := feed(t, DefaultRules(), st, ev)
		all = append(all, ds...)
		if diff := cmp.Diff(want[ev.ID()], brief(ds)); diff != "" {
			t.Errorf("decisions after %s (-want +got):\n%s", ev.ID(), diff)
		}
	}
	i := slices.IndexFunc(all, func(d Decision) bool { return d.Type == events.TypeRestoreRecommended })
	rec := all[i].Payload.(events.RestoreRecommended)
	if diff := cmp.Diff([]events.Reason{{
		UploadID: "u2", EventID: "sarif-u2", Version: scenario.Digest("v2"),
		RuleIDs: []string{"G101", "G402"}, Severities: []string{"critical", "high"},
		Text: `upload u2 (category "gosec") has 2 open findings at or above high for version ` + scenario.Digest("v2"),
	}}, rec.Reasons); diff != "" {
		t.Errorf("reasons (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"sarif-u2", "snapshot-shop-s2", "snapshot-shop-s3"}, rec.Causes); diff != "" {
		t.Errorf("causes (-want +got):\n%s", diff)
	}
	if rec.Manifest == "" || rec.SnapshotTime != scenario.T0.Add(2*time.Hour) {
		t.Errorf("restore recommendation without manifest or with snapshot time %s", rec.SnapshotTime)
	}
	v := Derive(DefaultRules(), st)
	db, _ := v.App(scenario.CaseApp)
	var classes []string
	for _, s := range db.Snapshots {
		classes = append(classes, s.Name+"="+s.Class)
	}
	if diff := cmp.Diff([]string{"s1=clean", "s2=clean", "s3=tainted", "s4=tainted"}, classes); diff != "" {
		t.Errorf("classes (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]string{"pin/s2": "restore point of incident " + db.Incidents[0].ID, "incident/" + db.Incidents[0].ID: StatusOpen}, st.Ledger.InForce()); diff != "" {
		t.Errorf("in force (-want +got):\n%s", diff)
	}
}

// TestPinFollowsItsCause checks that a pinned snapshot whose cause changes
// is pinned again with the new reason (and a new event id, so JetStream
// does not drop it as a duplicate), and that nothing is re-sent when the
// cause stays.
func TestPinFollowsItsCause(t *testing.T) {
	st := NewState(scenario.CaseNS)
	pins := map[string][]Decision{}
	for _, ev := range scenario.CaseStudy() {
		for _, d := range feed(t, DefaultRules(), st, ev) {
			if p, ok := d.Payload.(events.SnapshotPinRequested); ok {
				pins[p.VolumeSnapshot] = append(pins[p.VolumeSnapshot], d)
			}
		}
	}
	s2 := pins["s2"]
	if len(s2) != 2 {
		t.Fatalf("%d pin requests of s2, want 2 (known-good, then restore point)", len(s2))
	}
	first, second := s2[0].Payload.(events.SnapshotPinRequested), s2[1].Payload.(events.SnapshotPinRequested)
	if first.Reason != "known-good: newest clean, ready snapshot of the PVC" || first.Incident != "" {
		t.Errorf("first pin of s2: %q (incident %q)", first.Reason, first.Incident)
	}
	if !strings.HasPrefix(second.Reason, "restore point of incident ") || second.Incident == "" {
		t.Errorf("second pin of s2: %q (incident %q), want the incident's restore point", second.Reason, second.Incident)
	}
	if s2[0].ID == s2[1].ID {
		t.Errorf("both pins of s2 have id %s: JetStream would drop the second", s2[0].ID)
	}
	// s1's cause never changed; s4 is tainted (v2 wrote to the data before
	// it), so it is never pinned.
	if len(pins["s1"]) != 1 || len(pins["s4"]) != 0 {
		t.Errorf("%d pin requests of s1 and %d of s4, want 1 and 0", len(pins["s1"]), len(pins["s4"]))
	}
}

func TestLateSARIFReclassifiesOlderSnapshots(t *testing.T) {
	ns, app, pvc := "late", "api", "data"
	h := func(n int) time.Time { return scenario.T0.Add(time.Duration(n) * time.Hour) }
	run := scenario.Run{App: app, Versions: []string{"v1"}}
	st := NewState(ns)
	steps := []struct {
		name    string
		events  []events.Event
		want    []string
		classes []string
	}{
		{
			name:    "snapshots of an unscanned version are unknown and not pinned",
			events:  []events.Event{scenario.Snapshot(ns, pvc, "s1", h(1), run), scenario.Snapshot(ns, pvc, "s2", h(2), run)},
			classes: []string{"s1=unknown", "s2=unknown"},
		},
		{
			name:    "a clean scan makes both clean and the newest known-good",
			events:  []events.Event{scenario.SARIF(ns, app, "u1", "v1", h(3))},
			want:    []string{"pin s2"},
			classes: []string{"s1=clean", "s2=clean"},
		},
		{
			name:    "a later scan with a new rule taints both: incident, no restore point, unpin",
			events:  []events.Event{scenario.SARIF(ns, app, "u2", "v1", h(4), scenario.Critical)},
			want:    []string{"incident.opened api", "unpin s2"},
			classes: []string{"s1=tainted", "s2=tainted"},
		},
		{
			name:    "the older scan arriving again changes nothing",
			events:  []events.Event{scenario.SARIF(ns, app, "u1", "v1", h(3))},
			classes: []string{"s1=tainted", "s2=tainted"},
		},
	}
	for _, step := range steps {
		got := brief(feed(t, DefaultRules(), st, step.events...))
		if diff := cmp.Diff(step.want, got); diff != "" {
			t.Errorf("%s: decisions (-want +got):\n%s", step.name, diff)
		}
		av, _ := Derive(DefaultRules(), st).App(app)
		var classes []string
		for _, s := range av.Snapshots {
			classes = append(classes, s.Name+"="+s.Class)
		}
		if diff := cmp.Diff(step.classes, classes); diff != "" {
			t.Errorf("%s: classes (-want +got):\n%s", step.name, diff)
		}
	}
}

func TestAppWithoutSARIF(t *testing.T) {
	ns, pvc := "nosarif", "data"
	evs := []events.Event{
		scenario.Snapshot(ns, pvc, "s1", scenario.T0, scenario.Run{App: "cache", Versions: []string{"v1"}}),
		scenario.Snapshot(ns, pvc, "s2", scenario.T0.Add(time.Hour), scenario.Run{App: "cache", Versions: []string{"v1"}}),
	}
	tests := []struct {
		name  string
		rules func(*Rules)
		want  []string
		class string
	}{
		{name: "unknown is not clean by default: nothing is pinned", rules: func(*Rules) {}, class: Unknown},
		{name: "unknown is clean when configured: the newest is pinned", rules: func(r *Rules) { r.UnknownIsClean = true }, want: []string{"pin s1", "pin s2", "unpin s1"}, class: Clean},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := DefaultRules()
			tt.rules(&r)
			st := NewState(ns)
			if diff := cmp.Diff(tt.want, brief(feed(t, r, st, evs...))); diff != "" {
				t.Errorf("decisions (-want +got):\n%s", diff)
			}
			av, _ := Derive(r, st).App("cache")
			if got := av.Snapshots[1].Class; got != tt.class {
				t.Errorf("class = %s, want %s", got, tt.class)
			}
			if got := av.Versions[0].Verdict; got != Unknown {
				t.Errorf("verdict = %s, want unknown", got)
			}
		})
	}
}

func TestSnapshotReadiness(t *testing.T) {
	ns, app, pvc := "ready", "api", "data"
	run := scenario.Run{App: app, Versions: []string{"v1"}}
	base := []events.Event{
		scenario.SARIF(ns, app, "u1", "v1", scenario.T0),
		scenario.Snapshot(ns, pvc, "s1", scenario.T0.Add(time.Hour), run),
	}
	tests := []struct {
		name  string
		extra []events.Event
		want  []string
	}{
		{name: "a newer snapshot takes over", extra: []events.Event{scenario.Snapshot(ns, pvc, "s2", scenario.T0.Add(2*time.Hour), run)}, want: []string{"pin s1", "pin s2", "unpin s1"}},
		{name: "a failed restore test disqualifies the newer snapshot", extra: []events.Event{
			scenario.Verified(ns, pvc, "s2", false), scenario.Snapshot(ns, pvc, "s2", scenario.T0.Add(2*time.Hour), run),
		}, want: []string{"pin s1"}},
		{name: "a failed snapshot is never known-good", extra: []events.Event{
			scenario.Snapshot(ns, pvc, "s2", scenario.T0.Add(2*time.Hour), run), scenario.SnapshotFailed(ns, pvc, "s2"),
		}, want: []string{"pin s1", "pin s2", "unpin s1", "pin s1", "unpin s2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := NewState(ns)
			got := brief(feed(t, DefaultRules(), st, append(slices.Clone(base), tt.extra...)...))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("decisions (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCertificateRotation(t *testing.T) {
	ns := "certs"
	notAfter := scenario.T0.Add(5 * 24 * time.Hour)
	users := []events.ObjectRef{scenario.Workload(ns, "Deployment", "web")}
	at := func(d time.Duration) *time.Time { t := notAfter.Add(d); return &t }
	tests := []struct {
		name   string
		events []events.Event
		want   []string
	}{
		{name: "5 days left, no cert-manager: rotate", events: []events.Event{scenario.Cert(ns, "web-tls", "aa", notAfter, 5, users, nil)}, want: []string{"rotate web-tls"}},
		{name: "20 days left: nothing yet", events: []events.Event{scenario.Cert(ns, "web-tls", "aa", notAfter, 20, users, nil)}},
		{name: "cert-manager renews two days before notAfter: no request", events: []events.Event{scenario.Cert(ns, "web-tls", "aa", notAfter, 5, users, at(-48*time.Hour))}},
		{name: "cert-manager renewal time already passed: rotate", events: []events.Event{scenario.Cert(ns, "web-tls", "aa", notAfter, 5, users, at(-6*24*time.Hour))}, want: []string{"rotate web-tls"}},
		{name: "cert-manager renews only after notAfter: rotate", events: []events.Event{scenario.Cert(ns, "web-tls", "aa", notAfter, 5, users, at(time.Hour))}, want: []string{"rotate web-tls"}},
		{name: "rotated before the expiry event arrives: nothing", events: []events.Event{
			scenario.Rotated(ns, "web-tls", "aa", "bb"), scenario.Cert(ns, "web-tls", "aa", notAfter, 5, users, nil),
		}},
		{name: "the same event twice: one request", events: []events.Event{
			scenario.Cert(ns, "web-tls", "aa", notAfter, 5, users, nil), scenario.Cert(ns, "web-tls", "aa", notAfter, 5, users, nil),
		}, want: []string{"rotate web-tls"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := NewState(ns)
			if diff := cmp.Diff(tt.want, brief(feed(t, DefaultRules(), st, tt.events...))); diff != "" {
				t.Errorf("decisions (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDuplicatesChangeNothing(t *testing.T) {
	st := NewState(scenario.CaseNS)
	evs := scenario.CaseStudy()
	feed(t, DefaultRules(), st, evs...)
	for _, ev := range evs {
		in, err := FromEvent(ev)
		if err != nil {
			t.Fatal(err)
		}
		ds, changed, err := Apply(DefaultRules(), st, in)
		if err != nil || changed || len(ds) != 0 {
			t.Errorf("duplicate %s: changed %t, %d decisions, err %v", ev.ID(), changed, len(ds), err)
		}
	}
}

func TestNormCWE(t *testing.T) {
	for in, want := range map[string]string{"CWE-798": "CWE-798", "cwe-0798": "CWE-798", "external/cwe/cwe-798": "CWE-798", "798": "CWE-798"} {
		if got := normCWE(in); got != want {
			t.Errorf("normCWE(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRulesValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Rules)
		ok   bool
	}{
		{"defaults are valid", func(*Rules) {}, true},
		{"keep 0 is refused", func(r *Rules) { r.KeepKnownGood = 0 }, false},
		{"threshold none is refused", func(r *Rules) { r.Threshold = SeverityNone }, false},
		{"history below keep is refused", func(r *Rules) { r.KeepKnownGood, r.History = 3, 2 }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := DefaultRules()
			tt.edit(&r)
			if err := r.Validate(); (err == nil) != tt.ok {
				t.Errorf("Validate() = %v, want ok %t", err, tt.ok)
			}
		})
	}
}

// The snapshots remembered grow with the versions of a PVC, not with its
// snapshots: beyond the history, prune keeps each version's first
// snapshot and the two newest ready ones before each change (lineageBoundaries).
func TestStateStaysBounded(t *testing.T) {
	r := DefaultRules()
	r.History = 4
	ns, app, pvc := "bounded", "api", "data"
	st := NewState(ns)
	var evs []events.Event
	snapshots := func(from, to, perVersion int) {
		for i := from; i < to; i++ {
			v := fmt.Sprintf("v%d-%d", from, (i-from)/perVersion)
			at := scenario.T0.Add(time.Duration(i) * time.Hour)
			if (i-from)%perVersion == 0 {
				evs = append(evs, scenario.SARIF(ns, app, "u"+v, v, at))
			}
			evs = append(evs, scenario.Snapshot(ns, pvc, fmt.Sprintf("s%03d", i), at.Add(time.Minute), scenario.Run{App: app, Versions: []string{v}}))
		}
	}
	snapshots(0, 50, 5) // ten versions of five snapshots
	feed(t, r, st, evs...)
	// Per version: its first snapshot and its last two (the ready ones
	// before the next version): 3 of 5, and the history.
	if n := len(st.Snapshots); n > 10*3+r.History || len(st.Journal.PinGeneration) > n {
		t.Errorf("%d snapshots and %d pin generations remembered, want at most %d", n, len(st.Journal.PinGeneration), 10*3+r.History)
	}
	evs = evs[:0]
	snapshots(50, 250, 200) // one version for 200 snapshots
	feed(t, r, st, evs...)
	if n := len(st.Snapshots); n > 10*3+1+r.History {
		t.Errorf("%d snapshots remembered after 200 more of one version, want at most %d (its first one more)", n, 10*3+1+r.History)
	}
	if diff := cmp.Diff(map[string]string{"pin/s249": "known-good: newest clean, ready snapshot of the PVC"}, st.Ledger.InForce()); diff != "" {
		t.Errorf("in force (-want +got):\n%s", diff)
	}
	// An old snapshot delivered again (of the middle of a version: not a
	// boundary) is dropped at once: nothing changes.
	if _, ok := st.Snapshots["s101"]; ok {
		t.Fatal("s101, in the middle of a version of 200 snapshots, was kept")
	}
	if ds := feed(t, r, st, scenario.Snapshot(ns, pvc, "s101", scenario.T0.Add(101*time.Hour+time.Minute), scenario.Run{App: app, Versions: []string{"v50-0"}})); len(ds) != 0 {
		t.Errorf("an old redelivered snapshot decided %v", brief(ds))
	}
	if _, ok := st.Snapshots["s101"]; ok {
		t.Error("the redelivered s101 was kept")
	}
}

// TestLastRotationWhateverTheOrder: a Secret's view says its newest
// rotation and whether the served certificate was verified after it — the
// same whatever order the rotations arrive in, and when one arrives twice.
func TestLastRotationWhateverTheOrder(t *testing.T) {
	ns := "certs"
	notAfter := scenario.T0.Add(60 * 24 * time.Hour)
	users := []events.ObjectRef{scenario.Workload(ns, "Deployment", "web")}
	first := scenario.Rotated(ns, "web-tls", "AA", "bb")
	first.SetTime(scenario.T0)
	second := events.MustNewEvent(events.TypeCertificateRotated, scenario.Source, "rotated-second",
		events.CertificateRotated{RequestID: "r2", Namespace: ns, Secret: "web-tls", Method: "cert-manager", OldSerial: "bb", NewSerial: "cc",
			Verification: events.TLSVerification{Checked: true, Service: "web", Port: 443, ServedSerial: "bb", Error: "served serial bb, want cc"}})
	second.SetTime(scenario.T0.Add(time.Hour))
	cert := scenario.Cert(ns, "web-tls", "cc", notAfter, 60, users, nil)
	want := &RotationRecord{EventID: "rotated-second", At: scenario.T0.Add(time.Hour).UTC(), OldSerial: "bb", NewSerial: "cc",
		Method: "cert-manager", Checked: true, VerifyError: "served serial bb, want cc"}
	for name, order := range map[string][]events.Event{
		"in order":        {first, second, cert},
		"newest first":    {second, cert, first},
		"with duplicates": {cert, second, first, second, first},
	} {
		st := NewState(ns)
		feed(t, DefaultRules(), st, order...)
		v := Derive(DefaultRules(), st)
		if len(v.Certificates) != 1 {
			t.Fatalf("%s: %d certificate views, want 1", name, len(v.Certificates))
		}
		if diff := cmp.Diff(want, v.Certificates[0].LastRotation); diff != "" {
			t.Errorf("%s: last rotation (-want +got):\n%s", name, diff)
		}
	}
}
