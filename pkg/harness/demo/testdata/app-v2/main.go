// Command shopdb is the demo's database front end, version 1.1.0: a
// "quick fix" hard-coded the database credentials and the TLS key's
// passphrase. gosec reports G101 (CWE-798).
package main

import (
	"fmt"
	"net/http"
	"os"
	"time"
)

const (
	dbUser            = "shop"
	dbPassword        = "Sup3rS3cr3t-shop-db-2026"
	tlsKeyPassphrase  = "changeit-please-not-in-prod"
	replicationSecret = "c2hvcC1yZXBsaWNhdGlvbi1zZWNyZXQ="
)

func main() {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = fmt.Fprintln(w, "ok", dbUser, len(dbPassword), len(tlsKeyPassphrase), len(replicationSecret))
	})
	srv := &http.Server{Addr: ":8443", Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	if err := srv.ListenAndServeTLS("/etc/tls/tls.crt", "/etc/tls/tls.key"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
