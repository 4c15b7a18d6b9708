package api

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	cloudevents "github.com/cloudevents/sdk-go/v2"
)

// TestMutationClassesOnEveryEndpointThenGoodUpload replays the classes of
// hostile input of issue #18 against each upload endpoint — an over-long
// identifier (finding 2), a forged or missing credential and a signed body
// replayed under a new delivery id (finding 3), an escape-heavy body
// (finding 4), a body over the endpoint's bound (finding 5) — and after
// each one sends a good upload through the same endpoint, which must be
// accepted: no hostile request leaves the service unable to take the next.
func TestMutationClassesOnEveryEndpointThenGoodUpload(t *testing.T) {
	const limit = 4 << 20
	f := newFixture(t, fixtureOpts{maxBody: limit, maxWebhookBody: limit, maxUncompressed: 64 << 20})
	long := strings.Repeat("a", 5000)
	log := gosecLog(t)
	// 2 MiB of \u escapes in a result's message: quadratic before the fix.
	escapes := bytes.Replace(log, []byte(`"text": "`), []byte(`"text": "`+strings.Repeat(`\u0041`, 2<<20/6)), 1)
	over := bytes.Repeat([]byte(" "), limit+1)
	overGitHub := bytes.Repeat([]byte(" "), limit/3*4+64<<10+1) // base64 of gzip: its own bound
	n := 0
	next := func() string { n++; return strconv.Itoa(n) } // a new version: a new upload

	type attempt struct {
		method, path string
		body         []byte
		h            map[string]string
		ev           *cloudevents.Event // /v1/events: sent with the SDK's binding
		token        string
	}
	sarif := func(q string, body []byte, token string) attempt {
		return attempt{method: http.MethodPost, path: "/v1/sarif?repository=acme/shop&version=" + next() + q, body: body, h: sarifHeaders(token)}
	}
	github := func(q string, body []byte, h map[string]string) attempt {
		return attempt{method: http.MethodPost, path: "/repos/acme/shop/code-scanning/sarifs?version=" + next() + q, body: body, h: h}
	}
	commit := func() string { return strings.Repeat("0", 39) + strconv.Itoa(n%10) }
	hook := func(meta map[string]any, delivery, secret string) attempt {
		if meta == nil {
			meta = map[string]any{}
		}
		meta["repository"], meta["version"] = "acme/shop", next()
		body := gzipBytes(t, signedLog(t, log, meta))
		return attempt{method: http.MethodPost, path: "/v1/webhooks/github", body: body, h: map[string]string{
			"Content-Type": "application/sarif+json", "Content-Encoding": "gzip",
			"X-GitHub-Delivery": delivery + next(), "X-Hub-Signature-256": githubSignature(secret, body),
		}}
	}
	event := func(body []byte, token string, set func(*cloudevents.Event)) attempt {
		ev := sarifEvent(t, "ev-"+next(), body)
		ev.SetExtension(ExtAppVersion, strconv.Itoa(n))
		if set != nil {
			set(&ev)
		}
		return attempt{ev: &ev, token: token}
	}
	send := func(t *testing.T, a attempt) (int, []byte) {
		t.Helper()
		if a.ev != nil {
			return postEvent(t, f.url+"/v1/events", *a.ev, false, a.token)
		}
		var body io.Reader
		if a.body != nil {
			body = bytes.NewReader(a.body)
		}
		code, b, _ := do(t, a.method, f.url+a.path, body, a.h)
		return code, b
	}
	ghHeaders := func(token string) map[string]string {
		h := githubHeaders()
		h["Authorization"] = "Bearer " + token
		return h
	}
	replayed := hook(nil, "first-", "gh-secret")
	if code, b := send(t, replayed); code != http.StatusAccepted {
		t.Fatalf("first delivery: %d %s", code, b)
	}
	replayed.h["X-GitHub-Delivery"] = "another-delivery"

	endpoints := []struct {
		name string
		good func() attempt
		bad  []struct {
			class string
			a     attempt
			want  int // 0: any answer but a 5xx
		}
	}{
		{name: "POST /v1/sarif", good: func() attempt { return sarif("", log, goodToken) }},
		{name: "POST …/code-scanning/sarifs", good: func() attempt { return github("", githubRequest(t, log, commit()), githubHeaders()) }},
		{name: "POST /v1/webhooks/github", good: func() attempt { return hook(nil, "good-", "gh-secret") }},
		{name: "POST /v1/events", good: func() attempt { return event(log, goodToken, nil) }},
	}
	type bad = struct {
		class string
		a     attempt
		want  int
	}
	endpoints[0].bad = []bad{
		{"over-long identifier", sarif("&namespace="+long, log, goodToken), http.StatusBadRequest},
		{"over-long upload id", attempt{method: http.MethodGet, path: "/v1/sarif/" + long, h: map[string]string{"Authorization": "Bearer " + anyToken}}, http.StatusBadRequest},
		{"forged credential", sarif("", log, "forged"), http.StatusUnauthorized},
		{"escape-heavy body", sarif("", escapes, goodToken), 0},
		{"body over the bound", sarif("", over, goodToken), http.StatusRequestEntityTooLarge},
	}
	endpoints[1].bad = []bad{
		{"over-long identifier", github("&app="+long, githubRequest(t, log, commit()), githubHeaders()), http.StatusBadRequest},
		{"over-long upload id", attempt{method: http.MethodGet, path: "/repos/acme/shop/code-scanning/sarifs/" + long, h: githubHeaders()}, http.StatusBadRequest},
		{"forged credential", github("", githubRequest(t, log, commit()), ghHeaders("forged")), http.StatusUnauthorized},
		{"escape-heavy body", github("", githubRequest(t, escapes, commit()), githubHeaders()), 0},
		{"body over the bound", github("", append([]byte(`{"sarif":"`), overGitHub...), githubHeaders()), http.StatusRequestEntityTooLarge},
	}
	endpoints[2].bad = []bad{
		{"over-long identifier", hook(map[string]any{"namespace": long}, "long-", "gh-secret"), http.StatusBadRequest},
		{"forged signature", hook(nil, "forged-", "not-the-secret"), http.StatusUnauthorized},
		{"signed body replayed under a new delivery id", replayed, http.StatusConflict},
		{"escape-heavy body", func() attempt {
			body := gzipBytes(t, signedLog(t, escapes, map[string]any{"repository": "acme/shop", "version": next()}))
			return attempt{method: http.MethodPost, path: "/v1/webhooks/github", body: body, h: map[string]string{
				"Content-Type": "application/sarif+json", "Content-Encoding": "gzip",
				"X-GitHub-Delivery": "escapes", "X-Hub-Signature-256": githubSignature("gh-secret", body),
			}}
		}(), 0},
		{"body over the bound", attempt{method: http.MethodPost, path: "/v1/webhooks/github", body: over, h: map[string]string{
			"Content-Type": "application/sarif+json", "X-GitHub-Delivery": "over", "X-Hub-Signature-256": githubSignature("gh-secret", over),
		}}, http.StatusRequestEntityTooLarge},
	}
	endpoints[3].bad = []bad{
		{"over-long identifier", event(log, goodToken, func(ev *cloudevents.Event) { ev.SetExtension(ExtApp, long) }), http.StatusBadRequest},
		{"forged credential", event(log, "forged", nil), http.StatusUnauthorized},
		{"escape-heavy body", event(escapes, goodToken, nil), 0},
		{"body over the bound", event(over, goodToken, nil), http.StatusRequestEntityTooLarge},
	}

	classes := 0
	for _, ep := range endpoints {
		t.Run(ep.name, func(t *testing.T) {
			for _, b := range ep.bad {
				classes++
				code, body := send(t, b.a)
				if (b.want != 0 && code != b.want) || code >= 500 {
					t.Errorf("%s: status %d (%.200s), want %d", b.class, code, body, b.want)
				}
				if b.want >= 400 && !json.Valid(body) {
					t.Errorf("%s: answer is not a problem document: %.200s", b.class, body)
				}
				if code, body := send(t, ep.good()); code != http.StatusAccepted {
					t.Fatalf("after %s: a good upload answered %d %.300s", b.class, code, body)
				}
			}
		})
	}
	if !f.client.Conn().IsConnected() {
		t.Error("the NATS connection was closed")
	}
	t.Logf("%d hostile requests on %d endpoints, each followed by an accepted good upload", classes, len(endpoints))
}
