package snapsim_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	snapv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	snapclient "github.com/kubernetes-csi/external-snapshotter/client/v8/clientset/versioned"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/stateguard/stateguard/pkg/harness/kubetest"
	"github.com/stateguard/stateguard/pkg/harness/snapsim"
)

func TestRun(t *testing.T) {
	env := kubetest.Start(t)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- snapsim.Run(ctx, env.Config, snapsim.Options{
			RestoreSize: "2Gi",
			Fail: func(s *snapv1.VolumeSnapshot) string {
				if s.Labels["fail"] == "yes" {
					return "simulated failure"
				}
				return ""
			},
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	if _, err := env.Client.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "snapsim"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cs := snapclient.NewForConfigOrDie(env.Config)
	pvc := "data"
	for _, c := range []struct{ name, fail string }{{"good", "no"}, {"bad", "yes"}} {
		vs := &snapv1.VolumeSnapshot{
			ObjectMeta: metav1.ObjectMeta{Name: c.name, Namespace: "snapsim", Labels: map[string]string{"fail": c.fail}},
			Spec:       snapv1.VolumeSnapshotSpec{Source: snapv1.VolumeSnapshotSource{PersistentVolumeClaimName: &pvc}},
		}
		if _, err := cs.SnapshotV1().VolumeSnapshots("snapsim").Create(t.Context(), vs, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	get := func(name string, done func(*snapv1.VolumeSnapshotStatus) bool) *snapv1.VolumeSnapshot {
		t.Helper()
		var vs *snapv1.VolumeSnapshot
		err := wait.PollUntilContextTimeout(t.Context(), 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			var err error
			vs, err = cs.SnapshotV1().VolumeSnapshots("snapsim").Get(ctx, name, metav1.GetOptions{})
			return err == nil && vs.Status != nil && done(vs.Status), nil
		})
		if err != nil {
			t.Fatalf("snapshot %s never settled: %v (%+v)", name, err, vs)
		}
		return vs
	}
	good := get("good", func(s *snapv1.VolumeSnapshotStatus) bool { return s.ReadyToUse != nil && *s.ReadyToUse })
	if good.Status.BoundVolumeSnapshotContentName == nil || good.Status.RestoreSize.String() != "2Gi" || good.Status.CreationTime == nil {
		t.Fatalf("ready snapshot status incomplete: %+v", good.Status)
	}
	vsc, err := cs.SnapshotV1().VolumeSnapshotContents().Get(t.Context(), *good.Status.BoundVolumeSnapshotContentName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprintf("%s/%s %s", vsc.Spec.VolumeSnapshotRef.Namespace, vsc.Spec.VolumeSnapshotRef.Name, vsc.Spec.Driver); got != "snapsim/good "+snapsim.Driver {
		t.Errorf("content refers to %q", got)
	}
	bad := get("bad", func(s *snapv1.VolumeSnapshotStatus) bool { return s.Error != nil })
	if bad.Status.Error.Message == nil || *bad.Status.Error.Message != "simulated failure" || bad.Status.BoundVolumeSnapshotContentName != nil {
		t.Errorf("failed snapshot status: %+v", bad.Status)
	}
}
