package manifests

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
	corev1 "k8s.io/api/core/v1"

	"github.com/stateguard/stateguard/pkg/events"
)

// pki writes a CA, a server certificate for localhost and one client
// certificate per name, in the layout cert-manager gives the Secrets
// (tls.crt, tls.key, ca.crt), under dir/<name>/.
func pki(t *testing.T, dir string, clients ...string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "stateguard-nats-ca"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	issue := func(name string, serial int64, usage []x509.ExtKeyUsage) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: usage,
			DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		keyDER, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		d := filepath.Join(dir, name)
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
		for file, data := range map[string][]byte{
			"tls.crt": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
			"tls.key": pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
			"ca.crt":  caPEM,
		} {
			if err := os.WriteFile(filepath.Join(d, file), data, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	issue("server", 2, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth})
	for i, c := range clients {
		issue(c, int64(10+i), []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth})
	}
}

// natsUsers are the NATS users of the shipped configuration.
// The console's user only reads (TestNATSConsoleOnlyReads).
var natsUsers = []string{"sastingest", "certwatcher", "snapshotter", "correlator", "admin", "console"}

func password(user string) string { return "test-" + user + "-password" }

// natsConfig writes the nats-config ConfigMap of an overlay into a
// directory, with the in-cluster paths and ports replaced by test ones, and
// sets the environment the StatefulSet gives the server. It returns the path
// of nats.conf.
func natsConfig(t *testing.T, overlay, dir string) string {
	t.Helper()
	objs := build(t, overlay)
	o := generated(objs, "ConfigMap", "nats-config")
	if o == nil {
		t.Fatal("no nats-config ConfigMap")
	}
	cm := convert[corev1.ConfigMap](t, o)
	replace := map[string][]struct{ old, new string }{
		"nats.conf": {
			{"listen: 0.0.0.0:4222", "listen: 127.0.0.1:-1"},
			{"http: 0.0.0.0:8222", "http: 127.0.0.1:-1"},
			{"/etc/nats/tls/", filepath.Join(dir, "server") + "/"},
			{"/data/jetstream", filepath.Join(dir, "jetstream")},
			{"/var/run/nats/nats.pid", filepath.Join(dir, "nats.pid")},
		},
		"cluster.conf": {
			{"/etc/nats/tls/", filepath.Join(dir, "server") + "/"},
		},
	}
	for name, data := range cm.Data {
		for _, r := range replace[name] {
			if !strings.Contains(data, r.old) {
				if name == "cluster.conf" && overlay == "dev" {
					continue // no cluster, no TLS paths
				}
				t.Fatalf("%s of %s no longer contains %q: update this test", name, overlay, r.old)
			}
			data = strings.ReplaceAll(data, r.old, r.new)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// The StatefulSet's environment.
	t.Setenv("POD_NAME", "nats-0")
	for _, u := range natsUsers {
		t.Setenv(strings.ToUpper(u)+"_PASSWORD", password(u))
	}
	return filepath.Join(dir, "nats.conf")
}

func TestNATSProdConfigParses(t *testing.T) {
	dir := t.TempDir()
	pki(t, dir)
	opts, err := server.ProcessConfigFile(natsConfig(t, "prod", dir))
	if err != nil {
		t.Fatal(err)
	}
	var routes []string
	for _, r := range opts.Routes {
		routes = append(routes, r.Host)
	}
	want := []string{"nats-0.nats-headless.stateguard.svc:6222", "nats-1.nats-headless.stateguard.svc:6222", "nats-2.nats-headless.stateguard.svc:6222"}
	switch {
	case !opts.JetStream || !opts.SyncAlways:
		t.Errorf("jetstream %v, sync always %v; want both", opts.JetStream, opts.SyncAlways)
	case opts.Cluster.Name != "stateguard" || opts.Cluster.Port != 6222:
		t.Errorf("cluster %q on %d, want stateguard on 6222", opts.Cluster.Name, opts.Cluster.Port)
	case opts.Cluster.TLSConfig == nil:
		t.Error("routes without TLS")
	case !slices.Equal(routes, want):
		t.Errorf("routes %v, want %v", routes, want)
	case opts.ServerName != "nats-0":
		t.Errorf("server_name %q, want the pod name nats-0", opts.ServerName)
	case opts.TLSConfig == nil || opts.TLSConfig.ClientAuth != tls.RequireAndVerifyClientCert:
		t.Error("clients are not required to present a certificate")
	}
}

// deniedPublish publishes a core NATS message and waits for the server's
// answer (a flush): the server reports a permissions violation for that
// subject before it answers the flush's PING.
func deniedPublish(c *events.Client, subject string) error {
	nc := c.Conn()
	if err := nc.Publish(subject, []byte("{}")); err != nil {
		return fmt.Errorf("publish %s: %w", subject, err)
	}
	if err := nc.FlushTimeout(5 * time.Second); err != nil {
		return fmt.Errorf("flush after %s: %w", subject, err)
	}
	last := nc.LastError()
	if last == nil || !strings.Contains(last.Error(), "Permissions Violation for Publish to \""+subject+"\"") {
		return fmt.Errorf("publish to %s was not refused (last error: %w)", subject, last)
	}
	return nil
}

func waitForMessage(ctx context.Context, js jetstream.JetStream, stream, subject string) (*jetstream.RawStreamMsg, error) {
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return nil, err
	}
	for {
		m, err := s.GetLastMsgForSubject(ctx, subject)
		if err == nil {
			return m, nil
		}
		if !errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}
