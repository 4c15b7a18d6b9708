package kubetest_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	snapv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	snapclient "github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"

	"github.com/stateguard/stateguard/pkg/harness/csidriver"
	"github.com/stateguard/stateguard/pkg/harness/kubetest"
)

// cluster is the package's one cluster, shared by its tests (each in its
// own namespace), as kubetest.MainCluster offers every package.
var cluster *kubetest.Cluster

func TestMain(m *testing.M) { os.Exit(kubetest.MainCluster(m, &cluster)) }

// eventually polls cond until it holds, failing the test after d.
func eventually(t *testing.T, what string, d time.Duration, cond func(ctx context.Context) bool) time.Duration {
	t.Helper()
	start := time.Now()
	err := wait.PollUntilContextTimeout(t.Context(), 50*time.Millisecond, d, true, func(ctx context.Context) (bool, error) {
		return cond(ctx), nil
	})
	if err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
	return time.Since(start)
}

// claim is a 1Gi claim in the default StorageClass, filled from source
// when it is not nil.
func claim(ns, name string, source *corev1.TypedLocalObjectReference) *corev1.PersistentVolumeClaim {
	return &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
			DataSource:  source,
		},
	}
}

// bound creates the claim and waits until it is bound.
func bound(t *testing.T, c *kubetest.Cluster, pvc *corev1.PersistentVolumeClaim) time.Duration {
	t.Helper()
	if _, err := c.Client.CoreV1().PersistentVolumeClaims(pvc.Namespace).Create(t.Context(), pvc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return eventually(t, "claim "+pvc.Name+" bound", 60*time.Second, func(ctx context.Context) bool {
		got, err := c.Client.CoreV1().PersistentVolumeClaims(pvc.Namespace).Get(ctx, pvc.Name, metav1.GetOptions{})
		return err == nil && got.Status.Phase == corev1.ClaimBound
	})
}

// snapshot creates a VolumeSnapshot of claim in the default class.
func snapshot(t *testing.T, c *kubetest.Cluster, ns, name, claim string) snapclient.Interface {
	t.Helper()
	sn, err := snapclient.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	vs := &snapv1.VolumeSnapshot{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       snapv1.VolumeSnapshotSpec{Source: snapv1.VolumeSnapshotSource{PersistentVolumeClaimName: ptr.To(claim)}},
	}
	if _, err := sn.SnapshotV1().VolumeSnapshots(ns).Create(t.Context(), vs, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return sn
}

func ready(ctx context.Context, sn snapclient.Interface, ns, name string) bool {
	vs, err := sn.SnapshotV1().VolumeSnapshots(ns).Get(ctx, name, metav1.GetOptions{})
	return err == nil && vs.Status != nil && vs.Status.ReadyToUse != nil && *vs.Status.ReadyToUse
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func sums(t *testing.T, dir string) map[string]string {
	t.Helper()
	s, err := csidriver.TreeSums(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func claimDir(t *testing.T, c *kubetest.Cluster, ns, name string) string {
	t.Helper()
	dir, err := c.ClaimDir(t.Context(), ns, name)
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestRestoreFromSnapshotHasTheSnapshotsFiles writes files into a bound
// claim's volume, snapshots it through the real snapshot-controller and
// csi-snapshotter, changes the files, restores the snapshot into a new
// claim through csi-provisioner and compares every file's checksum.
func TestRestoreFromSnapshotHasTheSnapshotsFiles(t *testing.T) {
	c := cluster
	ns := c.Namespace(t, nil)
	bind := bound(t, c, claim(ns, "data", nil))
	dir := claimDir(t, c, ns, "data")
	writeFiles(t, dir, map[string]string{
		"PG_VERSION":      "17\n",
		"base/1/1259":     strings.Repeat("relation pages ", 4096),
		"pg_wal/00000001": "wal segment 1",
	})
	want := sums(t, dir)

	sn := snapshot(t, c, ns, "data-1", "data")
	snapReady := eventually(t, "snapshot data-1 ready", 60*time.Second, func(ctx context.Context) bool { return ready(ctx, sn, ns, "data-1") })

	writeFiles(t, dir, map[string]string{"base/1/1259": "overwritten after the snapshot", "pg_wal/00000002": "wal segment 2"})
	if err := os.Remove(filepath.Join(dir, "PG_VERSION")); err != nil {
		t.Fatal(err)
	}
	changed := sums(t, dir)

	src := &corev1.TypedLocalObjectReference{APIGroup: ptr.To(snapv1.GroupName), Kind: "VolumeSnapshot", Name: "data-1"}
	restore := bound(t, c, claim(ns, "restored", src))
	got := sums(t, claimDir(t, c, ns, "restored"))
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("restored files (-snapshot time +restored):\n%s", diff)
	}
	if cmp.Equal(changed, got) {
		t.Errorf("restored files equal the files changed after the snapshot: %v", got)
	}
	t.Logf("claim bound in %s, snapshot ready in %s, restored claim bound in %s", bind.Round(time.Millisecond), snapReady.Round(time.Millisecond), restore.Round(time.Millisecond))
}

// TestSnapshotReadyAfterSnapshotterRestart kills csi-snapshotter while the
// driver's CreateSnapshot hangs and restarts it: the snapshot becomes ready.
//
// It starts a cluster of its own: it kills one of the cluster's processes.
func TestSnapshotReadyAfterSnapshotterRestart(t *testing.T) {
	c := kubetest.StartCluster(t)
	ns := c.Namespace(t, nil)
	bound(t, c, claim(ns, "data", nil))
	writeFiles(t, claimDir(t, c, ns, "data"), map[string]string{"table": "rows"})
	t.Cleanup(c.Driver.Inject("CreateSnapshot", csidriver.Fault{Delay: 10 * time.Minute, Times: 1, Match: csidriver.InNamespace(ns)}))

	sn := snapshot(t, c, ns, "data-1", "data")
	eventually(t, "CreateSnapshot called", 60*time.Second, func(context.Context) bool { return c.Driver.Calls("CreateSnapshot") >= 1 })
	sidecar := c.Process("csi-snapshotter")
	if err := sidecar.Kill(); err != nil {
		t.Fatal(err)
	}
	if ready(t.Context(), sn, ns, "data-1") {
		t.Fatal("snapshot ready although CreateSnapshot never returned")
	}
	start := time.Now()
	if err := sidecar.Start(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "snapshot data-1 ready after the restart", 90*time.Second, func(ctx context.Context) bool { return ready(ctx, sn, ns, "data-1") })
	if n := c.Driver.Calls("CreateSnapshot"); n < 2 {
		t.Errorf("CreateSnapshot called %d times, want a second call after the restart", n)
	}
	t.Logf("snapshot ready %s after csi-snapshotter restarted", time.Since(start).Round(time.Millisecond))
}

// imageID is what stateguard's KWOK pod-ready Stage reports for an image
// referenced by tag.
func imageID(image string) string {
	sum := sha256.Sum256([]byte(image))
	repo := image[:strings.LastIndex(image, ":")]
	return repo + "@sha256:" + hex.EncodeToString(sum[:])
}

// TestDeploymentRunsOnKWOK creates a Deployment: the real controllers make
// a ReplicaSet and pods, the scheduler binds them to the simulated node and
// KWOK runs them with image digests; a new image rolls a new ReplicaSet.
func TestDeploymentRunsOnKWOK(t *testing.T) {
	c := cluster
	ns := c.Namespace(t, nil)
	labels := map[string]string{"app": "web"}
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "web"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](2),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "ghcr.io/acme/web:1.0.0"}}},
			},
		},
	}
	dep, err := c.Client.AppsV1().Deployments(ns).Create(t.Context(), dep, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	running := func(image string) func(ctx context.Context) bool {
		return func(ctx context.Context) bool {
			pods, err := c.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
			if err != nil || len(pods.Items) != 2 {
				return false
			}
			for _, p := range pods.Items {
				if p.Spec.NodeName != kubetest.NodeName || p.Status.Phase != corev1.PodRunning || len(p.Status.ContainerStatuses) != 1 {
					return false
				}
				if p.Status.ContainerStatuses[0].ImageID != imageID(image) {
					return false
				}
				owner := metav1.GetControllerOf(&p)
				if owner == nil || owner.Kind != "ReplicaSet" {
					return false
				}
				rs, err := c.Client.AppsV1().ReplicaSets(ns).Get(ctx, owner.Name, metav1.GetOptions{})
				if err != nil || metav1.GetControllerOf(rs) == nil || metav1.GetControllerOf(rs).UID != dep.UID {
					return false
				}
			}
			return true
		}
	}
	up := eventually(t, "2 running pods of web 1.0.0", 60*time.Second, running("ghcr.io/acme/web:1.0.0"))

	// The deployment controller writes the Deployment's status too.
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		d, err := c.Client.AppsV1().Deployments(ns).Get(t.Context(), "web", metav1.GetOptions{})
		if err != nil {
			return err
		}
		d.Spec.Template.Spec.Containers[0].Image = "ghcr.io/acme/web:1.1.0"
		_, err = c.Client.AppsV1().Deployments(ns).Update(t.Context(), d, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	rolled := eventually(t, "2 running pods of web 1.1.0 and no old pod", 90*time.Second, running("ghcr.io/acme/web:1.1.0"))
	rss, err := c.Client.AppsV1().ReplicaSets(ns).List(t.Context(), metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil {
		t.Fatal(err)
	}
	if len(rss.Items) != 2 {
		t.Errorf("%d ReplicaSets after the rollout, want 2 (old scaled to 0, new)", len(rss.Items))
	}
	t.Logf("pods running in %s, rolled to 1.1.0 in %s", up.Round(time.Millisecond), rolled.Round(time.Millisecond))
}

// TestStartClusterNamesTheBuildCommand checks that a missing binary is an
// error naming `make tools`.
func TestStartClusterNamesTheBuildCommand(t *testing.T) {
	dir := t.TempDir()
	for _, b := range []string{"kube-apiserver", "etcd"} {
		if err := os.WriteFile(filepath.Join(dir, b), nil, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("KUBEBUILDER_ASSETS", dir)
	_, err := kubetest.StartClusterEnv(t.Context(), kubetest.Options{})
	if !errors.Is(err, kubetest.ErrNoClusterTools) || !strings.Contains(err.Error(), "make tools") || !strings.Contains(err.Error(), "kube-controller-manager") {
		t.Errorf("error %v, want ErrNoClusterTools naming make tools and kube-controller-manager", err)
	}
}
