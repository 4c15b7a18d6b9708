package api

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/services/sastingest/internal/ingest"
)

func TestUploadStoresPublishesOnceAndAnswersStatus(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	log := gosecLog(t)

	a := f.mustUpload(t, uploadQuery, log)
	if a.ID == "" || !strings.HasSuffix(a.StatusURL, "/v1/sarif/"+a.ID) || a.Duplicate {
		t.Fatalf("answer = %+v", a)
	}
	ev, got := f.lastEvent(t)
	if ev.ID() != a.ID || ev.Type() != events.TypeSARIFUploaded {
		t.Errorf("event id %s type %s, want id %s", ev.ID(), ev.Type(), a.ID)
	}
	want := events.SARIFUploaded{
		UploadID: a.ID, Repository: "acme/shop", CommitSHA: "0123456789abcdef0123456789abcdef01234567", Ref: "refs/heads/main",
		Category: "gosec", App: "shop", Namespace: "prod", Version: "1.4.2", Environment: "production",
		Images:       []string{"registry.example/shop@sha256:aaaa"},
		Tools:        []events.Tool{{Name: "gosec", Version: "dev"}},
		ResultsTotal: 12,
		New:          12,
		Object:       events.ObjectLocation{Bucket: ingest.LogsBucket, Name: a.ID},
	}
	opts := cmp.Options{
		cmpopts.IgnoreFields(events.SARIFUploaded{}, "ByTool", "BySeverity", "ByLevel", "ReceivedAt", "Findings", "FindingsTruncated", "NewFindings"),
		cmpopts.IgnoreFields(events.ObjectLocation{}, "Size"),
	}
	if diff := cmp.Diff(want, got, opts); diff != "" {
		t.Errorf("payload (-want +got):\n%s", diff)
	}
	if got.ByLevel.Error+got.ByLevel.Warning+got.ByLevel.Note+got.ByLevel.None != 12 || got.ByLevel.Error == 0 {
		t.Errorf("by_level = %+v", got.ByLevel)
	}
	// Every result is new; the new critical and high ones are listed (gosec
	// names HIGH in its rules' tags).
	if len(got.NewFindings) != got.BySeverity.Critical+got.BySeverity.High || len(got.NewFindings) == 0 {
		t.Errorf("new_findings lists %d, by_severity %+v", len(got.NewFindings), got.BySeverity)
	}
	for _, nf := range got.NewFindings {
		if nf.Severity != "critical" && nf.Severity != "high" {
			t.Errorf("new finding %s of severity %s listed", nf.RuleID, nf.Severity)
		}
	}
	if len(got.ByTool) != 1 || got.ByTool[0].Results != 12 {
		t.Errorf("by_tool = %+v", got.ByTool)
	}

	// The stored object is the log, gzip-compressed.
	zr, err := gzip.NewReader(bytes.NewReader(f.storedLog(t, a.ID)))
	if err != nil {
		t.Fatal(err)
	}
	stored, _ := io.ReadAll(zr)
	if !bytes.Equal(stored, log) {
		t.Errorf("stored log differs from the upload (%d vs %d bytes)", len(stored), len(log))
	}

	// Posting the same log again (even uncompressed) gives the same id and no second event.
	code, again, _ := f.upload(t, uploadQuery, log, false)
	if code != http.StatusAccepted || again.ID != a.ID || !again.Duplicate {
		t.Errorf("re-post: %d %+v, want 202 with id %s, duplicate", code, again, a.ID)
	}
	if n := f.eventsStored(t); n != 1 {
		t.Errorf("events stored = %d, want 1", n)
	}

	// Status.
	code, b, _ := do(t, http.MethodGet, a.StatusURL, nil, map[string]string{"Authorization": "Bearer " + anyToken})
	var st ingest.Status
	if err := json.Unmarshal(b, &st); err != nil || code != http.StatusOK {
		t.Fatalf("status: %d %s", code, b)
	}
	if st.State != ingest.StateComplete || st.Summary.ResultsTotal != 12 || st.Summary.UploadID != a.ID {
		t.Errorf("status = %+v", st)
	}
	if code, _, _ := do(t, http.MethodGet, a.StatusURL, nil, nil); code != http.StatusUnauthorized {
		t.Errorf("status without a token: %d, want 401", code)
	}
	if code, _, _ := do(t, http.MethodGet, f.url+"/v1/sarif/"+strings.Repeat("0", 40), nil, map[string]string{"Authorization": "Bearer " + anyToken}); code != http.StatusNotFound {
		t.Errorf("status of an unknown id: %d, want 404", code)
	}
	if code, _, _ := do(t, http.MethodGet, f.url+"/v1/sarif/nope", nil, map[string]string{"Authorization": "Bearer " + anyToken}); code != http.StatusBadRequest {
		t.Errorf("status of an id that cannot be one: %d, want 400", code)
	}
}

// sarifDoc builds a log whose results are given as (rule, file, snippet, score).
func sarifDoc(results ...[4]string) []byte {
	type res struct {
		RuleID    string `json:"ruleId"`
		Locations []any  `json:"locations"`
	}
	rules := map[string]string{}
	var rs []res
	for _, r := range results {
		rules[r[0]] = r[3]
		rs = append(rs, res{RuleID: r[0], Locations: []any{map[string]any{"physicalLocation": map[string]any{
			"artifactLocation": map[string]any{"uri": r[1]},
			"region":           map[string]any{"startLine": 1, "snippet": map[string]any{"text": r[2]}},
		}}}})
	}
	var ruleList []any
	for id, score := range rules {
		ruleList = append(ruleList, map[string]any{"id": id, "properties": map[string]any{"security-severity": score, "tags": []string{"external/cwe/cwe-089"}}})
	}
	doc := map[string]any{"version": "2.1.0", "runs": []any{map[string]any{
		"tool":    map[string]any{"driver": map[string]any{"name": "CodeQL", "version": "2.19.3", "rules": ruleList}},
		"results": rs,
	}}}
	b, _ := json.Marshal(doc)
	return b
}

func TestUploadDeltaAgainstPreviousUpload(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	q := "?repository=acme/api&ref=refs/heads/main&category=codeql"
	first := sarifDoc(
		[4]string{"sql", "a.go", "db.Query(a)", "9.8"},
		[4]string{"sql", "b.go", "db.Query(b)", "9.8"},
		[4]string{"xss", "c.go", "w.Write(c)", "6.1"},
	)
	f.mustUpload(t, q, first)
	_, p1 := f.lastEvent(t)
	if p1.New != 3 || p1.Fixed != 0 || p1.Unchanged != 0 || len(p1.NewFindings) != 2 {
		t.Errorf("first upload: new %d fixed %d unchanged %d new_findings %d, want 3 0 0 2", p1.New, p1.Fixed, p1.Unchanged, len(p1.NewFindings))
	}
	second := sarifDoc(
		[4]string{"sql", "a.go", "db.Query(a)", "9.8"},
		[4]string{"xss", "c.go", "w.Write(c)", "6.1"},
		[4]string{"cmd", "d.go", "exec.Command(d)", "8.0"},
		[4]string{"low", "e.go", "x", "2.0"},
	)
	a2 := f.mustUpload(t, q, second)
	_, p2 := f.lastEvent(t)
	if p2.UploadID != a2.ID || p2.New != 2 || p2.Fixed != 1 || p2.Unchanged != 2 {
		t.Errorf("second upload: new %d fixed %d unchanged %d, want 2 1 2", p2.New, p2.Fixed, p2.Unchanged)
	}
	wantNew := []events.Finding{{Tool: "CodeQL", RuleID: "cmd", Severity: "high", Level: "warning", CWEs: []string{"CWE-89"}, File: "d.go", Line: 1}}
	if diff := cmp.Diff(wantNew, p2.NewFindings, cmpopts.IgnoreFields(events.Finding{}, "Fingerprint")); diff != "" {
		t.Errorf("new findings (-want +got):\n%s", diff)
	}
	wantSev := events.SeverityCounts{Critical: 1, High: 1, Medium: 1, Low: 1}
	if diff := cmp.Diff(wantSev, p2.BySeverity); diff != "" {
		t.Errorf("by severity (-want +got):\n%s", diff)
	}
	if len(p2.Findings) != 3 || p2.Findings[0].Severity != "critical" {
		t.Errorf("findings = %+v, want critical, high, medium", p2.Findings)
	}
	// Another ref has its own baseline.
	f.mustUpload(t, "?repository=acme/api&ref=refs/heads/dev&category=codeql", second)
	_, p3 := f.lastEvent(t)
	if p3.New != 4 || p3.Fixed != 0 {
		t.Errorf("other ref: new %d fixed %d, want 4 0", p3.New, p3.Fixed)
	}
}

// A malformed field inside a result does not reject the log: the result
// counts and the anomaly is in the upload's status.
func TestUploadReportsAnomalies(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	log := []byte(`{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"MSVC"}},"results":[
		{"ruleId":"C6001","level":"warning","locations":[{"physicalLocation":{"artifactLocation":{"uri":"a.cpp"},"region":{"startLine":4,"startColumn":18446744073709551615}}}]},
		{"ruleId":"S1","properties":{"tags":[{"not":"a string"}]}}]}]}`)
	a := f.mustUpload(t, "?repository=acme/native", log)
	st, err := f.pipeline.Get(t.Context(), a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if st.Summary.ResultsTotal != 2 || st.Summary.Anomalies != 2 {
		t.Errorf("results %d anomalies %d, want 2 and 2", st.Summary.ResultsTotal, st.Summary.Anomalies)
	}
	var paths []string
	for _, an := range st.Anomalies {
		paths = append(paths, an.Path)
	}
	want := []string{"$.runs[0].results[0].locations[0].physicalLocation.region.startColumn", "$.runs[0].results[1].properties.tags[0]"}
	if diff := cmp.Diff(want, paths); diff != "" {
		t.Errorf("anomaly paths (-want +got):\n%s", diff)
	}
}
