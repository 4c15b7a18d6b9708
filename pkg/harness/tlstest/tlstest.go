package tlstest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Files is a CA and the serving certificate it signed, written under Dir
// as kubelet writes a kubernetes.io/tls Secret: Dir/tls.crt and
// Dir/tls.key are symlinks into Dir/..data, itself a symlink to a
// timestamped directory.
type Files struct {
	Dir      string
	CertFile string // Dir/tls.crt
	KeyFile  string // Dir/tls.key
	CAFile   string // Dir/ca.crt
	// Serial is the serial number of the serving certificate now on disk.
	Serial *big.Int

	ca    *x509.Certificate
	caKey *ecdsa.PrivateKey
	gen   int
}

// New makes a CA and a serving certificate in a temporary directory.
func New(t testing.TB) *Files {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          serial(t),
		Subject:               pkix.Name{CommonName: "stateguard test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	f := &Files{
		Dir: dir, CertFile: filepath.Join(dir, "tls.crt"), KeyFile: filepath.Join(dir, "tls.key"),
		CAFile: filepath.Join(dir, "ca.crt"), ca: ca, caKey: key,
	}
	f.Rotate(t)
	for _, name := range []string{"tls.crt", "tls.key", "ca.crt"} {
		if err := os.Symlink(filepath.Join("..data", name), filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// Args are the service flags that serve these files.
func (f *Files) Args() []string {
	return []string{"--tls-cert-file=" + f.CertFile, "--tls-key-file=" + f.KeyFile}
}

// Rotate issues a new serving certificate (new key, new serial) and swaps
// it in the way kubelet updates a Secret volume: a new timestamped
// directory, then an atomic rename of the ..data symlink.
func (f *Files) Rotate(t testing.TB) {
	t.Helper()
	key := newKey(t)
	f.gen++
	sn := serial(t)
	certPEM := f.sign(t, &x509.Certificate{
		SerialNumber: sn,
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, &key.PublicKey)
	ts := filepath.Join(f.Dir, fmt.Sprintf("..gen_%d", f.gen))
	if err := os.Mkdir(ts, 0o700); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(ts, "tls.crt"), certPEM)
	write(t, filepath.Join(ts, "tls.key"), keyPEM(t, key))
	write(t, filepath.Join(ts, "ca.crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.ca.Raw}))
	tmp := filepath.Join(f.Dir, "..data_tmp")
	if err := os.Symlink(filepath.Base(ts), tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(f.Dir, "..data")); err != nil {
		t.Fatal(err)
	}
	f.Serial = sn
}

// ClientCert is a client certificate for cn signed by the CA.
func (f *Files) ClientCert(t testing.TB, cn string) tls.Certificate {
	t.Helper()
	key := newKey(t)
	certPEM := f.sign(t, &x509.Certificate{
		SerialNumber: serial(t),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, &key.PublicKey)
	c, err := tls.X509KeyPair(certPEM, keyPEM(t, key))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Pool holds the CA.
func (f *Files) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(f.ca)
	return p
}

// Client is an HTTPS client that trusts the CA and presents certs; it opens
// a new connection for every request, so each one sees the certificate
// served at that moment.
func (f *Files) Client(certs ...tls.Certificate) *http.Client {
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{RootCAs: f.Pool(), Certificates: certs, MinVersion: tls.VersionTLS12},
			DisableKeepAlives: true,
		},
	}
}

// ServedSerial opens a new TLS connection to addr, verifies the server
// against the CA for 127.0.0.1, and returns the serial of the certificate
// it presented.
func (f *Files) ServedSerial(ctx context.Context, addr string) (*big.Int, error) {
	d := tls.Dialer{Config: &tls.Config{RootCAs: f.Pool(), ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.(*tls.Conn).ConnectionState().PeerCertificates[0].SerialNumber, nil
}

// Check is the TLS conformance of a service serving f on addr (host:port):
// GET /healthz over HTTPS verified against the CA answers 200 with the
// certificate on disk; a TLS 1.1 client and a plain-HTTP client get no
// answer from the service; after Rotate the next connection is served the
// new serial, with no restart.
func Check(t *testing.T, f *Files, addr string) {
	t.Helper()
	ctx := t.Context()
	got, err := f.ServedSerial(ctx, addr)
	if err != nil {
		t.Fatalf("TLS handshake with %s: %v", addr, err)
	}
	if got.Cmp(f.Serial) != 0 {
		t.Fatalf("served serial %x, want the one on disk %x", got, f.Serial)
	}
	if code, body := get(ctx, t, f.Client(), "https://"+addr+"/healthz"); code != http.StatusOK {
		t.Fatalf("GET /healthz over HTTPS: %d %s", code, body)
	}

	old := tls.Dialer{Config: &tls.Config{RootCAs: f.Pool(), ServerName: "127.0.0.1", MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}} //nolint:gosec // the point: TLS 1.1 must be refused
	if c, err := old.DialContext(ctx, "tcp", addr); err == nil {
		c.Close()
		t.Error("a TLS 1.1 handshake succeeded; the minimum is TLS 1.2")
	}

	plain := &http.Client{Timeout: 30 * time.Second}
	if code, body := get(ctx, t, plain, "http://"+addr+"/healthz"); code == http.StatusOK {
		t.Errorf("plain HTTP was served: %d %q", code, body)
	}

	// The files are looked at during every handshake: the first new
	// connection after the swap is served the new certificate.
	before := f.Serial
	f.Rotate(t)
	got, err = f.ServedSerial(ctx, addr)
	if err != nil {
		t.Fatalf("TLS handshake after rotation: %v", err)
	}
	if got.Cmp(f.Serial) != 0 {
		t.Fatalf("after rotation the server presents %x, want the new %x (was %x)", got, f.Serial, before)
	}
	if code, body := get(ctx, t, f.Client(), "https://"+addr+"/healthz"); code != http.StatusOK {
		t.Fatalf("GET /healthz after rotation: %d %s", code, body)
	}
}

// get returns the status and body of GET url; a transport error is status 0
// and its message.
func get(ctx context.Context, t *testing.T, c *http.Client, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(b)
}

func (f *Files) sign(t testing.TB, tmpl *x509.Certificate, pub *ecdsa.PublicKey) []byte {
	t.Helper()
	der, err := x509.CreateCertificate(rand.Reader, tmpl, f.ca, pub, f.caKey)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func keyPEM(t testing.TB, k *ecdsa.PrivateKey) []byte {
	t.Helper()
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
}

func serial(t testing.TB) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func write(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}
