package api

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/pkg/harness/natstest"
	"github.com/stateguard/stateguard/pkg/runtime/service"
	"github.com/stateguard/stateguard/services/correlator/internal/engine"
	"github.com/stateguard/stateguard/services/correlator/internal/model"
	"github.com/stateguard/stateguard/services/correlator/internal/scenariotest"
)

const (
	readTok     = "read-token-1"
	operatorTok = "operator-token-1"
)

// testTokens are a read token and an operator token named alice, read from
// files with comments as an operator writes them.
func testTokens(t *testing.T) Tokens {
	t.Helper()
	read, err := ParseTokens([]byte("# readers\n"+readTok+"\n"), ScopeRead)
	if err != nil {
		t.Fatal(err)
	}
	op, err := ParseTokens([]byte("# operators: token name\n\n"+operatorTok+"  alice\n"+delegateTok+" console delegate\n"), ScopeOperator)
	if err != nil {
		t.Fatal(err)
	}
	return read.Join(op)
}

// liveAPI is the API over a real engine on a real JetStream, publishing
// operators' decisions with the engine's client.
func liveAPI(t *testing.T) (http.Handler, *events.Client) {
	t.Helper()
	srv := natstest.Run(t)
	client := natstest.Client(t, srv)
	eng, err := engine.New(t.Context(), engine.Options{Client: client, Rules: model.DefaultRules(), Bucket: "api-write",
		Workers: 4, Consumer: "api-write", Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = eng.Stop(ctx)
	})
	mux := http.NewServeMux()
	Register(mux, eng, testTokens(t), slog.New(slog.DiscardHandler), time.Now, WithPublisher(client))
	return mux, client
}

func post(t *testing.T, h http.Handler, path, token, body string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequestWithContext(t.Context(), http.MethodPost, path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rr := httptest.NewRecorder()
	h.ServeHTTP(rr, req)
	return rr
}

// eventually retries cond every 50ms for up to 30s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after 30s: %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// storedOf returns how many events of typ the DECISION stream holds, and
// the newest of them.
func storedOf(t *testing.T, c *events.Client, typ string) (int, events.Event) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	st, err := c.JetStream().Stream(ctx, events.StreamDecision)
	if err != nil {
		t.Fatal(err)
	}
	subj := events.SubjectOf(typ)
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(subj))
	if err != nil {
		t.Fatal(err)
	}
	n := int(info.State.Subjects[subj])
	if n == 0 {
		return 0, events.Event{}
	}
	m, err := st.GetLastMsgForSubject(ctx, subj)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := events.DecodeMsg(&nats.Msg{Subject: m.Subject, Data: m.Data, Header: m.Header})
	if err != nil {
		t.Fatal(err)
	}
	return n, ev
}

// TestOperatorResolvesAnIncident on a real engine and JetStream: the case
// study's incident stays open after the fix (v2 wrote to the data); a read
// token may not resolve it (403), no token is 401; an operator token
// resolves it (202), which publishes incident.resolved with the token's
// name as actor, the engine consumes it and publishes incident.closed; a
// retry publishes no second event, and once applied answers 200 with the
// recorded resolution.
func TestOperatorResolvesAnIncident(t *testing.T) {
	h, client := liveAPI(t)
	if err := client.Publish(t.Context(), scenariotest.CaseStudy()...); err != nil {
		t.Fatal(err)
	}
	var open []Incident
	eventually(t, "the case study's incident is open", func() bool {
		open = nil
		return get(t, h, "/v1/incidents?status=open", readTok, &open) == http.StatusOK && len(open) == 1 && len(open[0].Causes) > 0 &&
			get(t, h, "/v1/apps/shop/db", readTok, nil) == http.StatusOK
	})
	id := open[0].ID
	path := "/v1/incidents/" + id + "/resolve"
	body := `{"reason": "not exploited: the endpoint was never exposed"}`

	for _, tt := range []struct {
		name, token, wantType string
		want                  int
	}{
		{"no token", "", "unauthorized", http.StatusUnauthorized},
		{"a wrong token", "guess", "unauthorized", http.StatusUnauthorized},
		{"a read token", readTok, "forbidden", http.StatusForbidden},
	} {
		rr := post(t, h, path, tt.token, body)
		var p service.Problem
		_ = json.Unmarshal(rr.Body.Bytes(), &p)
		if rr.Code != tt.want || p.Type != service.ProblemBase+tt.wantType || rr.Header().Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s: %d %s, want %d problem+json of type %s", tt.name, rr.Code, rr.Body.String(), tt.want, tt.wantType)
		}
	}
	if n, _ := storedOf(t, client, events.TypeIncidentResolved); n != 0 {
		t.Fatalf("refused requests published %d incident.resolved", n)
	}

	rr := post(t, h, path, operatorTok, body)
	if rr.Code != http.StatusAccepted {
		t.Fatalf("operator resolve: %d %s, want 202", rr.Code, rr.Body.String())
	}
	var res Resolution
	if err := json.Unmarshal(rr.Body.Bytes(), &res); err != nil {
		t.Fatal(err)
	}
	if !res.Published || res.Actor != "alice" || res.Incident != id || res.Namespace != "shop" || res.EventID == "" {
		t.Errorf("resolution %+v, want published by alice for %s in shop", res, id)
	}
	if strings.Contains(rr.Body.String(), operatorTok) {
		t.Error("the answer carries the token")
	}
	// A retry of the same request (the client timed out, say).
	if rr := post(t, h, path, operatorTok, `{"reason": "retried"}`); rr.Code != http.StatusAccepted && rr.Code != http.StatusOK {
		t.Fatalf("retry: %d %s", rr.Code, rr.Body.String())
	}

	var closed events.Event
	eventually(t, "incident.closed published for "+id, func() bool {
		var n int
		n, closed = storedOf(t, client, events.TypeIncidentClosed)
		return n > 0
	})
	ic, err := events.Decode[events.IncidentClosed](closed)
	if err != nil {
		t.Fatal(err)
	}
	if ic.Incident != id || !strings.Contains(ic.Reason, "resolved by alice: not exploited") {
		t.Errorf("incident.closed %+v, want %s resolved by alice", ic, id)
	}
	n, resolved := storedOf(t, client, events.TypeIncidentResolved)
	if n != 1 {
		t.Fatalf("%d incident.resolved stored after a retried request, want 1", n)
	}
	p, err := events.Decode[events.IncidentResolved](resolved)
	if err != nil {
		t.Fatal(err)
	}
	if p.Actor != "alice" || p.Reason != "not exploited: the endpoint was never exposed" || p.ResolvedAt.IsZero() {
		t.Errorf("stored resolution %+v, want alice's first reason and a time", p)
	}

	// Applied (the state is stored by the batch that published the
	// decision): the incident is closed, and a resolve again changes
	// nothing.
	eventually(t, "GET /v1/incidents/"+id+" shows it closed with closed_at", func() bool {
		var inc Incident
		return get(t, h, "/v1/incidents/"+id, readTok, &inc) == http.StatusOK && !inc.Open && !inc.ClosedAt.IsZero() &&
			strings.HasPrefix(inc.CloseReason, "resolved by alice")
	})
	rr = post(t, h, path, operatorTok, `{"reason": "again"}`)
	if err := json.Unmarshal(rr.Body.Bytes(), &res); err != nil {
		t.Fatal(err)
	}
	if rr.Code != http.StatusOK || res.Published || res.Reason != "not exploited: the endpoint was never exposed" {
		t.Errorf("resolve of a resolved incident: %d %+v, want 200 with the recorded resolution, not published", rr.Code, res)
	}
	if n, _ := storedOf(t, client, events.TypeIncidentResolved); n != 1 {
		t.Errorf("%d incident.resolved stored, want still 1", n)
	}
}

// TestADismissedFindingNoLongerMakesTheVersionVulnerable end to end: a
// critical finding makes v1 vulnerable and opens an incident; an operator
// dismisses it through the API; the engine consumes finding.dismissed and
// v1 is clean, its incident gone.
func TestADismissedFindingNoLongerMakesTheVersionVulnerable(t *testing.T) {
	h, client := liveAPI(t)
	const ns, app = "pay", "api"
	evs := []events.Event{
		scenariotest.Snapshot(ns, "data-api-0", "p1", scenariotest.T0, scenariotest.Run{App: app, Versions: []string{"v1"}}),
		scenariotest.SARIF(ns, app, "up1", "v1", scenariotest.T0.Add(time.Hour), scenariotest.Critical),
	}
	if err := client.Publish(t.Context(), evs...); err != nil {
		t.Fatal(err)
	}
	verdict := func() (string, int) {
		var p Posture
		if get(t, h, "/v1/apps/"+ns+"/"+app, readTok, &p) != http.StatusOK || len(p.Versions) == 0 {
			return "", 0
		}
		open := 0
		for _, inc := range p.Incidents {
			if inc.Open {
				open++
			}
		}
		return p.Versions[0].Verdict, open
	}
	eventually(t, "v1 vulnerable with an open incident", func() bool { v, n := verdict(); return v == model.Vulnerable && n == 1 })

	body := `{"namespace": "pay", "app": "api", "rule_id": "G402", "fingerprint": "f-g402", "reason": "false positive: test-only TLS config"}`
	if rr := post(t, h, "/v1/findings/dismiss", readTok, body); rr.Code != http.StatusForbidden {
		t.Errorf("dismiss with a read token: %d, want 403", rr.Code)
	}
	rr := post(t, h, "/v1/findings/dismiss", operatorTok, body)
	if rr.Code != http.StatusAccepted {
		t.Fatalf("dismiss: %d %s", rr.Code, rr.Body.String())
	}
	eventually(t, "v1 clean with no open incident after the dismissal", func() bool { v, n := verdict(); return v == model.Clean && n == 0 })
	n, stored := storedOf(t, client, events.TypeFindingDismissed)
	if n != 1 {
		t.Fatalf("%d finding.dismissed stored, want 1", n)
	}
	d, err := events.Decode[events.FindingDismissed](stored)
	if err != nil {
		t.Fatal(err)
	}
	if d.Actor != "alice" || d.RuleID != "G402" || d.Fingerprint != "f-g402" || d.App != app {
		t.Errorf("stored dismissal %+v", d)
	}
	rr = post(t, h, "/v1/findings/dismiss", operatorTok, body)
	var out Dismissal
	_ = json.Unmarshal(rr.Body.Bytes(), &out)
	if rr.Code != http.StatusOK || out.Published {
		t.Errorf("dismiss again: %d %s, want 200 not published", rr.Code, rr.Body.String())
	}
}

// delegateTok is an operator token that may act on behalf of users (the
// console behind an auth proxy).
const delegateTok = "delegate-token-for-the-console"

// TestADelegateTokenRecordsTheUserItActsFor: a delegate token naming a user
// in Stateguard-On-Behalf-Of records "<user> via <token>" as the actor; a
// token that is not a delegate may not name a user (403), a user name that
// is not a plain name is refused (400), and nothing is published for
// either.
func TestADelegateTokenRecordsTheUserItActsFor(t *testing.T) {
	h, client := liveAPI(t)
	const ns, app = "pay", "api"
	evs := []events.Event{
		scenariotest.Snapshot(ns, "data-api-0", "p1", scenariotest.T0, scenariotest.Run{App: app, Versions: []string{"v1"}}),
		scenariotest.SARIF(ns, app, "up1", "v1", scenariotest.T0.Add(time.Hour), scenariotest.Critical),
	}
	if err := client.Publish(t.Context(), evs...); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the app known", func() bool { return get(t, h, "/v1/apps/"+ns+"/"+app, readTok, nil) == http.StatusOK })
	dismiss := func(token, user string) *httptest.ResponseRecorder {
		body := `{"namespace": "pay", "app": "api", "rule_id": "G402", "fingerprint": "f-g402", "reason": "false positive"}`
		req := httptest.NewRequestWithContext(t.Context(), http.MethodPost, "/v1/findings/dismiss", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set(OnBehalfOfHeader, user)
		rr := httptest.NewRecorder()
		h.ServeHTTP(rr, req)
		return rr
	}
	if rr := dismiss(operatorTok, "carol"); rr.Code != http.StatusForbidden || !strings.Contains(rr.Body.String(), "may not act on behalf") {
		t.Errorf("a plain operator token naming a user: %d %s, want 403", rr.Code, rr.Body.String())
	}
	if rr := dismiss(delegateTok, "carol/../root"); rr.Code != http.StatusBadRequest {
		t.Errorf("a delegate naming a bad user: %d %s, want 400", rr.Code, rr.Body.String())
	}
	if n, _ := storedOf(t, client, events.TypeFindingDismissed); n != 0 {
		t.Fatalf("%d finding.dismissed stored after refused requests, want 0", n)
	}
	if rr := dismiss(delegateTok, "carol"); rr.Code != http.StatusAccepted {
		t.Fatalf("a delegate acting for carol: %d %s", rr.Code, rr.Body.String())
	}
	n, stored := storedOf(t, client, events.TypeFindingDismissed)
	d, err := events.Decode[events.FindingDismissed](stored)
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 || d.Actor != "carol via console" {
		t.Errorf("%d stored, actor %q, want 1 by \"carol via console\"", n, d.Actor)
	}
}

// failingPublisher refuses every publish.
type failingPublisher struct{ n int }

func (f *failingPublisher) NewEvent(typ, id string, payload any) (events.Event, error) {
	return events.NewEvent(typ, "/stateguard/test", id, payload)
}

func (f *failingPublisher) Publish(context.Context, ...events.Event) error {
	f.n++
	return errors.New("nats: no responders available for request")
}

// TestWritesRefuseBadInput: every refused write is problem+json with the
// reason, and nothing is published.
func TestWritesRefuseBadInput(t *testing.T) {
	store := memStore{}
	for _, ev := range restoredCaseStudy() {
		in, err := model.FromEvent(ev)
		if err != nil {
			t.Fatal(err)
		}
		if store[in.Namespace] == nil {
			store[in.Namespace] = model.NewState(in.Namespace)
		}
		if _, _, err := model.Apply(model.DefaultRules(), store[in.Namespace], in); err != nil {
			t.Fatal(err)
		}
	}
	pub := &failingPublisher{}
	mux := http.NewServeMux()
	Register(mux, store, testTokens(t), slog.New(slog.DiscardHandler), time.Now, WithPublisher(pub))
	var closed []Incident
	get(t, mux, "/v1/incidents?status=closed", readTok, &closed)
	if len(closed) != 1 {
		t.Fatalf("closed incidents %+v, want the restored one", closed)
	}
	restored := "/v1/incidents/" + closed[0].ID + "/resolve"
	dismiss := func(ns, app, rule, reason string) string {
		b, _ := json.Marshal(DismissRequest{Namespace: ns, App: app, RuleID: rule, Reason: reason})
		return string(b)
	}
	tests := []struct {
		name, path, body string
		want             int
		wantType, detail string
	}{
		{"no reason", restored, `{}`, http.StatusBadRequest, "invalid-parameter", "reason: required"},
		{"a blank reason", restored, `{"reason": "   "}`, http.StatusBadRequest, "invalid-parameter", "reason: required"},
		{"a reason of 2,000 characters", restored, `{"reason": "` + strings.Repeat("x", 2000) + `"}`, http.StatusBadRequest, "invalid-parameter", "at most 1024"},
		{"a reason with a control character", restored, `{"reason": "a\u0007b"}`, http.StatusBadRequest, "invalid-parameter", "control"},
		{"an unknown field", restored, `{"reason": "x", "actor": "mallory"}`, http.StatusBadRequest, "invalid-parameter", `unknown field "actor"`},
		{"not JSON", restored, `reason=x`, http.StatusBadRequest, "invalid-parameter", "body"},
		{"an empty body", restored, ``, http.StatusBadRequest, "invalid-parameter", "empty body"},
		{"an unknown incident", "/v1/incidents/inc-000000000000000000000000/resolve", `{"reason": "x"}`, http.StatusNotFound, "not-found", "no incident inc-0000"},
		{"an invalid incident id", "/v1/incidents/Inc_1/resolve", `{"reason": "x"}`, http.StatusBadRequest, "invalid-parameter", "incident"},
		{"an incident a restore closed", restored, `{"reason": "x"}`, http.StatusConflict, "conflict", "restored from snapshot s2"},
		{"a dismissal without a rule", "/v1/findings/dismiss", dismiss("shop", "db", "", "fp"), http.StatusBadRequest, "invalid-parameter", "rule_id: required"},
		{"a dismissal with a space in the rule", "/v1/findings/dismiss", dismiss("shop", "db", "G 402", "fp"), http.StatusBadRequest, "invalid-parameter", "rule_id"},
		{"a dismissal without a reason", "/v1/findings/dismiss", dismiss("shop", "db", "G402", ""), http.StatusBadRequest, "invalid-parameter", "reason"},
		{"a dismissal in an invalid namespace", "/v1/findings/dismiss", dismiss("Shop", "db", "G402", "fp"), http.StatusBadRequest, "invalid-parameter", "namespace"},
		{"a dismissal for an unknown app", "/v1/findings/dismiss", dismiss("shop", "nope", "G402", "fp"), http.StatusNotFound, "not-found", "no application nope"},
		{"a dismissal NATS could not store", "/v1/findings/dismiss", dismiss("shop", "db", "G402", "fp"), http.StatusServiceUnavailable, "unavailable", "retry"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rr := post(t, mux, tt.path, operatorTok, tt.body)
			var p service.Problem
			if err := json.Unmarshal(rr.Body.Bytes(), &p); err != nil {
				t.Fatalf("%d: body is not a problem: %s", rr.Code, rr.Body.String())
			}
			if rr.Code != tt.want || p.Type != service.ProblemBase+tt.wantType || !strings.Contains(p.Detail, tt.detail) {
				t.Errorf("%d %+v, want %d of type %s with %q", rr.Code, p, tt.want, tt.wantType, tt.detail)
			}
		})
	}
	if pub.n != 1 {
		t.Errorf("%d publishes, want 1 (only the valid dismissal reached NATS)", pub.n)
	}
}

// TestOperatorTokens: an operator token needs a name; a bad line names
// its number, never the token.
func TestOperatorTokens(t *testing.T) {
	for _, tt := range []struct{ name, file, err string }{
		{"no name", "# ops\ns3cr3t-value\n", "line 2: an operator token needs a name"},
		{"a bad name", "s3cr3t-value bob/../x\n", "line 1: the name must match"},
		{"three fields", "s3cr3t-value bob extra\n", "line 1: want a token, a name and optionally \"delegate\""},
	} {
		_, err := ParseTokens([]byte(tt.file), ScopeOperator)
		if err == nil || !strings.Contains(err.Error(), tt.err) || strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("%s: %v, want an error with %q and without the token", tt.name, err, tt.err)
		}
	}
	if _, err := ParseTokens([]byte("s3cr3t-value\n"), ScopeRead); err != nil {
		t.Errorf("a read token without a name: %v", err)
	}
	// An operator token reads too.
	h := newServerTokens(t, testTokens(t))
	if code := get(t, h, "/v1/apps", operatorTok, nil); code != http.StatusOK {
		t.Errorf("GET /v1/apps with an operator token: %d", code)
	}
}

func newServerTokens(t *testing.T, tokens Tokens) http.Handler {
	t.Helper()
	mux := http.NewServeMux()
	Register(mux, memStore{}, tokens, slog.New(slog.DiscardHandler), time.Now)
	return mux
}
