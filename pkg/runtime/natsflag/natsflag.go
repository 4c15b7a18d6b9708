package natsflag

import (
	"time"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/pkg/runtime/envflag"
)

// Register defines the connection flags of c on s.
func Register(s *envflag.Set, c *events.ConnConfig) {
	s.String(&c.URL, "nats-url", "NATS_URL", events.DefaultURL, "NATS server URLs, comma-separated")
	s.String(&c.CredsFile, "nats-creds", "NATS_CREDS", "", "NATS credentials file (JWT + nkey)")
	s.String(&c.User, "nats-user", "NATS_USER", "", "NATS user")
	s.String(&c.Password, "nats-password", "NATS_PASSWORD", "", "NATS password")
	s.String(&c.TLSCA, "nats-tls-ca", "NATS_TLS_CA", "", "CA bundle to verify the NATS servers")
	s.String(&c.TLSCert, "nats-tls-cert", "NATS_TLS_CERT", "", "client certificate for NATS mTLS")
	s.String(&c.TLSKey, "nats-tls-key", "NATS_TLS_KEY", "", "client key for NATS mTLS")
	s.Int(&c.MaxReconnects, "nats-max-reconnects", "NATS_MAX_RECONNECTS", -1, "reconnect attempts, -1 forever")
	s.Duration(&c.ReconnectWait, "nats-reconnect-wait", "NATS_RECONNECT_WAIT", 2*time.Second, "base wait between reconnects (with jitter and backoff)")
	s.Int(&c.ReconnectBufSize, "nats-reconnect-buffer", "NATS_RECONNECT_BUFFER", 8<<20, "bytes buffered while disconnected")
	s.Duration(&c.PingInterval, "nats-ping-interval", "NATS_PING_INTERVAL", events.DefaultPingInterval, "how often the server is pinged; two unanswered pings move the client to another server (a partitioned one sends no reset)")
}
