package csidriver_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/kubernetes-csi/csi-test/v5/pkg/sanity"

	"github.com/stateguard/stateguard/pkg/harness/csidriver"
)

// shortDir is a temporary directory with a path short enough for a unix
// socket (t.TempDir's can pass the 108-byte limit).
func shortDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "csi") //nolint:usetesting // t.TempDir can pass the socket path limit
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func start(t *testing.T) *csidriver.Driver {
	t.Helper()
	d, err := csidriver.New(csidriver.Options{Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(filepath.Join(shortDir(t), "csi.sock")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Stop)
	return d
}

// TestSanity runs the kubernetes-csi sanity suite against the driver.
func TestSanity(t *testing.T) {
	d := start(t)
	cfg := sanity.NewTestConfig()
	cfg.Address = "unix://" + d.Endpoint()
	dir := t.TempDir()
	cfg.TargetPath = filepath.Join(dir, "target")
	cfg.StagingPath = filepath.Join(dir, "staging")
	cfg.TestVolumeSize = 1 << 20
	sanity.Test(t, cfg)
}
