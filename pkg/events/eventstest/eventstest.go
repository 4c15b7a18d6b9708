package eventstest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
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
	// Cluster is the number of servers of a JetStream cluster on loopback
	// (0 or 1: a single server), as stateguard's deployment runs three.
	Cluster int
	// Node, when set, makes Start run one server of a cluster whose other
	// members are elsewhere (RunNetnsCluster: one per network namespace).
	Node *NodeConfig `json:",omitempty"`
}

// NodeConfig is one server of a JetStream cluster spread over processes.
type NodeConfig struct {
	// Name is the server's name, unique in the cluster.
	Name string
	// ClusterPort is its route port (on Host).
	ClusterPort int
	// Routes are the route URLs of every member (nats://host:port).
	Routes []string
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
	if n := cfg.Node; n != nil {
		opts.ServerName = n.Name
		opts.Cluster = server.ClusterOpts{Name: "stateguard", Host: cfg.Host, Port: n.ClusterPort}
		for _, r := range n.Routes {
			u, err := url.Parse(r)
			if err != nil {
				return nil, fmt.Errorf("route %q: %w", r, err)
			}
			opts.Routes = append(opts.Routes, u)
		}
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

// StartCluster starts cfg.Cluster embedded servers that form a JetStream
// cluster over routes on loopback, each with its store in a directory of
// its own under cfg.StoreDir, and waits until the cluster has a meta
// leader. The first server's client URL comes first in the list.
func StartCluster(cfg Config) ([]*server.Server, error) {
	n := cfg.Cluster
	routePorts := make([]int, n)
	for i := range routePorts {
		p, err := FreePort()
		if err != nil {
			return nil, err
		}
		routePorts[i] = p
	}
	var routes []*url.URL
	for _, p := range routePorts {
		routes = append(routes, &url.URL{Scheme: "nats", Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(p))})
	}
	var servers []*server.Server
	shutdown := func() {
		for _, s := range servers {
			s.Shutdown()
		}
	}
	for i := range n {
		opts := &server.Options{
			ServerName: fmt.Sprintf("stateguard-%d", i),
			Host:       "127.0.0.1",
			Port:       -1,
			JetStream:  true,
			StoreDir:   filepath.Join(cfg.StoreDir, fmt.Sprintf("s%d", i)),
			NoSigs:     true,
			NoLog:      !cfg.Debug,
			SyncAlways: cfg.SyncAlways,
			Cluster: server.ClusterOpts{
				Name: "stateguard",
				Host: "127.0.0.1",
				Port: routePorts[i],
			},
			Routes:             routes,
			JetStreamMaxStore:  8 << 30,
			JetStreamMaxMemory: 256 << 20,
		}
		s, err := server.NewServer(opts)
		if err != nil {
			shutdown()
			return nil, fmt.Errorf("nats server %d: %w", i, err)
		}
		if cfg.Debug {
			s.ConfigureLogger()
		}
		go s.Start()
		servers = append(servers, s)
	}
	for i, s := range servers {
		if !s.ReadyForConnections(10 * time.Second) {
			shutdown()
			return nil, fmt.Errorf("nats server %d not ready after 10s", i)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		leader := false
		for _, s := range servers {
			leader = leader || s.JetStreamIsLeader()
		}
		if leader {
			return servers, nil
		}
		if time.Now().After(deadline) {
			shutdown()
			return nil, fmt.Errorf("nats cluster of %d: no JetStream meta leader after 30s", n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ClusterURL lists the client URLs of servers, comma-separated, as
// nats.Connect takes them.
func ClusterURL(servers []*server.Server) string {
	urls := make([]string, len(servers))
	for i, s := range servers {
		urls[i] = s.ClientURL()
	}
	return strings.Join(urls, ",")
}

// FreePort returns a loopback TCP port that was free a moment ago: for a
// server whose address must be known before it starts (routes, a restart
// on the same port). Prefer port -1 wherever the server can pick its own.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
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

// WithCluster runs n servers in a JetStream cluster (RunProcess only).
func WithCluster(n int) Option { return func(c *Config) { c.Cluster = n } }

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

// ChildEnv carries the Config of a server run in a child process (RunProcess,
// natstest's network-namespace cluster) to the child, whose ServeIfChild
// reads it.
const ChildEnv = "STATEGUARD_NATSTEST_CHILD"

// Process is a JetStream server running in a child process.
type Process struct {
	// URL is its client URL (the servers' URLs, comma-separated, for a
	// cluster); Pid its process id.
	URL string
	Pid int
	// Servers is how many servers it runs (1, or the cluster's size).
	Servers int
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
	cmd.Env = append(os.Environ(), ChildEnv+"="+string(js))
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
		tb.Fatalf("nats child did not report its URL (did TestMain call ServeIfChild?): %q %v", line, err)
	}
	return Process{URL: url, Pid: cmd.Process.Pid, Servers: max(1, cfg.Cluster)}
}

// ServeIfChild runs the server and exits when this process was started by
// RunProcess; otherwise it returns at once. Call it first in TestMain.
func ServeIfChild() {
	js, ok := os.LookupEnv(ChildEnv)
	if !ok {
		return
	}
	var cfg Config
	if err := json.Unmarshal([]byte(js), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, "natstest child:", err)
		os.Exit(2)
	}
	var servers []*server.Server
	var err error
	if cfg.Cluster > 1 {
		servers, err = StartCluster(cfg)
	} else {
		var s *server.Server
		s, err = Start(cfg)
		servers = []*server.Server{s}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "natstest child:", err)
		os.Exit(2)
	}
	fmt.Printf("nats-url %s\n", ClusterURL(servers))
	_, _ = io.Copy(io.Discard, os.Stdin)
	for _, s := range servers {
		s.Shutdown()
	}
	for _, s := range servers {
		s.WaitForShutdown()
	}
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
	return clientURL(tb, url, 1, opts...)
}

// ProcessClient connects an events client to p with the streams created,
// replicated on every server of a cluster, closed when the test ends.
func ProcessClient(tb testing.TB, p Process, opts ...events.Option) *events.Client {
	tb.Helper()
	return clientURL(tb, p.URL, p.Servers, opts...)
}

func clientURL(tb testing.TB, url string, replicas int, opts ...events.Option) *events.Client {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := events.Connect(ctx, events.ConnConfig{URL: url, Name: tb.Name(), MaxReconnects: -1, ReconnectWait: 100 * time.Millisecond}, opts...)
	if err != nil {
		tb.Fatalf("connect events client: %v", err)
	}
	if err := c.EnsureStreams(ctx, events.StreamOptions{Replicas: replicas}); err != nil {
		tb.Fatalf("ensure streams: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = c.Close(ctx)
	})
	return c
}
