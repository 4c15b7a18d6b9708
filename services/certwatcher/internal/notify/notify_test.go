package notify

import (
	"context"
	"crypto/x509"
	"log/slog"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/pkg/harness/natstest"

	"github.com/stateguard/stateguard/services/certwatcher/internal/certgentest"
	"github.com/stateguard/stateguard/services/certwatcher/internal/expiry"
	"github.com/stateguard/stateguard/services/certwatcher/internal/inventory"
	"github.com/stateguard/stateguard/services/certwatcher/internal/marks"
	"github.com/stateguard/stateguard/services/certwatcher/internal/streamtest"
)

const day = 24 * time.Hour

type fakeContext struct{}

func (fakeContext) Users(ns, secret string) events.CertificateUsers {
	return events.CertificateUsers{Workloads: []events.WorkloadRef{{Kind: "Deployment", Namespace: ns, Name: "uses-" + secret}}}
}

func (fakeContext) CertManager(string, string) *events.CertManagerInfo { return nil }

func newNotifier(t *testing.T, c *events.Client, store *inventory.Store, clk *clocktesting.FakeClock) *Notifier {
	t.Helper()
	kv, err := marks.Open(t.Context(), c.JetStream(), "certwatcher", 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	ths, err := expiry.ParseThresholds(expiry.DefaultThresholds)
	if err != nil {
		t.Fatal(err)
	}
	return &Notifier{Store: store, Thresholds: ths, Marks: kv, Publisher: c, Context: fakeContext{}, Clock: clk, Log: slog.New(slog.DiscardHandler)}
}

func thresholdsOf(t *testing.T, c *events.Client) []string {
	t.Helper()
	var out []string
	for _, p := range streamtest.Payloads[events.CertificateExpiring](t, streamtest.Stored(t, c, events.TypeCertificateExpiring)) {
		out = append(out, p.Source.Secret+":"+p.Threshold)
	}
	return out
}

// TestThresholdsFireOnceEachAndNotAgainAfterRestart walks a certificate
// through its life with a fake clock, restarting the notifier (and the
// NATS server) halfway.
func TestThresholdsFireOnceEachAndNotAgainAfterRestart(t *testing.T) {
	storeDir := t.TempDir()
	srv := natstest.Run(t, natstest.WithStoreDir(storeDir))
	c := natstest.Client(t, srv)
	start := time.Now().Truncate(time.Second)
	clk := clocktesting.NewFakeClock(start)
	leaf := certgentest.New(t, certgentest.CommonName("web"), certgentest.NotBefore(start.Add(-day)), certgentest.NotAfter(start.Add(40*day)))
	store := inventory.New(nil)
	store.ReplaceSecret("shop", "web-tls", []inventory.Record{{
		Source: events.CertificateSource{Namespace: "shop", Secret: "web-tls", Key: "tls.crt"}, Chain: []*x509.Certificate{leaf.Cert},
	}})
	n := newNotifier(t, c, store, clk)
	ctx := t.Context()
	steps := []struct {
		at   time.Duration // after start
		want []string      // all events so far
	}{
		{0, nil},
		{10 * day, []string{"web-tls:30d"}},
		{11 * day, []string{"web-tls:30d"}},
		{27 * day, []string{"web-tls:30d", "web-tls:14d"}},
		{34 * day, []string{"web-tls:30d", "web-tls:14d", "web-tls:7d"}},
	}
	for _, s := range steps {
		clk.SetTime(start.Add(s.at))
		if err := n.EvaluateAll(ctx); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(s.want, thresholdsOf(t, c)); diff != "" {
			t.Fatalf("at +%s (-want +got)\n%s", s.at, diff)
		}
	}

	// Restart: a new notifier, a new connection, the same KV bucket.
	srv.Shutdown()
	srv.WaitForShutdown()
	srv2 := natstest.Run(t, natstest.WithStoreDir(storeDir))
	c2 := natstest.Client(t, srv2)
	n2 := newNotifier(t, c2, store, clk)
	if err := n2.EvaluateAll(ctx); err != nil {
		t.Fatal(err)
	}
	want := []string{"web-tls:30d", "web-tls:14d", "web-tls:7d"}
	if diff := cmp.Diff(want, thresholdsOf(t, c2)); diff != "" {
		t.Fatalf("after restart (-want +got)\n%s", diff)
	}
	for _, s := range []struct {
		at   time.Duration
		want []string
	}{
		{39*day + time.Hour, append(want, "web-tls:1d")},
		{41 * day, append(want, "web-tls:1d", "web-tls:expired")},
		{50 * day, append(want, "web-tls:1d", "web-tls:expired")},
	} {
		clk.SetTime(start.Add(s.at))
		if err := n2.EvaluateAll(ctx); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(s.want, thresholdsOf(t, c2)); diff != "" {
			t.Fatalf("at +%s (-want +got)\n%s", s.at, diff)
		}
	}
	last := streamtest.Payloads[events.CertificateExpiring](t, streamtest.Stored(t, c2, events.TypeCertificateExpiring))
	got := last[len(last)-1]
	if got.Certificate.Serial != leaf.Cert.SerialNumber.Text(16) || got.DaysLeft >= 0 ||
		len(got.Users.Workloads) != 1 || got.Users.Workloads[0].Name != "uses-web-tls" {
		t.Errorf("expired event = %+v", got)
	}
}

func TestWeakAndChainedCertificates(t *testing.T) {
	srv := natstest.Run(t)
	c := natstest.Client(t, srv)
	now := time.Now()
	clk := clocktesting.NewFakeClock(now)
	ca := certgentest.New(t, certgentest.CommonName("ca"), certgentest.CA(), certgentest.NotAfter(now.Add(3*day)))
	leaf := certgentest.New(t, certgentest.CommonName("api"), certgentest.SignedBy(ca), certgentest.NotAfter(now.Add(300*day)))
	weak := certgentest.New(t, certgentest.CommonName("old"), certgentest.RSA(1024), certgentest.SHA1(), certgentest.NotAfter(now.Add(300*day)))
	store := inventory.New(nil)
	store.ReplaceSecret("a", "chained", []inventory.Record{{
		Source: events.CertificateSource{Namespace: "a", Secret: "chained", Key: "tls.crt"}, Chain: []*x509.Certificate{leaf.Cert, ca.Cert},
	}})
	store.ReplaceFile("/etc/ssl/old.pem", []inventory.Record{{Source: events.CertificateSource{Path: "/etc/ssl/old.pem"}, Chain: []*x509.Certificate{weak.Cert}}})
	n := newNotifier(t, c, store, clk)
	for range 2 {
		if err := n.EvaluateAll(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	got := streamtest.Payloads[events.CertificateExpiring](t, streamtest.Stored(t, c, events.TypeCertificateExpiring))
	type summary struct {
		Subject, Threshold string
		Weaknesses         []string
		Chain              int
		Path               string
	}
	var sums []summary
	for _, p := range got {
		sums = append(sums, summary{p.Certificate.Subject, p.Threshold, p.Weaknesses, len(p.Chain), p.Source.Path})
	}
	// Files sort before Secrets; the leaf has 300 days left, its CA 3.
	want := []summary{
		{"CN=old", Weak, []string{"rsa-key-too-small", "sha1-signature"}, 0, "/etc/ssl/old.pem"},
		{"CN=ca", "7d", nil, 2, ""},
	}
	if diff := cmp.Diff(want, sums); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}
}
