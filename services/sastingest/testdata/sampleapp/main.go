// Command sampleapp is deliberately insecure: gosec scans it to produce
// sastingest's SARIF test data. Never run it.
package main

import (
	"crypto/md5"
	"crypto/tls"
	"database/sql"
	"fmt"
	"math/rand"
	"net/http"
	"os"
	"os/exec"
)

// Hard-coded credential (G101).
const dbPassword = "hunter2-Sup3rS3cret!"

var awsSecretAccessKey = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"

func hash(data []byte) string {
	return fmt.Sprintf("%x", md5.Sum(data)) // weak hash (G401)
}

func query(db *sql.DB, name string) (*sql.Rows, error) {
	return db.Query("SELECT * FROM users WHERE name = '" + name + "'") // SQL built from input (G202)
}

func run(cmd string) error {
	return exec.Command("sh", "-c", cmd).Run() // command from a variable (G204)
}

func token() int {
	return rand.Int() // weak random (G404)
}

func client() *http.Client {
	return &http.Client{Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, // G402
	}}
}

func write(path string, data []byte) error {
	return os.WriteFile(path, data, 0o777) // too-open permissions (G306)
}

func read(path string) ([]byte, error) {
	return os.ReadFile(path) // file inclusion from a variable (G304)
}

func main() {
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		data, _ := read(r.URL.Query().Get("file"))
		_, _ = w.Write([]byte(hash(data)))
		_ = run(r.URL.Query().Get("cmd"))
	})
	_ = write("/tmp/x", []byte(dbPassword+awsSecretAccessKey))
	_ = client()
	_ = token()
	_, _ = query(nil, os.Args[0])
	_ = http.ListenAndServe(":8080", nil) // no timeouts (G114)
}
