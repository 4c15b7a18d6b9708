package web

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/stateguard/stateguard/services/console/internal/correlator"
)

func urlQueryEscape(s string) string { return url.QueryEscape(s) }

// safeNext keeps a post-login redirect on the console: a path, never a
// scheme, a host or a protocol-relative URL.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") {
		return "/fleet"
	}
	return next
}

type loginData struct {
	CSRF  string
	Next  string
	Error string
}

// loginForm shows the token form, with a fresh CSRF token kept in a
// cookie (double submit: there is no session yet).
func (s *Server) loginForm(w http.ResponseWriter, r *http.Request) {
	s.showLogin(w, r, http.StatusOK, "")
}

func (s *Server) showLogin(w http.ResponseWriter, r *http.Request, code int, msg string) {
	csrf := randomID()
	http.SetCookie(w, s.cookie(loginCookie, csrf, 600))
	s.render(w, r, code, "login", "Log in", "", loginData{CSRF: csrf, Next: safeNext(r.FormValue("next")), Error: msg})
}

// login exchanges a bearer token for a session: the correlator says
// whether it knows the token and with which scope (Client.Scope); the
// token is kept on the server, the browser gets the session's id only.
func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	c, err := r.Cookie(loginCookie)
	if err != nil || !sameSecret(r.PostFormValue("csrf"), c.Value) {
		s.metrics.logins.WithLabelValues("refused").Inc()
		s.fail(w, r, nil, http.StatusForbidden, "Forbidden", "the login form's CSRF token is missing or wrong: reload the form and try again")
		return
	}
	token := strings.TrimSpace(r.PostFormValue("token"))
	scope, err := s.api.Scope(r.Context(), token)
	if err != nil {
		s.metrics.logins.WithLabelValues("error").Inc()
		s.log.Error("console: login: the correlator could not check the token", "error", err)
		s.showLogin(w, r, http.StatusBadGateway, "The correlator could not check the token; try again in a moment.")
		return
	}
	if scope == correlator.ScopeNone {
		s.metrics.logins.WithLabelValues("refused").Inc()
		s.log.Info("console: login refused: unknown token")
		s.showLogin(w, r, http.StatusUnauthorized, "The correlator does not know this token.")
		return
	}
	id, _ := s.sessions.create(token, scope)
	s.metrics.logins.WithLabelValues(scope.String()).Inc()
	s.log.Info("console: login", "scope", scope.String())
	http.SetCookie(w, s.cookie(loginCookie, "", -1))
	http.SetCookie(w, s.cookie(sessionCookie, id, int(s.sessions.ttl.Seconds())))
	http.Redirect(w, r, safeNext(r.PostFormValue("next")), http.StatusSeeOther)
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(sessionCookie); err == nil {
		s.sessions.drop(c.Value)
	}
	http.SetCookie(w, s.cookie(sessionCookie, "", -1))
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}
