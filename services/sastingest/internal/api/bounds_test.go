package api

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// TestLongIdentifiersRefusedThenGoodUpload sends the identifiers that
// took the service off NATS for good (issue #18, finding 2): a 5,000-byte
// upload id made the client send a control line over the server's limit,
// the server closed the connection, and every later upload answered 503.
// Each is refused with a 400 naming the reason, and a good upload
// still succeeds against the same real JetStream.
func TestLongIdentifiersRefusedThenGoodUpload(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	long := strings.Repeat("a", 5000)
	read := map[string]string{"Authorization": "Bearer " + anyToken}
	tests := []struct {
		name, method, path string
		wantDetail         string
	}{
		{"a 5,000-byte upload id", http.MethodGet, "/v1/sarif/" + long, "40 lowercase hexadecimal"},
		{"a 5,000-byte GitHub upload id", http.MethodGet, "/repos/acme/shop/code-scanning/sarifs/" + long, "36 lowercase hexadecimal"},
		{"a 5,000-byte namespace", http.MethodPost, "/v1/sarif?repository=acme/shop&namespace=" + long, "namespace"},
		{"a 5,000-byte app", http.MethodPost, "/v1/sarif?repository=acme/shop&app=" + long, "app"},
		{"a 5,000-byte category", http.MethodPost, "/v1/sarif?repository=acme/shop&category=" + long, "over the limit of 255"},
		{"a 5,000-byte repository", http.MethodPost, "/v1/sarif?repository=acme/" + long, "over the limit of 255"},
		{"a version with a control character", http.MethodPost, "/v1/sarif?repository=acme/shop&version=1%0A2", "version"},
		{"a namespace that is not a Kubernetes name", http.MethodPost, "/v1/sarif?repository=acme/shop&namespace=Prod_1", "namespace"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := read
			var body *strings.Reader
			if tt.method == http.MethodPost {
				h = sarifHeaders(goodToken)
				body = strings.NewReader(string(gosecLog(t)))
			}
			var code int
			var b []byte
			var hdr http.Header
			if body != nil {
				code, b, hdr = do(t, tt.method, f.url+tt.path, body, h)
			} else {
				code, b, hdr = do(t, tt.method, f.url+tt.path, nil, h)
			}
			if code != http.StatusBadRequest || hdr.Get("Content-Type") != "application/problem+json" {
				t.Fatalf("status %d (%s) %s, want 400 problem+json", code, hdr.Get("Content-Type"), b)
			}
			var p Problem
			if err := json.Unmarshal(b, &p); err != nil || !strings.Contains(p.Detail, tt.wantDetail) || len(p.Detail) > 1000 {
				t.Errorf("problem %.300s: want a short reason that says %q", b, tt.wantDetail)
			}
			// Nor is the long path echoed back whole as the instance.
			if len(b) > 2000 || hdr.Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("problem of %d bytes (nosniff %q): want the request's path cut short", len(b), hdr.Get("X-Content-Type-Options"))
			}
			// The connection to NATS is still there: a good upload passes.
			a := f.mustUpload(t, uploadQuery, gosecLog(t))
			if code, b, _ := do(t, http.MethodGet, f.url+"/v1/sarif/"+a.ID, nil, read); code != http.StatusOK {
				t.Fatalf("status of the good upload: %d %s", code, b)
			}
		})
	}
	if !f.client.Conn().IsConnected() {
		t.Error("the NATS connection was closed")
	}
}

// TestHugeRuleIDIsCutNotRefused uploads a log whose rule id is over 1 MiB:
// the event carrying it was over NATS's max payload and the upload was
// answered 503 "retry later" forever. The rule id is cut, an anomaly
// says so, and the event is published.
func TestHugeRuleIDIsCutNotRefused(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	doc := sarifDoc([4]string{strings.Repeat("r", 1<<20+1), "a.go", "x", "9.5"})
	before := f.eventsStored(t)
	code, a, p := f.upload(t, uploadQuery, doc, true)
	if code != http.StatusAccepted {
		t.Fatalf("status %d (%+v), want 202", code, p)
	}
	if got := f.eventsStored(t); got != before+1 {
		t.Fatalf("%d events stored, want %d", got, before+1)
	}
	_, ev := f.lastEvent(t)
	if ev.UploadID != a.ID || len(ev.Findings) != 1 || len(ev.Findings[0].RuleID) != 256 || ev.Anomalies == 0 {
		t.Errorf("event: upload %s, %d findings, anomalies %d", ev.UploadID, len(ev.Findings), ev.Anomalies)
	}
}
