package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	snapv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stateguard/stateguard/pkg/harness/kubetest"
	"github.com/stateguard/stateguard/pkg/harness/logtest"
	"github.com/stateguard/stateguard/pkg/harness/natstest"
	"github.com/stateguard/stateguard/pkg/restoreplan"
	"github.com/stateguard/stateguard/services/snapshotter/api/v1alpha1"
)

// cluster is the package's one cluster (kubetest.MainCluster): snapshots
// are taken by the real snapshot-controller and csi-snapshotter on the
// test CSI driver.
var cluster *kubetest.Cluster

func TestMain(m *testing.M) {
	// klog is global: route it before the cluster's client-go goroutines
	// start, which makes run's own routeKlog a no-op.
	routeKlog(slog.New(slog.DiscardHandler))
	os.Exit(kubetest.MainCluster(m, &cluster, kubetest.Options{WithoutCertManager: true}))
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestService runs the whole service against a real cluster and real
// JetStream: health, readiness, metrics, a snapshot taken by a policy
// through the real snapshot controllers, and its restore plan over HTTP and
// the CLI.
func TestService(t *testing.T) {
	env := cluster
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := env.WriteKubeconfig(kubeconfig); err != nil {
		t.Fatal(err)
	}
	srv := natstest.Run(t)
	ctx, cancel := context.WithCancel(t.Context())

	ns := "shop"
	if _, err := env.Client.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// Every two seconds on the real clock.
	kc, pol := claimAndFrequentPolicy(t, env.Config, env.Client, ns, "5Gi")

	// A policy whose time zone passes admission but exists nowhere.
	mars := pol.DeepCopy()
	mars.ObjectMeta = metav1.ObjectMeta{Namespace: ns, Name: "mars"}
	mars.Spec.TimeZone = "Mars/Olympus_Mons"
	if err := kc.Create(t.Context(), mars); err != nil {
		t.Fatal(err)
	}

	tokensFile := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(tokensFile, []byte("# stateguard API tokens\nrestore-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	out := &logtest.Buffer{}
	getenv := func(k string) string {
		return map[string]string{
			"KUBECONFIG": kubeconfig, "NATS_URL": srv.ClientURL(), "HTTP_ADDR": addr,
			"POD_NAMESPACE": ns, "POD_NAME": "snapshotter-0", "RESYNC": "1s",
			"API_TOKENS_FILE": tokensFile,
		}[k]
	}
	errc := make(chan error, 1)
	go func() { errc <- run(ctx, nil, getenv, out) }()
	defer func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("run: %v", err)
		}
	}()

	base := "http://" + addr
	getAs := func(token, path string) (int, string) {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, base+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	get := func(path string) (int, string) { return getAs("", path) }
	poll := func(what string, d time.Duration, cond func() bool) {
		t.Helper()
		if err := wait.PollUntilContextTimeout(t.Context(), 200*time.Millisecond, d, true, func(context.Context) (bool, error) { return cond(), nil }); err != nil {
			t.Fatalf("waiting for %s: %v\nlogs:\n%s", what, err, out.String())
		}
	}
	poll("/readyz", 30*time.Second, func() bool { code, _ := get("/readyz"); return code == http.StatusOK })
	if code, _ := get("/healthz"); code != http.StatusOK {
		t.Errorf("/healthz %d", code)
	}

	var snap snapv1.VolumeSnapshot
	poll("a reported snapshot", 90*time.Second, func() bool {
		var list snapv1.VolumeSnapshotList
		if err := kc.List(t.Context(), &list, client.InNamespace(ns)); err != nil { // other tests of the package leave theirs
			return false
		}
		for _, s := range list.Items {
			if s.Annotations[v1alpha1.AnnotationReported] == "completed" {
				snap = s
				return true
			}
		}
		return false
	})
	// The age gauge is set by the retention step of the pass after the report.
	poll("metrics", 30*time.Second, func() bool {
		code, body := get("/metrics")
		return code == http.StatusOK &&
			strings.Contains(body, `stateguard_snapshotter_snapshots_total{namespace="shop",outcome="completed",policy="frequent"}`) &&
			strings.Contains(body, `stateguard_snapshotter_newest_ready_snapshot_age_seconds{namespace="shop",pvc="data"}`) &&
			strings.Contains(body, `stateguard_snapshotter_policy_errors_total{namespace="shop",policy="mars",reason="InvalidTimeZone"}`)
	})
	poll("a Warning Event on the invalid policy", 30*time.Second, func() bool {
		evs, err := env.Client.CoreV1().Events(ns).List(t.Context(), metav1.ListOptions{FieldSelector: "involvedObject.name=mars"})
		if err != nil {
			return false
		}
		for _, e := range evs.Items {
			if e.Type == corev1.EventTypeWarning && e.Reason == v1alpha1.ReasonInvalidTimeZone && e.Source.Component == "stateguard-snapshotter" {
				return true
			}
		}
		return false
	})

	planPath := fmt.Sprintf("/v1/restore-plan/%s/%s", ns, snap.Name)
	for _, token := range []string{"", "wrong-token", "# stateguard API tokens"} {
		if code, body := getAs(token, planPath); code != http.StatusUnauthorized {
			t.Errorf("restore plan with token %q: %d %s, want 401", token, code, body)
		}
	}
	code, body := getAs("restore-token", planPath)
	if code != http.StatusOK {
		t.Fatalf("restore plan: %d %s", code, body)
	}
	var p restoreplan.Plan
	if err := json.Unmarshal([]byte(body), &p); err != nil {
		t.Fatal(err)
	}
	// The driver reports the snapshot's size: the 5Gi volume's; the claim
	// got the cluster's default StorageClass.
	if snap.Status == nil || snap.Status.RestoreSize == nil || snap.Status.RestoreSize.String() != "5Gi" {
		t.Fatalf("snapshot %s status %+v, want a restore size of 5Gi", snap.Name, snap.Status)
	}
	want, err := restoreplan.For(restoreplan.Snapshot{Namespace: ns, VolumeSnapshot: snap.Name, PVC: "data", RestoreSize: "5Gi", StorageClassName: kubetest.ClassName, AccessModes: []string{"ReadWriteOnce"}, Labels: map[string]string{"app": "db"}})
	if err != nil {
		t.Fatal(err)
	}
	if p.Manifest != want.Manifest || p.NewPVC != want.NewPVC {
		t.Errorf("restore plan manifest:\n%s\nwant:\n%s", p.Manifest, want.Manifest)
	}
	if code, _ := getAs("restore-token", "/v1/restore-plan/shop/missing"); code != http.StatusNotFound {
		t.Errorf("plan of a missing snapshot: %d, want 404", code)
	}

	var planOut bytes.Buffer
	if err := cli(t.Context(), []string{"restore-plan", "--kubeconfig", kubeconfig, ns + "/" + snap.Name}, func(string) string { return "" }, &planOut); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(planOut.String(), want.Manifest) || !strings.Contains(planOut.String(), "# Steps:\n# 1. ") {
		t.Errorf("restore-plan output:\n%s", planOut.String())
	}
}

// claimAndFrequentPolicy creates the claim "data" (app=db) of the given size
// in ns and a policy "frequent" snapshotting it every two seconds, keeping
// three (until the test ends); it returns the controller-runtime client it
// used and the policy.
func claimAndFrequentPolicy(t *testing.T, cfg *rest.Config, cs kubernetes.Interface, ns, size string) (client.WithWatch, *v1alpha1.SnapshotPolicy) {
	t.Helper()
	claim := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "data", Labels: map[string]string{"app": "db"}},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)}},
		},
	}
	if _, err := cs.CoreV1().PersistentVolumeClaims(ns).Create(t.Context(), claim, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	kc, err := newClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	pol := &v1alpha1.SnapshotPolicy{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "frequent"},
		Spec: v1alpha1.SnapshotPolicySpec{
			PVCSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}},
			Schedule:    "@every 2s",
			Retention:   v1alpha1.Retention{KeepLast: 3},
		},
	}
	if err := kc.Create(t.Context(), pol); err != nil {
		t.Fatal(err)
	}
	// The package's tests share a cluster: the policy stops with its test.
	t.Cleanup(func() { _ = kc.Delete(context.Background(), pol) })
	return kc, pol
}
