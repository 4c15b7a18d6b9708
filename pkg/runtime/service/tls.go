package service

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync"

	"github.com/stateguard/stateguard/pkg/runtime/envflag"
)

// TLSFiles names the files of a service's HTTPS server. With CertFile and
// KeyFile set the server speaks only TLS (1.2 or newer); the files are read
// again whenever they change, so a renewed certificate (cert-manager,
// kubelet's atomic Secret update) is served to the next connection
// without a restart.
type TLSFiles struct {
	CertFile string
	KeyFile  string
	// ClientCAFile, when set, verifies the client certificates that callers
	// present and makes /metrics require one (a scraper with a certificate
	// from this CA); the API keeps its bearer tokens and /healthz and
	// /readyz stay open to the kubelet's probes, which present none.
	ClientCAFile string
}

// Register defines --tls-cert-file, --tls-key-file and
// --tls-client-ca-file.
func (f *TLSFiles) Register(s *envflag.Set) {
	s.String(&f.CertFile, "tls-cert-file", "TLS_CERT_FILE", "", "PEM certificate (chain) of the HTTPS server; with --tls-key-file the server speaks only TLS 1.2+; re-read on change")
	s.String(&f.KeyFile, "tls-key-file", "TLS_KEY_FILE", "", "PEM private key of --tls-cert-file; re-read on change")
	s.String(&f.ClientCAFile, "tls-client-ca-file", "TLS_CLIENT_CA_FILE", "", "PEM CA bundle that verifies client certificates; when set, /metrics requires one; re-read on change")
}

// Enabled reports whether the server speaks TLS.
func (f TLSFiles) Enabled() bool { return f.CertFile != "" }

// Validate reports inconsistent settings.
func (f TLSFiles) Validate() error {
	if (f.CertFile == "") != (f.KeyFile == "") {
		return errors.New("tls: give both --tls-cert-file and --tls-key-file, or neither")
	}
	if f.ClientCAFile != "" && f.CertFile == "" {
		return errors.New("tls: --tls-client-ca-file needs --tls-cert-file and --tls-key-file")
	}
	return nil
}

// fileStamp is what tells a changed file: kubelet swaps a Secret volume's
// files through a symlink (a different file, maybe with the same mtime), an
// editor or cert-manager's CSI driver rewrites them (a new mtime or size).
type fileStamp struct {
	info os.FileInfo
}

func stampOf(path string) (fileStamp, error) {
	st, err := os.Stat(path)
	if err != nil {
		return fileStamp{}, err
	}
	return fileStamp{st}, nil
}

func (s fileStamp) same(o fileStamp) bool {
	if s.info == nil || o.info == nil {
		return false
	}
	return os.SameFile(s.info, o.info) && s.info.ModTime().Equal(o.info.ModTime()) && s.info.Size() == o.info.Size()
}

// reloader holds the current certificate and client CA pool and reads the
// files again when their stamp changed. It looks at the files' stamps at
// every handshake (two or three stat calls), so a rotation is seen by the
// very next connection and needs no watcher goroutine; a pair that does not
// load (a certificate written before its key) keeps the previous one in
// service and is tried again at the next handshake.
type reloader struct {
	files TLSFiles
	log   *slog.Logger

	mu       sync.Mutex
	cert     *tls.Certificate
	certSt   fileStamp
	keySt    fileStamp
	pool     *x509.CertPool
	poolSt   fileStamp
	lastFail string
}

// newReloader loads the files once; an error here stops the service at
// start, where a wrong path is easy to see.
func newReloader(files TLSFiles, log *slog.Logger) (*reloader, error) {
	if err := files.Validate(); err != nil {
		return nil, err
	}
	r := &reloader{files: files, log: log}
	if err := r.refresh(); err != nil {
		return nil, err
	}
	return r, nil
}

// refresh reads whatever changed since the last successful read.
func (r *reloader) refresh() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var errs []error
	certSt, err1 := stampOf(r.files.CertFile)
	keySt, err2 := stampOf(r.files.KeyFile)
	switch {
	case err1 != nil || err2 != nil:
		errs = append(errs, fmt.Errorf("tls: %w", errors.Join(err1, err2)))
	case r.cert == nil || !certSt.same(r.certSt) || !keySt.same(r.keySt):
		cert, err := tls.LoadX509KeyPair(r.files.CertFile, r.files.KeyFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("tls: load %s and %s: %w", r.files.CertFile, r.files.KeyFile, err))
			break
		}
		prev := r.cert
		r.cert, r.certSt, r.keySt = &cert, certSt, keySt
		if prev != nil && cert.Leaf != nil {
			r.log.Info("tls: serving a new certificate", "path", r.files.CertFile,
				"serial", cert.Leaf.SerialNumber.Text(16), "not_after", cert.Leaf.NotAfter)
		}
	}
	if r.files.ClientCAFile != "" {
		poolSt, err := stampOf(r.files.ClientCAFile)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("tls client ca: %w", err))
		case r.pool == nil || !poolSt.same(r.poolSt):
			pem, err := os.ReadFile(r.files.ClientCAFile)
			if err != nil {
				errs = append(errs, fmt.Errorf("tls client ca: %w", err))
				break
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				errs = append(errs, fmt.Errorf("tls client ca: %s holds no PEM certificate", r.files.ClientCAFile))
				break
			}
			r.pool, r.poolSt = pool, poolSt
		}
	}
	return errors.Join(errs...)
}

// noteFailure logs a failed reload once per distinct error: serving goes
// on with what loaded last.
func (r *reloader) noteFailure(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if msg := err.Error(); msg != r.lastFail {
		r.lastFail = msg
		r.log.Warn("tls: keeping the previous certificate and client CA", "error", msg)
	}
}

// Config is the server's TLS configuration: TLS 1.2 or newer, the current
// certificate and client CA at each handshake.
func (r *reloader) Config() *tls.Config {
	base := &tls.Config{MinVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"}}
	base.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		if err := r.refresh(); err != nil {
			r.noteFailure(err)
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		c := &tls.Config{
			MinVersion:   tls.VersionTLS12,
			NextProtos:   base.NextProtos,
			Certificates: []tls.Certificate{*r.cert},
		}
		if r.pool != nil {
			c.ClientCAs = r.pool
			c.ClientAuth = tls.VerifyClientCertIfGiven
		}
		return c, nil
	}
	return base
}

// MetricsNeedClientCert refuses /metrics to a caller without a verified
// client certificate. It is the rule behind --tls-client-ca-file: scraping
// is authenticated by certificate, the probes and the API are not changed.
func MetricsNeedClientCert(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/metrics" && (r.TLS == nil || len(r.TLS.VerifiedChains) == 0) {
			WriteProblem(w, r, Problem{
				Type:   ProblemBase + "client-certificate-required",
				Status: http.StatusForbidden,
				Detail: "/metrics needs a client certificate from the CA in --tls-client-ca-file",
			})
			return
		}
		next.ServeHTTP(w, r)
	})
}
