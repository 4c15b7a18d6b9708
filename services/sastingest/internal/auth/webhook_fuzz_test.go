package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// FuzzWebhookVerify signs arbitrary bodies for both schemes and checks a
// verify succeeds exactly when the signature is the body's: the body
// streamed in any chunks verifies; the body with one byte changed, or a
// signature header that is not the right MAC, never does.
func FuzzWebhookVerify(f *testing.F) {
	dir := f.TempDir()
	key := []byte("fuzz-secret")
	path := filepath.Join(dir, "secrets")
	if err := os.WriteFile(path, []byte("gh fuzz-secret\nsw whsec_"+base64.StdEncoding.EncodeToString(key)+"\n"), 0o600); err != nil {
		f.Fatal(err)
	}
	s, err := LoadSecrets(path)
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte(`{"version":"2.1.0","runs":[]}`), "", uint8(3), uint16(0), false)
	f.Add([]byte{}, "sha256=00", uint8(1), uint16(0), true)
	f.Add([]byte("x"), "v1,AAAA v2,x", uint8(0), uint16(5), true)
	now := time.Unix(1_800_000_000, 0)
	f.Fuzz(func(t *testing.T, body []byte, forged string, chunk uint8, flip uint16, standard bool) {
		h := http.Header{}
		provider, ts, id := "gh", strconv.FormatInt(now.Unix(), 10), "d-1"
		mac := hmac.New(sha256.New, key)
		if standard {
			provider = "sw"
			h.Set("Webhook-Id", id)
			h.Set("Webhook-Timestamp", ts)
			mac.Write([]byte(id + "." + ts + "."))
		} else {
			h.Set("X-GitHub-Delivery", id)
		}
		mac.Write(body)
		sum := mac.Sum(nil)
		sign := func(sig string) {
			if standard {
				h.Set("Webhook-Signature", sig)
			} else {
				h.Set("X-Hub-Signature-256", sig)
			}
		}
		good := "sha256=" + hex.EncodeToString(sum)
		if standard {
			good = "v1," + base64.StdEncoding.EncodeToString(sum)
		}
		verify := func(b []byte) error {
			v, err := s.Begin(provider, h, now)
			if err != nil {
				return err
			}
			n := int(chunk%16) + 1
			for len(b) > 0 {
				k := min(n, len(b))
				_, _ = v.Write(b[:k])
				b = b[k:]
			}
			d, err := v.Verify()
			if err == nil && d.ID != id {
				t.Fatalf("delivery id %q, want %q", d.ID, id)
			}
			return err
		}
		sign(good)
		if err := verify(body); err != nil {
			t.Fatalf("the right signature failed: %v", err)
		}
		if len(body) > 0 {
			mod := append([]byte(nil), body...)
			mod[int(flip)%len(mod)] ^= 1 + byte(flip>>8)%255
			if verify(mod) == nil {
				t.Fatal("a modified body verified")
			}
		}
		if verify(append(append([]byte(nil), body...), 0)) == nil {
			t.Fatal("a body with a byte appended verified")
		}
		sign(forged)
		err := verify(body)
		if err == nil && forged != good && !containsSig(forged, sum, standard) {
			t.Fatalf("signature header %q verified, but it is not the body's MAC", forged)
		}
	})
}

// containsSig reports whether a forged header happens to carry the right
// MAC (a Standard Webhooks header may list several).
func containsSig(hdr string, sum []byte, standard bool) bool {
	if !standard {
		b, err := hex.DecodeString(hdr[min(len(hdr), len("sha256=")):])
		return err == nil && hmac.Equal(b, sum)
	}
	return len(hdr) > 0 && strings.Contains(hdr, base64.StdEncoding.EncodeToString(sum))
}
