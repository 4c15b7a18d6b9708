package api

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"

	"github.com/stateguard/stateguard/pkg/runtime/service"
)

// Scope is what a token may do. Operator tokens may also read.
type Scope int

const (
	// ScopeRead reads the posture: every GET route.
	ScopeRead Scope = iota
	// ScopeOperator also writes operators' decisions: resolve an incident,
	// dismiss a finding, rotate a certificate.
	ScopeOperator
)

func (s Scope) String() string {
	if s == ScopeOperator {
		return "operator"
	}
	return "read"
}

// Tokens are the accepted bearer tokens, kept as SHA-256 digests with the
// name and scope of each.
type Tokens struct {
	list []token
}

type token struct {
	sum   [sha256.Size]byte
	name  string
	scope Scope
	// delegate lets the token act on behalf of a user it names in the
	// OnBehalfOfHeader (a console behind an auth proxy): the user is then
	// the actor recorded, with the token's name beside it.
	delegate bool
}

// OnBehalfOfHeader names the user a delegate token acts for.
const OnBehalfOfHeader = "Stateguard-On-Behalf-Of"

// delegateWord marks a token line whose token may act on behalf of users.
const delegateWord = "delegate"

// tokenName is what a token may be named: the actor recorded in the events
// an operator's write publishes.
var tokenName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$`)

// ParseTokens reads a tokens file of one scope: one token per line,
// optionally followed by white space and the token's name (the actor of
// the decisions written with it; required for ScopeOperator, "token-<line>"
// otherwise) and the word "delegate" when the token may act on behalf of
// the users it names (the console behind an auth proxy). Blank lines and
// lines starting with # are skipped. Errors name the line, never the token.
func ParseTokens(data []byte, scope Scope) (Tokens, error) {
	var t Tokens
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		tk := token{sum: sha256.Sum256([]byte(fields[0])), scope: scope, name: fmt.Sprintf("token-%d", n)}
		if len(fields) == 3 && fields[2] == delegateWord {
			tk.delegate, fields = true, fields[:2]
		}
		switch {
		case len(fields) > 2:
			return t, fmt.Errorf("line %d: want a token, a name and optionally %q, found %d fields", n, delegateWord, len(fields))
		case len(fields) == 2 && !tokenName.MatchString(fields[1]):
			return t, fmt.Errorf("line %d: the name must match %s", n, tokenName)
		case len(fields) == 2:
			tk.name = fields[1]
		case scope == ScopeOperator:
			return t, fmt.Errorf("line %d: an operator token needs a name after it (the actor its decisions record)", n)
		}
		t.list = append(t.list, tk)
	}
	if err := sc.Err(); err != nil {
		return t, err
	}
	if len(t.list) == 0 {
		return t, errors.New("tokens file holds no token")
	}
	return t, nil
}

// Join returns the tokens of t and o.
func (t Tokens) Join(o Tokens) Tokens {
	return Tokens{list: append(append([]token(nil), t.list...), o.list...)}
}

// lookup compares tok with every known token in constant time (each
// comparison of digests is, and every token is compared whatever matched).
func (t Tokens) lookup(tok string) (token, bool) {
	sum := sha256.Sum256([]byte(tok))
	found := -1
	for i := range t.list {
		if subtle.ConstantTimeCompare(sum[:], t.list[i].sum[:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return token{}, false
	}
	return t.list[found], true
}

// Principal is who sent a request: the name and scope of its token.
type Principal struct {
	Name  string
	Scope Scope
}

type principalKey struct{}

// PrincipalFrom returns the principal the auth wrapper put in ctx.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// require answers 401 problem+json without a known token and 403 when the
// token's scope is below need; otherwise it runs h with the principal in
// the request's context.
func (t Tokens) require(need Scope, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		bearer, found := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		tk, ok := t.lookup(strings.TrimSpace(bearer))
		if !found || !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="stateguard"`)
			writeProblem(w, r, service.Problem{Type: service.ProblemBase + "unauthorized", Title: "Unauthorized",
				Status: http.StatusUnauthorized, Detail: "missing or invalid bearer token"})
			return
		}
		if tk.scope < need {
			writeProblem(w, r, service.Problem{Type: service.ProblemBase + "forbidden", Title: "Forbidden",
				Status: http.StatusForbidden, Detail: fmt.Sprintf("token %s has the %s scope; this route needs an %s token (--api-operator-tokens-file)", tk.name, tk.scope, need)})
			return
		}
		p, problem := principalOf(tk, r.Header.Values(OnBehalfOfHeader))
		if problem != nil {
			writeProblem(w, r, *problem)
			return
		}
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
	})
}

// principalOf is who a request acts as: the token's name, or — for a
// delegate token that names a user in OnBehalfOfHeader — that user, with
// the token's name beside it ("alice via console"), so the events record
// the person and the way they came. A token that is not a delegate may not
// name a user, and the user must be a plain name.
func principalOf(tk token, onBehalfOf []string) (Principal, *service.Problem) {
	p := Principal{Name: tk.name, Scope: tk.scope}
	if len(onBehalfOf) == 0 {
		return p, nil
	}
	switch user := strings.TrimSpace(onBehalfOf[0]); {
	case !tk.delegate:
		return p, &service.Problem{Type: service.ProblemBase + "forbidden", Title: "Forbidden", Status: http.StatusForbidden,
			Detail: fmt.Sprintf("token %s may not act on behalf of a user (%s): only tokens marked %q in the tokens file may", tk.name, OnBehalfOfHeader, delegateWord)}
	case len(onBehalfOf) > 1 || !tokenName.MatchString(user):
		return p, &service.Problem{Type: service.ProblemBase + "invalid-parameter", Title: "Invalid request parameter", Status: http.StatusBadRequest,
			Detail: fmt.Sprintf("%s must be one user name matching %s", OnBehalfOfHeader, tokenName)}
	default:
		p.Name = user + " via " + tk.name
		return p, nil
	}
}
