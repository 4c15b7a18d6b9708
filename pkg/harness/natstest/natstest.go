package natstest

import (
	"testing"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/pkg/events/eventstest"
)

// The servers and clients are pkg/events/eventstest's, which pkg/events'
// own tests use without importing pkg/harness (that would be a module
// cycle); natstest adds the cluster in network namespaces (netns.go).
type (
	// Config configures an embedded server.
	Config = eventstest.Config
	// NodeConfig is one server of a JetStream cluster spread over processes.
	NodeConfig = eventstest.NodeConfig
	// Option changes the test server's Config.
	Option = eventstest.Option
	// Process is a JetStream server running in a child process.
	Process = eventstest.Process
)

// childEnv carries a server's Config to a child process (ServeIfChild).
const childEnv = eventstest.ChildEnv

// Start starts an embedded JetStream server and waits until it accepts
// connections.
func Start(cfg Config) (*server.Server, error) { return eventstest.Start(cfg) }

// StartCluster starts cfg.Cluster embedded servers that form a JetStream
// cluster on loopback and waits until it has a meta leader.
func StartCluster(cfg Config) ([]*server.Server, error) { return eventstest.StartCluster(cfg) }

// ClusterURL lists the client URLs of servers, comma-separated.
func ClusterURL(servers []*server.Server) string { return eventstest.ClusterURL(servers) }

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort() (int, error) { return eventstest.FreePort() }

// WithoutSyncAlways runs the server with NATS's default fsync interval.
func WithoutSyncAlways() Option { return eventstest.WithoutSyncAlways() }

// WithStoreDir keeps the store in dir, so a test can restart the server on
// the same data.
func WithStoreDir(dir string) Option { return eventstest.WithStoreDir(dir) }

// WithPort fixes the port, so clients reconnect to a restarted server.
func WithPort(p int) Option { return eventstest.WithPort(p) }

// WithCluster runs n servers in a JetStream cluster (RunProcess only).
func WithCluster(n int) Option { return eventstest.WithCluster(n) }

// Run starts a JetStream server for the test (sync_interval: always) and
// shuts it down when the test ends.
func Run(tb testing.TB, opts ...Option) *server.Server {
	tb.Helper()
	return eventstest.Run(tb, opts...)
}

// RunProcess starts a JetStream server in a child process (the test binary
// itself: the package's TestMain must call ServeIfChild first).
func RunProcess(tb testing.TB, opts ...Option) Process {
	tb.Helper()
	return eventstest.RunProcess(tb, opts...)
}

// ServeIfChild runs the server and exits when this process was started by
// RunProcess or RunNetnsCluster; otherwise it returns at once. Call it first
// in TestMain.
func ServeIfChild() { eventstest.ServeIfChild() }

// Client connects an events client to s with the streams created, closed
// when the test ends.
func Client(tb testing.TB, s *server.Server, opts ...events.Option) *events.Client {
	tb.Helper()
	return eventstest.Client(tb, s, opts...)
}

// ClientURL is Client for a server at url (one run by RunProcess).
func ClientURL(tb testing.TB, url string, opts ...events.Option) *events.Client {
	tb.Helper()
	return eventstest.ClientURL(tb, url, opts...)
}

// ProcessClient connects an events client to p with the streams created,
// replicated on every server of a cluster, closed when the test ends.
func ProcessClient(tb testing.TB, p Process, opts ...events.Option) *events.Client {
	tb.Helper()
	return eventstest.ProcessClient(tb, p, opts...)
}
