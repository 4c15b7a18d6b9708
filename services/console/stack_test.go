package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/pkg/harness/natstest"
)

// Tokens of the test stack.
const (
	readToken     = "console-test-read-token-7f3a"
	operatorToken = "console-test-operator-token-9c1e"
	// proxyToken is the delegate token the console uses for users an auth
	// proxy names.
	proxyToken = "console-test-proxy-token-42d0"
)

// testStack is a real JetStream, the real correlator (its binary, built
// from ../correlator) with read and operator tokens, the scene published,
// and the console (run, in this process) in front of them.
type testStack struct {
	client        *events.Client
	natsURL       string
	correlatorURL string
	consoleURL    string
}

// startStack starts the browser test's stack and stops it when the test
// ends (the console's run must return nil then: a graceful shutdown): the
// package's cluster with the scene's real objects (seedCluster), JetStream,
// the correlator fed the scene — db's incident open, the fixed version v3
// running and scanned clean, an upload of a repository nothing runs —, the
// snapshotter carrying out restores on the cluster, and the console.
func startStack(t *testing.T) (*testStack, clusterScene) {
	t.Helper()
	cs := seedCluster(t, useCluster(t))
	now := time.Now()
	evs := append(append(scene(now), sceneFix(now)...), githubUpload(orphanUpload, "acme/orphan", now))
	st := startCorrelator(t, evs, func(apps []appLine) error {
		for _, a := range apps {
			if a.Namespace == "shop" && a.App == "db" && len(a.OpenIncidents) == 1 {
				return nil
			}
		}
		return fmt.Errorf("apps: %+v", apps)
	})
	startSnapshotter(t, cs.c, st.natsURL)
	st.consoleURL = startConsole(t, st, "--fleet-ttl", "1s")
	return st, cs
}

// startCorrelator starts JetStream and the correlator, publishes evs and
// waits until the correlator's apps pass ready.
func startCorrelator(t testing.TB, evs []events.Event, ready func([]appLine) error) *testStack {
	t.Helper()
	dir := t.TempDir()
	srv := natstest.Run(t)
	st := &testStack{client: natstest.Client(t, srv)}

	bin := filepath.Join(dir, "correlator")
	build := exec.CommandContext(t.Context(), "go", "build", "-o", bin, ".")
	build.Dir = filepath.Join("..", "correlator")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the correlator: %v\n%s", err, out)
	}
	readFile, opFile := filepath.Join(dir, "tokens"), filepath.Join(dir, "operator-tokens")
	writeFile(t, readFile, readToken+" on-call\n")
	writeFile(t, opFile, operatorToken+" alice\n"+proxyToken+" console delegate\n")
	port, err := natstest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	st.correlatorURL = fmt.Sprintf("http://127.0.0.1:%d", port)
	logPath := filepath.Join(dir, "correlator.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "--nats-url", srv.ClientURL(), "--http-addr", fmt.Sprintf("127.0.0.1:%d", port),
		"--api-tokens-file", readFile, "--api-operator-tokens-file", opFile, "--workers", "4")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 20 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		_ = logFile.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("correlator log:\n%s", tail(b, 6000))
		}
	})
	waitFor(t, "the correlator's /readyz", 90*time.Second, func() error {
		return expectStatus(st.correlatorURL+"/readyz", http.StatusOK)
	})

	for i := 0; i < len(evs); i += 1000 {
		if err := st.client.Publish(t.Context(), evs[i:min(i+1000, len(evs))]...); err != nil {
			t.Fatalf("publish the scene: %v", err)
		}
	}
	waitFor(t, "the correlator's apps", 10*time.Minute, func() error {
		apps, err := st.apps()
		if err != nil {
			return err
		}
		return ready(apps)
	})
	st.natsURL = srv.ClientURL()
	return st
}

// startConsole runs the console (in this process) in front of st with
// the extra flags and returns its URL; it stops when the test ends.
func startConsole(t testing.TB, st *testStack, args ...string) string {
	t.Helper()
	var consoleURL string

	var (
		mu   sync.Mutex
		addr net.Addr
	)
	bound = func(a net.Addr) { mu.Lock(); addr = a; mu.Unlock() }
	t.Cleanup(func() { bound = nil })
	cctx, ccancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var logs bytes.Buffer
	var logMu sync.Mutex
	go func() {
		done <- run(cctx, append([]string{"--http-addr", "127.0.0.1:0", "--correlator-url", st.correlatorURL, "--nats-url", st.natsURL,
			"--shutdown-timeout", "10s"}, args...), func(string) string { return "" }, lockedWriter{&logMu, &logs})
	}()
	t.Cleanup(func() {
		ccancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("console run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("the console did not stop within 30 s")
		}
		logMu.Lock()
		defer logMu.Unlock()
		if t.Failed() {
			t.Logf("console log:\n%s", tail(logs.Bytes(), 6000))
		}
		if strings.Contains(logs.String(), readToken) || strings.Contains(logs.String(), operatorToken) {
			t.Error("a token appears in the console's log")
		}
	})
	waitFor(t, "the console's address", 30*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if addr == nil {
			return fmt.Errorf("not bound yet")
		}
		consoleURL = "http://" + addr.String()
		return nil
	})
	waitFor(t, "the console's /readyz", 60*time.Second, func() error { return expectStatus(consoleURL+"/readyz", http.StatusOK) })
	return consoleURL
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

type appLine struct {
	Namespace     string   `json:"namespace"`
	App           string   `json:"app"`
	OpenIncidents []string `json:"open_incidents"`
}

func (st *testStack) apps() ([]appLine, error) {
	req, _ := http.NewRequest(http.MethodGet, st.correlatorURL+"/v1/apps", nil)
	req.Header.Set("Authorization", "Bearer "+readToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	var out []appLine
	return out, json.NewDecoder(resp.Body).Decode(&out)
}

func writeFile(t testing.TB, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

func expectStatus(url string, want int) error {
	resp, err := http.Get(url) //nolint:noctx // a short poll
	if err != nil {
		return err
	}
	_ = resp.Body.Close()
	if resp.StatusCode != want {
		return fmt.Errorf("%s: %d, want %d", url, resp.StatusCode, want)
	}
	return nil
}

// waitFor polls f until it returns nil, failing after timeout with its
// last error (generous deadlines: the machine is shared and loaded).
func waitFor(t testing.TB, what string, timeout time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// httpLogin logs in through the form with a plain HTTP client (it keeps
// the cookies) and returns it with the headers of the login's answer (the
// redirect, which sets the session cookie).
func httpLogin(t testing.TB, base, token string) (*http.Client, http.Header) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	var first http.Header
	c := &http.Client{Jar: jar, Timeout: 60 * time.Second, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if first == nil && len(via) > 0 && req.Response != nil {
			first = req.Response.Header
		}
		return nil
	}}
	form, _ := fetch(t, c, base+"/login")
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(form)
	if m == nil {
		t.Fatalf("no CSRF token on the login form:\n%s", form)
	}
	resp, err := c.PostForm(base+"/login", url.Values{"csrf": {m[1]}, "token": {token}, "next": {"/pipeline"}}) //nolint:noctx // test client
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK || first == nil {
		t.Fatalf("login: %d", resp.StatusCode)
	}
	return c, first
}

// fetch GETs url and returns the body and headers; anything but 200 fails.
func fetch(t testing.TB, c *http.Client, url string) (string, http.Header) {
	t.Helper()
	resp, err := c.Get(url) //nolint:noctx // test client
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: %d\n%s", url, resp.StatusCode, b)
	}
	return string(b), resp.Header
}
