package apiauth

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
)

// Tokens are the accepted bearer tokens, kept as SHA-256 digests only.
type Tokens struct {
	sums [][sha256.Size]byte
}

// Load reads a tokens file.
func Load(path string) (Tokens, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Tokens{}, fmt.Errorf("api tokens: %w", err)
	}
	t, err := Parse(data)
	if err != nil {
		return Tokens{}, fmt.Errorf("api tokens %s: %w", path, err)
	}
	return t, nil
}

// Parse reads tokens, one per line; blank lines and lines starting with #
// are skipped. A file without any token is an error.
func Parse(data []byte) (Tokens, error) {
	var t Tokens
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		t.sums = append(t.sums, sha256.Sum256([]byte(line)))
	}
	if err := sc.Err(); err != nil {
		return Tokens{}, err
	}
	if len(t.sums) == 0 {
		return Tokens{}, errors.New("no token in the file")
	}
	return t, nil
}

// Valid compares tok with every known token in constant time.
func (t Tokens) Valid(tok string) bool {
	sum := sha256.Sum256([]byte(tok))
	ok := 0
	for _, s := range t.sums {
		ok |= subtle.ConstantTimeCompare(sum[:], s[:])
	}
	return ok == 1 && tok != ""
}

// Require serves h only to requests with a valid "Authorization: Bearer"
// header; others get 401 as RFC 9457 problem+json.
func (t Tokens) Require(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, found := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !found || !t.Valid(strings.TrimSpace(tok)) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="stateguard"`)
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusUnauthorized)
			_ = json.NewEncoder(w).Encode(map[string]any{
				"type": "about:blank", "title": "Unauthorized", "status": http.StatusUnauthorized,
				"detail": "missing or invalid bearer token",
			})
			return
		}
		h.ServeHTTP(w, r)
	})
}
