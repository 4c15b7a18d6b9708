package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stateguard/stateguard/pkg/events"
)

// orphanUpload is the browser scene's upload that joins no application.
const orphanUpload = "00000000000000000000000000000000000000ff"

// githubUpload is the sarif.uploaded event of an upload sent as GitHub's
// uploaders send it (codeql github upload-results, the upload-sarif
// action): a repository and a commit, no namespace, app or image.
func githubUpload(id, repo string, at time.Time) events.Event {
	return events.MustNewEvent(events.TypeSARIFUploaded, sceneSource, "sarif-"+id, events.SARIFUploaded{
		UploadID: id, Repository: repo, CommitSHA: strings.Repeat("c", 40), Ref: "refs/heads/main", Category: "CodeQL",
		Tools: []events.Tool{{Name: "CodeQL"}}, ReceivedAt: at})
}

// uploadsScene: three uploads of repositories no workload names (not
// joined) and one of acme/shop, which the pod db-0 names (joined).
func uploadsScene(now time.Time) (evs []events.Event, notJoined []string) {
	obs := events.WorkloadObserved{Namespace: "shop", PVC: "data-db", ObservedAt: now.Add(-time.Hour), Pods: []events.ObservedPod{{
		Pod: "db-0", Owner: &events.ObjectRef{Kind: "StatefulSet", Namespace: "shop", Name: "db"}, App: "db", Version: "v1",
		Containers:  []events.Container{{Name: "db", Image: "registry.example/db@" + digest("v1"), Digest: digest("v1")}},
		Annotations: map[string]string{events.AnnotationRepository: "acme/shop"},
	}}}
	evs = append(evs, events.MustNewEvent(events.TypeWorkloadObserved, sceneSource, events.ObservationID(obs), obs))
	for i, repo := range []string{"acme/orphan-a", "acme/orphan-b", "acme/orphan-a"} {
		id := fmt.Sprintf("%040x", 0xa0+i)
		notJoined = append(notJoined, id)
		evs = append(evs, githubUpload(id, repo, now.Add(time.Duration(i)*time.Minute)))
	}
	return append(evs, githubUpload(fmt.Sprintf("%040x", 0xb0), "acme/shop", now)), notJoined
}

// uploadsPage GETs the correlator's /v1/uploads with query and returns the
// upload ids in order and the Link header.
func uploadsPage(t *testing.T, st *testStack, query string) (ids []string, reasons []string, link string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, st.correlatorURL+"/v1/uploads"+query, nil)
	req.Header.Set("Authorization", "Bearer "+readToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v1/uploads%s: %d %s", query, resp.StatusCode, b)
	}
	var out []struct {
		UploadID string `json:"upload_id"`
		State    string `json:"state"`
		Reason   string `json:"reason"`
	}
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("GET /v1/uploads%s: %v\n%s", query, err, b)
	}
	for _, u := range out {
		ids = append(ids, u.UploadID)
		reasons = append(reasons, u.State+": "+u.Reason)
	}
	return ids, reasons, resp.Header.Get("Link")
}

// TestPipelineListsUploadsNotJoined: the correlator's GET /v1/uploads
// lists the join records a page at a time (joined=false: the uploads not
// joined, with their reason; the Link header names the next page), and
// refuses bad parameters with problem+json; the console's pipeline page
// lists the uploads not joined with their reason, a page at a time, and
// not the joined one. Real JetStream and the real correlator.
func TestPipelineListsUploadsNotJoined(t *testing.T) {
	evs, notJoined := uploadsScene(time.Now())
	st := startCorrelator(t, evs, func([]appLine) error { return nil })
	waitFor(t, "the correlator's join records", 2*time.Minute, func() error {
		ids, _, _ := uploadsPage(t, st, "")
		if len(ids) != 4 {
			return fmt.Errorf("%d join records, want 4", len(ids))
		}
		return nil
	})

	first, reasons, link := uploadsPage(t, st, "?joined=false&limit=2")
	if want := notJoined[:2]; fmt.Sprint(first) != fmt.Sprint(want) {
		t.Errorf("first page of uploads not joined: %v, want %v", first, want)
	}
	for _, r := range reasons {
		if !strings.HasPrefix(r, "not joined: no application runs repository acme/orphan-") {
			t.Errorf("reason %q: want it to say no application runs the repository", r)
		}
	}
	m := regexp.MustCompile(`^<(/v1/uploads\?[^>]+)>; rel="next"$`).FindStringSubmatch(link)
	if m == nil {
		t.Fatalf("Link %q: want the next page's address", link)
	}
	next, _, link2 := uploadsPage(t, st, strings.TrimPrefix(m[1], "/v1/uploads"))
	if fmt.Sprint(next) != fmt.Sprint(notJoined[2:]) || link2 != "" {
		t.Errorf("next page: %v (Link %q), want %v and no next", next, link2, notJoined[2:])
	}
	if joined, _, _ := uploadsPage(t, st, "?joined=true"); fmt.Sprint(joined) != fmt.Sprintf("[%040x]", 0xb0) {
		t.Errorf("joined uploads: %v, want the acme/shop upload", joined)
	}
	for _, q := range []string{"?joined=maybe", "?limit=0", "?limit=1001", "?limit=x", "?after=not-an-id"} {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, st.correlatorURL+"/v1/uploads"+q, nil)
		req.Header.Set("Authorization", "Bearer "+readToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("GET /v1/uploads%s: %d %s, want 400 problem+json", q, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	}

	// The console's pipeline page, two uploads a page.
	base := startConsole(t, st, "--page-size", "2")
	c, _ := httpLogin(t, base, readToken)
	page, _ := fetch(t, c, base+"/pipeline")
	rows := regexp.MustCompile(`<tr data-upload="([0-9a-f]{40})">.*?<td class="reason">([^<]*)</td>`).FindAllStringSubmatch(page, -1)
	var shown []string
	for _, r := range rows {
		shown = append(shown, r[1])
		if !strings.Contains(r[2], "no application runs repository acme/orphan-") {
			t.Errorf("pipeline row %s: reason %q", r[1], r[2])
		}
	}
	if fmt.Sprint(shown) != fmt.Sprint(notJoined[:2]) {
		t.Errorf("pipeline page lists the uploads %v, want %v", shown, notJoined[:2])
	}
	nm := regexp.MustCompile(`<a href="(/pipeline\?uploads_after=[0-9a-f]{40})" rel="next">`).FindStringSubmatch(page)
	if nm == nil {
		t.Fatalf("pipeline page has no link to the next uploads:\n%s", page)
	}
	page2, _ := fetch(t, c, base+nm[1])
	if !strings.Contains(page2, `data-upload="`+notJoined[2]+`"`) || strings.Contains(page2, `data-upload="`+notJoined[0]+`"`) || strings.Contains(page2, `rel="next"`) {
		t.Errorf("the pipeline's second page does not list exactly the third upload not joined:\n%s", page2)
	}
	if strings.Contains(page+page2, fmt.Sprintf("%040x", 0xb0)) {
		t.Error("the pipeline page lists the joined upload")
	}
}
