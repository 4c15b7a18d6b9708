package api

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stateguard/stateguard/services/sastingest/internal/auth"
)

func githubSignature(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// the gitlab secret in the fixture is whsec_base64("standard-key").
func standardSignature(id string, ts time.Time, body []byte) string {
	m := hmac.New(sha256.New, []byte("standard-key"))
	m.Write([]byte(id + "." + strconv.FormatInt(ts.Unix(), 10) + "."))
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// signedLog returns log with the upload metadata in its own property bag,
// where a webhook must put it (MetadataProperty).
func signedLog(t *testing.T, log []byte, meta map[string]any) []byte {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(log, &doc); err != nil {
		t.Fatal(err)
	}
	doc["properties"] = map[string]any{MetadataProperty: meta}
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestWebhooks(t *testing.T) {
	now := time.Now()
	f := newFixture(t, fixtureOpts{now: func() time.Time { return now }})
	log := signedLog(t, gosecLog(t), map[string]any{"repository": "acme/shop", "ref": "refs/heads/main"})
	gz := gzipBytes(t, log)
	url := f.url + "/v1/webhooks/"
	q := "?repository=acme/shop&ref=refs/heads/main"
	gh := func(delivery, sig string) map[string]string {
		return map[string]string{"Content-Type": "application/sarif+json", "Content-Encoding": "gzip", "X-GitHub-Delivery": delivery, "X-Hub-Signature-256": sig}
	}
	sw := func(id string, ts time.Time, sig string) map[string]string {
		return map[string]string{"Content-Type": "application/json", "webhook-id": id, "webhook-timestamp": strconv.FormatInt(ts.Unix(), 10), "webhook-signature": sig}
	}
	version := 0
	goodGitHub := func(t *testing.T) {
		t.Helper()
		version++
		body := gzipBytes(t, signedLog(t, gosecLog(t), map[string]any{"repository": "acme/shop", "version": strconv.Itoa(version)}))
		code, b, _ := do(t, http.MethodPost, url+"github", bytes.NewReader(body), gh("good-"+strconv.Itoa(version), githubSignature("gh-secret", body)))
		if code != http.StatusAccepted {
			t.Fatalf("good signed delivery: %d %s", code, b)
		}
	}

	tests := []struct {
		name     string
		provider string
		body     []byte
		h        map[string]string
		want     int
	}{
		{"GitHub signature over the gzip bytes as sent", "github", gz, gh("d-1", githubSignature("gh-secret", gz)), http.StatusAccepted},
		{"the same delivery replayed", "github", gz, gh("d-1", githubSignature("gh-secret", gz)), http.StatusConflict},
		{"wrong HMAC", "github", gz, gh("d-2", githubSignature("wrong-secret", gz)), http.StatusUnauthorized},
		{"a signature of the inflated body", "github", gz, gh("d-3", githubSignature("gh-secret", log)), http.StatusUnauthorized},
		{"no signature", "github", gz, map[string]string{"Content-Type": "application/json", "X-GitHub-Delivery": "d-4"}, http.StatusUnauthorized},
		{"an unknown provider", "bitbucket", gz, gh("d-5", githubSignature("gh-secret", gz)), http.StatusUnauthorized},
		{"Standard Webhooks", "gitlab", log, sw("msg-1", now, standardSignature("msg-1", now, log)), http.StatusAccepted},
		{"Standard Webhooks replayed", "gitlab", log, sw("msg-1", now, standardSignature("msg-1", now, log)), http.StatusConflict},
		{"Standard Webhooks 10 minutes old", "gitlab", log, sw("msg-2", now.Add(-10*time.Minute), standardSignature("msg-2", now.Add(-10*time.Minute), log)), http.StatusUnauthorized},
		{"Standard Webhooks wrong HMAC", "gitlab", log, sw("msg-3", now, standardSignature("msg-other", now, log)), http.StatusUnauthorized},
		{"a signed body that is not SARIF", "github", []byte(`{"zen":"hi"}`), map[string]string{"Content-Type": "application/json", "X-GitHub-Delivery": "d-6", "X-Hub-Signature-256": githubSignature("gh-secret", []byte(`{"zen":"hi"}`))}, http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, b, _ := do(t, http.MethodPost, url+tt.provider+q, bytes.NewReader(tt.body), tt.h)
			if code != tt.want {
				t.Fatalf("status %d (%s), want %d", code, b, tt.want)
			}
			goodGitHub(t)
		})
	}

	// The replay defence survives a restart: a new server on the same
	// JetStream refuses a delivery id the old one accepted.
	replay, err := auth.NewReplay(t.Context(), f.client.JetStream(), time.Hour, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := replay.Claim(t.Context(), "github", "d-1", []byte("other content")); !errors.Is(err, auth.ErrReplayed) {
		t.Errorf("claim after restart: %v, want ErrReplayed", err)
	}
}

// TestWebhookMetadataOnlyFromTheSignedBody replays the attack of issue
// #18, finding 3: a captured signed clean log re-sent under a new delivery
// id with another version in the query published a new upload that marked
// that version clean. The query is not signed: it may only repeat the
// signed values.
func TestWebhookMetadataOnlyFromTheSignedBody(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	url := f.url + "/v1/webhooks/github"
	gh := func(delivery string, body []byte) map[string]string {
		return map[string]string{"Content-Type": "application/sarif+json", "X-GitHub-Delivery": delivery, "X-Hub-Signature-256": githubSignature("gh-secret", body)}
	}
	clean := signedLog(t, gosecLog(t), map[string]any{"repository": "acme/shop", "app": "shop", "namespace": "prod", "version": "1.0.0"})
	if code, b, _ := do(t, http.MethodPost, url+"?version=1.0.0&app=shop", bytes.NewReader(clean), gh("capture-1", clean)); code != http.StatusAccepted {
		t.Fatalf("signed delivery whose query repeats the signed values: %d %s", code, b)
	}
	if _, ev := f.lastEvent(t); ev.Version != "1.0.0" || ev.App != "shop" || ev.Namespace != "prod" {
		t.Fatalf("event joined to app %q namespace %q version %q, want the signed shop/prod/1.0.0", ev.App, ev.Namespace, ev.Version)
	}
	stored := f.eventsStored(t)

	unsigned := gosecLog(t) // signed, but with no metadata inside
	tests := []struct {
		name     string
		query    string
		body     []byte
		delivery string
		want     int
	}{
		{"the captured log under a new delivery id with another version in the query", "?version=2.0.0-vulnerable", clean, "capture-2", http.StatusBadRequest},
		{"the captured log under a new delivery id with another app in the query", "?app=other", clean, "capture-3", http.StatusBadRequest},
		{"a signed log without metadata, its metadata only in the query", "?repository=acme/shop&version=2.0.0", unsigned, "unsigned-1", http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, b, _ := do(t, http.MethodPost, url+tt.query, bytes.NewReader(tt.body), gh(tt.delivery, tt.body))
			if code != tt.want {
				t.Fatalf("status %d (%s), want %d", code, b, tt.want)
			}
			var p Problem
			if err := json.Unmarshal(b, &p); err != nil || p.Detail == "" {
				t.Errorf("problem %s: want a reason", b)
			}
			if got := f.eventsStored(t); got != stored {
				t.Errorf("%d events stored, want %d: the unsigned metadata published an upload", got, stored)
			}
		})
	}
}

// TestWebhookSignedBodyReplayedUnderNewDeliveryID sends one signed body
// under a second delivery id: the signature does not cover the delivery
// id, so the delivery id alone cannot tell a replay.
func TestWebhookSignedBodyReplayedUnderNewDeliveryID(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	url := f.url + "/v1/webhooks/github"
	body := gzipBytes(t, signedLog(t, gosecLog(t), map[string]any{"repository": "acme/shop", "version": "1.0.0"}))
	h := func(delivery string) map[string]string {
		return map[string]string{"Content-Type": "application/sarif+json", "Content-Encoding": "gzip", "X-GitHub-Delivery": delivery, "X-Hub-Signature-256": githubSignature("gh-secret", body)}
	}
	if code, b, _ := do(t, http.MethodPost, url, bytes.NewReader(body), h("first")); code != http.StatusAccepted {
		t.Fatalf("first delivery: %d %s", code, b)
	}
	if code, b, _ := do(t, http.MethodPost, url, bytes.NewReader(body), h("second")); code != http.StatusConflict {
		t.Fatalf("the same signed body under a new delivery id: %d %s, want 409", code, b)
	}
	// A new body under a new delivery id still passes.
	other := gzipBytes(t, signedLog(t, gosecLog(t), map[string]any{"repository": "acme/shop", "version": "1.0.1"}))
	hh := h("third")
	hh["X-Hub-Signature-256"] = githubSignature("gh-secret", other)
	if code, b, _ := do(t, http.MethodPost, url, bytes.NewReader(other), hh); code != http.StatusAccepted {
		t.Fatalf("a new signed body: %d %s", code, b)
	}
}

// watchedBody is a request body of n bytes that counts what the server
// read and, at each read, records the largest total size of the files in
// dir (the spool).
type watchedBody struct {
	n         int64
	dir       string
	sent      atomic.Int64 // read by the test while the transport may still write
	peakSpool atomic.Int64
}

func (w *watchedBody) Read(p []byte) (int, error) {
	sent := w.sent.Load()
	if sent >= w.n {
		return 0, io.EOF
	}
	if sent%(256<<10) < int64(len(p)) {
		w.peakSpool.Store(max(w.peakSpool.Load(), dirSize(w.dir)))
	}
	k := min(int64(len(p)), w.n-sent)
	for i := range p[:k] {
		p[i] = 'x'
	}
	w.sent.Add(k)
	return int(k), nil
}

func dirSize(dir string) int64 {
	var n int64
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if fi, err := e.Info(); err == nil {
			n += fi.Size()
		}
	}
	return n
}

// TestWebhookBodyBoundedAndSpoolDiscarded sends unsigned-looking bodies
// with a bad signature (issue #18, finding 5: 213–267 MB of a 300 MB body
// were spooled before the 401, up to 1 GiB per request): the read stops at
// the webhook bound, the spool never holds more than the bound, and it is
// gone after the answer.
func TestWebhookBodyBoundedAndSpoolDiscarded(t *testing.T) {
	const bound = 1 << 20
	f := newFixture(t, fixtureOpts{maxWebhookBody: bound})
	bad := map[string]string{"Content-Type": "application/sarif+json", "X-GitHub-Delivery": "d-big", "X-Hub-Signature-256": githubSignature("wrong", []byte("x"))}
	for _, tt := range []struct {
		name string
		size int64
		want int
	}{
		{"a bad signature over a body past the bound", 16 << 20, http.StatusRequestEntityTooLarge},
		{"a bad signature over a body within the bound", bound / 2, http.StatusUnauthorized},
	} {
		t.Run(tt.name, func(t *testing.T) {
			body := &watchedBody{n: tt.size, dir: f.spoolDir}
			req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, f.url+"/v1/webhooks/github", body)
			if err != nil {
				t.Fatal(err)
			}
			req.ContentLength = -1 // chunked: the server cannot refuse it from its length
			for k, v := range bad {
				req.Header.Set(k, v)
			}
			before := f.read.Load()
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Errorf("status %d, want %d", resp.StatusCode, tt.want)
			}
			// Counted where the server reads its connection, not where the
			// client writes (loopback's socket buffers grow to 32 MiB under
			// load): net/http's read ahead and its discard of an unread
			// body are a few hundred KiB; the old 1 GiB bound read all 16 MiB.
			if read := f.read.Load() - before; read > bound+1<<20 {
				t.Errorf("the server read %d bytes of a %d-byte bound", read, bound)
			}
			if peak := body.peakSpool.Load(); peak > bound {
				t.Errorf("the spool held %d bytes, over the bound of %d", peak, bound)
			}
			if n := dirSize(f.spoolDir); n != 0 {
				t.Errorf("%d bytes left in the spool", n)
			}
			if entries, _ := os.ReadDir(f.spoolDir); len(entries) != 0 {
				t.Errorf("%d files left in the spool", len(entries))
			}
		})
	}
}
