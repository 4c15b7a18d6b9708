package rotation

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"time"
)

// MinRSABits is the smallest RSA key issued; a smaller old key is replaced
// by one of this size.
const MinRSABits = 2048

// CA is a signing certificate and its key.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

// ParseCA reads a CA from PEM certificate and key.
func ParseCA(certPEM, keyPEM []byte) (CA, error) {
	b, _ := pem.Decode(certPEM)
	if b == nil || b.Type != "CERTIFICATE" {
		return CA{}, errors.New("CA certificate: no CERTIFICATE PEM block")
	}
	cert, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return CA{}, fmt.Errorf("CA certificate: %w", err)
	}
	if !cert.IsCA {
		return CA{}, errors.New("CA certificate: not a CA (basicConstraints CA:FALSE)")
	}
	key, _, err := parseKey(keyPEM)
	if err != nil {
		return CA{}, fmt.Errorf("CA key: %w", err)
	}
	return CA{Cert: cert, Key: key}, nil
}

// parseKey reads a PEM private key and returns its PEM block type, so a
// new key can be written in the same encoding.
func parseKey(keyPEM []byte) (crypto.Signer, string, error) {
	for rest := keyPEM; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return nil, "", errors.New("no private key PEM block")
		}
		var (
			k   any
			err error
		)
		switch b.Type {
		case "PRIVATE KEY":
			k, err = x509.ParsePKCS8PrivateKey(b.Bytes)
		case "RSA PRIVATE KEY":
			k, err = x509.ParsePKCS1PrivateKey(b.Bytes)
		case "EC PRIVATE KEY":
			k, err = x509.ParseECPrivateKey(b.Bytes)
		default:
			continue
		}
		if err != nil {
			return nil, "", errors.New("private key does not parse") // never echo key parsing details
		}
		s, ok := k.(crypto.Signer)
		if !ok {
			return nil, "", errors.New("private key cannot sign")
		}
		return s, b.Type, nil
	}
}

// Issued is a new certificate and key in PEM.
type Issued struct {
	Cert    *x509.Certificate
	CertPEM []byte
	KeyPEM  []byte
}

// Reissue issues a certificate like old — same subject, SANs, key usages
// and validity length — starting at now, for a new key of the same kind,
// signed by ca. keyType is the PEM type of the old key ("PRIVATE KEY",
// "RSA PRIVATE KEY" or "EC PRIVATE KEY"); the new key uses the same one.
func Reissue(old *x509.Certificate, keyType string, ca CA, now time.Time) (Issued, error) {
	key, err := newKeyLike(old.PublicKey)
	if err != nil {
		return Issued{}, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return Issued{}, err
	}
	validity := old.NotAfter.Sub(old.NotBefore)
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               old.Subject,
		DNSNames:              old.DNSNames,
		IPAddresses:           old.IPAddresses,
		EmailAddresses:        old.EmailAddresses,
		URIs:                  old.URIs,
		NotBefore:             now.Add(-time.Minute).UTC(),
		NotAfter:              now.Add(-time.Minute).Add(validity).UTC(),
		KeyUsage:              old.KeyUsage,
		ExtKeyUsage:           old.ExtKeyUsage,
		UnknownExtKeyUsage:    old.UnknownExtKeyUsage,
		BasicConstraintsValid: old.BasicConstraintsValid,
		IsCA:                  old.IsCA,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return Issued{}, fmt.Errorf("sign: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return Issued{}, err
	}
	keyPEM, err := encodeKey(key, keyType)
	if err != nil {
		return Issued{}, err
	}
	return Issued{Cert: cert, CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), KeyPEM: keyPEM}, nil
}

func newKeyLike(pub any) (crypto.Signer, error) {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return rsa.GenerateKey(rand.Reader, max(k.N.BitLen(), MinRSABits))
	case *ecdsa.PublicKey:
		return ecdsa.GenerateKey(k.Curve, rand.Reader)
	case ed25519.PublicKey:
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		return priv, err
	default:
		return nil, fmt.Errorf("unsupported public key type %T", pub)
	}
}

func encodeKey(key crypto.Signer, keyType string) ([]byte, error) {
	var (
		der []byte
		err error
	)
	switch k := key.(type) {
	case *rsa.PrivateKey:
		if keyType == "RSA PRIVATE KEY" {
			der = x509.MarshalPKCS1PrivateKey(k)
			break
		}
		keyType = "PRIVATE KEY"
		der, err = x509.MarshalPKCS8PrivateKey(k)
	case *ecdsa.PrivateKey:
		if keyType == "EC PRIVATE KEY" {
			der, err = x509.MarshalECPrivateKey(k)
			break
		}
		keyType = "PRIVATE KEY"
		der, err = x509.MarshalPKCS8PrivateKey(k)
	default:
		keyType = "PRIVATE KEY"
		der, err = x509.MarshalPKCS8PrivateKey(k)
	}
	if err != nil {
		return nil, fmt.Errorf("encode key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: keyType, Bytes: der}), nil
}

func pemOf(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}
