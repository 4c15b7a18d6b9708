// Package natstest runs a real NATS JetStream server inside the process, on
// a random loopback port with its store in a temporary directory, for tests
// and for the local stack.
package natstest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
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

// childEnv carries the Config of a server run by RunProcess to the child.
const childEnv = "STATEGUARD_NATSTEST_CHILD"

// Process is a JetStream server running in a child process.
type Process struct {
	// URL is its client URL; Pid its process id.
	URL string
	Pid int
}

// RunProcess starts a JetStream server (sync_interval: always unless an
// option says otherwise) in a child process, so that a benchmark can tell
// its own memory from the server's. The child is the test binary itself: the
// package's TestMain must call ServeIfChild first. The server stops when the
// test ends, or when the test process dies.
func RunProcess(tb testing.TB, opts ...Option) Process {
	tb.Helper()
	cfg := Config{StoreDir: tb.TempDir(), Port: -1, SyncAlways: true}
	for _, o := range opts {
		o(&cfg)
	}
	js, err := json.Marshal(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+string(js))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start nats child: %v", err)
	}
	tb.Cleanup(func() {
		_ = stdin.Close() // the child shuts down when its stdin closes
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		var err error
		select {
		case err = <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			err = <-done
		}
		if err != nil {
			tb.Errorf("nats child: %v", err)
		}
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	url, ok := strings.CutPrefix(strings.TrimSpace(line), "nats-url ")
	if err != nil || !ok {
		tb.Fatalf("nats child did not report its URL (did TestMain call natstest.ServeIfChild?): %q %v", line, err)
	}
	return Process{URL: url, Pid: cmd.Process.Pid}
}

// ServeIfChild runs the server and exits when this process was started by
// RunProcess; otherwise it returns at once. Call it first in TestMain.
func ServeIfChild() {
	js, ok := os.LookupEnv(childEnv)
	if !ok {
		return
	}
	var cfg Config
	if err := json.Unmarshal([]byte(js), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, "natstest child:", err)
		os.Exit(2)
	}
	s, err := Start(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "natstest child:", err)
		os.Exit(2)
	}
	fmt.Printf("nats-url %s\n", s.ClientURL())
	_, _ = io.Copy(io.Discard, os.Stdin)
	s.Shutdown()
	s.WaitForShutdown()
	os.Exit(0)
}

// Client connects an events client to s with the streams created, closed
// when the test ends.
func Client(tb testing.TB, s *server.Server, opts ...events.Option) *events.Client {
	tb.Helper()
	return ClientURL(tb, s.ClientURL(), opts...)
}

// ClientURL is Client for a server at url (one run by RunProcess).
func ClientURL(tb testing.TB, url string, opts ...events.Option) *events.Client {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := events.Connect(ctx, events.ConnConfig{URL: url, Name: tb.Name(), MaxReconnects: -1, ReconnectWait: 100 * time.Millisecond}, opts...)
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
