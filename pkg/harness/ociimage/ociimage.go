package ociimage

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"runtime"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The non-root user every image runs as (distroless' "nonroot").
const (
	UID      = 65532
	UserName = "nonroot"
)

// CACertsPath is where the CA bundle is in the image (Debian's path, which
// Go's crypto/x509 reads on Linux).
const CACertsPath = "/etc/ssl/certs/ca-certificates.crt"

// OCI annotation keys set as labels on every image.
const (
	LabelSource   = "org.opencontainers.image.source"
	LabelRevision = "org.opencontainers.image.revision"
	LabelVersion  = "org.opencontainers.image.version"
	LabelTitle    = "org.opencontainers.image.title"
	LabelCreated  = "org.opencontainers.image.created"
)

// Spec describes one image.
type Spec struct {
	// Binary is the static executable on this machine.
	Binary string
	// Entrypoint is the executable's path in the image (/sastingest).
	Entrypoint string
	// Cmd are default arguments.
	Cmd []string
	// CACerts is the CA bundle on this machine copied to CACertsPath
	// (Debian's /etc/ssl/certs/ca-certificates.crt).
	CACerts string
	// Dirs are extra directories owned by the non-root user (a data
	// directory a volume is mounted on).
	Dirs []string
	// Ports are the exposed TCP ports.
	Ports []int
	// Title, Source, Revision and Version become the OCI labels.
	Title, Source, Revision, Version string
	// Created is the image's and every file's time (a fixed time keeps
	// the image reproducible: same inputs, same digest).
	Created time.Time
}

// Build assembles the image: one layer on an empty base, an OCI manifest
// and config, the user set in the config.
func Build(s Spec) (v1.Image, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	layer, err := s.layer()
	if err != nil {
		return nil, err
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{
		Layer:     layer,
		MediaType: types.OCILayer,
		History:   v1.History{Created: v1.Time{Time: s.Created}, CreatedBy: "stateguard ociimage: " + path.Base(s.Entrypoint), Comment: "static binary, CA certificates, non-root user"},
	})
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	cf.Created = v1.Time{Time: s.Created}
	cf.Config = s.config()
	return mutate.ConfigFile(img, cf)
}

func (s Spec) check() error {
	var errs []error
	if s.Binary == "" || s.CACerts == "" {
		errs = append(errs, errors.New("binary and CA certificates are required"))
	}
	if !path.IsAbs(s.Entrypoint) || path.Clean(s.Entrypoint) != s.Entrypoint || path.Dir(s.Entrypoint) != "/" {
		errs = append(errs, fmt.Errorf("entrypoint %q: want /name", s.Entrypoint))
	}
	for _, d := range s.Dirs {
		if !path.IsAbs(d) || path.Clean(d) != d || path.Dir(d) != "/" || d == "/etc" || d == "/tmp" || d == "/home" {
			errs = append(errs, fmt.Errorf("dir %q: want a new top-level directory", d))
		}
	}
	if s.Source == "" || s.Revision == "" || s.Version == "" {
		errs = append(errs, errors.New("source, revision and version labels are required"))
	}
	return errors.Join(errs...)
}

// config is the image's run configuration: the entrypoint, the non-root
// user by number (so Kubernetes' runAsNonRoot can verify it), the labels.
func (s Spec) config() v1.Config {
	ports := map[string]struct{}{}
	for _, p := range s.Ports {
		ports[strconv.Itoa(p)+"/tcp"] = struct{}{}
	}
	id := strconv.Itoa(UID)
	return v1.Config{
		Entrypoint:   []string{s.Entrypoint},
		Cmd:          s.Cmd,
		User:         id + ":" + id,
		WorkingDir:   "/",
		Env:          []string{"PATH=/", "SSL_CERT_FILE=" + CACertsPath},
		ExposedPorts: ports,
		Labels: map[string]string{
			LabelTitle:    s.Title,
			LabelSource:   s.Source,
			LabelRevision: s.Revision,
			LabelVersion:  s.Version,
			LabelCreated:  s.Created.UTC().Format(time.RFC3339),
		},
	}
}

// Passwd and Group are the image's /etc/passwd and /etc/group: root and the
// non-root user, neither with a shell (the image has none).
var (
	Passwd = "root:x:0:0:root:/root:/sbin/nologin\n" + UserName + ":x:" + strconv.Itoa(UID) + ":" + strconv.Itoa(UID) + ":" + UserName + ":/home/" + UserName + ":/sbin/nologin\n"
	Group  = "root:x:0:\n" + UserName + ":x:" + strconv.Itoa(UID) + ":\n"
)

type entry struct {
	name     string
	mode     int64
	uid      int
	dir      bool
	data     []byte
	fromFile string
}

func (s Spec) entries() []entry {
	es := []entry{
		{name: "etc/", mode: 0o755, dir: true},
		{name: "etc/passwd", mode: 0o644, data: []byte(Passwd)},
		{name: "etc/group", mode: 0o644, data: []byte(Group)},
		{name: "etc/ssl/", mode: 0o755, dir: true},
		{name: "etc/ssl/certs/", mode: 0o755, dir: true},
		{name: strings.TrimPrefix(CACertsPath, "/"), mode: 0o644, fromFile: s.CACerts},
		{name: "home/", mode: 0o755, dir: true},
		{name: "home/" + UserName + "/", mode: 0o700, uid: UID, dir: true},
		{name: "tmp/", mode: 0o1777, dir: true},
	}
	for _, d := range s.Dirs {
		es = append(es, entry{name: strings.TrimPrefix(d, "/") + "/", mode: 0o755, uid: UID, dir: true})
	}
	return append(es, entry{name: strings.TrimPrefix(s.Entrypoint, "/"), mode: 0o755, fromFile: s.Binary})
}

// layer writes the image's only layer: the files above, owned by root
// except the user's home and Dirs.
func (s Spec) layer() (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range s.entries() {
		h := &tar.Header{Name: e.name, Mode: e.mode, Uid: e.uid, Gid: e.uid, ModTime: s.Created, Format: tar.FormatPAX}
		if e.dir {
			h.Typeflag = tar.TypeDir
			if err := tw.WriteHeader(h); err != nil {
				return nil, err
			}
			continue
		}
		data := e.data
		if e.fromFile != "" {
			b, err := os.ReadFile(e.fromFile)
			if err != nil {
				return nil, err
			}
			data = b
		}
		h.Typeflag, h.Size = tar.TypeReg, int64(len(data))
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	b := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(b)), nil
	}, tarball.WithMediaType(types.OCILayer))
}
