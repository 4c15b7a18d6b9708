package api

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"
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

func TestWebhooks(t *testing.T) {
	now := time.Now()
	f := newFixture(t, fixtureOpts{now: func() time.Time { return now }})
	log := gosecLog(t)
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
		qq := q + "&version=" + strconv.Itoa(version)
		code, b, _ := do(t, http.MethodPost, url+"github"+qq, bytes.NewReader(gz), gh("good-"+strconv.Itoa(version), githubSignature("gh-secret", gz)))
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
	if err := replay.Claim(t.Context(), "github", "d-1"); !errors.Is(err, auth.ErrReplayed) {
		t.Errorf("claim after restart: %v, want ErrReplayed", err)
	}
}
