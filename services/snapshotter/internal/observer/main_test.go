package observer_test

import (
	"os"
	"testing"

	"github.com/stateguard/stateguard/pkg/harness/kubetest"
)

var env *kubetest.Env

func TestMain(m *testing.M) {
	os.Exit(kubetest.Main(m, &env, kubetest.Options{WithoutCertManager: true}))
}
