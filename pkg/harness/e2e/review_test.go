package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/pkg/harness/demo"
	"github.com/stateguard/stateguard/pkg/harness/stack"
)

// checkReviewReport asks the correlator for the review-cycle report of the
// story (GET /v1/report, a read token) and checks its figures against the
// streams: the snapshots taken of the app are the snapshot.completed events
// of its namespace; the incident is the story's, closed by the restore; the
// TLS Secret's rotation is there.
func checkReviewReport(t *testing.T, ctx context.Context, s *stack.Stack, api apiClient, client *events.Client, scene demo.Scene, incident string) {
	t.Helper()
	var rep struct {
		Apps []struct {
			Namespace      string `json:"namespace"`
			App            string `json:"app"`
			SnapshotsTaken int    `json:"snapshots_taken"`
			Incidents      []struct {
				ID     string     `json:"id"`
				Closed *time.Time `json:"closed"`
				Reason string     `json:"close_reason"`
			} `json:"incidents"`
			Rotations []struct {
				Secret string `json:"secret"`
			} `json:"rotations"`
		} `json:"apps"`
	}
	body := api.get(t, ctx, s.URL("correlator")+"/v1/report?since=1d&format=json&namespace="+scene.Namespace, s.Token)
	if err := json.Unmarshal([]byte(body), &rep); err != nil {
		t.Fatalf("the report as JSON: %v\n%s", err, body)
	}
	taken := countSnapshotsOf(t, ctx, client, scene.Namespace)
	found := false
	for _, a := range rep.Apps {
		if a.Namespace != scene.Namespace || a.App != scene.App {
			continue
		}
		found = true
		if a.SnapshotsTaken != taken {
			t.Errorf("report: %d snapshots taken of %s/%s, the SNAPSHOT stream holds %d snapshot.completed of the namespace", a.SnapshotsTaken, scene.Namespace, scene.App, taken)
		}
		closed := false
		for _, inc := range a.Incidents {
			closed = closed || (inc.ID == incident && inc.Closed != nil && strings.Contains(inc.Reason, "restored"))
		}
		if !closed {
			t.Errorf("report: incident %s not closed by the restore: %+v", incident, a.Incidents)
		}
		rotated := false
		for _, r := range a.Rotations {
			rotated = rotated || r.Secret == scene.TLSSecret
		}
		if !rotated {
			t.Errorf("report: no rotation of %s: %+v", scene.TLSSecret, a.Rotations)
		}
	}
	if !found {
		t.Errorf("the report has no %s/%s:\n%s", scene.Namespace, scene.App, body)
	}
	md := api.get(t, ctx, s.URL("correlator")+"/v1/report?since=1d&format=md&namespace="+scene.Namespace, s.Token)
	if !strings.Contains(md, "# Review-cycle report") || !strings.Contains(md, scene.Namespace+"/"+scene.App) {
		t.Errorf("the Markdown report lacks its title or the app:\n%s", md)
	}
	if dir := os.Getenv("STATEGUARD_E2E_REPORT_DIR"); dir != "" {
		_ = os.WriteFile(filepath.Join(dir, "review-report.e2e.md"), []byte(md), 0o644)
	}
}

// countSnapshotsOf counts the snapshot.completed events of namespace ns on
// the SNAPSHOT stream.
func countSnapshotsOf(t *testing.T, ctx context.Context, c *events.Client, ns string) int {
	t.Helper()
	cons, err := c.JetStream().OrderedConsumer(ctx, events.StreamSnapshot, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{events.SubjectOf(events.TypeSnapshotCompleted)}})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for {
		m, err := cons.Next(jetstream.FetchMaxWait(2 * time.Second))
		if err != nil {
			return n
		}
		ev, err := events.DecodeMsg(&nats.Msg{Subject: m.Subject(), Header: m.Headers(), Data: m.Data()})
		if err != nil {
			t.Fatal(err)
		}
		if p, err := events.Decode[events.SnapshotCompleted](ev); err == nil && p.Namespace == ns {
			n++
		}
	}
}

// checkAuditVerify runs `stateguardctl audit verify` on the story's
// streams: every published decision follows from the inputs. Then one
// decision is altered in the DECISION stream (deleted and stored again with
// another payload under the same event id): verify exits 1 naming it.
func checkAuditVerify(t *testing.T, ctx context.Context, s *stack.Stack, dir string, client *events.Client, incident string) {
	t.Helper()
	ctl := func() (int, string) {
		cmd := exec.CommandContext(ctx, filepath.Join(dir, "bin", "stateguardctl"), "audit", "verify")
		cmd.Env = append(os.Environ(), "NATS_URL="+s.NATSURL, "STATEGUARD_SERVER="+s.URL("correlator"), "STATEGUARD_TOKEN="+s.Token,
			"STATEGUARD_CA_FILE="+s.CAFile)
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode(), string(out)
		} else if err != nil {
			t.Fatalf("stateguardctl audit verify: %v", err)
		}
		return 0, string(out)
	}
	if code, out := ctl(); code != 0 || !strings.Contains(out, "ok: every published decision follows from the inputs") {
		t.Fatalf("audit verify on the story: exit %d\n%s", code, out)
	}
	st, err := client.JetStream().Stream(ctx, events.StreamDecision)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := st.GetLastMsgForSubject(ctx, events.SubjectOf(events.TypeIncidentOpened))
	if err != nil {
		t.Fatal(err)
	}
	ev, err := events.DecodeMsg(&nats.Msg{Subject: raw.Subject, Header: raw.Header, Data: raw.Data})
	if err != nil {
		t.Fatal(err)
	}
	var data map[string]any
	if err := json.Unmarshal(raw.Data, &data); err != nil {
		t.Fatal(err)
	}
	data["app"] = "not-" + data["app"].(string)
	b, _ := json.Marshal(data)
	if err := st.DeleteMsg(ctx, raw.Sequence); err != nil {
		t.Fatal(err)
	}
	m := &nats.Msg{Subject: raw.Subject, Header: raw.Header, Data: b}
	m.Header.Set(jetstream.MsgIDHeader, "tampered-"+ev.ID())
	if _, err := client.JetStream().PublishMsg(ctx, m); err != nil {
		t.Fatal(err)
	}
	if code, out := ctl(); code != 1 || !strings.Contains(out, "altered") || !strings.Contains(out, ev.ID()) {
		t.Errorf("audit verify after altering %s (incident %s): exit %d, want 1 naming it\n%s", ev.ID(), incident, code, out)
	}
}
