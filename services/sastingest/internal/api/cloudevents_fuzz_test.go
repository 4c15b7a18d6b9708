package api

import (
	"bytes"
	"encoding/json"
	"mime"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	cloudevents "github.com/cloudevents/sdk-go/v2"
)

// FuzzCloudEvents posts arbitrary CloudEvents to /v1/events, in binary mode
// (ce-* headers, the body is the log) and structured mode (the body is the
// event), through the server's own handler with a real JetStream behind it.
// Whatever comes in, the answer is a 202 or a 4xx problem+json whose status
// is the response's — never a panic, never a 5xx with NATS up — and a 202
// that is not a duplicate has published exactly the upload it names, for a
// repository the token may write.
func FuzzCloudEvents(f *testing.F) {
	fx := newFixture(f, fixtureOpts{maxBody: 1 << 20, maxUncompressed: 4 << 20})
	mux := http.NewServeMux()
	fx.api.Register(mux)

	log := gosecLog(f)
	small := []byte(`{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"t","rules":[{"id":"R1"}]}},"results":[{"ruleId":"R1","message":{"text":"m"},"locations":[{"physicalLocation":{"artifactLocation":{"uri":"a.go"},"region":{"startLine":1}}}]}]}]}`)
	ev := cloudevents.NewEvent()
	ev.SetID("seed-1")
	ev.SetSource("https://ci.example/p/1")
	ev.SetType("com.example.ci.sarif")
	ev.SetExtension(ExtRepository, "acme/shop")
	ev.SetExtension(ExtApp, "shop")
	ev.SetExtension(ExtImages, "registry.example/shop@sha256:bbbb")
	_ = ev.SetData("application/sarif+json", small)
	structured, err := ev.MarshalJSON()
	if err != nil {
		f.Fatal(err)
	}
	// structured, specversion, id, source, type, content type, repository, app, images, body
	f.Add(false, "1.0", "b-1", "/ci", "com.example.ci.sarif", "application/sarif+json", "acme/shop", "shop", "registry.example/shop@sha256:bbbb", small)
	f.Add(false, "1.0", "b-2", "/ci", "t", "application/json", "acme/shop", "shop", " , ,x", log)
	f.Add(false, "0.3", "b-3", "/ci", "t", "text/plain", "other/repo", "", "", []byte("not sarif"))
	f.Add(false, "1.0", "", "", "", "", "", "", "", []byte{})
	f.Add(false, "1.0", "b-4", "%zz", "t", "application/sarif+json", "acme/"+strings.Repeat("x", 300), "shop", "", small)
	f.Add(true, "", "", "", "", "application/cloudevents+json", "", "", "", structured)
	f.Add(true, "", "", "", "", "application/cloudevents+json; charset=utf-8", "", "", "", bytes.Replace(structured, []byte("acme/shop"), []byte("evil/shop"), 1))
	f.Add(true, "", "", "", "", "application/cloudevents+json", "", "", "", []byte(`{"specversion":"1.0","id":"1","source":"/s","type":"t","datacontenttype":"application/json","data_base64":"e30=","repository":"acme/x"}`))
	f.Add(true, "", "", "", "", "application/cloudevents+json", "", "", "", []byte(`{"specversion":"1.0","id":"1","source":"/s","type":"t","data":"\u0000\ud800"}`))
	f.Add(true, "", "", "", "", "application/cloudevents-batch+json", "", "", "", []byte(`[`+string(structured)+`]`))

	f.Fuzz(func(t *testing.T, structuredMode bool, sv, id, source, typ, ct, repo, app, images string, body []byte) {
		req := httptest.NewRequestWithContext(t.Context(), http.MethodPost, "/v1/events", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+goodToken)
		set := func(k, v string) {
			if v != "" {
				req.Header[k] = []string{v} // as sent: no canonicalising or trimming of the value
			}
		}
		set("Content-Type", ct)
		if !structuredMode {
			set("Ce-Specversion", sv)
			set("Ce-Id", id)
			set("Ce-Source", source)
			set("Ce-Type", typ)
			set("Ce-Repository", repo)
			set("Ce-App", app)
			set("Ce-Images", images)
		}
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		code, out := rec.Code, rec.Body.Bytes()
		if code == http.StatusAccepted {
			var a Accepted
			if err := json.Unmarshal(out, &a); err != nil || a.ID == "" {
				t.Fatalf("202 with body %q: %v", out, err)
			}
			if a.Duplicate {
				return
			}
			_, p := fx.lastEvent(t)
			if p.UploadID != a.ID {
				t.Fatalf("202 for upload %s, but the last event is for %s", a.ID, p.UploadID)
			}
			if !strings.HasPrefix(p.Repository, "acme/") {
				t.Fatalf("published an upload for %q with a token for acme/*", p.Repository)
			}
			return
		}
		if code < 400 || code >= 500 {
			t.Fatalf("status %d (%q): want 202 or a 4xx", code, out)
		}
		mt, _, _ := mime.ParseMediaType(rec.Header().Get("Content-Type"))
		var p Problem
		if mt != "application/problem+json" || json.Unmarshal(out, &p) != nil || p.Status != code || p.Type == "" {
			t.Fatalf("status %d answered %q (%s), want problem+json with the same status", code, out, rec.Header().Get("Content-Type"))
		}
	})
}
