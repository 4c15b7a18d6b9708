package api

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stateguard/stateguard/services/sastingest/internal/ingest"
)

// githubRequest builds the request GitHub documents for "Upload an analysis
// as SARIF data": the SARIF gzip-compressed, then base64-encoded.
func githubRequest(t *testing.T, log []byte, commit string) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{
		"commit_sha":   commit,
		"ref":          "refs/heads/main",
		"sarif":        base64.StdEncoding.EncodeToString(gzipBytes(t, log)),
		"checkout_uri": "file:///home/runner/work/shop/shop",
		"started_at":   "2026-11-25T20:00:00Z",
		"tool_name":    "gosec",
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func githubHeaders() map[string]string {
	return map[string]string{
		"Accept":               "application/vnd.github+json",
		"Authorization":        "Bearer " + goodToken,
		"X-GitHub-Api-Version": "2022-11-28",
		"Content-Type":         "application/json",
	}
}

func githubStatus(t *testing.T, url string) map[string]any {
	t.Helper()
	code, b, _ := do(t, http.MethodGet, url, nil, githubHeaders())
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, code, b)
	}
	var st map[string]any
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

func waitGitHub(t *testing.T, url, want string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st := githubStatus(t, url)
		if st["processing_status"] != "pending" {
			if st["processing_status"] != want {
				t.Fatalf("processing_status = %v (%v), want %s", st["processing_status"], st["errors"], want)
			}
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("still pending after 30s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestGitHubUploadPendingThenComplete(t *testing.T) {
	gate := make(chan struct{})
	f := newFixture(t, fixtureOpts{gate: gate})
	commit := "0123456789abcdef0123456789abcdef01234567"
	code, b, _ := do(t, http.MethodPost, f.url+"/repos/acme/shop/code-scanning/sarifs", bytes.NewReader(githubRequest(t, gosecLog(t), commit)), githubHeaders())
	if code != http.StatusAccepted {
		t.Fatalf("upload: %d %s, want 202", code, b)
	}
	var a struct{ ID, URL string }
	if err := json.Unmarshal(b, &a); err != nil || a.ID == "" || a.URL != f.url+"/repos/acme/shop/code-scanning/sarifs/"+a.ID {
		t.Fatalf("answer %s: want {id, url}", b)
	}
	if st := githubStatus(t, a.URL); st["processing_status"] != "pending" {
		t.Fatalf("before processing: %v, want pending", st)
	}
	close(gate)
	st := waitGitHub(t, a.URL, "complete")
	if st["errors"] != nil {
		t.Errorf("errors = %v, want null", st["errors"])
	}
	_, p := f.lastEvent(t)
	if p.Repository != "acme/shop" || p.CommitSHA != commit || p.Ref != "refs/heads/main" || p.ResultsTotal != 12 || p.UploadID != st["upload_id"] {
		t.Errorf("event = %+v", p)
	}

	// The same request again is the same upload: no second event.
	code, b2, _ := do(t, http.MethodPost, f.url+"/repos/acme/shop/code-scanning/sarifs", bytes.NewReader(githubRequest(t, gosecLog(t), commit)), githubHeaders())
	var a2 struct{ ID string }
	_ = json.Unmarshal(b2, &a2)
	if code != http.StatusAccepted || a2.ID != a.ID {
		t.Errorf("re-post: %d %s, want 202 with id %s", code, b2, a.ID)
	}
	if n := f.eventsStored(t); n != 1 {
		t.Errorf("events = %d, want 1", n)
	}
	// GitHub's body names no application: the status says so, and why.
	if j := uploadJoin(t, f.url, p.UploadID); j.State != "not joined" || !strings.Contains(j.Reason, "by repository acme/shop") {
		t.Errorf("join %+v, want not joined with the reason", j)
	}
}

// uploadJoin reads the join of an upload's status (GET /v1/sarif/{id}).
func uploadJoin(t *testing.T, base, id string) ingest.Join {
	t.Helper()
	code, b, _ := do(t, http.MethodGet, base+"/v1/sarif/"+id, nil, map[string]string{"Authorization": "Bearer " + goodToken})
	var st ingest.Status
	if err := json.Unmarshal(b, &st); code != http.StatusOK || err != nil || st.Join == nil {
		t.Fatalf("status of %s: %d %s %v", id, code, b, err)
	}
	return *st.Join
}

// The upload fails with a reason; it goes through GitHub Enterprise
// Server's API prefix, and the status URL keeps it.
func TestGitHubUploadFailsWithReason(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	code, b, _ := do(t, http.MethodPost, f.url+"/api/v3/repos/acme/shop/code-scanning/sarifs",
		bytes.NewReader(githubRequest(t, []byte(`{"version":"2.0.0","runs":[]}`), "0123456789abcdef0123456789abcdef01234567")), githubHeaders())
	if code != http.StatusAccepted {
		t.Fatalf("upload: %d %s", code, b)
	}
	var a struct{ ID, URL string }
	_ = json.Unmarshal(b, &a)
	if a.URL != f.url+"/api/v3/repos/acme/shop/code-scanning/sarifs/"+a.ID {
		t.Errorf("url = %q, want it under /api/v3", a.URL)
	}
	st := waitGitHub(t, a.URL, "failed")
	if errs, _ := st["errors"].([]any); len(errs) != 1 {
		t.Errorf("errors = %v, want one reason", st["errors"])
	}
}

func TestGitHubUploadRejects(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	good := "0123456789abcdef0123456789abcdef01234567"
	tests := []struct {
		name string
		body []byte
		h    map[string]string
		repo string
		want int
	}{
		{"no token", githubRequest(t, gosecLog(t), good), map[string]string{"Content-Type": "application/json"}, "acme/shop", http.StatusUnauthorized},
		{"a repository the token may not upload for", githubRequest(t, gosecLog(t), good), githubHeaders(), "other/shop", http.StatusForbidden},
		{"a short commit sha", githubRequest(t, gosecLog(t), "abc"), githubHeaders(), "acme/shop", http.StatusBadRequest},
		{"sarif not base64", []byte(`{"commit_sha":"` + good + `","ref":"refs/heads/main","sarif":"%%%"}`), githubHeaders(), "acme/shop", http.StatusBadRequest},
		{"sarif not gzip", []byte(`{"commit_sha":"` + good + `","ref":"refs/heads/main","sarif":"` + base64.StdEncoding.EncodeToString([]byte("{}")) + `"}`), githubHeaders(), "acme/shop", http.StatusBadRequest},
		{"not JSON", []byte(`sarif=x`), githubHeaders(), "acme/shop", http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, b, _ := do(t, http.MethodPost, f.url+"/repos/"+tt.repo+"/code-scanning/sarifs", bytes.NewReader(tt.body), tt.h)
			if code != tt.want {
				t.Errorf("status %d (%s), want %d", code, b, tt.want)
			}
		})
	}
}

// An upload answered 202 is finished after a restart: it was stored as
// received before the answer.
func TestGitHubUploadResumedAfterRestart(t *testing.T) {
	gate := make(chan struct{}) // never opened: the first server never ingests
	f := newFixture(t, fixtureOpts{gate: gate})
	code, b, _ := do(t, http.MethodPost, f.url+"/repos/acme/shop/code-scanning/sarifs",
		bytes.NewReader(githubRequest(t, gosecLog(t), "0123456789abcdef0123456789abcdef01234567")), githubHeaders())
	if code != http.StatusAccepted {
		t.Fatalf("upload: %d %s", code, b)
	}
	var a struct{ ID, URL string }
	_ = json.Unmarshal(b, &a)
	if err := f.api.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if st := githubStatus(t, a.URL); st["processing_status"] != "pending" {
		t.Fatalf("after stop: %v, want pending", st)
	}
	if n := f.eventsStored(t); n != 0 {
		t.Fatalf("events before the restart = %d, want 0", n)
	}

	// A new server on the same JetStream resumes it.
	opts := f.api.opts
	opts.gate = nil
	restarted := New(opts)
	t.Cleanup(func() { _ = restarted.Close(context.Background()) })
	if err := restarted.Resume(t.Context()); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	restarted.Register(mux)
	hs := httptest.NewServer(mux)
	defer hs.Close()
	st := waitGitHub(t, hs.URL+"/repos/acme/shop/code-scanning/sarifs/"+a.ID, "complete")
	_, p := f.lastEvent(t)
	if p.UploadID != st["upload_id"] || p.ResultsTotal != 12 {
		t.Errorf("event = %+v", p)
	}
	if held, err := restarted.github.Holds(t.Context(), a.ID); err != nil || held {
		t.Errorf("the pending copy is still there after completion (%v)", err)
	}
}

// GitHub's body has no field for stateguard's join keys: an uploader adds
// them as query parameters, and they reach the event.
func TestGitHubUploadCarriesJoinKeysFromTheQuery(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	commit := "1123456789abcdef0123456789abcdef01234567"
	q := "?app=db&namespace=shop&version=1.1.0&image=registry.example/shop/db@sha256:bbbb&image=registry.example/shop/sidecar@sha256:cccc"
	code, b, _ := do(t, http.MethodPost, f.url+"/repos/acme/shop/code-scanning/sarifs"+q, bytes.NewReader(githubRequest(t, gosecLog(t), commit)), githubHeaders())
	if code != http.StatusAccepted {
		t.Fatalf("upload: %d %s, want 202", code, b)
	}
	var a struct{ ID, URL string }
	if err := json.Unmarshal(b, &a); err != nil {
		t.Fatal(err)
	}
	waitGitHub(t, a.URL, "complete")
	_, p := f.lastEvent(t)
	if p.App != "db" || p.Namespace != "shop" || p.Version != "1.1.0" || len(p.Images) != 2 || p.Images[0] != "registry.example/shop/db@sha256:bbbb" {
		t.Errorf("event metadata = app %q namespace %q version %q images %v", p.App, p.Namespace, p.Version, p.Images)
	}
	if p.Repository != "acme/shop" || p.CommitSHA != commit || p.Category != "gosec" {
		t.Errorf("event repository/commit/category = %q %q %q", p.Repository, p.CommitSHA, p.Category)
	}
	if p.BySeverity.High == 0 {
		t.Errorf("gosec's HIGH rules counted as %+v", p.BySeverity)
	}
	if j := uploadJoin(t, f.url, p.UploadID); j != (ingest.Join{State: "joined", Namespace: "shop", App: "db"}) {
		t.Errorf("join %+v, want joined to shop/db", j)
	}
}
