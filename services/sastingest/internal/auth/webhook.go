package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Errors of signature checks.
var (
	ErrUnknownProvider = errors.New("no secret for this provider")
	ErrNoSignature     = errors.New("no signature")
	ErrBadSignature    = errors.New("signature does not match")
	ErrStale           = errors.New("webhook-timestamp outside the tolerance")
)

// Tolerance is how far a Standard Webhooks timestamp may be from now.
const Tolerance = 5 * time.Minute

// Secrets are the webhook secrets of a secrets file: "provider secret" per
// line; a provider may have several lines (rotation). A Standard Webhooks
// secret written as whsec_<base64> is used base64-decoded.
type Secrets struct {
	file *reloading[map[string][][]byte]
}

// LoadSecrets reads a webhook secrets file; it is re-read when it changes.
func LoadSecrets(path string) (*Secrets, error) {
	r, err := newReloading(path, parseSecrets)
	if err != nil {
		return nil, err
	}
	return &Secrets{file: r}, nil
}

func parseSecrets(lines []line) (map[string][][]byte, error) {
	out := map[string][][]byte{}
	for _, l := range lines {
		if len(l.fields) != 2 {
			return nil, fmt.Errorf("line %d: want \"provider secret\"", l.no)
		}
		key := []byte(l.fields[1])
		if s, ok := strings.CutPrefix(l.fields[1], "whsec_"); ok {
			k, err := base64.StdEncoding.DecodeString(s)
			if err != nil {
				return nil, fmt.Errorf("line %d: whsec_ secret is not base64", l.no)
			}
			key = k
		}
		out[l.fields[0]] = append(out[l.fields[0]], key)
	}
	return out, nil
}

// Delivery is what a verified webhook says about itself.
type Delivery struct {
	// ID identifies the delivery (X-GitHub-Delivery or webhook-id); a
	// second delivery with the same id is a replay.
	ID string
	// Scheme is "github" or "standard-webhooks".
	Scheme string
}

// Verifier checks a webhook's signature while its body streams through it.
type Verifier struct {
	delivery Delivery
	macs     []hash.Hash
	want     [][]byte // acceptable signatures; any match passes
}

// Begin inspects the headers of a webhook for provider and returns a
// Verifier to write the raw body into. now is the time to judge a Standard
// Webhooks timestamp against.
func (s *Secrets) Begin(provider string, h http.Header, now time.Time) (*Verifier, error) {
	all, _ := s.file.get()
	keys := all[provider]
	if len(keys) == 0 {
		return nil, ErrUnknownProvider
	}
	v := &Verifier{}
	switch {
	case h.Get("X-Hub-Signature-256") != "":
		sig, ok := strings.CutPrefix(h.Get("X-Hub-Signature-256"), "sha256=")
		want, err := hex.DecodeString(sig)
		if !ok || err != nil || len(want) != sha256.Size {
			return nil, ErrBadSignature
		}
		v.delivery = Delivery{ID: h.Get("X-GitHub-Delivery"), Scheme: "github"}
		v.want = [][]byte{want}
		for _, k := range keys {
			v.macs = append(v.macs, hmac.New(sha256.New, k))
		}
	case h.Get("Webhook-Signature") != "":
		id, ts := h.Get("Webhook-Id"), h.Get("Webhook-Timestamp")
		if id == "" || ts == "" {
			return nil, ErrNoSignature
		}
		sec, err := strconv.ParseInt(ts, 10, 64)
		if err != nil {
			return nil, ErrStale
		}
		if d := now.Sub(time.Unix(sec, 0)); d > Tolerance || d < -Tolerance {
			return nil, ErrStale
		}
		for _, part := range strings.Fields(h.Get("Webhook-Signature")) {
			ver, sig, ok := strings.Cut(part, ",")
			if !ok || ver != "v1" {
				continue
			}
			if b, err := base64.StdEncoding.DecodeString(sig); err == nil && len(b) == sha256.Size {
				v.want = append(v.want, b)
			}
		}
		if len(v.want) == 0 {
			return nil, ErrBadSignature
		}
		v.delivery = Delivery{ID: id, Scheme: "standard-webhooks"}
		for _, k := range keys {
			m := hmac.New(sha256.New, k)
			_, _ = io.WriteString(m, id+"."+ts+".")
			v.macs = append(v.macs, m)
		}
	default:
		return nil, ErrNoSignature
	}
	return v, nil
}

// Write feeds raw body bytes to the MACs.
func (v *Verifier) Write(p []byte) (int, error) {
	for _, m := range v.macs {
		_, _ = m.Write(p)
	}
	return len(p), nil
}

// Verify reports whether the body written matched a signature, comparing
// every candidate in constant time.
func (v *Verifier) Verify() (Delivery, error) {
	ok := 0
	for _, m := range v.macs {
		sum := m.Sum(nil)
		for _, w := range v.want {
			ok |= subtle.ConstantTimeCompare(sum, w)
		}
	}
	if ok != 1 {
		return Delivery{}, ErrBadSignature
	}
	return v.delivery, nil
}
