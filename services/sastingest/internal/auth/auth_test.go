package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestTokensAuthorize(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens")
	writeFile(t, path, "# CI tokens\nany-repo\norg-token  acme/*,other/one # comment\n\n")
	toks, err := LoadTokens(path)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, token, repo string
		want              error
	}{
		{"a token without patterns may upload anywhere", "any-repo", "x/y", nil},
		{"a pattern matches the owner's repositories", "org-token", "acme/api", nil},
		{"an exact pattern matches", "org-token", "other/one", nil},
		{"another repository is forbidden", "org-token", "other/two", ErrForbiddenRepo},
		{"an unknown token is refused", "nope", "acme/api", ErrBadToken},
		{"a prefix of a token is refused", "org-toke", "acme/api", ErrBadToken},
		{"no token", "", "acme/api", ErrNoToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := toks.Authorize(tt.token, tt.repo); !errors.Is(got, tt.want) {
				t.Errorf("Authorize = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestTokensReloadOnChange(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens")
	writeFile(t, path, "old\n")
	toks, err := LoadTokens(path)
	if err != nil {
		t.Fatal(err)
	}
	clock := time.Unix(1000, 0)
	toks.file.now = func() time.Time { return clock }
	if err := toks.Authorize("old", "a/b"); err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, "new-token-longer\n")
	clock = clock.Add(2 * time.Second)
	if err := toks.Authorize("old", "a/b"); !errors.Is(err, ErrBadToken) {
		t.Errorf("old token after rotation: %v, want ErrBadToken", err)
	}
	if err := toks.Authorize("new-token-longer", "a/b"); err != nil {
		t.Errorf("new token after rotation: %v", err)
	}
	// A broken file keeps the last good tokens.
	writeFile(t, path, "a b c d\n")
	clock = clock.Add(2 * time.Second)
	if err := toks.Authorize("new-token-longer", "a/b"); err != nil {
		t.Errorf("token after a broken rewrite: %v", err)
	}
}

func TestBearerToken(t *testing.T) {
	for h, want := range map[string]string{"Bearer abc": "abc", "token abc": "abc", "Basic abc": "", "abc": "", "": ""} {
		if got := BearerToken(h); got != want {
			t.Errorf("BearerToken(%q) = %q, want %q", h, got, want)
		}
	}
}

func verify(t *testing.T, s *Secrets, provider string, h http.Header, body string, now time.Time) (Delivery, error) {
	t.Helper()
	v, err := s.Begin(provider, h, now)
	if err != nil {
		return Delivery{}, err
	}
	_, _ = io.Copy(v, strings.NewReader(body))
	return v.Verify()
}

func TestWebhookSignatures(t *testing.T) {
	key := []byte("standard-key-bytes")
	path := filepath.Join(t.TempDir(), "secrets")
	writeFile(t, path, "github gh-secret\ngitlab whsec_"+base64.StdEncoding.EncodeToString(key)+"\n")
	s, err := LoadSecrets(path)
	if err != nil {
		t.Fatal(err)
	}
	body := `{"version":"2.1.0","runs":[]}`
	now := time.Unix(1_700_000_000, 0)
	ghSig := func(secret, body string) string {
		m := hmac.New(sha256.New, []byte(secret))
		m.Write([]byte(body))
		return "sha256=" + hex.EncodeToString(m.Sum(nil))
	}
	swSig := func(id string, ts time.Time, body string) string {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(id + "." + strconv.FormatInt(ts.Unix(), 10) + "." + body))
		return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
	}
	sw := func(id string, ts time.Time, sig string) http.Header {
		return http.Header{"Webhook-Id": {id}, "Webhook-Timestamp": {strconv.FormatInt(ts.Unix(), 10)}, "Webhook-Signature": {sig}}
	}
	tests := []struct {
		name     string
		provider string
		h        http.Header
		body     string
		wantID   string
		wantErr  error
	}{
		{"GitHub signature over the raw body", "github", http.Header{"X-Hub-Signature-256": {ghSig("gh-secret", body)}, "X-Github-Delivery": {"d-1"}}, body, "d-1", nil},
		{"GitHub signature with the wrong secret", "github", http.Header{"X-Hub-Signature-256": {ghSig("other", body)}}, body, "", ErrBadSignature},
		{"GitHub signature over another body", "github", http.Header{"X-Hub-Signature-256": {ghSig("gh-secret", body)}}, body + " ", "", ErrBadSignature},
		{"no signature", "github", http.Header{}, body, "", ErrNoSignature},
		{"unknown provider", "bitbucket", http.Header{"X-Hub-Signature-256": {ghSig("gh-secret", body)}}, body, "", ErrUnknownProvider},
		{"Standard Webhooks", "gitlab", sw("msg_1", now, swSig("msg_1", now, body)), body, "msg_1", nil},
		{"Standard Webhooks with a rotated second signature", "gitlab", sw("msg_2", now, "v1,AAAA "+swSig("msg_2", now, body)), body, "msg_2", nil},
		{"Standard Webhooks 4 minutes old", "gitlab", sw("msg_3", now.Add(-4*time.Minute), swSig("msg_3", now.Add(-4*time.Minute), body)), body, "msg_3", nil},
		{"Standard Webhooks 6 minutes old", "gitlab", sw("msg_4", now.Add(-6*time.Minute), swSig("msg_4", now.Add(-6*time.Minute), body)), body, "", ErrStale},
		{"Standard Webhooks 6 minutes ahead", "gitlab", sw("msg_5", now.Add(6*time.Minute), swSig("msg_5", now.Add(6*time.Minute), body)), body, "", ErrStale},
		{"Standard Webhooks signed for another id", "gitlab", sw("msg_6", now, swSig("msg_x", now, body)), body, "", ErrBadSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := verify(t, s, tt.provider, tt.h, tt.body, now)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if d.ID != tt.wantID {
				t.Errorf("delivery id = %q, want %q", d.ID, tt.wantID)
			}
		})
	}
}
