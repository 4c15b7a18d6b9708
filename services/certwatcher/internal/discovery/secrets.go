package discovery

import (
	"bytes"
	"encoding/pem"
	"path"
	"slices"

	corev1 "k8s.io/api/core/v1"

	"github.com/stateguard/stateguard/pkg/events"

	"github.com/stateguard/stateguard/services/certwatcher/internal/certinfo"
	"github.com/stateguard/stateguard/services/certwatcher/internal/inventory"
)

// certKeys returns the keys of s read as certificates, sorted.
func certKeys(s *corev1.Secret, patterns []string) []string {
	keys := make([]string, 0, 2)
	for k := range s.Data {
		switch {
		case strictKey(s, k):
			keys = append(keys, k)
		case s.Type == corev1.SecretTypeTLS && k == corev1.TLSPrivateKeyKey:
		case matchAny(patterns, k):
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

// strictKey reports whether key k of s must hold a certificate (tls.crt of
// a kubernetes.io/tls Secret) rather than may hold one.
func strictKey(s *corev1.Secret, k string) bool {
	return s.Type == corev1.SecretTypeTLS && k == corev1.TLSCertKey
}

func matchAny(patterns []string, key string) bool {
	for _, p := range patterns {
		if ok, _ := path.Match(p, key); ok {
			return true
		}
	}
	return false
}

// SecretRecords parses the certificate keys of s: tls.crt of a
// kubernetes.io/tls Secret always (anything unreadable there is a finding),
// and keys matching patterns when they hold a PEM CERTIFICATE block or DER.
func SecretRecords(s *corev1.Secret, patterns []string) []inventory.Record {
	return secretRecords(s, patterns, nil)
}

func secretRecords(s *corev1.Secret, patterns []string, cache *certinfo.Cache) []inventory.Record {
	keys := certKeys(s, patterns)
	var out []inventory.Record
	for _, k := range keys {
		data := s.Data[k]
		if !strictKey(s, k) && !certinfo.HasCertificateBlock(data) && !looksDER(data) {
			continue
		}
		rec := inventory.Record{Source: events.CertificateSource{Namespace: s.Namespace, Secret: s.Name, Key: k}}
		chain, err := certinfo.ParseCached(data, cache)
		if err != nil {
			rec.Err = err
		} else {
			rec.Chain = chain.Certs
		}
		out = append(out, rec)
	}
	return out
}

func looksDER(b []byte) bool { return len(b) > 4 && b[0] == 0x30 && b[1] >= 0x80 }

// stripSecret keeps only what discovery needs of a Secret in the informer's
// cache: metadata without managed fields, the type, and the certificate
// keys, with any private key PEM blocks in them removed. Private keys never
// stay in the cache.
func stripSecret(patterns []string) func(any) (any, error) {
	return func(obj any) (any, error) {
		s, ok := obj.(*corev1.Secret)
		if !ok {
			return obj, nil
		}
		keys := certKeys(s, patterns)
		if isStripped(s, keys) {
			return s, nil // listSecrets strips as it decodes
		}
		data := make(map[string][]byte, len(keys))
		for _, k := range keys {
			data[k] = withoutPrivateKeys(s.Data[k])
		}
		out := &corev1.Secret{TypeMeta: s.TypeMeta, ObjectMeta: s.ObjectMeta, Type: s.Type, Data: data}
		out.ManagedFields = nil
		return out, nil
	}
}

// isStripped reports whether stripSecret would keep s as it is: no managed
// fields, only certificate keys, no private key in them.
func isStripped(s *corev1.Secret, keys []string) bool {
	if s.ManagedFields != nil || len(keys) != len(s.Data) {
		return false
	}
	for _, k := range keys {
		if d := s.Data[k]; bytes.Contains(d, []byte("PRIVATE KEY-----")) && !bytes.Equal(d, keyPlaceholder) {
			return false
		}
	}
	return true
}

// keyPlaceholder stands for PEM data that held only private keys: an empty
// key block, so parsing still reports "a private key where a certificate
// should be" without the key being kept.
var keyPlaceholder = []byte("-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----\n")

// withoutPrivateKeys returns data without its private key PEM blocks.
func withoutPrivateKeys(data []byte) []byte {
	if !bytes.Contains(data, []byte("PRIVATE KEY-----")) {
		return data
	}
	var out []byte
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type == "CERTIFICATE" {
			out = append(out, pem.EncodeToMemory(b)...)
		}
	}
	if len(out) == 0 {
		return keyPlaceholder
	}
	return out
}
