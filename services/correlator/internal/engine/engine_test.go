package engine

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/pkg/harness/natstest"
	"github.com/stateguard/stateguard/services/correlator/internal/model"
	scenario "github.com/stateguard/stateguard/services/correlator/internal/scenariotest"
)

// acts splits the case study where a person would look at the result.
func acts() [][]events.Event {
	cs := scenario.CaseStudy()
	return [][]events.Event{cs[:5], cs[5:7], cs[7:9], cs[9:], {scenario.Restored(scenario.CaseNS, scenario.CasePVC, "s2", scenario.T0.Add(6*time.Hour))}}
}

func TestCaseStudyEndToEnd(t *testing.T) {
	srv := natstest.Run(t)
	c := natstest.Client(t, srv)
	startEngine(t, c, &recorder{})
	want := [][]string{
		{"pin s1"},
		{"pin s1", "pin s2", "unpin s1"},
		// s2 is pinned again as the incident's restore point.
		{"pin s1", "pin s2", "unpin s1",
			"pin s2", "incident.opened db", "restore data-db-0 from s2", "rotate db-peer-tls", "rotate db-tls"},
		// The fix alone closes nothing: v2 wrote to the data.
		{"pin s1", "pin s2", "unpin s1", "pin s2", "incident.opened db", "restore data-db-0 from s2", "rotate db-peer-tls", "rotate db-tls"},
		// The restore from s2 does; s2 is pinned again as known-good.
		{"pin s1", "pin s2", "unpin s1", "pin s2", "pin s2", "incident.opened db", "restore data-db-0 from s2", "rotate db-peer-tls", "rotate db-tls",
			"incident.closed db"},
	}
	for i, act := range acts() {
		publish(t, c, act...)
		drain(t, c)
		w := slices.Clone(want[i])
		slices.Sort(w)
		if diff := cmp.Diff(w, briefs(t, stored(t, c, decisionTypes...))); diff != "" {
			t.Fatalf("act %d: stored decisions (-want +got):\n%s", i+1, diff)
		}
	}
	// The recommendation carries a manifest that restores s2 and names why.
	for _, ev := range stored(t, c, events.TypeRestoreRecommended) {
		rec, err := events.Decode[events.RestoreRecommended](ev)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(rec.Causes, "sarif-u2") || len(rec.Reasons) != 1 || rec.Reasons[0].UploadID != "u2" {
			t.Errorf("restore recommendation does not name upload u2: %+v", rec.Reasons)
		}
		if want := "name: s2"; !strings.Contains(rec.Manifest, want) {
			t.Errorf("manifest lacks %q:\n%s", want, rec.Manifest)
		}
	}
}

func TestCertManagerRenewalAndExpiry(t *testing.T) {
	srv := natstest.Run(t)
	c := natstest.Client(t, srv)
	startEngine(t, c, &recorder{})
	ns := "tls"
	notAfter := scenario.T0.Add(5 * 24 * time.Hour)
	renew := notAfter.Add(-3 * 24 * time.Hour)
	users := []events.ObjectRef{scenario.Workload(ns, "Deployment", "web")}
	publish(t, c,
		scenario.Cert(ns, "managed-tls", "aa", notAfter, 5, users, &renew),
		scenario.Cert(ns, "manual-tls", "bb", notAfter, 5, users, nil),
		scenario.Cert(ns, "fresh-tls", "cc", notAfter.Add(60*24*time.Hour), 65, users, nil),
	)
	drain(t, c)
	if diff := cmp.Diff([]string{"rotate manual-tls"}, briefs(t, stored(t, c, decisionTypes...))); diff != "" {
		t.Errorf("decisions (-want +got):\n%s", diff)
	}
}

func TestAppWithoutSARIFIsNeverPinned(t *testing.T) {
	srv := natstest.Run(t)
	c := natstest.Client(t, srv)
	e := startEngine(t, c, &recorder{})
	ns := "nosarif"
	run := scenario.Run{App: "cache", Versions: []string{"v1"}}
	publish(t, c, scenario.Snapshot(ns, "data", "s1", scenario.T0, run), scenario.Snapshot(ns, "data", "s2", scenario.T0.Add(time.Hour), run))
	drain(t, c)
	if got := briefs(t, stored(t, c, decisionTypes...)); len(got) != 0 {
		t.Errorf("decisions for an unscanned app: %v", got)
	}
	st, ok, err := e.State(t.Context(), ns)
	if err != nil || !ok {
		t.Fatalf("state: ok %t, %v", ok, err)
	}
	av, _ := model.Derive(e.Rules(), st).App("cache")
	for _, s := range av.Snapshots {
		if s.Class != model.Unknown {
			t.Errorf("snapshot %s is %s, want unknown", s.Name, s.Class)
		}
	}
}

func TestRestartMidStream(t *testing.T) {
	srv := natstest.Run(t)
	c1 := natstest.Client(t, srv)
	rec := &recorder{}
	e1, err := New(t.Context(), Options{Client: c1, Rules: model.DefaultRules(), Workers: 2, OnPublished: rec.record})
	if err != nil {
		t.Fatal(err)
	}
	if err := e1.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	a := acts()
	for _, act := range a[:3] {
		publish(t, c1, act...)
		drain(t, c1)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := e1.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	before := len(rec.all())

	// A new process: a new connection, the same KV bucket; and the durable
	// consumers are reset, so every event is delivered again from the start.
	c2 := natstest.Client(t, srv)
	for _, cons := range Consumers {
		if err := c2.JetStream().DeleteConsumer(t.Context(), cons.Stream, "correlator-"+cons.Suffix); err != nil {
			t.Fatal(err)
		}
	}
	startEngine(t, c2, rec)
	publish(t, c2, a[3]...)
	publish(t, c2, a[4]...)
	drain(t, c2)
	ids := rec.all()
	// The restart must change nothing: the same decisions, each once, as a
	// run that was never interrupted.
	if diff := cmp.Diff(uninterruptedDecisions(t), sortedSet(ids)); diff != "" {
		t.Errorf("decisions of the restarted run against an uninterrupted one (-want +got):\n%s", diff)
	}
	if len(ids) == before {
		t.Error("after the restart nothing was published, want at least the incident.closed of the restore")
	}
	seen := map[string]bool{}
	for _, id := range ids {
		if seen[id] {
			t.Errorf("decision %s published twice", id)
		}
		seen[id] = true
	}
}

// uninterruptedDecisions is the sorted set of decision IDs one engine
// publishes for the whole case study, on a server of its own.
func uninterruptedDecisions(t *testing.T) []string {
	t.Helper()
	srv := natstest.Run(t)
	c := natstest.Client(t, srv)
	rec := &recorder{}
	startEngine(t, c, rec)
	for _, act := range acts() {
		publish(t, c, act...)
		drain(t, c)
	}
	return sortedSet(rec.all())
}

func sortedSet(ids []string) []string {
	out := slices.Clone(ids)
	slices.Sort(out)
	return slices.Compact(out)
}

func TestMalformedEventIsDeadLetteredAndTheStreamContinues(t *testing.T) {
	srv := natstest.Run(t)
	c := natstest.Client(t, srv)
	startEngine(t, c, &recorder{})
	ns := "dlq"
	subject := events.SubjectOf(events.TypeSnapshotCompleted)
	junk := nats.NewMsg(subject)
	junk.Header.Set(nats.MsgIdHdr, "junk-1")
	junk.Data = []byte("{not a cloudevent")
	if _, err := c.JetStream().PublishMsg(t.Context(), junk); err != nil {
		t.Fatal(err)
	}
	noNamespace := events.MustNewEvent(events.TypeSnapshotCompleted, scenario.Source, "no-namespace",
		events.SnapshotCompleted{VolumeSnapshot: "x", CreationTime: scenario.T0})
	badData := events.MustNewEvent(events.TypeSARIFUploaded, scenario.Source, "bad-data", json.RawMessage(`{"upload_id": 7}`))
	run := scenario.Run{App: "api", Versions: []string{"v1"}}
	publish(t, c, noNamespace, badData,
		scenario.SARIF(ns, "api", "u1", "v1", scenario.T0),
		scenario.Snapshot(ns, "data", "s1", scenario.T0.Add(time.Hour), run))
	drain(t, c)
	if diff := cmp.Diff([]string{"pin s1"}, briefs(t, stored(t, c, decisionTypes...))); diff != "" {
		t.Errorf("decisions after the malformed events (-want +got):\n%s", diff)
	}
	dl, err := c.JetStream().Stream(t.Context(), events.StreamDeadLetter)
	if err != nil {
		t.Fatal(err)
	}
	var reasons []string
	deadline := time.Now().Add(10 * time.Second)
	for len(reasons) < 3 && time.Now().Before(deadline) {
		reasons = nil
		info, err := dl.Info(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		for seq := uint64(1); seq <= info.State.LastSeq; seq++ {
			m, err := dl.GetMsg(t.Context(), seq)
			if err != nil {
				t.Fatal(err)
			}
			reasons = append(reasons, m.Subject)
		}
		time.Sleep(20 * time.Millisecond)
	}
	slices.Sort(reasons)
	want := []string{"stateguard.deadletter.SARIF.correlator-sarif", "stateguard.deadletter.SNAPSHOT.correlator-snapshot", "stateguard.deadletter.SNAPSHOT.correlator-snapshot"}
	if diff := cmp.Diff(want, reasons); diff != "" {
		t.Errorf("dead letters (-want +got):\n%s", diff)
	}
}

// Two correlators share the durable consumers and the bucket; events arrive
// in any interleaving. The state they leave must be the one the pure model
// reaches on the same events in order.
func TestTwoReplicasAgreeWithTheModel(t *testing.T) {
	srv := natstest.Run(t)
	c1 := natstest.Client(t, srv)
	c2 := natstest.Client(t, srv)
	rec := &recorder{}
	e1 := startEngine(t, c1, rec)
	startEngine(t, c2, rec)
	ns := scenario.CaseNS
	evs := scenario.CaseStudy()
	publish(t, c1, evs...)
	drain(t, c1)

	want := model.NewState(ns)
	for _, ev := range evs {
		in, err := model.FromEvent(ev)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := model.Apply(model.DefaultRules(), want, in); err != nil {
			t.Fatal(err)
		}
	}
	got, _, err := e1.State(t.Context(), ns)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want.Ledger.InForce(), got.Ledger.InForce()); diff != "" {
		t.Errorf("decisions in force (-model +replicas):\n%s", diff)
	}
	wv, _ := json.Marshal(model.Derive(model.DefaultRules(), want))
	gv, _ := json.Marshal(model.Derive(model.DefaultRules(), got))
	if diff := cmp.Diff(string(wv), string(gv)); diff != "" {
		t.Errorf("view (-model +replicas):\n%s", diff)
	}
}

func TestEmptyBucketHasNoNamespaces(t *testing.T) {
	srv := natstest.Run(t)
	c := natstest.Client(t, srv)
	e := startEngine(t, c, &recorder{})
	nss, err := e.Namespaces(t.Context())
	if err != nil || len(nss) != 0 {
		t.Errorf("Namespaces() = %v, %v; want none", nss, err)
	}
	if _, ok, err := e.State(t.Context(), "nowhere"); ok || err != nil {
		t.Errorf("State(nowhere) = ok %t, %v; want not found", ok, err)
	}
}

// Another replica writes a namespace behind this engine's back: the engine's
// next write loses the compare-and-set, the event comes again, and the state
// ends as the model's on all the events — nothing of either writer is lost.
func TestStateWrittenBehindItsBackIsReloaded(t *testing.T) {
	srv := natstest.Run(t)
	c := natstest.Client(t, srv)
	reg := prometheus.NewRegistry()
	e := startEngineWith(t, Options{Client: c, Rules: model.DefaultRules(), Workers: 4, Registerer: reg})
	ns := scenario.CaseNS
	evs := scenario.CaseStudy()
	if len(evs) < 3 {
		t.Fatalf("the case study has %d events", len(evs))
	}
	first, other, rest := evs[:len(evs)/2], evs[len(evs)/2], evs[len(evs)/2+1:]
	publish(t, c, first...)
	drain(t, c)

	// The other replica applies one event to what is in KV and stores it.
	kv, err := c.JetStream().KeyValue(t.Context(), "stateguard-correlator")
	if err != nil {
		t.Fatal(err)
	}
	st, rev, err := readState(t.Context(), kv, ns)
	if err != nil {
		t.Fatal(err)
	}
	in, err := model.FromEvent(other)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := model.Apply(model.DefaultRules(), st, in); err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Update(t.Context(), "ns."+ns, data, rev); err != nil {
		t.Fatal(err)
	}

	publish(t, c, rest...)
	drain(t, c)
	if got := testutil.ToFloat64(e.m.conflicts); got < 1 {
		t.Errorf("%v compare-and-set conflicts, want at least one", got)
	}
	want := model.NewState(ns)
	for _, ev := range evs {
		in, err := model.FromEvent(ev)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := model.Apply(model.DefaultRules(), want, in); err != nil {
			t.Fatal(err)
		}
	}
	got, _, err := e.State(t.Context(), ns)
	if err != nil {
		t.Fatal(err)
	}
	wv, _ := json.Marshal(model.Derive(model.DefaultRules(), want))
	gv, _ := json.Marshal(model.Derive(model.DefaultRules(), got))
	if diff := cmp.Diff(string(wv), string(gv)); diff != "" {
		t.Errorf("view (-model +engine):\n%s", diff)
	}
	if diff := cmp.Diff(want.Ledger.InForce(), got.Ledger.InForce()); diff != "" {
		t.Errorf("decisions in force (-model +engine):\n%s", diff)
	}
}
