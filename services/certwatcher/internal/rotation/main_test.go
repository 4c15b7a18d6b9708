package rotation

import (
	"os"
	"testing"

	"github.com/stateguard/stateguard/pkg/harness/kubetest"
)

// env is the package's one control plane; each test uses its own namespace.
var env *kubetest.Env

func TestMain(m *testing.M) { os.Exit(kubetest.Main(m, &env)) }

func namespace(tb testing.TB, annotations map[string]string) string {
	tb.Helper()
	return env.Namespace(tb, annotations)
}
