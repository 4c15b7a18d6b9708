package controller_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	snapv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/services/snapshotter/api/v1alpha1"
)

// TestRestoreTest restores the newest snapshot into a verification
// namespace twice; the test plays the Job controller, which envtest lacks,
// passing the first verification Job and failing the second.
func TestRestoreTest(t *testing.T) {
	ns, vns := namespace(t), namespace(t)
	create(t, pvc(ns, "data", map[string]string{"app": "db"}))
	p := policy(t, ns, "hourly")
	r := newRig(t, ns, p.CreationTimestamp.Time)

	for i, passed := range []bool{true, false} {
		r.clock.SetTime(nextHour(p.CreationTimestamp.Time, i+1))
		want := i + 1
		r.until("snapshot.completed", func() bool { return len(r.published(events.TypeSnapshotCompleted)) >= want })
		if i == 0 {
			// Turn restore tests on now, so that no restore slot falls
			// between the policy's creation and its first snapshot.
			if err := kc.Get(t.Context(), client.ObjectKeyFromObject(p), p); err != nil {
				t.Fatal(err)
			}
			p.Spec.RestoreTest = &v1alpha1.RestoreTest{
				Schedule: "30 * * * *", Image: "ghcr.io/acme/verify:1", Command: []string{"pg_verifybackup", "/data"}, VerificationNamespace: vns,
			}
			if err := kc.Update(t.Context(), p); err != nil {
				t.Fatal(err)
			}
			p.Status.LastRestoreTest = &metav1.Time{Time: r.clock.Now()}
			if err := kc.Status().Update(t.Context(), p); err != nil {
				t.Fatal(err)
			}
		}
		r.clock.SetTime(r.clock.Now().Add(30 * time.Minute))
		r.pass()

		var jobs batchv1.JobList
		if err := kc.List(t.Context(), &jobs, client.InNamespace(vns)); err != nil {
			t.Fatal(err)
		}
		if len(jobs.Items) != 1 {
			t.Fatalf("%d verification jobs, want 1", len(jobs.Items))
		}
		job := jobs.Items[0]
		ctr := job.Spec.Template.Spec.Containers[0]
		if ctr.Image != "ghcr.io/acme/verify:1" || !cmp.Equal(ctr.Command, []string{"pg_verifybackup", "/data"}) || ctr.VolumeMounts[0].MountPath != "/data" {
			t.Errorf("verification container %+v", ctr)
		}
		var scratch corev1.PersistentVolumeClaim
		if err := kc.Get(t.Context(), client.ObjectKey{Namespace: vns, Name: job.Name}, &scratch); err != nil {
			t.Fatal(err)
		}
		if ds := scratch.Spec.DataSource; ds == nil || ds.Kind != "VolumeSnapshot" || ds.Name != job.Name {
			t.Errorf("scratch pvc data source %+v", scratch.Spec.DataSource)
		}
		// The copy in the verification namespace is bound to a content that
		// shares the original's snapshot handle.
		var copyVS snapv1.VolumeSnapshot
		if err := kc.Get(t.Context(), client.ObjectKey{Namespace: vns, Name: job.Name}, &copyVS); err != nil {
			t.Fatal(err)
		}
		var copyContent snapv1.VolumeSnapshotContent
		if err := kc.Get(t.Context(), client.ObjectKey{Name: job.Name}, &copyContent); err != nil {
			t.Fatal(err)
		}
		if copyContent.Spec.DeletionPolicy != snapv1.VolumeSnapshotContentRetain || copyContent.Spec.Source.SnapshotHandle == nil {
			t.Errorf("content copy %+v", copyContent.Spec)
		}

		// Play the Job controller.
		now := metav1.Now()
		job.Status.StartTime = &now
		if passed {
			job.Status.Succeeded = 1
		} else {
			job.Status.Failed = 1
		}
		if err := kc.Status().Update(t.Context(), &job); err != nil {
			t.Fatalf("set job status: %v", err)
		}
		r.until("snapshot.verified", func() bool { return len(r.published(events.TypeSnapshotVerified)) >= want })
		verified := r.published(events.TypeSnapshotVerified)
		got := decode[events.SnapshotVerified](t, verified[i])
		if got.Passed != passed || got.Namespace != ns || got.PVC != "data" || got.Policy != "hourly" || got.Job.Name != job.Name || got.VolumeSnapshot == "" {
			t.Errorf("snapshot.verified %+v, want passed=%v", got, passed)
		}
		// Clean-up: the Job and the content copy are gone; the scratch PVC
		// and snapshot copy are deleted (a finalizer may keep them a while).
		if err := kc.Get(t.Context(), client.ObjectKeyFromObject(&copyContent), &copyContent); !apierrors.IsNotFound(err) {
			t.Errorf("content copy still there: %v", err)
		}
		for _, o := range []client.Object{&batchv1.Job{}, &corev1.PersistentVolumeClaim{}, &snapv1.VolumeSnapshot{}} {
			err := kc.Get(t.Context(), client.ObjectKey{Namespace: vns, Name: job.Name}, o)
			if err == nil && o.GetDeletionTimestamp() == nil {
				t.Errorf("%T %s not deleted", o, job.Name)
			}
		}
	}
	if n := len(r.published(events.TypeSnapshotCompleted)); n != 2 {
		t.Errorf("%d snapshot.completed events, want 2 (the copies are not reported)", n)
	}
}
