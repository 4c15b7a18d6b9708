package natstest

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stateguard/stateguard/pkg/harness/netns"
)

// Client and route ports of the servers of a NetnsCluster, each on its own
// namespace's address.
const (
	netnsClientPort = 4222
	netnsRoutePort  = 6222
)

// DebugEnv, set to anything, makes RunNetnsCluster's servers log to the
// test's stderr.
const DebugEnv = "STATEGUARD_NATSTEST_DEBUG"

// NetnsCluster is a JetStream cluster with each server in a child process
// in a network namespace of its own (netns.Net), so a test can cut one off
// (Net.Partition) or kill one with SIGKILL and start it again on its store.
type NetnsCluster struct {
	tb    testing.TB
	Net   *netns.Net
	nodes []*netnsNode
}

type netnsNode struct {
	cfg   Config
	cmd   *exec.Cmd
	stdin io.WriteCloser
	done  chan error
}

// RunNetnsCluster starts an n-server JetStream cluster (sync_interval:
// always), server i in namespace i of a new netns.Net of n namespaces. The
// package's TestMain must call ServeIfChild first. The servers stop and the
// namespaces go when the test ends.
func RunNetnsCluster(tb testing.TB, n int) *NetnsCluster {
	tb.Helper()
	c := &NetnsCluster{tb: tb, Net: netns.New(tb, n)}
	var routes []string
	for i := range n {
		routes = append(routes, fmt.Sprintf("nats://%s:%d", c.Net.Addr(i), netnsRoutePort))
	}
	dir := tb.TempDir()
	for i := range n {
		c.nodes = append(c.nodes, &netnsNode{cfg: Config{
			StoreDir: filepath.Join(dir, fmt.Sprintf("s%d", i)), Host: c.Net.Addr(i), Port: netnsClientPort, SyncAlways: true,
			Debug: os.Getenv(DebugEnv) != "",
			Node:  &NodeConfig{Name: fmt.Sprintf("stateguard-%d", i), ClusterPort: netnsRoutePort, Routes: routes},
		}})
	}
	// Registered before the namespaces' removal runs (cleanups run last
	// first), so the servers stop first.
	tb.Cleanup(c.stopAll)
	for i := range n {
		c.Start(i)
	}
	return c
}

// URL lists the servers' client URLs, comma-separated.
func (c *NetnsCluster) URL() string {
	var urls []string
	for i := range c.nodes {
		urls = append(urls, c.ClientURL(i))
	}
	return strings.Join(urls, ",")
}

// ClientURL is server i's client URL.
func (c *NetnsCluster) ClientURL(i int) string {
	return fmt.Sprintf("nats://%s:%d", c.Net.Addr(i), netnsClientPort)
}

// Name is server i's server name (as stream info names leaders).
func (c *NetnsCluster) Name(i int) string { return c.nodes[i].cfg.Node.Name }

// Start starts server i (again, on its store, after Kill) and waits until
// it accepts connections.
func (c *NetnsCluster) Start(i int) {
	c.tb.Helper()
	nd := c.nodes[i]
	js, err := json.Marshal(nd.cfg)
	if err != nil {
		c.tb.Fatal(err)
	}
	cmd := c.Net.Command(i, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+string(js))
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		c.tb.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		c.tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		c.tb.Fatalf("start nats server %d in %s: %v", i, c.Net.Name(i), err)
	}
	nd.cmd, nd.stdin, nd.done = cmd, stdin, make(chan error, 1)
	line, err := bufio.NewReader(stdout).ReadString('\n')
	go func() { nd.done <- cmd.Wait() }()
	if _, ok := strings.CutPrefix(strings.TrimSpace(line), "nats-url "); err != nil || !ok {
		c.tb.Fatalf("nats server %d did not report its URL (did TestMain call natstest.ServeIfChild?): %q %v", i, line, err)
	}
}

// Kill kills server i with SIGKILL: no shutdown, no flush beyond what
// sync_interval: always already wrote.
func (c *NetnsCluster) Kill(i int) {
	c.tb.Helper()
	nd := c.nodes[i]
	if nd.cmd == nil {
		return
	}
	if err := nd.cmd.Process.Kill(); err != nil {
		c.tb.Fatalf("kill nats server %d: %v", i, err)
	}
	if err := <-nd.done; err == nil {
		c.tb.Logf("nats server %d had exited before it was killed", i)
	}
	nd.cmd = nil
}

// Pid is the process id of server i (0 when it is not running).
func (c *NetnsCluster) Pid(i int) int {
	if c.nodes[i].cmd == nil {
		return 0
	}
	return c.nodes[i].cmd.Process.Pid
}

func (c *NetnsCluster) stopAll() {
	for i, nd := range c.nodes {
		if nd.cmd == nil {
			continue
		}
		_ = nd.stdin.Close() // the child shuts down when its stdin closes
		select {
		case err := <-nd.done:
			if err != nil {
				c.tb.Errorf("nats server %d: %v", i, err)
			}
		case <-time.After(30 * time.Second):
			_ = nd.cmd.Process.Kill()
			c.tb.Errorf("nats server %d did not stop in 30s: killed (%v)", i, <-nd.done)
		}
		nd.cmd = nil
	}
}
