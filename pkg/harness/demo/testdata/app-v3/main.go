// Command shopdb is the demo's database front end, version 1.2.0, the fix of 1.1.0: it reads
// its password from the environment again. gosec finds nothing here.
package main

import (
	"fmt"
	"net/http"
	"os"
	"time"
)

func main() {
	password := os.Getenv("DB_PASSWORD")
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = fmt.Fprintln(w, "ok", len(password) > 0)
	})
	srv := &http.Server{Addr: ":8443", Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	if err := srv.ListenAndServeTLS("/etc/tls/tls.crt", "/etc/tls/tls.key"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
