package stack

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/stateguard/stateguard/pkg/harness/devcert"
)

// stackTLS holds the stack's CA and each service's serving certificate.
type stackTLS struct {
	ca     *devcert.CA
	caFile string
	files  map[string][2]string // service → cert file, key file
	pool   *x509.CertPool
}

// newStackTLS makes a CA valid for a year and a serving certificate for
// 127.0.0.1 and localhost per service, under dir.
func newStackTLS(dir string, services []string) (*stackTLS, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	ca, err := devcert.NewCA("stateguard local stack CA", 365*24*time.Hour)
	if err != nil {
		return nil, err
	}
	t := &stackTLS{ca: ca, caFile: filepath.Join(dir, "ca.crt"), files: map[string][2]string{}, pool: x509.NewCertPool()}
	if err := devcert.WriteFile(t.caFile, ca.PEM); err != nil {
		return nil, err
	}
	t.pool.AppendCertsFromPEM(ca.PEM)
	for _, name := range services {
		pair, err := ca.Issue(name, []string{"127.0.0.1", "localhost"}, 30*24*time.Hour)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		cert, key, err := pair.Write(dir, name)
		if err != nil {
			return nil, err
		}
		t.files[name] = [2]string{cert, key}
	}
	return t, nil
}

// env is the service's environment for HTTPS: its certificate and key
// (the services' --tls-cert-file and --tls-key-file).
func (t *stackTLS) env(name string) []string {
	f, ok := t.files[name]
	if !ok {
		return nil
	}
	return []string{"TLS_CERT_FILE=" + f[0], "TLS_KEY_FILE=" + f[1]}
}

// URL is the base URL of a service: https:// with Config.TLS.
func (s *Stack) URL(name string) string {
	if s.tls != nil {
		return "https://" + s.Addr[name]
	}
	return "http://" + s.Addr[name]
}

// HTTPClient is a client of the stack's services: it trusts the stack's CA
// with Config.TLS.
func (s *Stack) HTTPClient() *http.Client {
	if s.tls == nil {
		return &http.Client{Timeout: 60 * time.Second}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: s.tls.pool, MinVersion: tls.VersionTLS12}
	return &http.Client{Timeout: 60 * time.Second, Transport: tr}
}

// ServingFiles are the certificate and key files a service serves from
// (Config.TLS); replacing them (atomically) is how a rotated certificate
// reaches it, as the kubelet's projection of a Secret does in a cluster.
func (s *Stack) ServingFiles(name string) (certFile, keyFile string, ok bool) {
	if s.tls == nil {
		return "", "", false
	}
	f, ok := s.tls.files[name]
	return f[0], f[1], ok
}

// CA is the stack's certificate authority (Config.TLS), nil otherwise.
func (s *Stack) CA() *devcert.CA {
	if s.tls == nil {
		return nil
	}
	return s.tls.ca
}
