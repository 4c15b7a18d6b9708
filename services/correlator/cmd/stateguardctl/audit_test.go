package main

import (
	"encoding/csv"
	"encoding/json"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/services/correlator/internal/audit"
	"github.com/stateguard/stateguard/services/correlator/internal/audit/audittest"
	"github.com/stateguard/stateguard/services/correlator/internal/scenariotest"
)

// auditScene is a correlator over the case study, published one event at
// a time (each once handled), then an operator's dismissal through the
// API; it returns the correlator and the CLI's environment.
func auditScene(t *testing.T) (*correlator, map[string]string) {
	t.Helper()
	c := startCorrelator(t)
	for _, ev := range scenariotest.CaseStudy() {
		if err := c.client.Publish(t.Context(), ev); err != nil {
			t.Fatal(err)
		}
		audittest.WaitIdle(t, c.client, consumerPrefix)
	}
	env := map[string]string{"STATEGUARD_SERVER": c.url, "STATEGUARD_TOKEN": operatorToken, "NATS_URL": c.nats}
	ctl(t, env, "finding", "dismiss", "shop/db", "--rule", "G104", "--reason", "test code only").must(t)
	audittest.WaitIdle(t, c.client, consumerPrefix)
	env["STATEGUARD_TOKEN"] = readToken
	return c, env
}

func TestAuditExportAndVerify(t *testing.T) {
	c, env := auditScene(t)

	out := ctl(t, env, "audit", "export", "--format", "csv", "--since", "1h").must(t)
	rows, err := csv.NewReader(strings.NewReader(out.stdout)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	types := map[string]string{} // type → actor
	for _, r := range rows[1:] {
		types[r[3]] = r[7]
		if r[4] == audit.KindDecision && (r[9] == "" || r[8] == "") {
			t.Errorf("a decision without its rules version or causes: %v", r)
		}
	}
	for typ, actor := range map[string]string{events.TypeIncidentOpened: "correlator", events.TypeRestoreRecommended: "correlator",
		events.TypeSnapshotPinRequested: "correlator", events.TypeFindingDismissed: "alice"} {
		if types[typ] != actor {
			t.Errorf("export: %s by %q, want by %q (%v)", typ, types[typ], actor, types)
		}
	}
	jl := ctl(t, env, "audit", "export", "--format", "jsonl").must(t)
	if n := strings.Count(jl.stdout, "\n"); n != len(rows)-1 {
		t.Errorf("jsonl has %d lines, csv %d rows", n, len(rows)-1)
	}
	if r := ctl(t, env, "audit", "export", "--format", "xml"); r.code != exitUsage {
		t.Errorf("--format xml: exit %d, want %d", r.code, exitUsage)
	}
	if r := ctl(t, env, "audit", "export", "--since", "yesterday"); r.code != exitUsage {
		t.Errorf("--since yesterday: exit %d, want %d", r.code, exitUsage)
	}

	ctl(t, env, "audit", "verify").must(t).has(t, "ok: every published decision follows from the inputs", "sha256:")

	// One decision altered in the stream: verify names it and exits 1.
	var opened audit.Record
	recs, err := audit.Read(t.Context(), c.client.JetStream(), audit.Streams)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if r.Event.Type() == events.TypeIncidentOpened {
			opened = r
		}
	}
	s, err := c.client.JetStream().Stream(t.Context(), opened.Stream)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := s.GetMsg(t.Context(), opened.Seq)
	if err != nil {
		t.Fatal(err)
	}
	var data map[string]any
	if err := json.Unmarshal(raw.Data, &data); err != nil {
		t.Fatal(err)
	}
	data["app"] = "web"
	b, _ := json.Marshal(data)
	if err := s.DeleteMsg(t.Context(), opened.Seq); err != nil {
		t.Fatal(err)
	}
	m := &nats.Msg{Subject: raw.Subject, Header: raw.Header, Data: b}
	m.Header.Set(jetstream.MsgIDHeader, "tampered")
	if _, err := c.client.JetStream().PublishMsg(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	r := ctl(t, env, "audit", "verify")
	if r.code != exitError || !strings.Contains(r.stdout, "altered") || !strings.Contains(r.stdout, opened.Event.ID()) {
		t.Errorf("verify after altering %s: exit %d\n%s%s", opened.Event.ID(), r.code, r.stdout, r.stderr)
	}
}

func TestReportCommand(t *testing.T) {
	_, env := auditScene(t)
	md := ctl(t, env, "report", "--since", "1d").must(t)
	md.has(t, "# Review-cycle report", "| shop/db | 4 / 0 / 0 |", "shop/db: incident inc-", "is still open", "rule `G104` (every finding of the rule) dismissed by **alice**: test code only",
		"| v2 | 1 | 1 | 0 | 0 |", "Trend: unchanged: 0 critical or high", "encryption at rest: **unknown**")
	html := ctl(t, env, "report", "--since", "1d", "-o", "html", "--namespace", "shop").must(t)
	html.has(t, "<svg", "<title>Snapshots taken, failed and missed per application</title>", "shop/db")
	if strings.Contains(html.stdout, "<script") {
		t.Error("the HTML report holds a script")
	}
	var rep struct {
		Apps []struct {
			App            string `json:"app"`
			SnapshotsTaken int    `json:"snapshots_taken"`
		} `json:"apps"`
	}
	if err := json.Unmarshal([]byte(ctl(t, env, "report", "-o", "json").must(t).stdout), &rep); err != nil || len(rep.Apps) != 2 {
		t.Fatalf("-o json: %v %+v", err, rep)
	}
	if r := ctl(t, env, "report", "-o", "pdf"); r.code != exitUsage {
		t.Errorf("-o pdf: exit %d, want %d", r.code, exitUsage)
	}
	if r := ctl(t, env, "report", "--since", "soon"); r.code != exitUsage {
		t.Errorf("--since soon: exit %d, want %d (the API's 400)", r.code, exitUsage)
	}
	env["STATEGUARD_TOKEN"] = "wrong"
	if r := ctl(t, env, "report"); r.code != exitDenied {
		t.Errorf("a wrong token: exit %d, want %d", r.code, exitDenied)
	}
}
