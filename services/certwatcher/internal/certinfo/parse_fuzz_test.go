package certinfo

import (
	"bytes"
	"crypto/x509"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stateguard/stateguard/services/certwatcher/internal/certgentest"
)

// FuzzParse feeds Parse what a Secret or a watched file may hold: PEM with
// any blocks, DER, text. Parse never panics; it returns a non-empty chain
// or an error, never both; the cached parse (cold and warm) agrees with the
// uncached one; an error does not echo the input; every parsed certificate
// yields its facts, key info and weaknesses; and data Parse accepts as PEM
// is data HasCertificateBlock recognises.
func FuzzParse(f *testing.F) {
	ca := certgentest.New(f, certgentest.CommonName("fuzz-ca"), certgentest.CA())
	leaf := certgentest.New(f, certgentest.CommonName("fuzz-leaf"), certgentest.DNSNames("leaf.example"), certgentest.SignedBy(ca))
	weak := certgentest.New(f, certgentest.CommonName("weak"), certgentest.RSA(1024), certgentest.SHA1())
	for _, tc := range certBlocksCases(f) {
		f.Add(tc.data)
	}
	f.Add(certgentest.ChainPEM(leaf, ca))
	f.Add(leaf.Cert.Raw)
	f.Add(append(append([]byte{}, leaf.Cert.Raw...), ca.Cert.Raw...))
	f.Add(leaf.Cert.Raw[:40])
	f.Add(weak.CertPEM)
	f.Add(leaf.KeyPEM)
	f.Add(append(append([]byte{}, leaf.KeyPEM...), leaf.CertPEM...))
	f.Add([]byte("-----BEGIN FOO-----\nAAAA\n-----END FOO-----\n"))
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nMIIBMIIB\n-----END CERTIFICATE-----\n"))
	f.Add([]byte{0x30, 0x82, 0x01})
	f.Add([]byte(" \n"))
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, data []byte) {
		chain, err := Parse(data)
		if err != nil {
			if len(chain.Certs) != 0 {
				t.Fatalf("an error (%v) and %d certificates", err, len(chain.Certs))
			}
			if msg := err.Error(); len(data) >= 16 && strings.Contains(msg, string(data)) {
				t.Fatalf("the error echoes the input: %q", msg)
			}
		} else if len(chain.Certs) == 0 {
			t.Fatal("no error and no certificate")
		}
		cache := NewCache(8)
		for round := range 2 { // cold, then warm
			cached, cerr := ParseCached(data, cache)
			if (cerr == nil) != (err == nil) || (err != nil && cerr.Error() != err.Error() && !errors.Is(cerr, err)) {
				t.Fatalf("round %d: cached parse says %v, uncached %v", round, cerr, err)
			}
			if len(cached.Certs) != len(chain.Certs) {
				t.Fatalf("round %d: cached parse has %d certificates, uncached %d", round, len(cached.Certs), len(chain.Certs))
			}
			for i := range cached.Certs {
				if !bytes.Equal(cached.Certs[i].Raw, chain.Certs[i].Raw) {
					t.Fatalf("round %d: certificate %d differs between the cached and uncached parse", round, i)
				}
			}
		}
		if err != nil {
			return
		}
		for _, c := range chain.Certs {
			_ = Facts(c)
			_, _ = KeyInfo(c)
			_ = Weaknesses(c, now)
			if len(Fingerprint(c)) != 64 {
				t.Fatalf("fingerprint %q", Fingerprint(c))
			}
		}
		if !HasCertificateBlock(data) {
			if _, derr := x509.ParseCertificates(data); derr != nil {
				t.Fatal("Parse read certificates from PEM in which HasCertificateBlock sees none")
			}
		}
	})
}
