package web

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/stateguard/stateguard/services/console/internal/correlator"
)

// ProxyAuth trusts an authenticating proxy in front of the console
// (oauth2-proxy and the like): a request from one of its addresses that
// carries the user header is that user's, without the login form. The
// console then calls the correlator with Token — a delegate token — on
// behalf of the user, so the correlator records the user as the actor.
// Headers from any other address are ignored.
type ProxyAuth struct {
	// Trusted are the proxy's addresses; a request from elsewhere is never
	// taken for a proxied user, whatever its headers say.
	Trusted []netip.Prefix
	// UserHeader (X-Forwarded-User) names the user; GroupsHeader
	// (X-Forwarded-Groups, comma-separated) the user's groups.
	UserHeader, GroupsHeader string
	// Token is the correlator token the console uses for proxied users: an
	// operator token marked "delegate" in the correlator's tokens file.
	Token string
	// Operators are the users, and "group:NAME" the groups, given the
	// operator scope; every other proxied user reads only.
	Operators map[string]bool
}

// proxied is a user an auth proxy vouches for.
type proxied struct {
	name     string
	operator bool
}

// proxyUser returns the user a trusted proxy names in r; a user header
// from an address that is not trusted is ignored, with a log line naming
// the address.
func (s *Server) proxyUser(r *http.Request) (proxied, bool) {
	p := s.proxy
	if p == nil {
		return proxied{}, false
	}
	name := strings.TrimSpace(r.Header.Get(p.UserHeader))
	if name == "" {
		return proxied{}, false
	}
	if !p.trusts(r.RemoteAddr) {
		s.log.Warn("console: auth proxy header from an untrusted address ignored", "remote", r.RemoteAddr, "header", p.UserHeader)
		return proxied{}, false
	}
	return proxied{name: name, operator: p.isOperator(name, r.Header.Get(p.GroupsHeader))}, true
}

// trusts reports whether remote (host:port) is one of the proxy's
// addresses.
func (p *ProxyAuth) trusts(remote string) bool {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	addr = addr.Unmap()
	for _, pr := range p.Trusted {
		if pr.Contains(addr) {
			return true
		}
	}
	return false
}

// isOperator decides a proxied user's scope: operator when the user, or
// one of the groups the proxy names, is listed; read otherwise.
func (p *ProxyAuth) isOperator(user, groups string) bool {
	if p.Operators[user] {
		return true
	}
	for g := range strings.SplitSeq(groups, ",") {
		if g = strings.TrimSpace(g); g != "" && p.Operators["group:"+g] {
			return true
		}
	}
	return false
}

// proxySession returns the session of a proxied user: the one its cookie
// names when it is that user's, else a new one (with its cookie set). The
// scope is the user's, never above what the delegate token may do.
func (s *Server) proxySession(ctx context.Context, w http.ResponseWriter, cur *session, u proxied) (*session, error) {
	if cur != nil && cur.user == u.name {
		return cur, nil
	}
	tokenScope, err := s.api.Scope(ctx, s.proxy.Token)
	if err != nil {
		return nil, err
	}
	scope := min(tokenScope, correlator.ScopeRead)
	if u.operator {
		scope = tokenScope
	}
	id, ss := s.sessions.create(s.proxy.Token, scope)
	ss.user = u.name
	s.metrics.logins.WithLabelValues("proxy-" + scope.String()).Inc()
	s.log.Info("console: auth proxy session", "user", u.name, "scope", scope.String())
	http.SetCookie(w, s.cookie(sessionCookie, id, int(s.sessions.ttl.Seconds())))
	return ss, nil
}
