package manifests

import (
	"fmt"
	"os"
	"testing"

	"github.com/stateguard/stateguard/pkg/harness/kubetest"
)

// kube is the one control plane of this package's tests; each test works in
// its own namespaces or with dry runs.
var kube *kubetest.Env

func TestMain(m *testing.M) {
	env, err := kubetest.StartEnv(kubetest.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "manifests:", err)
		os.Exit(1)
	}
	kube = env
	code := m.Run()
	if err := env.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "manifests: stop control plane:", err)
	}
	os.Exit(code)
}
