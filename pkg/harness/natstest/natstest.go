// Package natstest runs a real NATS JetStream server inside the process, on
// a random loopback port with its store in a temporary directory, for tests
// and for the local stack.
package natstest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/stateguard/stateguard/pkg/events"
)

// Config configures an embedded server.
type Config struct {
	// StoreDir holds the JetStream store.
	StoreDir string
	// Host and Port to listen on; Port -1 picks a free one.
	Host string
	Port int
	// SyncAlways makes JetStream fsync every write before it acknowledges
	// it (sync_interval: always). Leave it on: with the default two-minute
	// interval an acknowledged event can be lost on power failure.
	SyncAlways bool
	// Debug turns on the server's logs.
	Debug bool
}

// Start starts an embedded JetStream server and waits until it accepts
// connections.
func Start(cfg Config) (*server.Server, error) {
	if cfg.Host == "" {
		cfg.Host = "127.0.0.1"
	}
	if cfg.Port == 0 {
		cfg.Port = -1
	}
	opts := &server.Options{
		ServerName: "stateguard-embedded",
		Host:       cfg.Host,
		Port:       cfg.Port,
		JetStream:  true,
		StoreDir:   cfg.StoreDir,
		NoSigs:     true,
		NoLog:      !cfg.Debug,
		// sync_interval: always.
		SyncAlways:         cfg.SyncAlways,
		JetStreamMaxStore:  8 << 30,
		JetStreamMaxMemory: 256 << 20,
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("nats server: %w", err)
	}
	if cfg.Debug {
		s.ConfigureLogger()
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		return nil, fmt.Errorf("nats server not ready after 10s")
	}
	return s, nil
}

// Option changes the test server's Config.
type Option func(*Config)

// WithoutSyncAlways runs the server with NATS's default fsync interval, for
// benchmarks that compare both settings.
func WithoutSyncAlways() Option { return func(c *Config) { c.SyncAlways = false } }

// WithStoreDir keeps the store in dir, so a test can restart the server on
// the same data.
func WithStoreDir(dir string) Option { return func(c *Config) { c.StoreDir = dir } }

// WithPort fixes the port, so clients reconnect to a restarted server.
func WithPort(p int) Option { return func(c *Config) { c.Port = p } }

// Run starts a JetStream server for the test (sync_interval: always) and
// shuts it down when the test ends.
func Run(tb testing.TB, opts ...Option) *server.Server {
	tb.Helper()
	cfg := Config{StoreDir: tb.TempDir(), Port: -1, SyncAlways: true}
	for _, o := range opts {
		o(&cfg)
	}
	s, err := Start(cfg)
	if err != nil {
		tb.Fatalf("start nats: %v", err)
	}
	tb.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	return s
}

// Client connects an events client to s with the streams created, closed
// when the test ends.
func Client(tb testing.TB, s *server.Server, opts ...events.Option) *events.Client {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := events.Connect(ctx, events.ConnConfig{URL: s.ClientURL(), Name: tb.Name(), MaxReconnects: -1, ReconnectWait: 100 * time.Millisecond}, opts...)
	if err != nil {
		tb.Fatalf("connect events client: %v", err)
	}
	if err := c.EnsureStreams(ctx, events.StreamOptions{}); err != nil {
		tb.Fatalf("ensure streams: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = c.Close(ctx)
	})
	return c
}
