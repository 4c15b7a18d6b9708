package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/stateguard/stateguard/pkg/harness/kubetest"
	"github.com/stateguard/stateguard/pkg/harness/ociimage"
)

// image is one image of the compose stack.
type image struct {
	name string
	// module is the directory (under the repository root) whose module
	// builds pkg.
	module, pkg string
	port        int
	// source overrides the repository's own source label (nats-server).
	source string
	// versionOf names the module whose required version is the image's
	// version (nats-server); empty: the repository's version.
	versionOf string
	dirs      []string
	cmd       []string
}

var images = []image{
	{name: "sastingest", module: "services/sastingest", pkg: ".", port: 8080},
	{name: "certwatcher", module: "services/certwatcher", pkg: ".", port: 8081},
	{name: "snapshotter", module: "services/snapshotter", pkg: ".", port: 8082},
	{name: "correlator", module: "services/correlator", pkg: ".", port: 8083},
	{name: "console", module: "services/console", pkg: ".", port: 8084},
	// nats-server from the module proxy, the version pkg/harness's tests
	// run embedded; /data for the JetStream store volume.
	{
		name: "nats-server", module: "pkg/harness", pkg: "github.com/nats-io/nats-server/v2", port: 4222,
		source: "https://github.com/nats-io/nats-server", versionOf: "github.com/nats-io/nats-server/v2",
		dirs: []string{"/data"},
	},
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "images:", err)
		os.Exit(1)
	}
}

type options struct {
	out, registry, tag, source, version, revision, caCerts string
	only                                                   string
	created                                                time.Time
}

func run(ctx context.Context, args []string, out io.Writer) error {
	root, err := kubetest.RepoRoot()
	if err != nil {
		return err
	}
	var o options
	fs := flag.NewFlagSet("images", flag.ContinueOnError)
	fs.StringVar(&o.out, "out", filepath.Join(root, "bin", "images.tar"), "the archive to write (docker-archive: nerdctl load, ctr images import, docker load)")
	fs.StringVar(&o.registry, "registry", "ghcr.io/stateguard", "repository prefix of the images' names")
	fs.StringVar(&o.tag, "tag", "dev", "tag of every image")
	fs.StringVar(&o.source, "source", "https://github.com/stateguard/stateguard", "org.opencontainers.image.source of the services' images")
	fs.StringVar(&o.version, "version", "", "org.opencontainers.image.version (default: git describe --tags --always --dirty)")
	fs.StringVar(&o.revision, "revision", "", "org.opencontainers.image.revision (default: git rev-parse HEAD)")
	fs.StringVar(&o.caCerts, "ca-certs", "/etc/ssl/certs/ca-certificates.crt", "CA bundle copied into every image (Debian's ca-certificates)")
	fs.StringVar(&o.only, "only", "", "comma-separated image names to build (default: all)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := o.defaults(ctx, root); err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "stateguard-images-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	refs := map[name.Reference]v1.Image{}
	for _, im := range images {
		if o.only != "" && !contains(strings.Split(o.only, ","), im.name) {
			continue
		}
		ref, img, err := build(ctx, root, work, o, im, out)
		if err != nil {
			return err
		}
		refs[ref] = img
	}
	if len(refs) == 0 {
		return fmt.Errorf("-only %q names no image", o.only)
	}
	if err := os.MkdirAll(filepath.Dir(o.out), 0o755); err != nil {
		return err
	}
	if err := tarball.MultiRefWriteToFile(o.out, refs); err != nil {
		return err
	}
	fmt.Fprintf(out, "wrote %s (%d images): nerdctl load -i %s\n", o.out, len(refs), o.out)
	return nil
}

func build(ctx context.Context, root, work string, o options, im image, out io.Writer) (name.Reference, v1.Image, error) {
	start := time.Now()
	bin := filepath.Join(work, im.name)
	// timetzdata: the image has no /usr/share/zoneinfo, and the
	// snapshotter's policies name time zones.
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-tags=timetzdata", "-ldflags=-s -w", "-o", bin, im.pkg)
	cmd.Dir = filepath.Join(root, im.module)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if b, err := cmd.CombinedOutput(); err != nil {
		return nil, nil, fmt.Errorf("go build %s: %w\n%s", im.name, err, b)
	}
	version, source := o.version, o.source
	if im.versionOf != "" {
		v, err := git(ctx, cmd.Dir, "go", "list", "-m", "-f", "{{.Version}}", im.versionOf)
		if err != nil {
			return nil, nil, err
		}
		version, source = strings.TrimPrefix(v, "v"), im.source
	}
	img, err := ociimage.Build(ociimage.Spec{
		Binary: bin, Entrypoint: "/" + im.name, Cmd: im.cmd, CACerts: o.caCerts, Dirs: im.dirs,
		Ports: []int{im.port}, Title: im.name, Source: source, Revision: o.revision, Version: version,
		Created: o.created,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", im.name, err)
	}
	ref, err := name.NewTag(o.registry + "/" + im.name + ":" + o.tag)
	if err != nil {
		return nil, nil, err
	}
	digest, err := img.Digest()
	if err != nil {
		return nil, nil, err
	}
	size := int64(0)
	if fi, err := os.Stat(bin); err == nil {
		size = fi.Size()
	}
	fmt.Fprintf(out, "%-40s %s  binary %.1f MiB  version %s  (%s)\n", ref.String(), digest, float64(size)/(1<<20), version, time.Since(start).Round(time.Second))
	return ref, img, nil
}

// defaults fills the labels from git: the commit, its describe and its
// time (the images' time, so a rebuild of one commit is the same image).
func (o *options) defaults(ctx context.Context, root string) error {
	var errs []error
	if o.revision == "" {
		v, err := git(ctx, root, "git", "rev-parse", "HEAD")
		o.revision, errs = v, append(errs, err)
	}
	if o.version == "" {
		v, err := git(ctx, root, "git", "describe", "--tags", "--always", "--dirty")
		o.version, errs = v, append(errs, err)
	}
	ts, err := git(ctx, root, "git", "log", "-1", "--format=%ct")
	errs = append(errs, err)
	if sec, perr := strconv.ParseInt(ts, 10, 64); perr == nil {
		o.created = time.Unix(sec, 0).UTC()
	}
	return errors.Join(errs...)
}

func git(ctx context.Context, dir string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Dir = dir
	b, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s: %w", strings.Join(args, " "), err)
	}
	return strings.TrimSpace(string(b)), nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
