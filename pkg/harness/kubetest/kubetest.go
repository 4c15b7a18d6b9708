package kubetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// Versions of the modules whose CRDs are installed.
const (
	SnapshotterModule  = "github.com/kubernetes-csi/external-snapshotter/client/v8"
	SnapshotterVersion = "v8.7.0"
	CertManagerModule  = "github.com/cert-manager/cert-manager"
	CertManagerVersion = "v1.21.2"
)

// ErrNoBinaries says the control-plane binaries are missing.
var ErrNoBinaries = errors.New("kube-apiserver and etcd not found: run `make tools` (it builds them from the Go module proxy into a cache and links them into bin/), or set KUBEBUILDER_ASSETS")

// Env is a running control plane.
type Env struct {
	Config *rest.Config
	Client kubernetes.Interface
	env    *envtest.Environment
}

// Options configure Start.
type Options struct {
	// ExtraCRDPaths are more CRD files or directories to install.
	ExtraCRDPaths []string
	// WithoutCertManager skips cert-manager's CRDs, to test behaviour when
	// cert-manager is not installed.
	WithoutCertManager bool
}

// RepoRoot finds the directory holding go.work, walking up from the working
// directory.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.work not found above the working directory")
		}
		dir = parent
	}
}

// BinaryDir returns where kube-apiserver and etcd are.
func BinaryDir() (string, error) {
	if d := os.Getenv("KUBEBUILDER_ASSETS"); d != "" {
		return d, checkBinaries(d)
	}
	root, err := RepoRoot()
	if err != nil {
		return "", fmt.Errorf("%w (%w)", ErrNoBinaries, err)
	}
	d := filepath.Join(root, "bin")
	return d, checkBinaries(d)
}

func checkBinaries(dir string) error {
	for _, b := range []string{"kube-apiserver", "etcd"} {
		if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
			return fmt.Errorf("%w: %s missing in %s", ErrNoBinaries, b, dir)
		}
	}
	return nil
}

// ModuleDir returns the module cache directory of module@version,
// downloading it through the Go module proxy when it is not cached.
func ModuleDir(module, version string) (string, error) {
	cmd := exec.Command("go", "mod", "download", "-json", module+"@"+version)
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	cmd.Dir = os.TempDir()
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go mod download %s@%s: %w: %s", module, version, err, stderr.String())
	}
	var info struct{ Dir, Error string }
	if err := json.Unmarshal(out.Bytes(), &info); err != nil {
		return "", fmt.Errorf("go mod download %s: %w", module, err)
	}
	if info.Error != "" {
		return "", fmt.Errorf("go mod download %s: %s", module, info.Error)
	}
	return info.Dir, nil
}

// CRDPaths lists the CRD directories to install.
func CRDPaths(o Options) ([]string, error) {
	snap, err := ModuleDir(SnapshotterModule, SnapshotterVersion)
	if err != nil {
		return nil, err
	}
	paths := []string{filepath.Join(snap, "config", "crd")}
	if !o.WithoutCertManager {
		cm, err := ModuleDir(CertManagerModule, CertManagerVersion)
		if err != nil {
			return nil, err
		}
		paths = append(paths, filepath.Join(cm, "deploy", "crds"))
	}
	if root, err := RepoRoot(); err == nil {
		own := filepath.Join(root, "deploy", "kustomize", "base", "crds")
		if _, err := os.Stat(own); err == nil {
			paths = append(paths, own)
		}
	}
	return append(paths, o.ExtraCRDPaths...), nil
}

// StartEnv starts a control plane. Stop it with Env.Stop.
func StartEnv(o Options) (*Env, error) {
	bin, err := BinaryDir()
	if err != nil {
		return nil, err
	}
	paths, err := CRDPaths(o)
	if err != nil {
		return nil, err
	}
	env := &envtest.Environment{
		BinaryAssetsDirectory: bin,
		CRDInstallOptions: envtest.CRDInstallOptions{
			Paths:              paths,
			ErrorIfPathMissing: true,
			MaxTime:            60 * time.Second,
		},
		ControlPlaneStartTimeout: 90 * time.Second,
		ControlPlaneStopTimeout:  60 * time.Second,
	}
	cfg, err := env.Start()
	if err != nil {
		return nil, fmt.Errorf("start control plane: %w", err)
	}
	cfg.QPS, cfg.Burst = 1000, 2000
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		_ = env.Stop()
		return nil, err
	}
	return &Env{Config: cfg, Client: cs, env: env}, nil
}

// Stop stops the control plane.
func (e *Env) Stop() error { return e.env.Stop() }

// Start starts a control plane for the test and stops it at cleanup. A
// missing binary fails the test with the command that builds it.
func Start(tb testing.TB, opts ...Options) *Env {
	tb.Helper()
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	e, err := StartEnv(o)
	if err != nil {
		tb.Fatalf("kubetest: %v", err)
	}
	tb.Cleanup(func() {
		if err := e.Stop(); err != nil {
			tb.Logf("kubetest: stop: %v", err)
		}
	})
	return e
}

// WriteKubeconfig writes a kubeconfig for the control plane to path, for
// kubectl and for services started as processes.
func (e *Env) WriteKubeconfig(path string) error {
	c := e.Config
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["stateguard"] = &clientcmdapi.Cluster{Server: c.Host, CertificateAuthorityData: c.CAData}
	cfg.AuthInfos["stateguard"] = &clientcmdapi.AuthInfo{ClientCertificateData: c.CertData, ClientKeyData: c.KeyData, Token: c.BearerToken}
	cfg.Contexts["stateguard"] = &clientcmdapi.Context{Cluster: "stateguard", AuthInfo: "stateguard"}
	cfg.CurrentContext = "stateguard"
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return clientcmd.WriteToFile(*cfg, path)
}

// Main starts one control plane for a test package, runs its tests and
// stops it. Call it from TestMain:
//
//	var env *kubetest.Env
//	func TestMain(m *testing.M) { os.Exit(kubetest.Main(m, &env)) }
//
// A control plane that does not start fails the package with the reason
// (for missing binaries: the command that builds them).
func Main(m *testing.M, env **Env, opts ...Options) int {
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	e, err := StartEnv(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kubetest:", err)
		return 1
	}
	*env = e
	code := m.Run()
	if err := e.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "kubetest: stop control plane:", err)
	}
	return code
}

var nsSeq atomic.Int64

// Namespace creates a fresh namespace, with the given annotations, for one
// test of a package that shares a control plane.
func (e *Env) Namespace(tb testing.TB, annotations map[string]string) string {
	tb.Helper()
	name := fmt.Sprintf("t%d-%d", time.Now().UnixNano()%1e6, nsSeq.Add(1))
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: annotations}}
	if _, err := e.Client.CoreV1().Namespaces().Create(context.Background(), ns, metav1.CreateOptions{}); err != nil {
		tb.Fatalf("create namespace: %v", err)
	}
	return name
}
