package manifests

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/stateguard/stateguard/pkg/events"
)

// freePorts reserves n loopback ports and releases them for the servers.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	var ls []net.Listener
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		_ = l.Close()
	}
	return ports
}

// errorLog passes a server's warnings and errors to the test's log, until
// the test ends (a server goroutine may still log after Shutdown).
type errorLog struct {
	t    *testing.T
	name string
	mu   *sync.Mutex
	done *bool
}

func newErrorLog(t *testing.T, name string) errorLog {
	l := errorLog{t: t, name: name, mu: new(sync.Mutex), done: new(bool)}
	t.Cleanup(func() {
		l.mu.Lock()
		*l.done = true
		l.mu.Unlock()
	})
	return l
}

func (l errorLog) log(kind, format string, v ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !*l.done {
		l.t.Logf("%s: %s: %s", l.name, kind, fmt.Sprintf(format, v...))
	}
}

func (l errorLog) Noticef(string, ...any)         {}
func (l errorLog) Debugf(string, ...any)          {}
func (l errorLog) Tracef(string, ...any)          {}
func (l errorLog) Warnf(format string, v ...any)  { l.log("warning", format, v...) }
func (l errorLog) Errorf(format string, v ...any) { l.log("error", format, v...) }
func (l errorLog) Fatalf(format string, v ...any) { l.log("fatal", format, v...) }

// TestNATSProdClusterReplicatesOverTLS starts three NATS servers from the
// prod overlay's configuration — the same files, with the pod names, route
// addresses and paths mapped to loopback — and checks they form one
// JetStream cluster over TLS routes in which a service creates its streams
// with three replicas and publishes.
func TestNATSProdClusterReplicatesOverTLS(t *testing.T) {
	base := t.TempDir()
	pki(t, base, "correlator", "admin")
	// Route ports must be known before the servers start (each routes to
	// all); client ports are picked by the servers, one race fewer.
	routePorts := freePorts(t, 3)

	var urls []string
	for i := range 3 {
		dir := filepath.Join(base, fmt.Sprintf("nats-%d", i))
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(filepath.Join(base, "server"), filepath.Join(dir, "server")); err != nil {
			t.Fatal(err)
		}
		conf := natsConfig(t, "prod", dir)
		rewrite(t, conf, map[string]string{
			"server_name: $POD_NAME": fmt.Sprintf("server_name: nats-%d", i),
		})
		routes := map[string]string{"listen: 0.0.0.0:6222": fmt.Sprintf("listen: 127.0.0.1:%d", routePorts[i])}
		for j := range 3 {
			routes[fmt.Sprintf("nats-%d.nats-headless.stateguard.svc:6222", j)] = fmt.Sprintf("localhost:%d", routePorts[j])
		}
		rewrite(t, filepath.Join(dir, "cluster.conf"), routes)

		opts, err := server.ProcessConfigFile(conf)
		if err != nil {
			t.Fatal(err)
		}
		if opts.Cluster.TLSConfig == nil || !opts.SyncAlways {
			t.Fatalf("nats-%d: route TLS %v, sync always %v", i, opts.Cluster.TLSConfig != nil, opts.SyncAlways)
		}
		opts.NoLog, opts.NoSigs = true, true
		srv, err := server.NewServer(opts)
		if err != nil {
			t.Fatal(err)
		}
		// The server's errors (a port taken, a TLS file refused) reach the
		// test's log.
		// Its cleanup, registered first, runs after the server's shutdown.
		srv.SetLoggerV2(newErrorLog(t, fmt.Sprintf("nats-%d", i)), false, false, false)
		go srv.Start()
		t.Cleanup(func() {
			srv.Shutdown()
			srv.WaitForShutdown()
		})
		if !srv.ReadyForConnections(30 * time.Second) {
			t.Fatalf("nats-%d not ready after 30s (its errors, if any, are logged above)", i)
		}
		urls = append(urls, fmt.Sprintf("tls://localhost:%d", srv.Addr().(*net.TCPAddr).Port))
	}

	connect := func(user string, opts ...events.Option) *events.Client {
		c, err := events.Connect(t.Context(), events.ConnConfig{
			URL: strings.Join(urls, ","), User: user, Password: password(user),
			TLSCA:   filepath.Join(base, "server", "ca.crt"),
			TLSCert: filepath.Join(base, user, "tls.crt"), TLSKey: filepath.Join(base, user, "tls.key"),
			ReconnectWait: 50 * time.Millisecond,
		}, opts...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close(context.Background()) })
		return c
	}
	// The bootstrap creates the streams as admin; the correlator binds.
	admin, c := connect("admin"), connect("correlator", events.WithBind())

	// The cluster needs a meta leader before streams can be placed.
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	for {
		sctx, scancel := context.WithTimeout(ctx, 5*time.Second)
		err := admin.EnsureStreams(sctx, events.StreamOptions{Replicas: 3})
		scancel()
		if err == nil {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("streams with 3 replicas not created: %v", err)
		case <-time.After(200 * time.Millisecond):
		}
	}
	if err := c.EnsureStreams(ctx, events.StreamOptions{Names: events.StreamsOf("correlator")}); err != nil {
		t.Fatalf("the correlator cannot bind its streams: %v", err)
	}
	ev, err := c.NewEvent(events.TypeIncidentOpened, "cluster-test", events.IncidentOpened{Incident: "i", Namespace: "shop", App: "api"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Publish(ctx, ev); err != nil {
		t.Fatal(err)
	}
	s, err := c.JetStream().Stream(ctx, events.StreamDecision)
	if err != nil {
		t.Fatal(err)
	}
	// Every replica holds the event once the followers catch up.
	for {
		info, err := s.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		current := 0
		for _, r := range info.Cluster.Replicas {
			if r.Current {
				current++
			}
		}
		if info.Config.Replicas == 3 && info.Cluster.Leader != "" && current == 2 && info.State.Msgs == 1 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("stream %s: replicas %d, leader %q, current followers %d, messages %d", events.StreamDecision,
				info.Config.Replicas, info.Cluster.Leader, current, info.State.Msgs)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// rewrite replaces strings in a file, failing when one is missing.
func rewrite(t *testing.T, path string, repl map[string]string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	for old, new := range repl {
		if !strings.Contains(text, old) {
			t.Fatalf("%s no longer contains %q: update this test", filepath.Base(path), old)
		}
		text = strings.ReplaceAll(text, old, new)
	}
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}
