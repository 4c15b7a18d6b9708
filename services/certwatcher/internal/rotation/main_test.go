package rotation

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/stateguard/stateguard/pkg/harness/kubetest"
)

// env is the package's one control plane; each test uses its own namespace.
var env *kubetest.Env

func TestMain(m *testing.M) {
	var err error
	env, err = kubetest.StartEnv(kubetest.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	if err := env.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stop control plane:", err)
	}
	os.Exit(code)
}

var nsSeq atomic.Int64

func namespace(tb testing.TB, annotations map[string]string) string {
	tb.Helper()
	name := fmt.Sprintf("r%d-%d", time.Now().UnixNano()%1e6, nsSeq.Add(1))
	_, err := env.Client.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: annotations}}, metav1.CreateOptions{})
	if err != nil {
		tb.Fatalf("create namespace: %v", err)
	}
	return name
}
