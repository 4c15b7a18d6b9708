package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	snapv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	snapclient "github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/stateguard/stateguard/pkg/harness/kubetest"
	"github.com/stateguard/stateguard/pkg/harness/natstest"
)

// The package's cluster (kubetest.StartClusterEnv: the API server,
// kube-controller-manager's PV binder and workload controllers, KWOK's
// node, the CSI snapshot-controller, csi-snapshotter and csi-provisioner on
// the repository's CSI driver), started by the first test that needs it
// and shared by the package's tests; TestMain stops it.
var cluster = &kubetest.Shared{Options: kubetest.Options{WithoutCertManager: true}}

func TestMain(m *testing.M) { cluster.Main(m) }

// useCluster returns the package's cluster, started on first use.
func useCluster(t *testing.T) *kubetest.Cluster { return cluster.Use(t) }

// The data the scene's db wrote into its claim: v1's is in the restore
// point db-1, v2 changed it afterwards.
const (
	dataFile = "orders.db"
	dataV1   = "orders written by db v1\n1001 alice 3 books\n1002 bob 1 lamp\n"
	dataV2   = "orders rewritten by db v2\n1001 alice 3 books\n1002 bob 1 lamp\n1003 mallory 99 refunds\n"
)

// clusterScene are the scene's Kubernetes objects in namespace shop: the
// claim data-db, the StatefulSet db mounting it (one pod, db-0, running the
// fixed version v3: its image is pinned by the digest the scene's events
// name, which the node reports back), the VolumeSnapshot db-1 taken while
// the claim held v1's data, and v2's data in the claim since.
type clusterScene struct {
	c *kubetest.Cluster
}

func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// seedCluster creates the scene's objects and returns once db-0 runs, the
// claim holds v2's data and db-1 (v1's data) is ready to use.
func seedCluster(t *testing.T, c *kubetest.Cluster) clusterScene {
	t.Helper()
	ctx := t.Context()
	cs := c.Client
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pvc := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "data-db", Namespace: "shop", Labels: map[string]string{"app.kubernetes.io/name": "db"}},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
		},
	}
	if _, err := cs.CoreV1().PersistentVolumeClaims("shop").Create(ctx, pvc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	labels := map[string]string{"app.kubernetes.io/name": "db"}
	sts := &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "shop", Labels: labels},
		Spec: appsv1.StatefulSetSpec{
			Replicas:    ptr.To[int32](1),
			ServiceName: "db",
			Selector:    &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app.kubernetes.io/name": "db", "app.kubernetes.io/version": "v3"}},
				Spec: corev1.PodSpec{
					Containers: []corev1.Container{{Name: "db", Image: "registry.example/db@" + digest("v3"),
						VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/var/lib/db"}}}},
					Volumes: []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{
						PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data-db"}}}},
				},
			},
		},
	}
	if _, err := cs.AppsV1().StatefulSets("shop").Create(ctx, sts, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "db-0 running v3 on the claim data-db, bound", 3*time.Minute, func() error {
		p, err := cs.CoreV1().Pods("shop").Get(ctx, "db-0", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if p.Status.Phase != corev1.PodRunning || len(p.Status.ContainerStatuses) == 0 || p.Status.ContainerStatuses[0].ImageID != "registry.example/db@"+digest("v3") {
			return fmt.Errorf("db-0: %s, %+v", p.Status.Phase, p.Status.ContainerStatuses)
		}
		claim, err := cs.CoreV1().PersistentVolumeClaims("shop").Get(ctx, "data-db", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if claim.Status.Phase != corev1.ClaimBound {
			return fmt.Errorf("claim data-db %s", claim.Status.Phase)
		}
		return nil
	})
	s := clusterScene{c: c}
	s.write(t, dataV1)
	sn, err := snapclient.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	vs := &snapv1.VolumeSnapshot{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "db-1"},
		Spec:       snapv1.VolumeSnapshotSpec{Source: snapv1.VolumeSnapshotSource{PersistentVolumeClaimName: ptr.To("data-db")}},
	}
	if _, err := sn.SnapshotV1().VolumeSnapshots("shop").Create(ctx, vs, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "VolumeSnapshot db-1 ready to use", 3*time.Minute, func() error {
		got, err := sn.SnapshotV1().VolumeSnapshots("shop").Get(ctx, "db-1", metav1.GetOptions{})
		if err != nil {
			return err
		}
		if got.Status == nil || got.Status.ReadyToUse == nil || !*got.Status.ReadyToUse {
			return fmt.Errorf("db-1 not ready: %+v", got.Status)
		}
		return nil
	})
	s.write(t, dataV2)
	return s
}

// write writes the data file into the volume bound to data-db now.
func (s clusterScene) write(t *testing.T, content string) {
	t.Helper()
	dir, err := s.c.ClaimDir(t.Context(), "shop", "data-db")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, dataFile), []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// data is the SHA-256 of the data file in the volume bound to data-db
// now (after a restore: the restored volume).
func (s clusterScene) data(ctx context.Context) (string, error) {
	dir, err := s.c.ClaimDir(ctx, "shop", "data-db")
	if err != nil {
		return "", err
	}
	b, err := os.ReadFile(filepath.Join(dir, dataFile))
	if err != nil {
		return "", err
	}
	return sha(string(b)), nil
}

// startSnapshotter builds the snapshotter (../snapshotter), runs its
// bootstrap (its consumers and buckets on JetStream) and starts it on the
// cluster, without leader election: it takes the restore.requested
// events, makes the Restores and its executor carries them out, publishing
// restore.started, .progressed and .completed. It stops when the test
// ends; its log is printed when the test failed.
func startSnapshotter(t *testing.T, c *kubetest.Cluster, natsURL string) {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "snapshotter")
	// -race: the race detector watches the executor too, and the build
	// reuses the packages `make test` compiled with -race for the
	// snapshotter's and the harness's tests.
	build := exec.CommandContext(t.Context(), "go", "build", "-race", "-o", bin, ".")
	build.Dir = filepath.Join("..", "snapshotter")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the snapshotter: %v\n%s", err, out)
	}
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := c.WriteKubeconfig(kubeconfig); err != nil {
		t.Fatal(err)
	}
	port, err := natstest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	env := append(os.Environ(), "NATS_URL="+natsURL, "KUBECONFIG="+kubeconfig, "HTTP_ADDR="+addr,
		"LEADER_ELECT=false", "WATCH_NAMESPACE=shop", "LOG_LEVEL=info")
	logPath := filepath.Join(dir, "snapshotter.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	boot := exec.CommandContext(t.Context(), bin, "bootstrap")
	boot.Env, boot.Stdout, boot.Stderr = env, logFile, logFile
	if err := boot.Run(); err != nil {
		b, _ := os.ReadFile(logPath)
		t.Fatalf("snapshotter bootstrap: %v\n%s", err, b)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin)
	cmd.Env, cmd.Stdout, cmd.Stderr = append(env, "NATS_BIND=true"), logFile, logFile
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 20 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		_ = logFile.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("snapshotter log:\n%s", tail(b, 8000))
		}
	})
	waitFor(t, "the snapshotter's /readyz", 90*time.Second, func() error {
		return expectStatus("http://"+addr+"/readyz", http.StatusOK)
	})
}
