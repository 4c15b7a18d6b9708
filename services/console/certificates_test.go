package main

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stateguard/stateguard/pkg/events"
)

// certScene is n certificates, Secret tls-<i> of namespace ns-<i%3>
// expiring in 10+i days, each used by a Deployment, and one rotation of
// tls-0 whose check found the old certificate still served.
func certScene(now time.Time, n int) []events.Event {
	var evs []events.Event
	for i := range n {
		ns, secret := fmt.Sprintf("ns-%d", i%3), fmt.Sprintf("tls-%d", i)
		notAfter := now.Add(time.Duration(10+i) * 24 * time.Hour)
		evs = append(evs, events.MustNewEvent(events.TypeCertificateExpiring, sceneSource, "cert-"+secret, events.CertificateExpiring{
			Source: events.CertificateSource{Namespace: ns, Secret: secret, Key: "tls.crt"}, Threshold: "30d", DaysLeft: float64(10 + i),
			Certificate: events.Certificate{Subject: "CN=" + secret, Issuer: "CN=ca", Serial: fmt.Sprintf("%02x", 16+i), NotBefore: now.Add(-24 * time.Hour),
				NotAfter: notAfter, KeyType: "ECDSA", KeyBits: 256, SignatureAlgorithm: "ECDSA-SHA256"},
			Users: events.CertificateUsers{Workloads: []events.ObjectRef{{Kind: "Deployment", Namespace: ns, Name: "app-" + secret}}},
		}))
	}
	return append(evs, events.MustNewEvent(events.TypeCertificateRotated, sceneSource, "rotated-tls-0", events.CertificateRotated{
		RequestID: "r-0", Namespace: "ns-0", Secret: "tls-0", Method: "in-cluster-ca", OldSerial: "0f", NewSerial: "10",
		Verification: events.TLSVerification{Checked: true, Service: "app", Port: 443, ServedSerial: "0f", Error: "the Service still serves 0f"}}))
}

// TestCertificatesPageListsEveryCertificate: the Certificates page lists
// every certificate the correlator knows, page by page, soonest expiry
// first — not only those of the first page of applications — with the last
// rotation and its verification, and filters by namespace.
func TestCertificatesPageListsEveryCertificate(t *testing.T) {
	const n = 7
	st := startCorrelator(t, certScene(time.Now(), n), func([]appLine) error { return nil })
	base := startConsole(t, st, "--page-size", "3")
	c, _ := httpLogin(t, base, readToken)
	row := regexp.MustCompile(`data-secret="([^"]+)"`)
	var all []string
	var rotation string
	waitFor(t, "every certificate on the pages", 2*time.Minute, func() error {
		all = all[:0]
		for page := 1; page <= 3; page++ {
			body, _ := fetch(t, c, fmt.Sprintf("%s/certificates?page=%d", base, page))
			for _, m := range row.FindAllStringSubmatch(body, -1) {
				all = append(all, m[1])
			}
			if page == 1 {
				rotation = body
			}
		}
		if len(all) != n {
			return fmt.Errorf("%d certificates listed: %v", len(all), all)
		}
		return nil
	})
	var want []string
	for i := range n {
		want = append(want, fmt.Sprintf("ns-%d/tls-%d", i%3, i))
	}
	if !slices.Equal(all, want) {
		t.Errorf("certificates listed %v, want %v (soonest expiry first)", all, want)
	}
	if !strings.Contains(rotation, "not verified") || !strings.Contains(rotation, "the Service still serves 0f") {
		t.Errorf("the first page does not show tls-0's unverified rotation")
	}
	body, _ := fetch(t, c, base+"/certificates?namespace=ns-1")
	var ns1 []string
	for _, m := range row.FindAllStringSubmatch(body, -1) {
		ns1 = append(ns1, m[1])
	}
	if !slices.Equal(ns1, []string{"ns-1/tls-1", "ns-1/tls-4"}) {
		t.Errorf("namespace ns-1 lists %v, want ns-1/tls-1 and ns-1/tls-4", ns1)
	}
}
