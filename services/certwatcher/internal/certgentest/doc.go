// Package certgentest builds X.509 certificates for tests, in the style of
// cert-manager's test/unit/gen: a constructor with functional options.
//
//	ca := certgentest.New(t, certgentest.CommonName("ca"), certgentest.CA())
//	leaf := certgentest.New(t, certgentest.CommonName("web"), certgentest.DNSNames("web.example"),
//		certgentest.NotAfter(now.Add(10*24*time.Hour)), certgentest.SignedBy(ca))
package certgentest
