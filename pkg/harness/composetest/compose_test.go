//go:build compose

package composetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/stateguard/stateguard/pkg/harness/kubetest"
	"github.com/stateguard/stateguard/pkg/harness/natstest"
)

// Throwaway credentials of deploy/compose/.
const (
	uploadToken = "dev-upload-token-not-secret"
	apiToken    = "dev-api-token-not-secret"
)

// namespace is the containerd namespace of the test's images and
// containers.
const namespace = "stateguard-compose-test"

// published are the compose file's *_PORT variables: the test moves every
// published port to a free one so a `make run` on the same machine does
// not collide with it.
var published = []string{"NATS_PORT", "NATS_MONITOR_PORT", "SASTINGEST_PORT", "CERTWATCHER_PORT", "SNAPSHOTTER_PORT", "CORRELATOR_PORT", "CONSOLE_PORT"}

func TestComposeUpOnContainerd(t *testing.T) {
	root, err := kubetest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	nerdctlBin := filepath.Join(root, "bin", "nerdctl")
	for _, need := range []struct{ path, fix string }{
		{nerdctlBin, "bash hack/tools.sh compose (make compose-tools) builds nerdctl"},
		{"/usr/bin/containerd", "bash hack/tools.sh compose (make compose-tools) installs Debian's containerd"},
		{"/usr/bin/ctr", "bash hack/tools.sh compose (make compose-tools) installs Debian's containerd"},
		{"/usr/bin/containerd-shim-runc-v2", "bash hack/tools.sh compose (make compose-tools) installs Debian's containerd"},
		{"/usr/sbin/runc", "bash hack/tools.sh compose (make compose-tools) installs Debian's runc"},
		{"/usr/lib/cni/bridge", "bash hack/tools.sh compose (make compose-tools) installs Debian's containernetworking-plugins"},
		{"/usr/lib/cni/portmap", "bash hack/tools.sh compose (make compose-tools) installs Debian's containernetworking-plugins"},
	} {
		if _, err := os.Stat(need.path); err != nil {
			t.Fatalf("%s is missing: %s", need.path, need.fix)
		}
	}
	if os.Geteuid() != 0 {
		t.Fatal("containerd, runc and CNI bridge networking need root: run make compose-test as root")
	}
	linksBefore := links(t)

	// Not t.TempDir: removeAll first reports and detaches any mount left
	// under it, which t.TempDir's removal would only fail on.
	dir, err := os.MkdirTemp("", "sg-compose-") //nolint:usetesting // see above
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeAll(t, dir) })
	// Runs after compose down and containerd's stop: the compose network's
	// bridge and the containers' veths are gone.
	t.Cleanup(func() {
		for l := range links(t) {
			if !linksBefore[l] {
				t.Errorf("network interface %s left after the stack stopped", l)
			}
		}
	})

	start := time.Now()
	images := filepath.Join(dir, "images.tar")
	run(t, root, nil, "go", "run", "./pkg/harness/cmd/images", "-out", images)
	t.Logf("images built in %s", time.Since(start).Round(time.Second))

	sock := startContainerd(t, dir)
	env := []string{}
	ports := map[string]int{}
	for _, v := range published {
		p, err := natstest.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		ports[v] = p
		env = append(env, v+"="+strconv.Itoa(p))
	}
	nerdctl := func(args ...string) string {
		t.Helper()
		global := []string{
			"--address", sock, "--namespace", namespace,
			"--data-root", filepath.Join(dir, "nerdctl"),
			"--cni-path", "/usr/lib/cni", "--cni-netconfpath", filepath.Join(dir, "cni"),
		}
		return run(t, root, env, nerdctlBin, append(global, args...)...)
	}
	// `nerdctl load` needs containerd's streaming service (1.7+) and
	// answers Debian 12's containerd 1.6 "unknown service
	// containerd.services.streaming.v1.Streaming": containerd's own ctr
	// imports the archive.
	importStart := time.Now()
	run(t, root, nil, "/usr/bin/ctr", "--address", sock, "--namespace", namespace, "images", "import", images)
	t.Logf("images imported in %s", time.Since(importStart).Round(time.Second))
	compose := []string{"compose", "--project-directory", root, "-f", filepath.Join(root, "docker-compose.yaml"), "-p", "stateguard-test"}

	upStart := time.Now()
	// Down before containerd stops (cleanups run last-registered first).
	t.Cleanup(func() {
		if t.Failed() {
			for _, svc := range []string{"nats", "sastingest", "correlator", "console", "certwatcher"} {
				t.Logf("%s log:\n%s", svc, tail(runErr(root, env, nerdctlBin, append(append([]string{"--address", sock, "--namespace", namespace, "--data-root", filepath.Join(dir, "nerdctl"), "--cni-path", "/usr/lib/cni", "--cni-netconfpath", filepath.Join(dir, "cni")}, compose...), "logs", "--no-color", svc)...), 3000))
			}
		}
		nerdctl(append(compose, "down", "-v")...)
		if left := strings.TrimSpace(nerdctl("ps", "-a", "-q")); left != "" {
			t.Errorf("containers left after compose down: %s", left)
		}
	})
	nerdctl(append(compose, "up", "-d")...)

	ingest := "http://127.0.0.1:" + strconv.Itoa(ports["SASTINGEST_PORT"])
	correlator := "http://127.0.0.1:" + strconv.Itoa(ports["CORRELATOR_PORT"])
	console := "http://127.0.0.1:" + strconv.Itoa(ports["CONSOLE_PORT"])
	for _, base := range []string{ingest, correlator, console} {
		waitReady(t, base+"/readyz")
	}
	t.Logf("compose up to ready in %s", time.Since(upStart).Round(time.Second))
	ps := nerdctl(append(compose, "ps")...)
	for _, svc := range []string{"nats", "sastingest", "certwatcher", "correlator", "console"} {
		if !strings.Contains(ps, "stateguard-test-"+svc) {
			t.Errorf("compose ps does not list %s:\n%s", svc, ps)
		}
	}
	checkImage(t, nerdctl)

	// The stack's NATS, through its published port: the event's stream.
	nc, err := nats.Connect("nats://127.0.0.1:" + strconv.Itoa(ports["NATS_PORT"]))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()

	id := upload(t, ingest)
	seeEvent(t, nc, id)
	seeInCorrelator(t, correlator, id)
}

// upload posts the sample SARIF log for shop/shop 1.0.0 and returns the
// upload id.
func upload(t *testing.T, ingest string) string {
	t.Helper()
	root, _ := kubetest.RepoRoot()
	log, err := os.ReadFile(filepath.Join(root, "services", "sastingest", "testdata", "gosec-sampleapp.sarif"))
	if err != nil {
		t.Fatal(err)
	}
	url := ingest + "/v1/sarif?repository=acme/shop&commit_sha=0123456789abcdef0123456789abcdef01234567&app=shop&namespace=shop&version=1.0.0"
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url, bytes.NewReader(log))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+uploadToken)
	req.Header.Set("Content-Type", "application/sarif+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("upload: %d %s", resp.StatusCode, body)
	}
	var out struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(body, &out); err != nil || out.ID == "" {
		t.Fatalf("upload answer %s: %v", body, err)
	}
	return out.ID
}

// seeEvent reads the SARIF stream of the stack's JetStream and finds the
// upload's io.stateguard.sarif.uploaded.v1 event (its CloudEvents id is the
// upload id).
func seeEvent(t *testing.T, nc *nats.Conn, id string) {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cons, err := js.OrderedConsumer(ctx, "SARIF", jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	for ctx.Err() == nil {
		msg, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
		if errors.Is(err, jetstream.ErrNoMessages) || errors.Is(err, context.DeadlineExceeded) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		h := msg.Headers()
		if h.Get("ce-id") == id {
			if typ := h.Get("ce-type"); typ != "io.stateguard.sarif.uploaded.v1" {
				t.Errorf("event %s has type %q", id, typ)
			}
			var payload struct {
				UploadID  string `json:"upload_id"`
				App       string `json:"app"`
				Namespace string `json:"namespace"`
			}
			if err := json.Unmarshal(msg.Data(), &payload); err != nil {
				t.Fatalf("event payload: %v", err)
			}
			if payload.UploadID != id || payload.App != "shop" || payload.Namespace != "shop" {
				t.Errorf("event payload %+v, want upload %s of shop/shop", payload, id)
			}
			t.Logf("event %s on %s", id, msg.Subject())
			return
		}
	}
	t.Fatalf("no event with id %s on the SARIF stream within 2 min", id)
}

// seeInCorrelator waits until the correlator, which consumed the event,
// shows the upload on shop/shop's version 1.0.0.
func seeInCorrelator(t *testing.T, correlator, id string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	var last string
	for time.Now().Before(deadline) {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, correlator+"/v1/apps/shop/shop", nil)
		req.Header.Set("Authorization", "Bearer "+apiToken)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			last = fmt.Sprintf("%d %s", resp.StatusCode, tail(string(b), 500))
			if resp.StatusCode == http.StatusOK && strings.Contains(string(b), id) {
				t.Logf("the correlator shows upload %s on shop/shop", id)
				return
			}
		} else {
			last = err.Error()
		}
		time.Sleep(time.Second)
	}
	t.Fatalf("the correlator does not show upload %s on shop/shop after 2 min: %s", id, last)
}

// checkImage checks what the images promise: a non-root user and the OCI
// labels, as containerd sees them.
func checkImage(t *testing.T, nerdctl func(...string) string) {
	t.Helper()
	var cfg []struct {
		Config struct {
			User   string
			Labels map[string]string
		}
	}
	if err := json.Unmarshal([]byte(nerdctl("image", "inspect", "ghcr.io/stateguard/sastingest:dev")), &cfg); err != nil || len(cfg) != 1 {
		t.Fatalf("image inspect: %v", err)
	}
	if u := cfg[0].Config.User; u != "65532:65532" {
		t.Errorf("sastingest image user %q, want 65532:65532", u)
	}
	for _, l := range []string{"org.opencontainers.image.source", "org.opencontainers.image.revision", "org.opencontainers.image.version"} {
		if cfg[0].Config.Labels[l] == "" {
			t.Errorf("sastingest image lacks label %s", l)
		}
	}
}

// startContainerd runs containerd with its own root, state and socket
// under dir (the CRI plugin off: nerdctl does not need it) and stops it
// when the test ends; it returns the socket.
func startContainerd(t *testing.T, dir string) string {
	t.Helper()
	sock := filepath.Join(dir, "containerd.sock")
	conf := filepath.Join(dir, "containerd.toml")
	text := fmt.Sprintf(`version = 2
root = %q
state = %q
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = %q
[plugins."io.containerd.internal.v1.opt"]
  path = %q
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), sock, filepath.Join(dir, "opt"))
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "containerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("/usr/bin/containerd", "--config", conf)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start containerd: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
			t.Errorf("containerd did not stop within 30 s; killed")
		}
		logf.Close()
		if left := processesUnder(dir); len(left) > 0 {
			t.Errorf("processes left running after containerd stopped: %v", left)
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(sock); err == nil {
			return sock
		}
		select {
		case err := <-done:
			done <- err
			b, _ := os.ReadFile(filepath.Join(dir, "containerd.log"))
			t.Fatalf("containerd exited: %v\n%s", err, tail(string(b), 3000))
		default:
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(dir, "containerd.log"))
			t.Fatalf("containerd socket %s not there after 30 s\n%s", sock, tail(string(b), 3000))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// processesUnder lists the processes whose command line names dir (the
// containerd, its shims): none may outlive the test.
func processesUnder(dir string) []string {
	var left []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil || e.Name() == strconv.Itoa(os.Getpid()) {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		if cmdline := strings.ReplaceAll(string(b), "\x00", " "); strings.Contains(cmdline, dir) {
			left = append(left, e.Name()+": "+cmdline)
		}
	}
	return left
}

// links are the machine's network interfaces that CNI's bridge plugin
// makes (nerdctl's br-<id> bridges, the containers' veth ends): the compose
// network's must be gone after down. Other interfaces (other tests' network
// namespaces) come and go on their own.
func links(t *testing.T) map[string]bool {
	t.Helper()
	entries, err := os.ReadDir("/sys/class/net")
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]bool{}
	for _, e := range entries {
		if n := e.Name(); strings.HasPrefix(n, "br-") || strings.HasPrefix(n, "nerdctl") || strings.HasPrefix(n, "veth") {
			m[n] = true
		}
	}
	return m
}

// removeAll removes the test's directory after unmounting whatever is
// still mounted under it (nothing, when containerd cleaned up).
func removeAll(t *testing.T, dir string) {
	t.Helper()
	if b, err := os.ReadFile("/proc/self/mounts"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) > 1 && strings.HasPrefix(f[1], dir+"/") {
				t.Errorf("still mounted after the stack stopped: %s", f[1])
				_ = syscall.Unmount(f[1], syscall.MNT_DETACH)
			}
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Errorf("remove %s: %v", dir, err)
	}
}

func waitReady(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	var last string
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			last = fmt.Sprintf("%d %s", resp.StatusCode, strings.TrimSpace(string(b)))
		} else {
			last = err.Error()
		}
		time.Sleep(time.Second)
	}
	t.Fatalf("%s not ready after 3 min: %s", url, last)
}

// commandTimeout bounds every command: a hang (an image pulled from an
// unreachable registry) fails the test naming the command instead of
// outliving it. Building the images cold on a loaded machine is the
// longest step.
const commandTimeout = 25 * time.Minute

// run runs a command in dir and returns its standard output; it fails the
// test with the command and its output.
func run(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.WaitDelay = 10 * time.Second
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s\n%s", filepath.Base(name), strings.Join(args, " "), err, tail(stdout.String(), 2000), tail(stderr.String(), 4000))
	}
	return stdout.String()
}

func runErr(dir string, env []string, name string, args ...string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	b, _ := cmd.CombinedOutput()
	return string(b)
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}
