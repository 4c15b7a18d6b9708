package events

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// ConnConfig holds the standard NATS connection settings every service
// exposes as flags and environment variables (pkg/runtime/natsflag defines
// them).
type ConnConfig struct {
	URL  string
	Name string
	// CredsFile is a NATS credentials file (JWT and nkey seed).
	CredsFile string
	// User and Password for user/password auth.
	User     string
	Password string
	// TLS files. They are re-read on every (re)connect, so a rotated client
	// certificate or CA bundle is used without a restart.
	TLSCA   string
	TLSCert string
	TLSKey  string
	// Reconnect behaviour: -1 reconnects forever.
	MaxReconnects    int
	ReconnectWait    time.Duration
	ReconnectBufSize int
	ConnectTimeout   time.Duration
	// PingInterval is how often the client pings the server; two pings
	// unanswered mark the connection stale and it reconnects to another
	// server. A server cut off by a network partition sends no reset, so
	// this bounds how long a client stays on it (NATS's default of two
	// minutes held uploads for four and more).
	PingInterval time.Duration
}

// DefaultURL is used when neither --nats-url nor NATS_URL is set.
const DefaultURL = "nats://127.0.0.1:4222"

// DefaultPingInterval is --nats-ping-interval's default: a server cut off
// without a reset is left within about three intervals.
const DefaultPingInterval = 10 * time.Second

// Validate reports inconsistent settings.
func (c ConnConfig) Validate() error {
	if c.URL == "" {
		return errors.New("nats url is empty")
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return errors.New("nats tls: give both a client certificate and a key, or neither")
	}
	if c.CredsFile != "" && c.User != "" {
		return errors.New("nats: give a credentials file or a user, not both")
	}
	return nil
}

func (c ConnConfig) natsOptions() []nats.Option {
	opts := []nats.Option{
		nats.Name(c.Name),
		nats.MaxReconnects(c.MaxReconnects),
		nats.RetryOnFailedConnect(true),
		nats.CustomReconnectDelay(backoffDelay(c.ReconnectWait)),
	}
	if c.ReconnectBufSize > 0 {
		opts = append(opts, nats.ReconnectBufSize(c.ReconnectBufSize))
	}
	if c.PingInterval > 0 {
		opts = append(opts, nats.PingInterval(c.PingInterval))
	}
	if c.ConnectTimeout > 0 {
		opts = append(opts, nats.Timeout(c.ConnectTimeout))
	}
	if c.CredsFile != "" {
		opts = append(opts, nats.UserCredentials(c.CredsFile))
	}
	if c.User != "" {
		opts = append(opts, nats.UserInfo(c.User, c.Password))
	}
	if c.TLSCA != "" || c.TLSCert != "" {
		r := &tlsFiles{ca: c.TLSCA, cert: c.TLSCert, key: c.TLSKey}
		var certCB nats.TLSCertHandler
		var caCB nats.RootCAsHandler
		if c.TLSCert != "" {
			certCB = r.certificate
		}
		if c.TLSCA != "" {
			caCB = r.rootCAs
		}
		opts = append(opts, nats.ClientTLSConfig(certCB, caCB), nats.Secure(&tls.Config{MinVersion: tls.VersionTLS12}))
	}
	return opts
}

func (c ConnConfig) dial(ctx context.Context) (*nats.Conn, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	nc, err := nats.Connect(c.URL, c.natsOptions()...)
	if err != nil {
		return nil, fmt.Errorf("nats connect: %w", err)
	}
	// RetryOnFailedConnect returns at once; wait (bounded by ctx) for the
	// first connection so a wrong URL fails loudly at start.
	for nc.Status() != nats.CONNECTED {
		select {
		case <-ctx.Done():
			nc.Close()
			return nil, fmt.Errorf("nats connect %s: %w", redactURL(c.URL), ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nc, nil
}

// backoffDelay doubles the reconnect wait up to 30s, with jitter.
func backoffDelay(base time.Duration) nats.ReconnectDelayHandler {
	if base <= 0 {
		base = 2 * time.Second
	}
	return func(attempts int) time.Duration {
		d := base << min(attempts, 4)
		d = min(d, 30*time.Second)
		return d/2 + rand.N(d/2+1)
	}
}

// tlsFiles re-reads TLS material when the files change.
type tlsFiles struct {
	ca, cert, key string

	mu      sync.Mutex
	pool    *x509.CertPool
	poolMod time.Time
	pair    *tls.Certificate
	pairMod time.Time
}

func modTime(paths ...string) (time.Time, error) {
	var newest time.Time
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return time.Time{}, err
		}
		if fi.ModTime().After(newest) {
			newest = fi.ModTime()
		}
	}
	return newest, nil
}

func (r *tlsFiles) certificate() (tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	mod, err := modTime(r.cert, r.key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("nats tls client certificate: %w", err)
	}
	if r.pair == nil || mod.After(r.pairMod) {
		pair, err := tls.LoadX509KeyPair(r.cert, r.key)
		if err != nil {
			return tls.Certificate{}, fmt.Errorf("nats tls client certificate: %w", err)
		}
		r.pair, r.pairMod = &pair, mod
	}
	return *r.pair, nil
}

func (r *tlsFiles) rootCAs() (*x509.CertPool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	mod, err := modTime(r.ca)
	if err != nil {
		return nil, fmt.Errorf("nats tls ca: %w", err)
	}
	if r.pool == nil || mod.After(r.poolMod) {
		pem, err := os.ReadFile(r.ca)
		if err != nil {
			return nil, fmt.Errorf("nats tls ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("nats tls ca %s: no certificate found", r.ca)
		}
		r.pool, r.poolMod = pool, mod
	}
	return r.pool, nil
}

// redactURL drops user information from NATS URLs before they are logged.
func redactURL(urls string) string {
	parts := strings.Split(urls, ",")
	for i, p := range parts {
		u, err := url.Parse(strings.TrimSpace(p))
		if err != nil {
			parts[i] = "<unparsable url>"
			continue
		}
		u.User = nil
		parts[i] = u.String()
	}
	return strings.Join(parts, ",")
}
