// Package certgen builds X.509 certificates for tests, in the style of
// cert-manager's test/unit/gen: a constructor with functional options.
//
//	ca := certgen.New(t, certgen.CommonName("ca"), certgen.CA())
//	leaf := certgen.New(t, certgen.CommonName("web"), certgen.DNSNames("web.example"),
//		certgen.NotAfter(now.Add(10*24*time.Hour)), certgen.SignedBy(ca))
package certgen
