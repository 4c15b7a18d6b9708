package kubeclient

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestConfigReadsTheNamedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kubeconfig")
	const kubeconfig = `apiVersion: v1
kind: Config
clusters:
- name: c
  cluster: {server: "https://203.0.113.7:6443"}
users:
- name: u
  user: {token: t}
contexts:
- name: x
  context: {cluster: c, user: u}
current-context: x
`
	if err := os.WriteFile(path, []byte(kubeconfig), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Config(path)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Host != "https://203.0.113.7:6443" {
		t.Errorf("host = %q, want the file's server", cfg.Host)
	}
}

func TestConfigNamesAMissingFile(t *testing.T) {
	_, err := Config(filepath.Join(t.TempDir(), "missing"))
	if err == nil || !strings.Contains(err.Error(), "kubernetes config") {
		t.Fatalf("err = %v, want a kubernetes config error", err)
	}
}
