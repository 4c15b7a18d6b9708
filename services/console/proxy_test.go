package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stateguard/stateguard/pkg/events"
)

// proxyClient sends every request as an auth proxy would: with the user
// and groups headers.
type proxyClient struct {
	c            *http.Client
	user, groups string
}

func newProxyClient(user, groups string) *proxyClient {
	jar, _ := cookiejar.New(nil)
	return &proxyClient{c: &http.Client{Jar: jar, Timeout: 60 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}, user: user, groups: groups}
}

func (p *proxyClient) do(t *testing.T, method, u string, form url.Values) (int, string) {
	t.Helper()
	body := strings.NewReader(form.Encode()) // a nil form encodes as ""
	req, err := http.NewRequestWithContext(t.Context(), method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.Header.Set("X-Forwarded-User", p.user)
	req.Header.Set("X-Forwarded-Groups", p.groups)
	resp, err := p.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// TestAuthProxyUsers: behind an authenticating proxy (oauth2-proxy's
// X-Forwarded-User and X-Forwarded-Groups) the console takes the user the
// proxy names, from the proxy's address only: a member of an operator
// group resolves an incident and the correlator records "<user> via
// console" as its actor; a user outside the operator groups reads but may
// not act (403); the same headers from an address that is not the
// proxy's are ignored (the login form); no token appears in the log.
func TestAuthProxyUsers(t *testing.T) {
	st := startCorrelator(t, scene(time.Now()), func(apps []appLine) error {
		for _, a := range apps {
			if a.Namespace == "shop" && a.App == "db" && len(a.OpenIncidents) == 1 {
				return nil
			}
		}
		return fmt.Errorf("apps: %+v", apps)
	})
	tokenFile := filepath.Join(t.TempDir(), "proxy-token")
	writeFile(t, tokenFile, "# the console's delegate token\n"+proxyToken+"\n")
	trusted := startConsole(t, st, "--auth-proxy-addresses", "127.0.0.1,::1", "--auth-proxy-token-file", tokenFile,
		"--auth-proxy-operators", "group:sre")
	untrusted := startConsole(t, st, "--auth-proxy-addresses", "10.0.0.0/8", "--auth-proxy-token-file", tokenFile)

	apps, err := st.apps()
	if err != nil {
		t.Fatal(err)
	}
	var incident string
	for _, a := range apps {
		if a.App == "db" && len(a.OpenIncidents) == 1 {
			incident = a.OpenIncidents[0]
		}
	}

	// From an address the console does not trust, the headers mean nothing.
	if code, _ := newProxyClient("carol", "sre").do(t, http.MethodGet, untrusted+"/fleet", nil); code != http.StatusSeeOther {
		t.Errorf("GET /fleet with proxy headers from an untrusted address: %d, want 303 to the login form", code)
	}

	// A reader: pages yes, actions no.
	dave := newProxyClient("dave", "developers")
	code, page := dave.do(t, http.MethodGet, trusted+"/incidents/"+incident, nil)
	if code != http.StatusOK {
		t.Fatalf("dave reads the incident page: %d", code)
	}
	m := csrfField.FindStringSubmatch(page) // the logout form's: every page of a session has one
	if m == nil {
		t.Fatalf("no CSRF token on dave's incident page:\n%s", page)
	}
	if code, body := dave.do(t, http.MethodPost, trusted+"/incidents/"+incident+"/resolve",
		url.Values{"csrf": {m[1]}, "reason": {"not exploited"}, "confirm": {"yes"}}); code != http.StatusForbidden || !strings.Contains(body, "auth-proxy-operators") {
		t.Errorf("dave resolves: %d, want 403 naming --auth-proxy-operators", code)
	}

	// An operator by group: the resolution is recorded as hers.
	sub, err := st.client.Conn().SubscribeSync(events.SubjectOf(events.TypeIncidentResolved))
	if err != nil {
		t.Fatal(err)
	}
	carol := newProxyClient("carol", "developers, sre")
	code, page = carol.do(t, http.MethodGet, trusted+"/incidents/"+incident, nil)
	m = csrfField.FindStringSubmatch(page)
	if code != http.StatusOK || m == nil {
		t.Fatalf("carol reads the incident page: %d, CSRF field found: %v", code, m != nil)
	}
	if code, body := carol.do(t, http.MethodPost, trusted+"/incidents/"+incident+"/resolve",
		url.Values{"csrf": {m[1]}, "reason": {"not exploited: the endpoint was never exposed"}, "confirm": {"yes"}}); code != http.StatusAccepted {
		t.Fatalf("carol resolves: %d\n%s", code, body)
	}
	msg, err := sub.NextMsg(30 * time.Second)
	if err != nil {
		t.Fatalf("no incident.resolved on DECISION: %v", err)
	}
	ev, err := events.DecodeMsg(msg)
	if err != nil {
		t.Fatal(err)
	}
	var p events.IncidentResolved
	if err := json.Unmarshal(ev.Data(), &p); err != nil {
		t.Fatal(err)
	}
	if p.Actor != "carol via console" || p.Incident != incident {
		t.Errorf("incident.resolved by %q for %q, want \"carol via console\" for %s", p.Actor, p.Incident, incident)
	}
}
