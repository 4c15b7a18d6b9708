package certinfo

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/stateguard/stateguard/pkg/events"
)

// Weakness names reported in events.CertificateExpiring.Weaknesses.
const (
	WeakRSAKey   = "rsa-key-too-small"
	WeakSHA1     = "sha1-signature"
	WeakMD5      = "md5-signature"
	WeakExpired  = "expired"
	WeakNotValid = "not-yet-valid"
)

// MinRSABits is the smallest RSA modulus not reported as weak.
const MinRSABits = 2048

// Errors describing unreadable certificate data. They never quote the data.
var (
	ErrEmpty         = errors.New("empty")
	ErrNotPEM        = errors.New("neither PEM nor DER certificate data")
	ErrPrivateKey    = errors.New("holds a private key where a certificate should be")
	ErrNoCertificate = errors.New("no CERTIFICATE block in PEM data")
)

// Chain is a parsed certificate chain, leaf first.
type Chain struct {
	Certs []*x509.Certificate
}

// Leaf returns the first certificate.
func (c Chain) Leaf() *x509.Certificate { return c.Certs[0] }

// Parse reads every certificate in data, which is PEM (any number of
// CERTIFICATE blocks, other blocks ignored) or a single DER certificate.
// A private key in place of certificates, truncated or corrupt DER, and
// bytes that are neither PEM nor DER are errors.
func Parse(data []byte) (Chain, error) { return ParseCached(data, nil) }

// ParseCached is Parse with a cache of parsed certificates (nil for none).
// Certificates from the cache are shared: callers must not modify them.
func ParseCached(data []byte, cache *Cache) (Chain, error) {
	if cache == nil {
		return parse(data, nil)
	}
	sum := sha256.Sum256(data)
	if ch, ok := cache.chain(sum); ok {
		return Chain{Certs: ch}, nil
	}
	c, err := parse(data, cache)
	if err == nil {
		cache.putChain(sum, c.Certs)
	}
	return c, err
}

func parse(data []byte, cache *Cache) (Chain, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return Chain{}, ErrEmpty
	}
	if ders, ok := certBlocks(data); ok {
		certs := make([]*x509.Certificate, 0, len(ders))
		for i, der := range ders {
			c, err := cache.parse(der)
			if err != nil {
				return Chain{}, fmt.Errorf("PEM block %d: %w", i+1, sanitize(err))
			}
			certs = append(certs, c)
		}
		return Chain{Certs: certs}, nil
	}
	var (
		certs    []*x509.Certificate
		sawKey   bool
		sawBlock bool
		rest     = data
	)
	for n := 1; ; n++ {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		sawBlock = true
		switch {
		case block.Type == "CERTIFICATE":
			c, err := cache.parse(block.Bytes)
			if err != nil {
				return Chain{}, fmt.Errorf("PEM block %d: %w", n, sanitize(err))
			}
			certs = append(certs, c)
		case strings.HasSuffix(block.Type, "PRIVATE KEY"):
			sawKey = true
		}
	}
	if len(certs) > 0 {
		return Chain{Certs: certs}, nil
	}
	if sawKey {
		return Chain{}, ErrPrivateKey
	}
	if sawBlock {
		return Chain{}, ErrNoCertificate
	}
	// Not PEM: maybe DER.
	c, err := x509.ParseCertificates(data)
	if err != nil || len(c) == 0 {
		if err == nil || data[0] != 0x30 {
			return Chain{}, ErrNotPEM
		}
		return Chain{}, fmt.Errorf("DER: %w", sanitize(err))
	}
	return Chain{Certs: c}, nil
}

var (
	beginCertificate = []byte("-----BEGIN CERTIFICATE-----")
	endCertificate   = []byte("-----END CERTIFICATE-----")
)

// certBlocks decodes data that holds nothing but CERTIFICATE PEM blocks in
// the form every tool writes them: BEGIN line, base64 lines, END line, each
// ending in LF or CRLF, blocks separated by nothing or by empty lines. For
// such data it returns what encoding/pem.Decode would, without pem.Decode's
// backward search for the BEGIN line over every body. Anything else —
// headers, other block types, spaces, text around the blocks, bad base64 —
// is not ok, and the caller decodes it with encoding/pem.
func certBlocks(data []byte) (ders [][]byte, ok bool) {
	rest := data
	for {
		for len(rest) > 0 && rest[0] == '\n' {
			rest = rest[1:]
		}
		if len(rest) == 0 {
			return ders, len(ders) > 0
		}
		if !bytes.HasPrefix(rest, beginCertificate) {
			return nil, false
		}
		if rest, ok = cutEOL(rest[len(beginCertificate):]); !ok {
			return nil, false
		}
		end := bytes.Index(rest, endCertificate)
		if end <= 0 || rest[end-1] != '\n' {
			return nil, false
		}
		// The decoder skips CR and LF and rejects every other byte that is
		// not base64, spaces and tabs included.
		der := make([]byte, base64.StdEncoding.DecodedLen(end))
		n, err := base64.StdEncoding.Decode(der, rest[:end])
		if err != nil || n == 0 {
			return nil, false
		}
		ders = append(ders, der[:n])
		rest = rest[end+len(endCertificate):]
		if len(rest) > 0 {
			if rest, ok = cutEOL(rest); !ok {
				return nil, false
			}
		}
	}
}

// cutEOL removes the LF or CRLF that b must start with.
func cutEOL(b []byte) ([]byte, bool) {
	switch {
	case len(b) > 0 && b[0] == '\n':
		return b[1:], true
	case len(b) > 1 && b[0] == '\r' && b[1] == '\n':
		return b[2:], true
	}
	return b, false
}

// HasCertificateBlock reports whether data holds at least one PEM
// CERTIFICATE block, whether or not it parses.
func HasCertificateBlock(data []byte) bool {
	rest := data
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return false
		}
		if b.Type == "CERTIFICATE" {
			return true
		}
	}
}

// sanitize keeps the message of crypto/x509 errors, which describe
// structure, not content.
func sanitize(err error) error {
	msg := err.Error()
	if len(msg) > 200 {
		msg = msg[:200]
	}
	return errors.New(msg)
}

// Facts returns what events carry about c.
func Facts(c *x509.Certificate) events.Certificate {
	f := events.Certificate{
		Subject:            c.Subject.String(),
		Issuer:             c.Issuer.String(),
		Serial:             SerialHex(c),
		DNSNames:           c.DNSNames,
		EmailAddresses:     c.EmailAddresses,
		NotBefore:          c.NotBefore.UTC(),
		NotAfter:           c.NotAfter.UTC(),
		SignatureAlgorithm: c.SignatureAlgorithm.String(),
		IsCA:               c.IsCA,
		SHA256:             Fingerprint(c),
	}
	for _, ip := range c.IPAddresses {
		f.IPAddresses = append(f.IPAddresses, ip.String())
	}
	for _, u := range c.URIs {
		f.URIs = append(f.URIs, u.String())
	}
	f.KeyType, f.KeyBits = KeyInfo(c)
	return f
}

// SerialHex is the serial number in lower-case hex.
func SerialHex(c *x509.Certificate) string {
	if c.SerialNumber == nil {
		return ""
	}
	return c.SerialNumber.Text(16)
}

// Fingerprint is the SHA-256 of the DER bytes, in hex.
func Fingerprint(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return hex.EncodeToString(sum[:])
}

// KeyInfo returns the public key's type and size in bits.
func KeyInfo(c *x509.Certificate) (string, int) {
	switch k := c.PublicKey.(type) {
	case *rsa.PublicKey:
		return "RSA", k.N.BitLen()
	case *ecdsa.PublicKey:
		return "ECDSA", k.Curve.Params().BitSize
	case ed25519.PublicKey:
		return "Ed25519", 256
	default:
		return "unknown", 0
	}
}

// Weaknesses lists what is wrong with c at now, sorted by name.
func Weaknesses(c *x509.Certificate, now time.Time) []string {
	var w []string
	if now.After(c.NotAfter) {
		w = append(w, WeakExpired)
	}
	switch c.SignatureAlgorithm {
	case x509.MD5WithRSA:
		w = append(w, WeakMD5)
	}
	if now.Before(c.NotBefore) {
		w = append(w, WeakNotValid)
	}
	if k, ok := c.PublicKey.(*rsa.PublicKey); ok && k.N.BitLen() < MinRSABits {
		w = append(w, WeakRSAKey)
	}
	switch c.SignatureAlgorithm {
	case x509.SHA1WithRSA, x509.ECDSAWithSHA1, x509.DSAWithSHA1:
		w = append(w, WeakSHA1)
	}
	return w
}

// Cache remembers parsed CA certificates by their DER bytes, so a CA that
// appears in thousands of chains is parsed — and held in memory — once, and
// whole parsed chains by the SHA-256 of the data they came from, so the same
// Secret value is decoded once however often it is seen. It is safe for
// concurrent use; when full it starts over.
type Cache struct {
	mu     sync.RWMutex
	max    int
	certs  map[string]*x509.Certificate
	chains map[[32]byte][]*x509.Certificate
}

// NewCache returns a cache of at most max certificates and max chains.
func NewCache(max int) *Cache {
	return &Cache{max: max, certs: make(map[string]*x509.Certificate), chains: make(map[[32]byte][]*x509.Certificate)}
}

func (c *Cache) parse(der []byte) (*x509.Certificate, error) {
	if c == nil {
		return x509.ParseCertificate(der)
	}
	c.mu.RLock()
	cert, ok := c.certs[string(der)]
	c.mu.RUnlock()
	if ok {
		return cert, nil
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	if !cert.IsCA {
		// Leaves are rarely shared between chains; a Secret value seen
		// again is found in the chain cache.
		return cert, nil
	}
	c.mu.Lock()
	if len(c.certs) >= c.max {
		clear(c.certs)
	}
	c.certs[string(cert.Raw)] = cert
	c.mu.Unlock()
	return cert, nil
}

func (c *Cache) chain(sum [32]byte) ([]*x509.Certificate, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	ch, ok := c.chains[sum]
	return ch, ok
}

func (c *Cache) putChain(sum [32]byte, ch []*x509.Certificate) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.chains) >= c.max {
		clear(c.chains)
	}
	c.chains[sum] = ch
}
