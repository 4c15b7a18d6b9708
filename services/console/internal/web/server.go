package web

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stateguard/stateguard/services/console/internal/correlator"
	"github.com/stateguard/stateguard/services/console/internal/streams"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// ContentSecurityPolicy is sent with every answer: scripts and styles only
// from the console's own files (no inline script or style), no framing, and
// forms that post only to the console.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// Streams is what the pages read from the event streams (*streams.Reader).
type Streams interface {
	Pipeline(ctx context.Context) streams.Pipeline
	Steps(incident string) []streams.Step
	OnEvent(f func(subject string))
}

// Options configure a Server.
type Options struct {
	Correlator *correlator.Client
	// Streams may be nil: the pipeline page then says so and pages do not
	// update live.
	Streams    Streams
	Log        *slog.Logger
	Registerer prometheus.Registerer
	Now        func() time.Time
	SessionTTL time.Duration
	PageSize   int
	FleetTTL   time.Duration
	// Secure marks cookies Secure (the console is reached over TLS).
	Secure bool
	// Proxy, when set, trusts an authenticating proxy's user header.
	Proxy *ProxyAuth
}

// Server serves the console.
type Server struct {
	api      *correlator.Client
	streams  Streams
	log      *slog.Logger
	now      func() time.Time
	sessions *sessions
	pageSize int
	secure   bool
	pages    map[string]*template.Template
	fleet    fleetCache
	live     *hub
	metrics  metrics
	proxy    *ProxyAuth
}

type metrics struct {
	requests *prometheus.CounterVec
	logins   *prometheus.CounterVec
	actions  *prometheus.CounterVec
	apiTime  *prometheus.HistogramVec
}

// New builds a Server.
func New(o Options) (*Server, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	s := &Server{api: o.Correlator, streams: o.Streams, log: o.Log, now: o.Now, sessions: newSessions(o.SessionTTL, o.Now),
		pageSize: o.PageSize, secure: o.Secure, live: newHub(), proxy: o.Proxy}
	s.fleet.ttl = o.FleetTTL
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	s.pages = pages
	s.metrics = metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "stateguard_console_requests_total", Help: "Pages and actions answered, by route and status code."}, []string{"route", "code"}),
		logins:   prometheus.NewCounterVec(prometheus.CounterOpts{Name: "stateguard_console_logins_total", Help: "Logins, by result: read, operator, refused, error."}, []string{"result"}),
		actions:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "stateguard_console_actions_total", Help: "Operator actions forwarded to the correlator, by action and result (accepted, refused, error)."}, []string{"action", "result"}),
		apiTime:  prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "stateguard_console_correlator_seconds", Help: "Time the pages waited for the correlator's API, by page.", Buckets: prometheus.DefBuckets}, []string{"page"}),
	}
	if o.Registerer != nil {
		o.Registerer.MustRegister(s.metrics.requests, s.metrics.logins, s.metrics.actions, s.metrics.apiTime,
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "stateguard_console_sessions", Help: "Live login sessions."}, func() float64 { return float64(s.sessions.count()) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "stateguard_console_live_clients", Help: "Pages following the live feed (server-sent events)."}, func() float64 { return float64(s.live.count()) }))
	}
	if s.streams != nil {
		s.streams.OnEvent(func(subject string) {
			s.fleet.invalidate()
			s.live.publish(subject)
		})
	}
	return s, nil
}

var funcs = template.FuncMap{
	"short": short,
	"stamp": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return stamp(t)
	},
	"join":  strings.Join,
	"add":   func(a, b int) int { return a + b },
	"sub":   func(a, b int) int { return a - b },
	"lower": strings.ToLower,
	"slug":  func(s string) string { return strings.ReplaceAll(s, " ", "-") },
}

func parsePages() (map[string]*template.Template, error) {
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	out := map[string]*template.Template{}
	for _, n := range names {
		if n == "templates/layout.html" {
			continue
		}
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", n)
		if err != nil {
			return nil, fmt.Errorf("template %s: %w", n, err)
		}
		out[strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")] = t
	}
	return out, nil
}

// Handler returns the console's routes, with the security headers on every
// answer.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(staticFS, "static")
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	mux.HandleFunc("GET /login", s.loginForm)
	mux.HandleFunc("POST /login", s.login)
	mux.HandleFunc("POST /logout", s.authed(s.logout))
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/fleet", http.StatusSeeOther) })
	mux.HandleFunc("GET /fleet", s.authed(s.fleetPage))
	mux.HandleFunc("GET /apps/{namespace}/{app}", s.authed(s.appPage))
	mux.HandleFunc("GET /snapshots/{namespace}/{name}", s.authed(s.whyPage))
	mux.HandleFunc("GET /incidents/{id}", s.authed(s.incidentPage))
	mux.HandleFunc("POST /incidents/{id}/restore", s.authed(s.operator(s.restore)))
	mux.HandleFunc("POST /incidents/{id}/resolve", s.authed(s.operator(s.resolve)))
	mux.HandleFunc("POST /incidents/{id}/dismiss", s.authed(s.operator(s.dismiss)))
	mux.HandleFunc("GET /certificates", s.authed(s.certificatesPage))
	mux.HandleFunc("GET /pipeline", s.authed(s.pipelinePage))
	mux.HandleFunc("GET /events", s.authed(s.events))
	return s.headers(mux)
}

// headers sets the security headers and counts every answer by route.
func (s *Server) headers(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", ContentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-store")
		if s.secure {
			h.Set("Strict-Transport-Security", "max-age=31536000")
		}
		rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(rec, r)
		route := r.Pattern
		if route == "" {
			route = "unmatched"
		}
		s.metrics.requests.WithLabelValues(route, strconv.Itoa(rec.code)).Inc()
	})
}

type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.code = code
	r.ResponseWriter.WriteHeader(code)
}

// Flush lets server-sent events through the recorder.
func (r *statusRecorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

type ctxKey struct{}

func sessionOf(r *http.Request) *session {
	ss, _ := r.Context().Value(ctxKey{}).(*session)
	return ss
}

// authed sends a request without a live session to the login form (a GET)
// or answers 401 (anything else), and checks the CSRF token of every POST.
func (s *Server) authed(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var ss *session
		if c, err := r.Cookie(sessionCookie); err == nil {
			ss, _ = s.sessions.get(c.Value)
		}
		if u, ok := s.proxyUser(r); ok {
			var err error
			if ss, err = s.proxySession(r.Context(), w, ss, u); err != nil {
				s.log.Error("console: auth proxy session: the correlator could not check the delegate token", "error", err)
				s.fail(w, r, nil, http.StatusBadGateway, "Correlator unavailable", "the correlator could not check the console's delegate token; try again in a moment")
				return
			}
		}
		if ss == nil {
			if r.Method == http.MethodGet && r.URL.Path != "/events" {
				http.Redirect(w, r, "/login?next="+urlQueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			s.fail(w, r, nil, http.StatusUnauthorized, "Not logged in", "log in again: the session is unknown or expired")
			return
		}
		if r.Method == http.MethodPost && !sameSecret(r.PostFormValue("csrf"), ss.csrf) {
			s.log.Warn("console: POST refused: CSRF token missing or wrong", "path", r.URL.Path)
			s.fail(w, r, ss, http.StatusForbidden, "Forbidden", "the form's CSRF token is missing or wrong: reload the page and try again")
			return
		}
		ctx := context.WithValue(r.Context(), ctxKey{}, ss)
		if ss.user != "" {
			ctx = correlator.OnBehalfOf(ctx, ss.user)
		}
		h(w, r.WithContext(ctx))
	}
}

// operator answers 403 to a session without the operator scope.
func (s *Server) operator(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ss := sessionOf(r)
		if ss.scope < correlator.ScopeOperator {
			detail := "this action needs an operator token; you logged in with a read token"
			if ss.user != "" {
				detail = "this action needs the operator scope; the auth proxy's user " + ss.user + " is not among the console's --auth-proxy-operators"
			}
			s.fail(w, r, ss, http.StatusForbidden, "Forbidden", detail)
			return
		}
		h(w, r)
	}
}

// view is what every page template gets.
type view struct {
	Title    string
	Nav      string
	LoggedIn bool
	Operator bool
	CSRF     string
	Live     bool
	Data     any
}

func (s *Server) render(w http.ResponseWriter, r *http.Request, code int, name, title, nav string, data any) {
	t, ok := s.pages[name]
	if !ok {
		http.Error(w, "no page "+name, http.StatusInternalServerError)
		return
	}
	v := view{Title: title, Nav: nav, Data: data, Live: s.streams != nil}
	if ss := sessionOf(r); ss != nil {
		v.LoggedIn, v.Operator, v.CSRF = true, ss.scope >= correlator.ScopeOperator, ss.csrf
	}
	var buf strings.Builder
	if err := t.Execute(&buf, v); err != nil {
		s.log.Error("console: render", "page", name, "error", err)
		http.Error(w, "render failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(buf.String()))
}

// problem is the error page's data.
type problem struct {
	Status int
	Title  string
	Detail string
}

// fail renders the error page. A correlator error keeps its status (a read
// token's write is 403 there too) and its detail.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, ss *session, code int, title, detail string) {
	if ss != nil && sessionOf(r) == nil {
		r = r.WithContext(context.WithValue(r.Context(), ctxKey{}, ss))
	}
	s.render(w, r, code, "error", title, "", problem{Status: code, Title: title, Detail: detail})
}

// failAPI renders what the correlator answered, or 502 when it did not.
func (s *Server) failAPI(w http.ResponseWriter, r *http.Request, err error) {
	var e *correlator.Error
	if errors.As(err, &e) {
		if e.Status == http.StatusUnauthorized { // the token was revoked: log in again
			if c, cerr := r.Cookie(sessionCookie); cerr == nil {
				s.sessions.drop(c.Value)
			}
		}
		s.fail(w, r, nil, e.Status, "The correlator answered "+strconv.Itoa(e.Status)+" "+e.Title, e.Detail)
		return
	}
	s.log.Error("console: correlator unreachable", "path", r.URL.Path, "error", err)
	s.fail(w, r, nil, http.StatusBadGateway, "Correlator unreachable", "the correlator's API did not answer; retry in a moment")
}

// fleetCache keeps the fleet's rows between requests. The first request
// waits for the correlator; later ones are served from the cache at once,
// and when the rows are older than the TTL or an event made them stale,
// one background read (at most one in flight, at most one per TTL) brings
// them up to date, then tells the open pages to refresh.
type fleetCache struct {
	mu       sync.Mutex
	ttl      time.Duration
	rows     []Row
	at       time.Time // when the rows in hand were asked for
	stale    bool
	loading  bool
	lastLoad time.Time
}

func (c *fleetCache) invalidate() {
	c.mu.Lock()
	c.stale = true
	c.mu.Unlock()
}

// get returns the rows. load reads them; refreshed is called after a
// background read replaced them.
func (c *fleetCache) get(now time.Time, load func(context.Context) ([]Row, error), refreshed func()) ([]Row, error) {
	c.mu.Lock()
	if c.rows == nil {
		defer c.mu.Unlock() // the first read: every request waits for it
		rows, err := load(context.Background())
		if err != nil {
			return nil, err
		}
		c.rows, c.at, c.lastLoad, c.stale = rows, now, now, false
		return rows, nil
	}
	rows := c.rows
	if (c.stale || now.Sub(c.at) >= c.ttl) && !c.loading && now.Sub(c.lastLoad) >= min(c.ttl, time.Second) {
		c.loading, c.lastLoad, c.stale = true, now, false
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			fresh, err := load(ctx)
			c.mu.Lock()
			c.loading = false
			if err == nil {
				c.rows, c.at = fresh, now
			} else {
				c.stale = true
			}
			c.mu.Unlock()
			if err == nil {
				refreshed()
			}
		}()
	}
	c.mu.Unlock()
	return rows, nil
}
