package audit_test

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/services/correlator/internal/audit"
	"github.com/stateguard/stateguard/services/correlator/internal/audit/audittest"
	"github.com/stateguard/stateguard/services/correlator/internal/config"
	"github.com/stateguard/stateguard/services/correlator/internal/model"
	"github.com/stateguard/stateguard/services/correlator/internal/scenariotest"
)

// rulesFile is the rules the scene's correlator runs under; the replay
// must find them by their version.
const rulesFile = "threshold: high\nkeep_known_good: 2\n"

// scene runs a real correlator engine on a real JetStream over the case
// study (a clean version pinned, a vulnerable one opening an incident with
// a recommendation and a rotation, the fix) and an operator's dismissal.
func scene(t *testing.T) *events.Client {
	t.Helper()
	evs := append(scenariotest.CaseStudy(), scenariotest.Dismissed(scenariotest.CaseNS, scenariotest.CaseApp, scenariotest.Medium, scenariotest.T0.Add(6*time.Hour)))
	c, _ := audittest.Scene(t, rulesFile, evs)
	return c
}

func rulesSource(t *testing.T) audit.RulesSource {
	return func(version string) (model.Rules, error) {
		if version != config.RulesVersion([]byte(rulesFile)) {
			return model.Rules{}, fmt.Errorf("unknown rules version %q", version)
		}
		return config.ParseRules([]byte(rulesFile))
	}
}

func read(t *testing.T, c *events.Client) []audit.Record {
	t.Helper()
	recs, err := audit.Read(t.Context(), c.JetStream(), audit.Streams)
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

func verify(t *testing.T, c *events.Client) audit.Result {
	t.Helper()
	res, err := audit.Verify(read(t, c), rulesSource(t), time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// find returns the stored message of the first decision of type typ.
func find(t *testing.T, c *events.Client, typ string) audit.Record {
	t.Helper()
	for _, r := range read(t, c) {
		if r.Event.Type() == typ {
			return r
		}
	}
	t.Fatalf("no %s stored", typ)
	return audit.Record{}
}

// replace deletes a stored message and stores in its place a copy whose
// data edit changed: the ce-id is the original's, the Nats-Msg-Id is new
// (JetStream would drop a second message with the first one's).
func replace(t *testing.T, c *events.Client, r audit.Record, edit func(map[string]any)) {
	t.Helper()
	s, err := c.JetStream().Stream(t.Context(), r.Stream)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := s.GetMsg(t.Context(), r.Seq)
	if err != nil {
		t.Fatal(err)
	}
	var data map[string]any
	if err := json.Unmarshal(raw.Data, &data); err != nil {
		t.Fatal(err)
	}
	edit(data)
	b, err := json.Marshal(data)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteMsg(t.Context(), r.Seq); err != nil {
		t.Fatal(err)
	}
	m := &nats.Msg{Subject: raw.Subject, Header: raw.Header, Data: b}
	m.Header.Set(jetstream.MsgIDHeader, "tampered-"+r.Event.ID())
	if _, err := c.JetStream().PublishMsg(t.Context(), m); err != nil {
		t.Fatal(err)
	}
}

func problems(res audit.Result) []string {
	var out []string
	for _, d := range res.Differences {
		out = append(out, d.Problem+" "+d.EventID)
	}
	slices.Sort(out)
	return out
}

func TestVerifyAgreesWithTheCorrelatorAndNamesEveryTamperedDecision(t *testing.T) {
	c := scene(t)
	res := verify(t, c)
	if len(res.Differences) > 0 || res.Published == 0 || res.Agreed != res.Published || res.Derived != res.Published {
		t.Fatalf("verify of an untouched stream: %+v", res)
	}
	if want := []string{config.RulesVersion([]byte(rulesFile))}; !slices.Equal(res.RulesVersions, want) {
		t.Errorf("rules versions %v, want %v", res.RulesVersions, want)
	}
	t.Logf("untouched: %d inputs, %d decisions derived, %d published, all agree", res.Inputs, res.Derived, res.Published)

	// 1. A DECISION message altered: the incident names another app.
	opened := find(t, c, events.TypeIncidentOpened)
	replace(t, c, opened, func(d map[string]any) { d["versions"] = []string{scenariotest.Digest("v1")} })
	want := []string{audit.ProblemAltered + " " + opened.Event.ID()}
	if got := problems(verify(t, c)); !slices.Equal(got, want) {
		t.Fatalf("after altering %s: %v, want %v", opened.Event.ID(), got, want)
	}

	// 2. A decision forged: an incident.closed the inputs never called for.
	forged := events.MustNewEvent(events.TypeIncidentClosed, "/stateguard/correlator", "incident-closed-forged",
		events.IncidentClosed{Incident: "inc-forged", Namespace: scenariotest.CaseNS, App: scenariotest.CaseApp, Reason: "resolved", Causes: []string{"x"}})
	forged.SetExtension(events.ExtRulesVersion, config.RulesVersion([]byte(rulesFile)))
	if err := c.Publish(t.Context(), forged); err != nil {
		t.Fatal(err)
	}
	want = append(want, audit.ProblemNotDerived+" incident-closed-forged")
	slices.Sort(want)
	if got := problems(verify(t, c)); !slices.Equal(got, want) {
		t.Fatalf("after forging: %v, want %v", got, want)
	}

	// 3. A decision deleted: the first pin.
	pin := find(t, c, events.TypeSnapshotPinRequested)
	s, err := c.JetStream().Stream(t.Context(), pin.Stream)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteMsg(t.Context(), pin.Seq); err != nil {
		t.Fatal(err)
	}
	want = append(want, audit.ProblemNotPublished+" "+pin.Event.ID())
	slices.Sort(want)
	if got := problems(verify(t, c)); !slices.Equal(got, want) {
		t.Fatalf("after deleting a pin: %v, want %v", got, want)
	}

	// 4. The rules of the decisions' version are not to be had: no verdict.
	if _, err := audit.Verify(read(t, c), func(string) (model.Rules, error) { return model.Rules{}, errors.New("gone") }, time.Time{}, time.Time{}); err == nil {
		t.Error("verify without the rules of the decisions' version: no error")
	}
}

func TestExportListsDecisionsAndOperatorActions(t *testing.T) {
	c := scene(t)
	es := audit.Export(read(t, c), time.Time{}, time.Time{})
	kinds := map[string]int{}
	var dismissal *audit.Entry
	for i, e := range es {
		kinds[e.Kind+" "+e.Type]++
		if e.Kind == audit.KindDecision && (e.RulesVersion != config.RulesVersion([]byte(rulesFile)) || e.Actor != "correlator" || len(e.Causes) == 0) {
			t.Errorf("decision entry without its rules version, actor or causes: %+v", e)
		}
		if e.Type == events.TypeFindingDismissed {
			dismissal = &es[i]
		}
		if i > 0 && e.Stored.Before(es[i-1].Stored) {
			t.Errorf("entry %d stored before entry %d", i, i-1)
		}
	}
	for _, typ := range []string{events.TypeSnapshotPinRequested, events.TypeIncidentOpened, events.TypeRestoreRecommended, events.TypeCertificateRotationRequest} {
		if kinds[audit.KindDecision+" "+typ] == 0 {
			t.Errorf("no %s in the export: %v", typ, kinds)
		}
	}
	if dismissal == nil || dismissal.Kind != audit.KindOperator || dismissal.Actor != "alice" || dismissal.Namespace != scenariotest.CaseNS {
		t.Fatalf("the operator's dismissal: %+v", dismissal)
	}
	if len(es) != len(audit.Export(read(t, c), es[0].Stored, time.Time{})) {
		t.Error("--since the first entry lists fewer entries")
	}
	if n := len(audit.Export(read(t, c), es[len(es)-1].Stored.Add(time.Nanosecond), time.Time{})); n != 0 {
		t.Errorf("--since after the last entry lists %d", n)
	}

	var b bytes.Buffer
	if err := audit.WriteCSV(&b, es); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&b).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != len(es)+1 || !slices.Equal(rows[0], audit.CSVHeader) {
		t.Fatalf("csv: %d rows, header %v", len(rows), rows[0])
	}
	b.Reset()
	if err := audit.WriteJSONL(&b, es); err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(b.Bytes(), []byte("\n")); n != len(es) {
		t.Errorf("jsonl: %d lines for %d entries", n, len(es))
	}
}
