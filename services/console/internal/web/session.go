package web

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"sync"
	"time"

	"github.com/stateguard/stateguard/services/console/internal/correlator"
)

const (
	sessionCookie = "sg_session"
	// loginCookie carries the login form's CSRF token (double submit):
	// there is no session yet to keep it in.
	loginCookie = "sg_login"
)

// session is one login: the bearer token stays on the server, the browser
// holds only the session's random id.
type session struct {
	token   string
	scope   correlator.Scope
	csrf    string
	expires time.Time
	// user is the user an auth proxy named (ProxyAuth); empty for a login
	// with a token.
	user string
}

// sessions are the live logins, by id.
type sessions struct {
	mu   sync.Mutex
	byID map[string]*session
	ttl  time.Duration
	now  func() time.Time
}

func newSessions(ttl time.Duration, now func() time.Time) *sessions {
	return &sessions{byID: map[string]*session{}, ttl: ttl, now: now}
}

// randomID is 32 random bytes, base64url.
func randomID() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (s *sessions) create(token string, scope correlator.Scope) (string, *session) {
	id := randomID()
	ss := &session{token: token, scope: scope, csrf: randomID(), expires: s.now().Add(s.ttl)}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	for k, v := range s.byID { // drop expired sessions while here
		if now.After(v.expires) {
			delete(s.byID, k)
		}
	}
	s.byID[id] = ss
	return id, ss
}

func (s *sessions) get(id string) (*session, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss, ok := s.byID[id]
	if !ok {
		return nil, false
	}
	if s.now().After(ss.expires) {
		delete(s.byID, id)
		return nil, false
	}
	return ss, true
}

func (s *sessions) drop(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.byID, id)
}

func (s *sessions) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.byID)
}

// sameSecret compares two secrets in constant time.
func sameSecret(a, b string) bool {
	return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// cookie is a cookie of the console: HttpOnly, SameSite=Strict, Secure when
// the console is reached over TLS.
func (s *Server) cookie(name, value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: name, Value: value, Path: "/", MaxAge: maxAge, HttpOnly: true,
		Secure: s.secure, SameSite: http.SameSiteStrictMode}
}
