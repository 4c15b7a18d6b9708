package certgentest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"testing"
	"time"
)

// Pair is a certificate and its private key.
type Pair struct {
	Cert    *x509.Certificate
	Key     crypto.Signer
	CertPEM []byte
	KeyPEM  []byte
}

type spec struct {
	tmpl    x509.Certificate
	rsaBits int
	sigAlg  x509.SignatureAlgorithm
	parent  *Pair
}

// Option changes the certificate being built.
type Option func(*spec)

// CommonName sets the subject CN.
func CommonName(cn string) Option { return func(s *spec) { s.tmpl.Subject.CommonName = cn } }

// Organization sets the subject O.
func Organization(o string) Option {
	return func(s *spec) { s.tmpl.Subject.Organization = []string{o} }
}

// DNSNames sets the DNS SANs.
func DNSNames(n ...string) Option { return func(s *spec) { s.tmpl.DNSNames = n } }

// NotBefore sets the start of validity.
func NotBefore(t time.Time) Option { return func(s *spec) { s.tmpl.NotBefore = t } }

// NotAfter sets the end of validity.
func NotAfter(t time.Time) Option { return func(s *spec) { s.tmpl.NotAfter = t } }

// Serial sets the serial number.
func Serial(n int64) Option { return func(s *spec) { s.tmpl.SerialNumber = big.NewInt(n) } }

// RSA makes an RSA key of the given size instead of ECDSA P-256.
func RSA(bits int) Option { return func(s *spec) { s.rsaBits = bits } }

// SHA1 signs with SHA-1 (needs an RSA signer).
func SHA1() Option { return func(s *spec) { s.sigAlg = x509.SHA1WithRSA } }

// CA makes a CA certificate.
func CA() Option {
	return func(s *spec) {
		s.tmpl.IsCA = true
		s.tmpl.BasicConstraintsValid = true
		s.tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature
	}
}

// SignedBy signs with parent instead of self-signing.
func SignedBy(parent *Pair) Option { return func(s *spec) { s.parent = parent } }

// New builds a certificate, failing tb on error. Defaults: ECDSA P-256,
// valid from an hour ago for 90 days, self-signed, server auth.
func New(tb testing.TB, opts ...Option) *Pair {
	tb.Helper()
	p, err := Build(opts...)
	if err != nil {
		tb.Fatalf("certgentest: %v", err)
	}
	return p
}

// Build is New without a testing.TB, for benchmarks' setup and tools.
func Build(opts ...Option) (*Pair, error) {
	now := time.Now()
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return nil, err
	}
	s := spec{tmpl: x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "test"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(90 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}}
	for _, o := range opts {
		o(&s)
	}
	var key crypto.Signer
	if s.rsaBits > 0 {
		key, err = rsa.GenerateKey(rand.Reader, s.rsaBits)
	} else {
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	if err != nil {
		return nil, err
	}
	s.tmpl.SignatureAlgorithm = s.sigAlg
	parentCert, parentKey := &s.tmpl, key
	if s.parent != nil {
		parentCert, parentKey = s.parent.Cert, s.parent.Key
	}
	der, err := x509.CreateCertificate(rand.Reader, &s.tmpl, parentCert, key.Public(), parentKey)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return &Pair{
		Cert:    cert,
		Key:     key,
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	}, nil
}

// ChainPEM concatenates the PEM of the pairs' certificates.
func ChainPEM(pairs ...*Pair) []byte {
	var out []byte
	for _, p := range pairs {
		out = append(out, p.CertPEM...)
	}
	return out
}
