package ociimage

import (
	"archive/tar"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

func spec(t *testing.T) Spec {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "svc")
	ca := filepath.Join(dir, "ca.crt")
	if err := os.WriteFile(bin, []byte("\x7fELF not really"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ca, []byte("-----BEGIN CERTIFICATE-----\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return Spec{
		Binary: bin, Entrypoint: "/svc", CACerts: ca, Dirs: []string{"/data"}, Ports: []int{8080},
		Title: "svc", Source: "https://example.invalid/repo", Revision: "abc123", Version: "v1.2.3",
		Created: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
	}
}

// TestBuild checks what a service image promises: the entrypoint, a
// non-root user by number, the OCI labels, and one layer holding the
// binary (executable), the CA bundle, passwd/group naming the user, and
// the data directory owned by it.
func TestBuild(t *testing.T) {
	img, err := Build(spec(t))
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := cf.Config
	if c.User != "65532:65532" || len(c.Entrypoint) != 1 || c.Entrypoint[0] != "/svc" {
		t.Errorf("user %q entrypoint %v; want 65532:65532 and /svc", c.User, c.Entrypoint)
	}
	for k, want := range map[string]string{LabelSource: "https://example.invalid/repo", LabelRevision: "abc123", LabelVersion: "v1.2.3", LabelTitle: "svc"} {
		if c.Labels[k] != want {
			t.Errorf("label %s = %q, want %q", k, c.Labels[k], want)
		}
	}
	if _, ok := c.ExposedPorts["8080/tcp"]; !ok || cf.OS != "linux" {
		t.Errorf("ports %v os %q", c.ExposedPorts, cf.OS)
	}
	files := map[string]*tar.Header{}
	contents := map[string]string{}
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		files[strings.TrimSuffix(h.Name, "/")] = h
		b, _ := io.ReadAll(tr)
		contents[h.Name] = string(b)
	}
	if h := files["svc"]; h == nil || h.Mode&0o111 == 0 || h.Uid != 0 {
		t.Errorf("binary %+v: want root-owned and executable", h)
	}
	if !strings.HasPrefix(contents["etc/ssl/certs/ca-certificates.crt"], "-----BEGIN CERTIFICATE-----") {
		t.Error("CA bundle missing at /etc/ssl/certs/ca-certificates.crt")
	}
	if !strings.Contains(contents["etc/passwd"], "nonroot:x:65532:65532:") || !strings.Contains(contents["etc/group"], "nonroot:x:65532:") {
		t.Errorf("passwd %q group %q: want the user nonroot 65532", contents["etc/passwd"], contents["etc/group"])
	}
	if h := files["data"]; h == nil || h.Uid != UID {
		t.Errorf("data dir %+v: want owned by %d", h, UID)
	}
}

// TestBuildIsReproducible: the same inputs give the same digest (the
// files' times and the image's are Spec.Created, not the clock).
func TestBuildIsReproducible(t *testing.T) {
	s := spec(t)
	a, err := Build(s)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Build(s)
	if err != nil {
		t.Fatal(err)
	}
	da, _ := a.Digest()
	db, _ := b.Digest()
	if da != db {
		t.Errorf("digests %s and %s differ", da, db)
	}
	s.Revision = "def456"
	c, err := Build(s)
	if err != nil {
		t.Fatal(err)
	}
	if dc, _ := c.Digest(); dc == da {
		t.Error("a different revision label gives the same digest")
	}
}

// TestBuildRefuses: a spec without labels, or with an entrypoint not at the
// root, is refused with the reason.
func TestBuildRefuses(t *testing.T) {
	s := spec(t)
	s.Source = ""
	if _, err := Build(s); err == nil || !strings.Contains(err.Error(), "labels") {
		t.Errorf("no source label: %v", err)
	}
	s = spec(t)
	s.Entrypoint = "/usr/bin/svc"
	if _, err := Build(s); err == nil || !strings.Contains(err.Error(), "entrypoint") {
		t.Errorf("entrypoint not at /: %v", err)
	}
}
