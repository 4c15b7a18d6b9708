package api

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"net/http"
	"strings"

	"github.com/stateguard/stateguard/pkg/events/service"
)

// Tokens are the accepted bearer tokens, kept as SHA-256 digests.
type Tokens struct {
	sums [][sha256.Size]byte
}

// ParseTokens reads a tokens file: one token per line; blank lines and
// lines starting with # are skipped.
func ParseTokens(data []byte) (Tokens, error) {
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
		return t, err
	}
	if len(t.sums) == 0 {
		return t, errors.New("tokens file holds no token")
	}
	return t, nil
}

// valid compares tok with every known token in constant time.
func (t Tokens) valid(tok string) bool {
	sum := sha256.Sum256([]byte(tok))
	ok := 0
	for _, s := range t.sums {
		ok |= subtle.ConstantTimeCompare(sum[:], s[:])
	}
	return ok == 1
}

func (t Tokens) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, found := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !found || !t.valid(strings.TrimSpace(tok)) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="stateguard"`)
			writeProblem(w, r, service.Problem{Type: service.ProblemBase + "unauthorized", Title: "Unauthorized",
				Status: http.StatusUnauthorized, Detail: "missing or invalid bearer token"})
			return
		}
		h.ServeHTTP(w, r)
	})
}
