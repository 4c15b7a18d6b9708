package metrics

import (
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/stateguard/stateguard/pkg/events"

	"github.com/stateguard/stateguard/services/certwatcher/internal/certgentest"
	"github.com/stateguard/stateguard/services/certwatcher/internal/inventory"
)

func TestCollectorUsesExporterNames(t *testing.T) {
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	ca := certgentest.New(t, certgentest.CommonName("Root"), certgentest.Organization("Acme"), certgentest.CA(), certgentest.Serial(7),
		certgentest.NotBefore(now.Add(-1000*time.Hour)), certgentest.NotAfter(now.Add(-time.Hour)))
	leaf := certgentest.New(t, certgentest.CommonName("web"), certgentest.Serial(255), certgentest.SignedBy(ca),
		certgentest.NotBefore(now.Add(-time.Hour)), certgentest.NotAfter(now.Add(24*time.Hour)))
	store := inventory.New(nil)
	store.ReplaceSecret("shop", "web-tls", []inventory.Record{
		{Source: events.CertificateSource{Namespace: "shop", Secret: "web-tls", Key: "tls.crt"}, Chain: []*x509.Certificate{leaf.Cert, ca.Cert}},
		{Source: events.CertificateSource{Namespace: "shop", Secret: "web-tls", Key: "ca.crt"}, Err: errors.New("not PEM")},
	})
	store.ReplaceFile("/etc/ssl/x.pem", []inventory.Record{{Source: events.CertificateSource{Path: "/etc/ssl/x.pem"}, Err: errors.New("empty")}})
	c := &Collector{Store: store, Clock: clocktesting.NewFakeClock(now)}

	secretLabels := `secret_key="tls.crt",secret_name="web-tls",secret_namespace="shop"`
	want := fmt.Sprintf(`
# HELP x509_cert_expired Indicates if the certificate is expired
# TYPE x509_cert_expired gauge
x509_cert_expired{filename="",filepath="",issuer_C="",issuer_CN="Root",issuer_O="Acme",issuer_OU="",%[1]s,serial_number="255",subject_C="",subject_CN="web",subject_O="",subject_OU=""} 0
x509_cert_expired{filename="",filepath="",issuer_C="",issuer_CN="Root",issuer_O="Acme",issuer_OU="",%[1]s,serial_number="7",subject_C="",subject_CN="Root",subject_O="Acme",subject_OU=""} 1
# HELP x509_cert_not_after Indicates the certificate's not after timestamp
# TYPE x509_cert_not_after gauge
x509_cert_not_after{filename="",filepath="",issuer_C="",issuer_CN="Root",issuer_O="Acme",issuer_OU="",%[1]s,serial_number="255",subject_C="",subject_CN="web",subject_O="",subject_OU=""} %[2]d
x509_cert_not_after{filename="",filepath="",issuer_C="",issuer_CN="Root",issuer_O="Acme",issuer_OU="",%[1]s,serial_number="7",subject_C="",subject_CN="Root",subject_O="Acme",subject_OU=""} %[3]d
# HELP x509_read_errors Indicates the number of read failure(s)
# TYPE x509_read_errors gauge
x509_read_errors 2
`, secretLabels, now.Add(24*time.Hour).Unix(), now.Add(-time.Hour).Unix())
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "x509_cert_expired", "x509_cert_not_after", "x509_read_errors"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(c, "x509_cert_error"); n != 3 {
		t.Errorf("x509_cert_error series = %d, want 3", n)
	}
}

// stateguard's own names carry exactly the series of the exporter's names.
func TestCollectorAlsoUsesTheStateguardPrefix(t *testing.T) {
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	leaf := certgentest.New(t, certgentest.CommonName("web"), certgentest.Serial(3),
		certgentest.NotBefore(now.Add(-time.Hour)), certgentest.NotAfter(now.Add(24*time.Hour)))
	store := inventory.New(nil)
	store.ReplaceSecret("shop", "web-tls", []inventory.Record{
		{Source: events.CertificateSource{Namespace: "shop", Secret: "web-tls", Key: "tls.crt"}, Chain: []*x509.Certificate{leaf.Cert}},
		{Source: events.CertificateSource{Namespace: "shop", Secret: "web-tls", Key: "ca.crt"}, Err: errors.New("not PEM")},
	})
	c := &Collector{Store: store, Clock: clocktesting.NewFakeClock(now)}
	for _, name := range []string{"cert_not_after", "cert_not_before", "cert_expired", "cert_expires_in_seconds", "cert_error", "read_errors"} {
		ours, theirs := testutil.CollectAndCount(c, "stateguard_certwatcher_"+name), testutil.CollectAndCount(c, "x509_"+name)
		if ours == 0 || ours != theirs {
			t.Errorf("%s: %d series as stateguard_certwatcher_%[1]s, %d as x509_%[1]s; want the same, > 0", name, ours, theirs)
		}
	}
	want := `
# HELP stateguard_certwatcher_cert_expires_in_seconds Indicates the remaining time before the certificate's not after timestamp
# TYPE stateguard_certwatcher_cert_expires_in_seconds gauge
stateguard_certwatcher_cert_expires_in_seconds{filename="",filepath="",issuer_C="",issuer_CN="web",issuer_O="",issuer_OU="",secret_key="tls.crt",secret_name="web-tls",secret_namespace="shop",serial_number="3",subject_C="",subject_CN="web",subject_O="",subject_OU=""} 86400
# HELP stateguard_certwatcher_read_errors Indicates the number of read failure(s)
# TYPE stateguard_certwatcher_read_errors gauge
stateguard_certwatcher_read_errors 1
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "stateguard_certwatcher_cert_expires_in_seconds", "stateguard_certwatcher_read_errors"); err != nil {
		t.Error(err)
	}
}
