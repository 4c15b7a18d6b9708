package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/pkg/harness/kubetest"
	"github.com/stateguard/stateguard/pkg/harness/natstest"
	"github.com/stateguard/stateguard/services/correlator/internal/api"
	"github.com/stateguard/stateguard/services/correlator/internal/audit"
	"github.com/stateguard/stateguard/services/correlator/internal/config"
	"github.com/stateguard/stateguard/services/correlator/internal/engine"
	"github.com/stateguard/stateguard/services/correlator/internal/model"
	"github.com/stateguard/stateguard/services/correlator/internal/report"
)

// The control plane the policy, snapshot and check tests share, started
// by the first of them (the other tests need none).
var (
	kubeOnce     sync.Once
	kubeEnv      *kubetest.Env
	kubeStartErr error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if kubeEnv != nil {
		if err := kubeEnv.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "kubetest: stop control plane:", err)
		}
	}
	os.Exit(code)
}

// kube returns the shared control plane; a missing binary fails the test
// naming `make tools`.
func kube(t *testing.T) *kubetest.Env {
	t.Helper()
	kubeOnce.Do(func() { kubeEnv, kubeStartErr = kubetest.StartEnv(kubetest.Options{WithoutCertManager: true}) })
	if kubeStartErr != nil {
		t.Fatalf("kubetest: %v", kubeStartErr)
	}
	return kubeEnv
}

const (
	readToken     = "read-token-1"
	operatorToken = "operator-token-1"
	// consumerPrefix is the correlator engine's consumer prefix in tests.
	consumerPrefix = "ctl-test"
)

// correlator is a real correlator engine on a real JetStream behind the
// real API, as the CLI meets it.
type correlator struct {
	url    string
	nats   string
	client *events.Client
}

// startCorrelator runs the engine and the API (reads with readToken,
// writes with operatorToken named alice). /readyz answers as the
// service's does: ready when the connection is up and the streams exist.
func startCorrelator(t *testing.T) *correlator {
	t.Helper()
	srv := natstest.Run(t)
	client := natstest.Client(t, srv)
	eng, err := engine.New(t.Context(), engine.Options{Client: client, Rules: model.DefaultRules(), RulesVersion: config.RulesVersion(nil), Bucket: "ctl-test",
		Workers: 4, Consumer: consumerPrefix, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = eng.Stop(ctx)
	})
	read, err := api.ParseTokens([]byte("# readers\n"+readToken+"\n"), api.ScopeRead)
	if err != nil {
		t.Fatal(err)
	}
	op, err := api.ParseTokens([]byte("# operators: <token> <actor>\n"+operatorToken+" alice\n"), api.ScopeOperator)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	api.Register(mux, eng, read.Join(op), slog.New(slog.DiscardHandler), time.Now, api.WithPublisher(client))
	// As the correlator's run does: the rules kept by version for audit
	// verify, the report served.
	objs, err := audit.OpenObjects(t.Context(), client.JetStream(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := objs.Put(t.Context(), audit.RulesObject(config.RulesVersion(nil)), "application/yaml", nil); err != nil {
		t.Fatal(err)
	}
	gen := report.Generator{States: eng, Read: func(ctx context.Context) ([]audit.Record, error) {
		return audit.Read(ctx, client.JetStream(), audit.Streams)
	}}
	api.RegisterReport(mux, read.Join(op), gen.Handler(time.Now, api.ReportProblem(slog.New(slog.DiscardHandler))))
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if err := client.Ready(r.Context()); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
		}
	})
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	return &correlator{url: hs.URL, nats: srv.ClientURL(), client: client}
}

// result is what one run of the CLI printed and its exit code.
type result struct {
	stdout, stderr string
	code           int
}

// ctl runs the CLI with args and env (the process environment is never
// read), as main does: the error on stderr, its exit code.
func ctl(t *testing.T, env map[string]string, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	err := execute(t.Context(), args, func(k string) string { return env[k] }, &out, &errOut)
	if err != nil {
		errOut.WriteString("stateguardctl: " + err.Error() + "\n")
	}
	return result{stdout: out.String(), stderr: errOut.String(), code: exitCode(err)}
}

// must fails the test unless r exited 0.
func (r result) must(t *testing.T) result {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("exit %d, want 0\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	return r
}

// has fails the test unless stdout holds every want.
func (r result) has(t *testing.T, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(r.stdout, w) {
			t.Errorf("output lacks %q:\n%s", w, r.stdout)
		}
	}
}

// eventually retries cond every 100ms for up to 30s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after 30s: %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// kubeconfig writes the test control plane's kubeconfig and returns its path.
func kubeconfig(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := kube(t).WriteKubeconfig(path); err != nil {
		t.Fatal(err)
	}
	return path
}
