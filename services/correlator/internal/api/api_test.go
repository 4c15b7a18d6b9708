package api

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/services/correlator/internal/model"
	"github.com/stateguard/stateguard/services/correlator/internal/scenariotest"
)

// memStore holds states built by the pure model from scenario events.
type memStore map[string]*model.State

func (m memStore) Namespaces(context.Context) ([]string, error) {
	var out []string
	for ns := range m {
		out = append(out, ns)
	}
	return out, nil
}

func (m memStore) State(_ context.Context, ns string) (*model.State, bool, error) {
	st, ok := m[ns]
	return st, ok, nil
}

func (memStore) Rules() model.Rules { return model.DefaultRules() }

func newServer(t *testing.T, evs []events.Event) http.Handler {
	t.Helper()
	store := memStore{}
	for _, ev := range evs {
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
	tokens, err := ParseTokens([]byte("# operators\nsecret-token-1\n\n  secret-token-2  \n"), ScopeRead)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	Register(mux, store, tokens, slog.New(slog.DiscardHandler), func() time.Time { return scenariotest.T0.Add(24 * time.Hour) })
	return mux
}

func get(t *testing.T, h http.Handler, path, token string, into any) int {
	t.Helper()
	req := httptest.NewRequestWithContext(t.Context(), http.MethodGet, path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rr := httptest.NewRecorder()
	h.ServeHTTP(rr, req)
	if into != nil && rr.Code == http.StatusOK {
		if err := json.Unmarshal(rr.Body.Bytes(), into); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
	}
	return rr.Code
}

func TestAuth(t *testing.T) {
	h := newServer(t, scenariotest.CaseStudy())
	tests := []struct {
		name  string
		token string
		want  int
	}{
		{"no token", "", http.StatusUnauthorized},
		{"wrong token", "secret-token-3", http.StatusUnauthorized},
		{"a token of the file", "secret-token-1", http.StatusOK},
		{"a token with spaces around it in the file", "secret-token-2", http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := get(t, h, "/v1/apps", tt.token, nil); got != tt.want {
				t.Errorf("status %d, want %d", got, tt.want)
			}
		})
	}
	if _, err := ParseTokens([]byte("# nothing\n"), ScopeRead); err == nil {
		t.Error("an empty tokens file was accepted")
	}
}

func TestPostureDuringTheIncident(t *testing.T) {
	h := newServer(t, scenariotest.CaseStudy()[:9]) // up to the critical scan of v2
	const tok = "secret-token-1"

	var apps []AppSummary
	get(t, h, "/v1/apps", tok, &apps)
	var names []string
	for _, a := range apps {
		names = append(names, a.Namespace+"/"+a.App+" open="+strconv.Itoa(len(a.OpenIncidents)))
	}
	if diff := cmp.Diff([]string{"shop/db open=1", "shop/web open=0"}, names); diff != "" {
		t.Errorf("apps (-want +got):\n%s", diff)
	}
	// The fleet fields: every running version has its verdict, the
	// vulnerable one's findings are counted, every known-good PVC its time.
	db := apps[0]
	for _, r := range db.Running {
		if db.RunningVerdicts[r] == "" {
			t.Errorf("running %s has no verdict in %v", r, db.RunningVerdicts)
		}
	}
	if slices.ContainsFunc(db.Running, func(r string) bool { return db.RunningVerdicts[r] == model.Vulnerable }) && db.RunningFindings.Critical+db.RunningFindings.High == 0 {
		t.Errorf("a vulnerable version runs but no critical or high finding is counted: %+v", db.RunningFindings)
	}
	for pvc := range db.KnownGood {
		if db.KnownGoodTimes[pvc].IsZero() {
			t.Errorf("known-good of %s has no time: %v", pvc, db.KnownGoodTimes)
		}
	}

	var p Posture
	if code := get(t, h, "/v1/apps/shop/db", tok, &p); code != http.StatusOK {
		t.Fatalf("posture: %d", code)
	}
	if diff := cmp.Diff([]string{scenariotest.Digest("v2")}, p.Running); diff != "" {
		t.Errorf("running (-want +got):\n%s", diff)
	}
	if len(p.Certificates) != 2 || p.Certificates[0].Secret != "db-peer-tls" || p.Certificates[0].DaysLeftNow != 79 {
		t.Errorf("certificates: %+v", p.Certificates)
	}
	if p.Pinned["s2"].Incident == "" {
		t.Errorf("s2 is not pinned for the incident: %+v", p.Pinned)
	}

	var why Why
	get(t, h, "/v1/snapshots/shop/s3/why", tok, &why)
	if len(why.Apps) != 1 || why.Apps[0].Class != model.Tainted || why.Pinned {
		t.Errorf("why s3: %+v", why)
	}
	if got := why.Apps[0].Versions[0].Uploads[0].RuleIDs; !cmp.Equal(got, []string{"G101", "G402"}) {
		t.Errorf("why s3 rule ids: %v", got)
	}
	get(t, h, "/v1/snapshots/shop/s2/why", tok, &why)
	if !why.Pinned || why.Apps[0].Class != model.Clean || !why.Apps[0].KnownGood {
		t.Errorf("why s2: %+v", why)
	}

	var plans []RestorePlan
	get(t, h, "/v1/apps/shop/db/restore-plan", tok, &plans)
	if len(plans) != 1 || plans[0].VolumeSnapshot != "s2" || plans[0].Manifest == "" {
		t.Errorf("restore plans: %+v", plans)
	}

	var open []Incident
	get(t, h, "/v1/incidents?status=open", tok, &open)
	if len(open) != 1 || open[0].App != "db" || !open[0].SecretExposure {
		t.Errorf("open incidents: %+v", open)
	}

	for _, path := range []string{"/v1/apps/shop/nope", "/v1/apps/nowhere/db", "/v1/snapshots/shop/nope/why"} {
		if code := get(t, h, path, tok, nil); code != http.StatusNotFound {
			t.Errorf("%s: %d, want 404", path, code)
		}
	}
}
