package auth

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"path"
	"strings"
)

// Errors of token checks.
var (
	ErrNoToken       = errors.New("no bearer token")
	ErrBadToken      = errors.New("unknown bearer token")
	ErrForbiddenRepo = errors.New("token may not upload for this repository")
)

type token struct {
	digest   [32]byte
	patterns []string
}

// Tokens are the bearer tokens of a tokens file: one token per line,
// optionally followed by white space and a comma-separated list of
// repository patterns ("org/*", "org/repo") the token may upload for; a
// token without patterns may upload for any repository. # starts a
// comment.
type Tokens struct{ file *reloading[[]token] }

// LoadTokens reads a tokens file; it is re-read when it changes.
func LoadTokens(path string) (*Tokens, error) {
	r, err := newReloading(path, parseTokens)
	if err != nil {
		return nil, err
	}
	return &Tokens{file: r}, nil
}

func parseTokens(lines []line) ([]token, error) {
	var out []token
	for _, l := range lines {
		if len(l.fields) > 2 {
			return nil, fmt.Errorf("line %d: want a token and an optional comma-separated pattern list", l.no)
		}
		t := token{digest: sha256.Sum256([]byte(l.fields[0]))}
		if len(l.fields) == 2 {
			for _, p := range strings.Split(l.fields[1], ",") {
				if p = strings.TrimSpace(p); p == "" {
					continue
				}
				if _, err := path.Match(p, "x/y"); err != nil {
					return nil, fmt.Errorf("line %d: bad repository pattern", l.no)
				}
				t.patterns = append(t.patterns, p)
			}
		}
		out = append(out, t)
	}
	return out, nil
}

// Authorize checks a bearer token for a repository. Every known token is
// compared, in constant time, whatever matches.
func (t *Tokens) Authorize(bearer, repository string) error {
	if bearer == "" {
		return ErrNoToken
	}
	toks, _ := t.file.get()
	d := sha256.Sum256([]byte(bearer))
	var found *token
	for i := range toks {
		if subtle.ConstantTimeCompare(d[:], toks[i].digest[:]) == 1 {
			found = &toks[i]
		}
	}
	if found == nil {
		return ErrBadToken
	}
	if len(found.patterns) == 0 {
		return nil
	}
	for _, p := range found.patterns {
		if ok, _ := path.Match(p, repository); ok {
			return nil
		}
	}
	return ErrForbiddenRepo
}

// BearerToken extracts the token of an Authorization header: "Bearer x"
// (or GitHub's "token x").
func BearerToken(header string) string {
	scheme, rest, ok := strings.Cut(strings.TrimSpace(header), " ")
	if !ok {
		return ""
	}
	switch strings.ToLower(scheme) {
	case "bearer", "token":
		return strings.TrimSpace(rest)
	}
	return ""
}
