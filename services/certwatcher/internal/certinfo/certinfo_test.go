package certinfo

import (
	"bytes"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/stateguard/stateguard/services/certwatcher/internal/certgentest"
)

func TestParse(t *testing.T) {
	ca := certgentest.New(t, certgentest.CommonName("root"), certgentest.CA())
	leaf := certgentest.New(t, certgentest.CommonName("web"), certgentest.DNSNames("web.example"), certgentest.SignedBy(ca))
	truncated := []byte("-----BEGIN CERTIFICATE-----\n" + strings.Repeat("MIIB", 10) + "\n-----END CERTIFICATE-----\n")
	tests := []struct {
		name     string
		data     []byte
		subjects []string
		err      error
		errText  string
	}{
		{"a chain is parsed leaf first", certgentest.ChainPEM(leaf, ca), []string{"CN=web", "CN=root"}, nil, ""},
		{"raw DER is accepted", leaf.Cert.Raw, []string{"CN=web"}, nil, ""},
		{"a key next to the certificate is ignored", append(append([]byte{}, leaf.KeyPEM...), leaf.CertPEM...), []string{"CN=web"}, nil, ""},
		{"empty data", []byte(" \n"), nil, ErrEmpty, ""},
		{"text that is not PEM", []byte("hello, I am not a certificate"), nil, ErrNotPEM, ""},
		{"a private key where a certificate should be", leaf.KeyPEM, nil, ErrPrivateKey, ""},
		{"truncated DER inside PEM", truncated, nil, nil, "PEM block 1"},
		{"truncated raw DER", leaf.Cert.Raw[:40], nil, nil, "DER:"},
		{"PEM without a certificate block", []byte("-----BEGIN FOO-----\nAAAA\n-----END FOO-----\n"), nil, ErrNoCertificate, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			chain, err := Parse(tt.data)
			if tt.err != nil && !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if tt.errText != "" && (err == nil || !strings.Contains(err.Error(), tt.errText)) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.errText)
			}
			if tt.err == nil && tt.errText == "" && err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			var got []string
			for _, c := range chain.Certs {
				got = append(got, c.Subject.String())
			}
			if diff := cmp.Diff(tt.subjects, got); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
		})
	}
}

func TestParseErrorsNeverQuoteKeyMaterial(t *testing.T) {
	leaf := certgentest.New(t)
	_, err := Parse(leaf.KeyPEM)
	if err == nil {
		t.Fatal("no error for a private key")
	}
	if strings.Contains(err.Error(), "BEGIN") || strings.Contains(err.Error(), string(leaf.KeyPEM[30:60])) {
		t.Errorf("error quotes the key: %v", err)
	}
}

func TestFactsAndWeaknesses(t *testing.T) {
	now := time.Now()
	tests := []struct {
		name       string
		opts       []certgentest.Option
		keyType    string
		keyBits    int
		weaknesses []string
	}{
		{"ECDSA P-256 valid for 90 days is fine", nil, "ECDSA", 256, nil},
		{"RSA 2048 is fine", []certgentest.Option{certgentest.RSA(2048)}, "RSA", 2048, nil},
		{"RSA 1024 is weak", []certgentest.Option{certgentest.RSA(1024)}, "RSA", 1024, []string{WeakRSAKey}},
		{"SHA-1 signature is weak", []certgentest.Option{certgentest.RSA(2048), certgentest.SHA1()}, "RSA", 2048, []string{WeakSHA1}},
		{"expired", []certgentest.Option{certgentest.NotBefore(now.Add(-48 * time.Hour)), certgentest.NotAfter(now.Add(-time.Hour))}, "ECDSA", 256, []string{WeakExpired}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := certgentest.New(t, append([]certgentest.Option{certgentest.CommonName("x"), certgentest.DNSNames("x.example")}, tt.opts...)...)
			f := Facts(p.Cert)
			if f.KeyType != tt.keyType || f.KeyBits != tt.keyBits {
				t.Errorf("key = %s/%d, want %s/%d", f.KeyType, f.KeyBits, tt.keyType, tt.keyBits)
			}
			if f.Serial != p.Cert.SerialNumber.Text(16) || len(f.SHA256) != 64 || f.Subject != "CN=x" {
				t.Errorf("facts = %+v", f)
			}
			if diff := cmp.Diff([]string{"x.example"}, f.DNSNames); diff != "" {
				t.Errorf("SANs (-want +got)\n%s", diff)
			}
			if diff := cmp.Diff(tt.weaknesses, Weaknesses(p.Cert, now)); diff != "" {
				t.Errorf("weaknesses (-want +got)\n%s", diff)
			}
		})
	}
}

func TestCacheSharesParsedCertificates(t *testing.T) {
	ca := certgentest.New(t, certgentest.CommonName("ca"), certgentest.CA())
	a := certgentest.New(t, certgentest.CommonName("a"), certgentest.SignedBy(ca))
	b := certgentest.New(t, certgentest.CommonName("b"), certgentest.SignedBy(ca))
	c := NewCache(16)
	ca1, err := ParseCached(certgentest.ChainPEM(a, ca), c)
	if err != nil {
		t.Fatal(err)
	}
	ca2, err := ParseCached(certgentest.ChainPEM(b, ca), c)
	if err != nil {
		t.Fatal(err)
	}
	again, err := ParseCached(certgentest.ChainPEM(a, ca), c)
	if err != nil {
		t.Fatal(err)
	}
	if ca1.Certs[1] != ca2.Certs[1] {
		t.Error("the CA of two chains was parsed twice")
	}
	if again.Certs[0] != ca1.Certs[0] {
		t.Error("the same data was parsed twice")
	}
	if _, err := ParseCached([]byte("garbage"), c); !errors.Is(err, ErrNotPEM) {
		t.Errorf("garbage through the cache: %v", err)
	}
}

// pemCertBlocks is the reference for certBlocks: the bytes of every
// CERTIFICATE block encoding/pem finds, and whether it found any other.
func pemCertBlocks(data []byte) (ders [][]byte, others bool) {
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return ders, others
		}
		if b.Type != "CERTIFICATE" || len(b.Headers) > 0 {
			others = true
			continue
		}
		ders = append(ders, b.Bytes)
	}
}

func certBlocksCases(t testing.TB) map[string]struct {
	data []byte
	fast bool
} {
	ca := certgentest.New(t, certgentest.CommonName("ca"), certgentest.CA())
	leaf := certgentest.New(t, certgentest.CommonName("leaf"), certgentest.SignedBy(ca))
	chain := certgentest.ChainPEM(leaf, ca)
	crlf := bytes.ReplaceAll(chain, []byte("\n"), []byte("\r\n"))
	s := string(chain)
	return map[string]struct {
		data []byte
		fast bool
	}{
		"a chain as tools write it":            {chain, true},
		"one certificate":                      {leaf.CertPEM, true},
		"CRLF line ends":                       {crlf, true},
		"empty lines around and between":       {[]byte("\n\n" + string(leaf.CertPEM) + "\n\n" + string(ca.CertPEM) + "\n"), true},
		"no newline after the last END line":   {bytes.TrimSuffix(chain, []byte("\n")), true},
		"a private key after the certificate":  {append(append([]byte{}, leaf.CertPEM...), leaf.KeyPEM...), false},
		"a private key before the certificate": {append(append([]byte{}, leaf.KeyPEM...), leaf.CertPEM...), false},
		"text before the first block":          {[]byte("subject=CN=leaf\n" + s), false},
		"text after an END line":               {[]byte(strings.Replace(s, "CERTIFICATE-----\n", "CERTIFICATE----- trailing\n", 1)), false},
		"a space inside the base64":            {[]byte(strings.Replace(s, "\n", "\n ", 2)), false},
		"a tab inside the base64":              {[]byte(strings.Replace(s, "\n", "\n\t", 2)), false},
		"a header in the block":                {[]byte(strings.Replace(s, "-----\n", "-----\nProc-Type: 4,ENCRYPTED\n\n", 1)), false},
		"a BEGIN without END":                  {[]byte("-----BEGIN CERTIFICATE-----\nMIIB\n"), false},
		"an empty block":                       {[]byte("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n"), false},
		"a CR-only line end":                   {[]byte(strings.Replace(s, "\n", "\r", 1)), false},
		"bad base64":                           {[]byte(strings.Replace(s, "\n", "\n!!", 1)), false},
		"a mismatched END type":                {[]byte(strings.Replace(s, "END CERTIFICATE", "END FOO", 1)), false},
		"a second BEGIN before the END":        {[]byte("-----BEGIN CERTIFICATE-----\n" + s), false},
		"not PEM at all":                       {[]byte("hello"), false},
		"raw DER":                              {leaf.Cert.Raw, false},
		"nothing":                              {nil, false},
	}
}

func TestCertBlocksAgreesWithEncodingPEM(t *testing.T) {
	for name, tc := range certBlocksCases(t) {
		t.Run(name, func(t *testing.T) {
			got, ok := certBlocks(tc.data)
			if ok != tc.fast {
				t.Fatalf("fast path taken = %v, want %v", ok, tc.fast)
			}
			if !ok {
				return
			}
			want, others := pemCertBlocks(tc.data)
			if others {
				t.Fatal("fast path taken for data holding other PEM blocks")
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("(-encoding/pem +certBlocks)\n%s", diff)
			}
		})
	}
}

// FuzzCertBlocks checks that whatever certBlocks accepts, encoding/pem
// reads the same way.
func FuzzCertBlocks(f *testing.F) {
	for _, tc := range certBlocksCases(f) {
		f.Add(tc.data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, ok := certBlocks(data)
		if !ok {
			return
		}
		want, others := pemCertBlocks(data)
		if others {
			t.Fatal("fast path taken for data holding other PEM blocks")
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("(-encoding/pem +certBlocks)\n%s", diff)
		}
	})
}
