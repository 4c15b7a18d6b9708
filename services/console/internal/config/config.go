package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/pkg/runtime/envflag"
	"github.com/stateguard/stateguard/pkg/runtime/natsflag"
	"github.com/stateguard/stateguard/pkg/runtime/service"
)

// Config is the console's configuration.
type Config struct {
	HTTPAddr string
	// MetricsAddr, when set, serves /metrics (with /healthz and /readyz)
	// on a server of its own, and no longer on HTTPAddr.
	MetricsAddr     string
	LogLevel        string
	ShutdownTimeout time.Duration
	// CorrelatorURL is the base URL of the correlator's API.
	CorrelatorURL string
	// TLS serves HTTPS (the services' --tls-* flags: files re-read when
	// they change, /metrics behind a client CA); session cookies are then
	// Secure.
	TLS service.TLSFiles
	// CorrelatorCAFile verifies a correlator served over HTTPS.
	CorrelatorCAFile string
	// SecureCookies marks cookies Secure without TLS here (TLS ends at a
	// proxy in front of the console).
	SecureCookies bool
	SessionTTL    time.Duration
	PageSize      int
	// FleetTTL is how long the fleet list read from the correlator is
	// reused before it is read again (an event on the streams also
	// refreshes it).
	FleetTTL time.Duration
	// NATS is the read-only connection to the streams; without a URL the
	// pipeline page and live updates are off.
	NATS events.ConnConfig
	// Consumers are the durable consumers whose lag the pipeline page shows,
	// as STREAM:durable.
	Consumers []string
	// NATSDownGrace: /healthz fails once NATS has been down this long.
	NATSDownGrace time.Duration
	// AuthProxy trusts an authenticating proxy's user header.
	AuthProxy AuthProxy
}

// AuthProxy configures the trust in an authenticating proxy in front of the
// console (oauth2-proxy): off without Addresses.
type AuthProxy struct {
	// Addresses are the proxy's addresses or CIDR ranges.
	Addresses []string
	// UserHeader and GroupsHeader name the user and their groups.
	UserHeader, GroupsHeader string
	// TokenFile holds the delegate token the console uses for proxied users.
	TokenFile string
	// Operators are users, and group:NAME groups, given the operator scope.
	Operators []string
}

// Prefixes parses Addresses: an IP is a one-address prefix.
func (a AuthProxy) Prefixes() ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range a.Addresses {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		ip, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("--auth-proxy-addresses %q: want an IP address or a CIDR range", s)
		}
		out = append(out, netip.PrefixFrom(ip.Unmap(), ip.Unmap().BitLen()))
	}
	return out, nil
}

// DefaultConsumers are the stateguard services' durable consumers.
var DefaultConsumers = []string{
	"SARIF:correlator-sarif", "SNAPSHOT:correlator-snapshot", "CERTIFICATE:correlator-certificate",
	"DECISION:correlator-facts", "CERTIFICATE:certwatcher-rotation", "SNAPSHOT:snapshotter-pins",
	"DECISION:snapshotter-restores", "DECISION:snapshotter-recommendations",
}

// Load parses args (flags) with getenv as the environment fallback.
// --help prints the flags to stdout and returns flag.ErrHelp; an argument
// that is not a flag is an error.
func Load(args []string, getenv func(string) string, stdout io.Writer) (Config, error) {
	var c Config
	fs := flag.NewFlagSet("console", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	s := envflag.New(fs, getenv)
	s.String(&c.HTTPAddr, "http-addr", "HTTP_ADDR", ":8084", "address of the HTTP server (pages, /healthz, /readyz, /metrics)")
	s.String(&c.MetricsAddr, "metrics-addr", "METRICS_ADDR", "", "address of a separate server for /metrics, /healthz and /readyz (then /metrics leaves --http-addr, so a NetworkPolicy can fence it); empty: all on --http-addr")
	s.String(&c.LogLevel, "log-level", "LOG_LEVEL", "info", "debug, info, warn or error")
	s.Duration(&c.ShutdownTimeout, "shutdown-timeout", "SHUTDOWN_TIMEOUT", 20*time.Second, "bound on graceful shutdown")
	s.String(&c.CorrelatorURL, "correlator-url", "CORRELATOR_URL", "http://localhost:8083", "base URL of the correlator's API")
	s.String(&c.CorrelatorCAFile, "correlator-ca-file", "CORRELATOR_CA_FILE", "", "PEM CA bundle that verifies the correlator's HTTPS certificate instead of the system's roots")
	c.TLS.Register(s)
	s.Bool(&c.SecureCookies, "secure-cookies", "SECURE_COOKIES", false, "mark cookies Secure although this server speaks plain HTTP (TLS ends at a proxy)")
	s.Duration(&c.SessionTTL, "session-ttl", "SESSION_TTL", 8*time.Hour, "how long a login lasts")
	s.Int(&c.PageSize, "page-size", "PAGE_SIZE", 50, "applications per fleet page")
	s.Duration(&c.FleetTTL, "fleet-ttl", "FLEET_TTL", 5*time.Second, "how long the fleet read from the correlator is reused")
	s.Strings(&c.Consumers, "consumers", "CONSUMERS", DefaultConsumers, "durable consumers whose lag the pipeline page shows, STREAM:durable, comma-separated")
	s.Duration(&c.NATSDownGrace, "nats-down-grace", "NATS_DOWN_GRACE", 60*time.Second, "how long the NATS connection may be down before /healthz fails")
	s.Strings(&c.AuthProxy.Addresses, "auth-proxy-addresses", "AUTH_PROXY_ADDRESSES", nil, "addresses or CIDR ranges of an authenticating proxy (oauth2-proxy) whose user header is trusted, comma-separated; off when empty")
	s.String(&c.AuthProxy.UserHeader, "auth-proxy-user-header", "AUTH_PROXY_USER_HEADER", "X-Forwarded-User", "header in which the proxy names the user")
	s.String(&c.AuthProxy.GroupsHeader, "auth-proxy-groups-header", "AUTH_PROXY_GROUPS_HEADER", "X-Forwarded-Groups", "header in which the proxy names the user's groups, comma-separated")
	s.String(&c.AuthProxy.TokenFile, "auth-proxy-token-file", "AUTH_PROXY_TOKEN_FILE", "", "file holding the correlator token used for proxied users: an operator token marked delegate in the correlator's tokens file")
	s.Strings(&c.AuthProxy.Operators, "auth-proxy-operators", "AUTH_PROXY_OPERATORS", nil, "proxied users, and group:NAME groups, given the operator scope, comma-separated; everyone else reads only")
	natsflag.Register(s, &c.NATS)
	if err := s.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stdout)
			fs.Usage()
		}
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	return c, c.check()
}

func (c Config) check() error {
	var errs []error
	u, err := url.Parse(c.CorrelatorURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("--correlator-url %q: want http(s)://host[:port]", c.CorrelatorURL))
	}
	if err := c.TLS.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.SessionTTL < time.Minute {
		errs = append(errs, fmt.Errorf("--session-ttl %s: at least 1m", c.SessionTTL))
	}
	if c.PageSize < 1 || c.PageSize > 1000 {
		errs = append(errs, fmt.Errorf("--page-size %d: between 1 and 1000", c.PageSize))
	}
	if _, err := c.AuthProxy.Prefixes(); err != nil {
		errs = append(errs, err)
	}
	if len(c.AuthProxy.Addresses) > 0 && c.AuthProxy.TokenFile == "" {
		errs = append(errs, errors.New("--auth-proxy-addresses needs --auth-proxy-token-file: the correlator token the console uses for proxied users"))
	}
	if len(c.AuthProxy.Addresses) > 0 && strings.TrimSpace(c.AuthProxy.UserHeader) == "" {
		errs = append(errs, errors.New("--auth-proxy-user-header is empty"))
	}
	for _, cons := range c.Consumers {
		if st, d, ok := strings.Cut(cons, ":"); !ok || st == "" || d == "" {
			errs = append(errs, fmt.Errorf("--consumers %q: want STREAM:durable", cons))
		}
	}
	return errors.Join(errs...)
}

// HTTPS reports whether the console serves HTTPS itself.
func (c Config) HTTPS() bool { return c.TLS.Enabled() }
