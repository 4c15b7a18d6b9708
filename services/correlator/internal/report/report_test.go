package report_test

import (
	"bytes"
	"context"
	"flag"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/services/correlator/internal/audit"
	"github.com/stateguard/stateguard/services/correlator/internal/audit/audittest"
	"github.com/stateguard/stateguard/services/correlator/internal/report"
	"github.com/stateguard/stateguard/services/correlator/internal/scenariotest"
)

// updateExample rewrites the example report under docs/ from this test's
// scene: go test ./internal/report -run TestReportOfTheReviewWeek -update-example
var updateExample = flag.Bool("update-example", false, "write docs/review-report.example.md and .html")

const ns, app, pvc = scenariotest.CaseNS, scenariotest.CaseApp, scenariotest.CasePVC

// snapshotted sets the policy and the encryption the snapshotter reported
// on a snapshot.completed event of the scenariotest.
func snapshotted(t *testing.T, ev events.Event, policy, encryption string) events.Event {
	t.Helper()
	p, err := events.Decode[events.SnapshotCompleted](ev)
	if err != nil {
		t.Fatal(err)
	}
	p.Policy, p.Encryption = policy, encryption
	p.EncryptionEvidence = []string{"StorageClass fast: driver ebs.csi.aws.com parameter encrypted=" + map[bool]string{true: "true", false: "false"}[encryption == events.EncryptionEncrypted]}
	out := events.MustNewEvent(ev.Type(), ev.Source(), ev.ID(), p)
	out.SetTime(ev.Time())
	return out
}

// reviewWeek is the case study (a clean version, a vulnerable one with a
// credential leak, the fix), the data restored from the known-good s2
// (which closes the incident), and what a week of operations adds:
// encrypted snapshots but for s2, a failed snapshot, two missed slots, a
// passed and a failed restore test, a certificate expiring in 20 days, two
// rotations (one verified), an operator's dismissal.
func reviewWeek(t *testing.T, now time.Time) []events.Event {
	var evs []events.Event
	for _, ev := range scenariotest.CaseStudy() {
		if ev.Type() == events.TypeSnapshotCompleted {
			p, _ := events.Decode[events.SnapshotCompleted](ev)
			enc, policy := events.EncryptionEncrypted, "db-hourly"
			if p.VolumeSnapshot == "s2" {
				enc = events.EncryptionUnencrypted
			}
			if p.PVC != pvc {
				policy = "web-hourly"
			}
			ev = snapshotted(t, ev, policy, enc)
		}
		evs = append(evs, ev)
	}
	db := []events.ObjectRef{scenariotest.Workload(ns, "StatefulSet", app)}
	evs = append(evs,
		scenariotest.Restored(ns, pvc, "s2", scenariotest.T0.Add(6*time.Hour)),
		scenariotest.Cert(ns, "db-client-tls", "0c", now.Add(20*24*time.Hour), 20, db, nil),
		scenariotest.SnapshotFailed(ns, pvc, "s5"),
		events.MustNewEvent(events.TypeSnapshotMissed, scenariotest.Source, "missed-db-hourly", events.SnapshotMissed{Namespace: ns, Policy: "db-hourly",
			Slots: []time.Time{scenariotest.T0.Add(6 * time.Hour), scenariotest.T0.Add(7 * time.Hour)}, CatchUp: scenariotest.T0.Add(8 * time.Hour)}),
		scenariotest.Verified(ns, pvc, "s4", true),
		scenariotest.Verified(ns, pvc, "s1", false),
		scenariotest.Rotated(ns, "db-peer-tls", "02", "12"),
		events.MustNewEvent(events.TypeCertificateRotated, scenariotest.Source, "rotated-verified", events.CertificateRotated{RequestID: "r2", Namespace: ns,
			Secret: "db-tls", Method: "in-cluster-ca", OldSerial: "01", NewSerial: "11",
			Verification: events.TLSVerification{Checked: true, Service: "db", Port: 5432, ServedSerial: "11", Match: true}}),
		scenariotest.Dismissed(ns, app, scenariotest.Medium, scenariotest.T0.Add(6*time.Hour)),
	)
	return evs
}

func TestReportOfTheReviewWeekCountsWhatHappened(t *testing.T) {
	start := time.Now().UTC()
	c, eng := audittest.Scene(t, "", reviewWeek(t, start))
	until := time.Now().UTC().Add(time.Second)
	gen := report.Generator{States: eng, Read: func(ctx context.Context) ([]audit.Record, error) {
		return audit.Read(ctx, c.JetStream(), audit.Streams)
	}}
	rep, err := gen.Generate(t.Context(), start.Add(-time.Minute), until, "")
	if err != nil {
		t.Fatal(err)
	}
	var db *report.App
	for i := range rep.Apps {
		if rep.Apps[i].App == app {
			db = &rep.Apps[i]
		}
	}
	if db == nil {
		t.Fatalf("no app %s in %+v", app, rep.Apps)
	}
	type figures struct {
		Taken, Failed, Missed, TestsPassed, TestsFailed, Opened, Closed, Uploads, Dismissed int
		KnownGood, Encryption, Expiring                                                     string
		Rotations                                                                           map[string]bool
		CriticalHigh                                                                        []int
		DismissedBy                                                                         string
	}
	got := figures{Taken: db.SnapshotsTaken, Failed: db.SnapshotsFailed, Missed: db.SnapshotsMissed, TestsPassed: db.RestoreTestsPass,
		TestsFailed: db.RestoreTestsFail, Uploads: len(db.Uploads), Dismissed: len(db.Dismissed), Rotations: map[string]bool{}}
	for _, i := range db.Incidents {
		got.Opened++
		if i.Closed != nil {
			got.Closed++
			if i.ToClose <= 0 {
				t.Errorf("incident %s closed after %s", i.ID, i.ToClose)
			}
		}
	}
	for _, k := range db.KnownGood {
		got.KnownGood, got.Encryption = k.PVC+" "+k.Snapshot, k.Encryption
	}
	for _, e := range db.Expiring {
		got.Expiring += e.Secret
	}
	for _, r := range db.Rotations {
		got.Rotations[r.Secret] = r.Verified
	}
	for _, u := range db.Uploads {
		got.CriticalHigh = append(got.CriticalHigh, u.Open.Critical+u.Open.High)
	}
	for _, d := range db.Dismissed {
		got.DismissedBy = d.Actor + ": " + d.Reason
	}
	want := figures{Taken: 4, Failed: 1, Missed: 2, TestsPassed: 1, TestsFailed: 1, Opened: 1, Closed: 1, Uploads: 3, Dismissed: 1,
		KnownGood: pvc + " s2", Encryption: events.EncryptionUnencrypted, Expiring: "db-client-tls",
		Rotations: map[string]bool{"db-tls": true, "db-peer-tls": false}, CriticalHigh: []int{0, 2, 0}, DismissedBy: "alice: false positive"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("figures of %s/%s (-want +got):\n%s", ns, app, d)
	}
	for _, a := range rep.Apps {
		if a.App == "web" && (a.SnapshotsTaken != 1 || a.SnapshotsMissed != 0 || a.SnapshotsFailed != 0 || a.RestoreTestsFail != 0 || len(a.Uploads) != 0) {
			t.Errorf("web counts another app's snapshots, slots, tests or uploads: %+v", a)
		}
	}
	for _, line := range []string{"not encrypted at rest", "1 restore test(s) failed", "certificate db-client-tls expires", "rotation of db-peer-tls was not verified"} {
		if !strings.Contains(strings.Join(rep.Attention, "\n"), line) {
			t.Errorf("attention lacks %q: %q", line, rep.Attention)
		}
	}
	if *updateExample {
		var md, html bytes.Buffer
		if err := report.Markdown(&md, rep); err != nil {
			t.Fatal(err)
		}
		if err := report.HTML(&html, rep); err != nil {
			t.Fatal(err)
		}
		for name, b := range map[string][]byte{"review-report.example.md": md.Bytes(), "review-report.example.html": html.Bytes()} {
			if err := os.WriteFile(filepath.Join("..", "..", "..", "..", "docs", name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	// A period before the week: nothing happened in it.
	empty, err := gen.Generate(t.Context(), start.Add(-48*time.Hour), start.Add(-24*time.Hour), ns)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range empty.Apps {
		if a.SnapshotsTaken+a.SnapshotsFailed+len(a.Uploads)+len(a.Incidents) != 0 {
			t.Errorf("a period before the events counts %+v", a)
		}
	}

	// The scheduled report: stored in the Object Store, announced.
	objs, err := audit.OpenObjects(t.Context(), c.JetStream(), 1)
	if err != nil {
		t.Fatal(err)
	}
	sched := report.Schedule{Generator: gen, Every: time.Hour, Objects: objs, RulesVersion: "sha256:x",
		Publish: func(ctx context.Context, ev events.Event) error { return c.Publish(ctx, ev) }, NewEvent: c.NewEvent,
		Log: slog.New(slog.DiscardHandler), Now: time.Now}
	p, err := sched.Once(t.Context(), start.Add(-time.Minute), until)
	if err != nil {
		t.Fatal(err)
	}
	md, err := objs.Get(t.Context(), p.Markdown.Name)
	if err != nil {
		t.Fatal(err)
	}
	var want2 bytes.Buffer
	if err := report.Markdown(&want2, rep); err != nil {
		t.Fatal(err)
	}
	if string(md) != want2.String() {
		t.Errorf("stored report differs from the report of the period:\n%s", cmp.Diff(want2.String(), string(md)))
	}
	html, err := objs.Get(t.Context(), p.HTML.Name)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(html), "<svg"); n != 1+len(rep.Apps)-countNoUploads(rep) || strings.Contains(string(html), "<script") {
		t.Errorf("html: %d SVG charts for %d apps, or a script", n, len(rep.Apps))
	}
	var announced *events.ReportGenerated
	for _, r := range must(audit.Read(t.Context(), c.JetStream(), []string{events.StreamDecision})) {
		if r.Event.Type() == events.TypeReportGenerated {
			g, err := events.Decode[events.ReportGenerated](r.Event)
			if err != nil {
				t.Fatal(err)
			}
			announced = &g
		}
	}
	if announced == nil || announced.Markdown != p.Markdown || announced.HTML != p.HTML || announced.Apps != len(rep.Apps) || len(announced.Attention) != len(rep.Attention) {
		t.Errorf("report.generated: %+v, want %+v", announced, p)
	}
}

func countNoUploads(r report.Report) int {
	n := 0
	for _, a := range r.Apps {
		if len(a.Uploads) == 0 {
			n++
		}
	}
	return n
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
