package dirwatch

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/stateguard/stateguard/services/certwatcher/internal/certgentest"
	"github.com/stateguard/stateguard/services/certwatcher/internal/certinfo"
	"github.com/stateguard/stateguard/services/certwatcher/internal/inventory"
)

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	if err := wait.PollUntilContextTimeout(t.Context(), 10*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) { return cond(), nil }); err != nil {
		t.Fatalf("%s: never happened", what)
	}
}

func serialAt(store *inventory.Store, path string) string {
	for _, r := range store.All() {
		if r.Source.Path == path && len(r.Chain) > 0 {
			return certinfo.SerialHex(r.Chain[0])
		}
	}
	return ""
}

// TestFollowsKubeletStyleUpdates mounts a Secret the way kubelet does
// (files are symlinks into ..data, which is swapped atomically) and checks
// that new files, swaps, garbage and removals are followed without a
// rescan.
func TestFollowsKubeletStyleUpdates(t *testing.T) {
	dir := t.TempDir()
	first := certgentest.New(t, certgentest.CommonName("v1"))
	second := certgentest.New(t, certgentest.CommonName("v2"))
	writeVersion := func(name string, pem []byte) {
		t.Helper()
		v := filepath.Join(dir, name)
		if err := os.Mkdir(v, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(v, "tls.crt"), pem, 0o600); err != nil {
			t.Fatal(err)
		}
		tmp := filepath.Join(dir, "..data_tmp")
		if err := os.Symlink(name, tmp); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, "..data")); err != nil {
			t.Fatal(err)
		}
	}
	writeVersion("..v1", first.CertPEM)
	if err := os.Symlink("..data/tls.crt", filepath.Join(dir, "tls.crt")); err != nil {
		t.Fatal(err)
	}
	store := inventory.New(nil)
	w := &Watcher{Dirs: []string{dir}, Store: store, Log: slog.New(slog.DiscardHandler)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	crt := filepath.Join(dir, "tls.crt")
	eventually(t, "initial scan", func() bool { return serialAt(store, crt) == certinfo.SerialHex(first.Cert) })

	writeVersion("..v2", second.CertPEM)
	eventually(t, "symlink swap", func() bool { return serialAt(store, crt) == certinfo.SerialHex(second.Cert) })

	extra := filepath.Join(dir, "sub", "extra.pem")
	if err := os.MkdirAll(filepath.Dir(extra), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(extra, first.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	eventually(t, "file in a new directory", func() bool { return serialAt(store, extra) == certinfo.SerialHex(first.Cert) })

	bad := filepath.Join(dir, "bad.crt")
	if err := os.WriteFile(bad, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	eventually(t, "garbage recorded as a finding", func() bool {
		for _, r := range store.All() {
			if r.Source.Path == bad && r.Err != nil {
				return true
			}
		}
		return false
	})
	keyOnly := filepath.Join(dir, "key.pem")
	if err := os.WriteFile(keyOnly, first.KeyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(extra); err != nil {
		t.Fatal(err)
	}
	eventually(t, "removal", func() bool { return serialAt(store, extra) == "" })
	for _, r := range store.All() {
		if r.Source.Path == keyOnly {
			t.Error("a key file was recorded as a certificate")
		}
	}
}
