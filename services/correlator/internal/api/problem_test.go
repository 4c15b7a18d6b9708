package api

import (
	"context"
	"encoding/json"
	"github.com/stateguard/stateguard/pkg/events"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stateguard/stateguard/pkg/runtime/service"
	"github.com/stateguard/stateguard/services/correlator/internal/model"
	"github.com/stateguard/stateguard/services/correlator/internal/scenariotest"
)

// do sends a GET and returns the recorder.
func do(t *testing.T, h http.Handler, path, token string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequestWithContext(t.Context(), http.MethodGet, path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rr := httptest.NewRecorder()
	h.ServeHTTP(rr, req)
	return rr
}

// TestErrorsAreProblemDetails sends each kind of bad request: every answer
// is application/problem+json with a type, a title, the status and a
// detail that says what was wrong.
func TestErrorsAreProblemDetails(t *testing.T) {
	h := newServer(t, scenariotest.CaseStudy())
	const tok = "secret-token-1"
	long := strings.Repeat("a", 5000)
	tests := []struct {
		name       string
		path       string
		token      string
		wantStatus int
		wantType   string
		wantDetail string
	}{
		{"no token", "/v1/apps", "", http.StatusUnauthorized, "unauthorized", "bearer token"},
		{"an unknown app", "/v1/apps/shop/nope", tok, http.StatusNotFound, "not-found", "no application nope"},
		{"an unknown snapshot", "/v1/snapshots/shop/nope/why", tok, http.StatusNotFound, "not-found", "no snapshot nope"},
		{"a status that does not exist", "/v1/incidents?status=bogus", tok, http.StatusBadRequest, "invalid-parameter", `status: "bogus" is not a status`},
		{"a 5,000-character namespace", "/v1/apps/" + long + "/db", tok, http.StatusBadRequest, "invalid-parameter", "namespace: \"aaaa"},
		{"a namespace of 64 characters", "/v1/apps/" + strings.Repeat("n", 64) + "/db", tok, http.StatusBadRequest, "invalid-parameter", "no more than 63"},
		{"an upper-case namespace", "/v1/apps/Shop/db", tok, http.StatusBadRequest, "invalid-parameter", "namespace"},
		{"a 5,000-character app", "/v1/apps/shop/" + long, tok, http.StatusBadRequest, "invalid-parameter", "app: "},
		{"a long namespace in the restore plan", "/v1/apps/" + long + "/db/restore-plan", tok, http.StatusBadRequest, "invalid-parameter", "namespace"},
		{"a long namespace in why", "/v1/snapshots/" + long + "/s2/why", tok, http.StatusBadRequest, "invalid-parameter", "namespace"},
		{"a snapshot name of 254 characters", "/v1/snapshots/shop/" + strings.Repeat("s", 254) + "/why", tok, http.StatusBadRequest, "invalid-parameter", "snapshot"},
		{"a snapshot name with a slash-free but invalid character", "/v1/snapshots/shop/s_2/why", tok, http.StatusBadRequest, "invalid-parameter", "snapshot"},
		{"an upload id that is not one", "/v1/uploads/" + long, tok, http.StatusBadRequest, "invalid-parameter", "40 lowercase hexadecimal"},
		{"an upload without a join record", "/v1/uploads/" + strings.Repeat("ab", 20), tok, http.StatusNotFound, "not-found", "no join record"},
		{"a joined filter that is neither true nor false", "/v1/uploads?joined=" + long, tok, http.StatusBadRequest, "invalid-parameter", "joined is true or false"},
		{"a page of no upload", "/v1/uploads?limit=0", tok, http.StatusBadRequest, "invalid-parameter", "limit is a whole number from 1 to 1000"},
		{"a page of too many uploads", "/v1/uploads?joined=false&limit=1001", tok, http.StatusBadRequest, "invalid-parameter", "from 1 to 1000"},
		{"a page after something not an upload id", "/v1/uploads?after=" + long, tok, http.StatusBadRequest, "invalid-parameter", "after is an upload id"},
		{"a list of join records from a store that keeps none", "/v1/uploads?joined=false", tok, http.StatusNotFound, "not-found", "no join records"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rr := do(t, h, tt.path, tt.token)
			if rr.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", rr.Code, tt.wantStatus, rr.Body.String())
			}
			if ct := rr.Header().Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("Content-Type %q, want application/problem+json", ct)
			}
			var p service.Problem
			if err := json.Unmarshal(rr.Body.Bytes(), &p); err != nil {
				t.Fatalf("body is not a problem: %v: %s", err, rr.Body.String())
			}
			if p.Type != service.ProblemBase+tt.wantType || p.Title == "" || p.Status != tt.wantStatus || !strings.Contains(p.Detail, tt.wantDetail) {
				t.Errorf("problem %+v, want type %s, a title, status %d and a detail with %q", p, tt.wantType, tt.wantStatus, tt.wantDetail)
			}
			if len(rr.Body.String()) > 2048 {
				t.Errorf("the answer is %d bytes: a refused value must not be echoed in full", rr.Body.Len())
			}
		})
	}
}

// countingStore records the namespaces the API asked the store for.
type countingStore struct {
	memStore
	mu    sync.Mutex
	asked []string
}

func (c *countingStore) State(ctx context.Context, ns string) (*model.State, bool, error) {
	c.mu.Lock()
	c.asked = append(c.asked, ns)
	c.mu.Unlock()
	return c.memStore.State(ctx, ns)
}

// TestInvalidIdentifiersNeverReachTheStore: a refused request asks the
// store for nothing (the store's key is built from the namespace), a valid
// one does.
func TestInvalidIdentifiersNeverReachTheStore(t *testing.T) {
	store := &countingStore{memStore: memStore{}}
	tokens, err := ParseTokens([]byte("tok\n"), ScopeRead)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	Register(mux, store, tokens, slog.New(slog.DiscardHandler), time.Now)
	for _, path := range []string{
		"/v1/apps/" + strings.Repeat("a", 5000) + "/db",
		"/v1/apps/-shop/db",
		"/v1/snapshots/" + strings.Repeat("a", 64) + "/s1/why",
		"/v1/apps/shop/" + strings.Repeat("a", 254) + "/restore-plan",
	} {
		if rr := do(t, mux, path, "tok"); rr.Code != http.StatusBadRequest {
			t.Errorf("%.60s...: %d, want 400", path, rr.Code)
		}
	}
	if len(store.asked) != 0 {
		t.Errorf("the store was asked for %d namespaces by refused requests", len(store.asked))
	}
	if rr := do(t, mux, "/v1/apps/shop/db", "tok"); rr.Code != http.StatusNotFound || !slices.Equal(store.asked, []string{"shop"}) {
		t.Errorf("valid request: %d, store asked %v; want 404 after asking for shop", rr.Code, store.asked)
	}
}

// TestIncidentsFilterByStatus: open and closed split the incidents, no
// filter lists them all, anything else is refused.
func TestIncidentsFilterByStatus(t *testing.T) {
	h := newServer(t, restoredCaseStudy())
	const tok = "secret-token-1"
	count := func(q string) int {
		var out []Incident
		if code := get(t, h, "/v1/incidents"+q, tok, &out); code != http.StatusOK {
			t.Fatalf("%s: %d", q, code)
		}
		return len(out)
	}
	all, open, closed := count(""), count("?status=open"), count("?status=closed")
	if all == 0 || closed == 0 || open+closed != all {
		t.Errorf("incidents: all %d, open %d, closed %d; want closed ones, and open+closed = all", all, open, closed)
	}
	for _, q := range []string{"?status=bogus", "?status=OPEN", "?status=" + strings.Repeat("x", 5000)} {
		if code := get(t, h, "/v1/incidents"+q, tok, nil); code != http.StatusBadRequest {
			t.Errorf("%.40s: %d, want 400", q, code)
		}
	}
}

// restoredAt is when the case study's data is restored from s2, which closes
// its incident (the fix alone does not: v2 wrote to the data).
var restoredAt = scenariotest.T0.Add(6 * time.Hour)

func restoredCaseStudy() []events.Event {
	return append(scenariotest.CaseStudy(), scenariotest.Restored(scenariotest.CaseNS, scenariotest.CasePVC, "s2", restoredAt))
}

// TestClosedIncidentsCarryTheirEndTime: a closed incident has closed_at,
// the time of the fact that closed it (here the restore from s2), the same
// whatever order the events came in (and with duplicates); an open one has
// none.
func TestClosedIncidentsCarryTheirEndTime(t *testing.T) {
	const tok = "secret-token-1"
	evs := restoredCaseStudy()
	replayed := append(slices.Clone(evs), evs[3:]...)
	slices.Reverse(replayed)
	var ends []time.Time
	for _, h := range []http.Handler{newServer(t, evs), newServer(t, replayed)} {
		var closed []Incident
		get(t, h, "/v1/incidents?status=closed", tok, &closed)
		if len(closed) != 1 {
			t.Fatalf("closed incidents: %+v, want one", closed)
		}
		if closed[0].End != "s2" || !closed[0].ClosedAt.Equal(restoredAt) {
			t.Fatalf("incident closed at %v by %q, want %v by the restore from s2", closed[0].ClosedAt, closed[0].End, restoredAt)
		}
		ends = append(ends, closed[0].ClosedAt)
	}
	if !ends[0].Equal(ends[1]) {
		t.Errorf("closed_at %v in order, %v replayed out of order: want the same", ends[0], ends[1])
	}
	// An open incident has no closed_at in its JSON.
	rr := do(t, newServer(t, evs[:9]), "/v1/incidents?status=open", tok)
	if !strings.Contains(rr.Body.String(), `"start_time"`) || strings.Contains(rr.Body.String(), `"closed_at"`) {
		t.Errorf("open incident JSON: %s, want start_time and no closed_at", rr.Body.String())
	}
	rr = do(t, newServer(t, evs), "/v1/incidents?status=closed", tok)
	if !strings.Contains(rr.Body.String(), `"closed_at"`) {
		t.Errorf("closed incident JSON lacks closed_at: %s", rr.Body.String())
	}
}
