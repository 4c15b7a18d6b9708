package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/pkg/harness/natstest"

	"github.com/stateguard/stateguard/services/certwatcher/internal/certgentest"
	"github.com/stateguard/stateguard/services/certwatcher/internal/streamtest"
)

// running starts certwatcher and returns its HTTP address; it stops at
// cleanup and the test fails if run returned an error.
func running(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan net.Addr, 1)
	bound = func(a net.Addr) { addrc <- a }
	var wg sync.WaitGroup
	errc := make(chan error, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		errc <- run(ctx, append([]string{"--http-addr", "127.0.0.1:0", "--log-level", "warn"}, args...), func(string) string { return "" }, io.Discard)
	}()
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		bound = nil
		if err := <-errc; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	select {
	case a := <-addrc:
		return a.String()
	case err := <-errc:
		t.Fatalf("run ended early: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("http server never listened")
	}
	return ""
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	if err := wait.PollUntilContextTimeout(t.Context(), 50*time.Millisecond, 60*time.Second, true, func(context.Context) (bool, error) { return cond(), nil }); err != nil {
		t.Fatalf("%s: never happened", what)
	}
}

// TestWatchDirWithoutKubernetes runs certwatcher with only --watch-dir: it
// publishes expiry events for files and exports metrics.
func TestWatchDirWithoutKubernetes(t *testing.T) {
	srv := natstest.Run(t)
	c := natstest.Client(t, srv)
	dir := t.TempDir()
	addr := running(t, []string{"--nats-url", srv.ClientURL(), "--watch-dir", dir, "--dir-rescan", "0"}...)
	eventually(t, "ready", func() bool { code, _ := get(t, "http://"+addr+"/readyz"); return code == http.StatusOK })

	// Written after start: only file notifications can find them.
	leaf := certgentest.New(t, certgentest.CommonName("edge"), certgentest.NotAfter(time.Now().Add(3*24*time.Hour)))
	if err := os.WriteFile(filepath.Join(dir, "edge.pem"), leaf.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "broken.crt"), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	var got []events.CertificateExpiring
	eventually(t, "expiring event for the file", func() bool {
		got = streamtest.Payloads[events.CertificateExpiring](t, streamtest.Stored(t, c, events.TypeCertificateExpiring))
		return len(got) > 0
	})
	if p := got[0]; p.Source.Path != filepath.Join(dir, "edge.pem") || p.Threshold != "7d" || p.Certificate.Subject != "CN=edge" {
		t.Errorf("event = %+v", p)
	}
	eventually(t, "metrics", func() bool {
		_, body := get(t, "http://"+addr+"/metrics")
		return strings.Contains(body, "x509_read_errors 1") &&
			strings.Contains(body, `x509_cert_not_after{filename="edge.pem"`) &&
			strings.Contains(body, fmt.Sprintf(`serial_number="%s"`, leaf.Cert.SerialNumber.String()))
	})
}

// TestClusterDiscoveryPublishesWithUsers runs certwatcher against the API
// server: a Secret mounted by a pod yields an event naming the pod.
func TestClusterDiscoveryPublishesWithUsers(t *testing.T) {
	ctx := t.Context()
	ns := fmt.Sprintf("app-%d", time.Now().UnixNano()%1e6)
	cs := cluster.Client
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	leaf := certgentest.New(t, certgentest.CommonName("shop"), certgentest.NotAfter(time.Now().Add(20*24*time.Hour)))
	if _, err := cs.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "shop"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "example/shop:1"}},
			Volumes: []corev1.Volume{{Name: "tls", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "shop-tls"}}}}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	srv := natstest.Run(t)
	c := natstest.Client(t, srv)
	addr := running(t, []string{"--nats-url", srv.ClientURL(), "--namespace", ns, "--cluster", "on", "--kubeconfig", cluster.Kubeconfig}...)
	eventually(t, "ready", func() bool { code, _ := get(t, "http://"+addr+"/readyz"); return code == http.StatusOK })
	if _, err := cs.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "shop-tls"}, Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{corev1.TLSCertKey: leaf.CertPEM, corev1.TLSPrivateKeyKey: leaf.KeyPEM},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var got []events.CertificateExpiring
	eventually(t, "expiring event for the secret", func() bool {
		got = streamtest.Payloads[events.CertificateExpiring](t, streamtest.Stored(t, c, events.TypeCertificateExpiring))
		return len(got) > 0
	})
	p := got[0]
	if p.Source.Secret != "shop-tls" || p.Threshold != "30d" || len(p.Users.Pods) != 1 || p.Users.Pods[0].Name != "shop" {
		t.Errorf("event = %+v", p)
	}
	_, body := get(t, "http://"+addr+"/metrics")
	if !strings.Contains(body, `secret_name="shop-tls"`) {
		t.Error("no metric for the secret")
	}
}
