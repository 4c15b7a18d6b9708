package hooks

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/stateguard/stateguard/pkg/harness/kubetest"
)

// env is the package's kube-apiserver (no kubelet: an exec reaches the
// API server and stops there).
var env *kubetest.Env

func TestMain(m *testing.M) {
	os.Exit(kubetest.Main(m, &env, kubetest.Options{WithoutCertManager: true}))
}

func dbPod(ns string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "db-0"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{
			{Name: "db", Image: "postgres:17"},
			{Name: "exporter", Image: "postgres-exporter:1"},
		}},
	}
}

// TestExecRefusedNamesPodContainerAndCommand: on a real API server, an
// exec into a pod that runs nowhere (no node: the API server refuses it)
// fails with an error naming the command, the pod and the container (the
// first one when none is given) and carrying the API server's answer —
// what a policy's HookFailed condition shows.
func TestExecRefusedNamesPodContainerAndCommand(t *testing.T) {
	ns := env.Namespace(t, nil)
	pod, err := env.Client.CoreV1().Pods(ns).Create(t.Context(), dbPod(ns), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ex, err := NewExec(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ container, want string }{
		{"", `exec "psql" in db-0/db: `},
		{"exporter", `exec "psql" in db-0/exporter: `},
	} {
		err := ex.Exec(t.Context(), pod, tt.container, []string{"psql", "-c", "CHECKPOINT"})
		if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("container %q: err = %v, want it to start %q", tt.container, err, tt.want)
		}
		if err != nil && !strings.Contains(err.Error(), "host") {
			t.Errorf("container %q: err = %v, want the API server's answer (no host assigned)", tt.container, err)
		}
	}
}

// TestExecRequest: what Exec asks the API server for — the pods/exec
// subresource of the pod, the container (the first one by default), the
// command word by word, stdout and stderr — recorded by a stand-in server
// that refuses the upgrade with a message, which the error then carries.
func TestExecRequest(t *testing.T) {
	var (
		mu   sync.Mutex
		seen []*url.URL
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.URL)
		mu.Unlock()
		http.Error(w, "exec refused by policy", http.StatusForbidden)
	}))
	defer srv.Close()
	ex, err := NewExec(&rest.Config{Host: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	pod := dbPod("shop")
	for _, tt := range []struct{ container, want string }{{"", "db"}, {"exporter", "exporter"}} {
		mu.Lock()
		seen = nil
		mu.Unlock()
		err := ex.Exec(t.Context(), pod, tt.container, []string{"pg_ctl", "checkpoint", "--wait"})
		if err == nil || !strings.Contains(err.Error(), "exec refused by policy") {
			t.Errorf("err = %v, want the server's refusal", err)
		}
		mu.Lock()
		if len(seen) == 0 {
			mu.Unlock()
			t.Fatal("no request reached the server")
		}
		u := seen[0]
		mu.Unlock()
		if u.Path != "/api/v1/namespaces/shop/pods/db-0/exec" {
			t.Errorf("path %s", u.Path)
		}
		q := u.Query()
		if got := q.Get("container"); got != tt.want {
			t.Errorf("container %q, want %q", got, tt.want)
		}
		if diff := cmp.Diff([]string{"pg_ctl", "checkpoint", "--wait"}, q["command"]); diff != "" {
			t.Errorf("command (-want +got):\n%s", diff)
		}
		if q.Get("stdout") != "true" || q.Get("stderr") != "true" || q.Get("stdin") == "true" || q.Get("tty") == "true" {
			t.Errorf("streams %v, want stdout and stderr only", q)
		}
	}
}

// TestOutputBounded: a hook's output kept for the error is cut at
// maxOutput, while every write reports success (the stream goes on).
func TestOutputBounded(t *testing.T) {
	var b limitedBuffer
	chunk := bytes.Repeat([]byte("x"), 1000)
	for range 10 {
		if n, err := b.Write(chunk); n != len(chunk) || err != nil {
			t.Fatalf("Write = %d, %v", n, err)
		}
	}
	if b.Len() != maxOutput {
		t.Errorf("kept %d bytes, want %d", b.Len(), maxOutput)
	}
}
