package main

import (
	"context"
	"log/slog"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/stateguard/stateguard/pkg/harness/kubetest"
	"github.com/stateguard/stateguard/pkg/harness/logtest"
	"github.com/stateguard/stateguard/pkg/harness/natstest"
	"github.com/stateguard/stateguard/pkg/harness/tlstest"
)

// TestServesHTTPS runs the snapshotter against a real API server with
// --tls-cert-file and --tls-key-file (given as environment variables, as
// the manifests do): the TLS conformance once it is ready.
func TestServesHTTPS(t *testing.T) {
	routeKlog(slog.New(slog.DiscardHandler))
	env := kubetest.Start(t, kubetest.Options{WithoutCertManager: true})
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := env.WriteKubeconfig(kubeconfig); err != nil {
		t.Fatal(err)
	}
	srv := natstest.Run(t)
	f := tlstest.New(t)
	addr := freeAddr(t)
	getenv := func(k string) string {
		return map[string]string{
			"KUBECONFIG": kubeconfig, "NATS_URL": srv.ClientURL(), "HTTP_ADDR": addr,
			"POD_NAMESPACE": "default", "POD_NAME": "snapshotter-0",
			"TLS_CERT_FILE": f.CertFile, "TLS_KEY_FILE": f.KeyFile,
		}[k]
	}
	out := &logtest.Buffer{}
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() { errc <- run(ctx, nil, getenv, out) }()
	t.Cleanup(func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	client := f.Client()
	err := wait.PollUntilContextTimeout(t.Context(), 200*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+addr+"/readyz", nil)
		resp, err := client.Do(req)
		if err != nil {
			return false, nil
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
	if err != nil {
		t.Fatalf("never ready over HTTPS: %v\nlogs:\n%s", err, out.String())
	}
	tlstest.Check(t, f, addr)
}
