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
	"github.com/nats-io/nats.go"
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
var natsUsers = []string{"sastingest", "certwatcher", "snapshotter", "correlator", "admin"}

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

// TestNATSUsersAndPermissions starts a real NATS server from the dev
// overlay's configuration and connects as each service through pkg/events,
// with TLS client certificates and the service's password: each may ensure
// the streams, publish the events it produces (and nothing else), consume and
// dead-letter the events it consumes, and use its own buckets.
func TestNATSUsersAndPermissions(t *testing.T) {
	dir := t.TempDir()
	pki(t, dir, natsUsers...)
	opts, err := server.ProcessConfigFile(natsConfig(t, "dev", dir))
	if err != nil {
		t.Fatal(err)
	}
	if !opts.JetStream || !opts.SyncAlways {
		t.Fatalf("jetstream %v, sync always %v; want both", opts.JetStream, opts.SyncAlways)
	}
	opts.NoLog, opts.NoSigs = true, true
	srv, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	t.Cleanup(srv.Shutdown)
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}
	url := fmt.Sprintf("tls://localhost:%d", srv.Addr().(*net.TCPAddr).Port)

	connect := func(ctx context.Context, user, pass string, cert bool) (*events.Client, error) {
		cfg := events.ConnConfig{URL: url, User: user, Password: pass, TLSCA: filepath.Join(dir, "server", "ca.crt"), ReconnectWait: 50 * time.Millisecond}
		if cert {
			cfg.TLSCert, cfg.TLSKey = filepath.Join(dir, user, "tls.crt"), filepath.Join(dir, user, "tls.key")
		}
		return events.Connect(ctx, cfg, events.WithSource("/stateguard/"+user), events.WithPublishRetry(1, 50*time.Millisecond))
	}
	clients := map[string]*events.Client{}
	for _, u := range natsUsers {
		c, err := connect(t.Context(), u, password(u), true)
		if err != nil {
			t.Fatalf("connect as %s: %v", u, err)
		}
		t.Cleanup(func() { _ = c.Close(context.Background()) })
		// deniedPublish provokes permission errors on purpose; keep them
		// out of the test output (LastError still records them).
		c.Conn().SetErrorHandler(func(*nats.Conn, *nats.Subscription, error) {})
		clients[u] = c
	}

	t.Run("refused without client certificate or with a wrong password", func(t *testing.T) {
		for _, tc := range []struct {
			name, pass string
			cert       bool
		}{{"no client certificate", password("correlator"), false}, {"wrong password", "guess", true}} {
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
			c, err := connect(ctx, "correlator", tc.pass, tc.cert)
			cancel()
			if err == nil {
				_ = c.Close(context.Background())
				t.Errorf("%s: connected", tc.name)
			}
		}
	})

	for _, u := range natsUsers[:4] {
		if err := clients[u].EnsureStreams(t.Context(), events.StreamOptions{Replicas: 1}); err != nil {
			t.Fatalf("%s cannot ensure the streams: %v", u, err)
		}
	}

	t.Run("each service publishes its own events and no others", func(t *testing.T) {
		for _, u := range natsUsers[:4] {
			c := clients[u]
			for _, spec := range events.Catalogue {
				if spec.Producer == u {
					ev, err := c.NewEvent(spec.Type, "perm-"+spec.Type, spec.Payload)
					if err != nil {
						t.Fatal(err)
					}
					if err := c.Publish(t.Context(), ev); err != nil {
						t.Errorf("%s cannot publish its %s: %v", u, spec.Type, err)
					}
					continue
				}
				if err := deniedPublish(c, spec.Subject()); err != nil {
					t.Errorf("%s: %v", u, err)
				}
			}
			// Another service's buckets.
			for _, subj := range []string{"$KV.SARIF_UPLOADS.x", "$KV.certwatcher.x", "$KV.stateguard-correlator.x", "$O.SARIF_LOGS.M.x"} {
				if owner := bucketOwner(subj); owner != u {
					if err := deniedPublish(c, subj); err != nil {
						t.Errorf("%s: %v", u, err)
					}
				}
			}
			// Nobody deletes a stream or purges an event stream.
			for _, subj := range []string{"$JS.API.STREAM.DELETE.SNAPSHOT", "$JS.API.STREAM.PURGE.DECISION"} {
				if err := deniedPublish(c, subj); err != nil {
					t.Errorf("%s: %v", u, err)
				}
			}
		}
	})

	t.Run("each service consumes and dead-letters what it consumes", func(t *testing.T) {
		for _, u := range natsUsers[:4] {
			for _, spec := range events.Catalogue {
				if !slices.Contains(spec.Consumers, u) {
					continue
				}
				name := u + "-" + strings.ReplaceAll(strings.TrimPrefix(spec.Subject(), events.SubjectPrefix), ".", "-")
				got := make(chan string, 1)
				ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
				sub, err := clients[u].Consume(ctx, events.ConsumerConfig{
					Stream: spec.Stream(), Name: name, Subjects: []string{spec.Subject()}, AckWait: 5 * time.Second, MaxDeliver: 3,
				}, func(_ context.Context, ev events.Event) error {
					select {
					case got <- ev.Type():
					default:
					}
					return events.Permanent(errors.New("permission test"))
				})
				if err != nil {
					cancel()
					t.Errorf("%s cannot consume %s: %v", u, spec.Type, err)
					continue
				}
				select {
				case typ := <-got:
					if typ != spec.Type {
						t.Errorf("%s got %s, want %s", u, typ, spec.Type)
					}
				case <-ctx.Done():
					t.Errorf("%s received no %s", u, spec.Type)
				}
				// The dead letter reached the DEADLETTER stream.
				dl := events.DeadLetterSubject(spec.Stream(), name)
				if _, err := waitForMessage(ctx, clients["admin"].JetStream(), events.StreamDeadLetter, dl); err != nil {
					t.Errorf("%s: no dead letter on %s: %v", u, dl, err)
				}
				if err := sub.Stop(ctx); err != nil {
					t.Errorf("%s: stop consumer: %v", u, err)
				}
				cancel()
			}
		}
	})

	t.Run("each service uses its own buckets", func(t *testing.T) {
		for _, tc := range []struct{ user, kv, obj string }{
			{"sastingest", "SARIF_UPLOADS", "SARIF_BASELINES"},
			{"sastingest", "SARIF_DELIVERIES", "SARIF_LOGS"},
			{"certwatcher", "certwatcher", ""},
			{"correlator", "stateguard-correlator", ""},
		} {
			js := clients[tc.user].JetStream()
			kv, err := js.CreateOrUpdateKeyValue(t.Context(), jetstream.KeyValueConfig{Bucket: tc.kv})
			if err != nil {
				t.Errorf("%s: create KV %s: %v", tc.user, tc.kv, err)
				continue
			}
			for i := range 2 { // put, then overwrite
				if _, err := kv.Put(t.Context(), "k", []byte{byte(i)}); err != nil {
					t.Errorf("%s: put into KV %s: %v", tc.user, tc.kv, err)
				}
			}
			if e, err := kv.Get(t.Context(), "k"); err != nil || string(e.Value()) != "\x01" {
				t.Errorf("%s: get from KV %s: %v", tc.user, tc.kv, err)
			}
			if tc.obj == "" {
				continue
			}
			store, err := js.CreateOrUpdateObjectStore(t.Context(), jetstream.ObjectStoreConfig{Bucket: tc.obj})
			if err != nil {
				t.Errorf("%s: create object store %s: %v", tc.user, tc.obj, err)
				continue
			}
			for i := range 2 { // put, then replace (purges the old chunks)
				if _, err := store.PutBytes(t.Context(), "o", []byte(strings.Repeat("x", 1000*(i+1)))); err != nil {
					t.Errorf("%s: put into object store %s: %v", tc.user, tc.obj, err)
				}
			}
			if b, err := store.GetBytes(t.Context(), "o"); err != nil || len(b) != 2000 {
				t.Errorf("%s: get from object store %s: %d bytes, %v", tc.user, tc.obj, len(b), err)
			}
		}
	})
}

func bucketOwner(subject string) string {
	switch {
	case strings.Contains(subject, "SARIF_"):
		return "sastingest"
	case strings.HasPrefix(subject, "$KV.certwatcher."):
		return "certwatcher"
	case strings.HasPrefix(subject, "$KV.stateguard-correlator."):
		return "correlator"
	}
	return ""
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
