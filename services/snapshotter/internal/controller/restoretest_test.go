package controller_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
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
	"github.com/stateguard/stateguard/pkg/harness/csidriver"
	"github.com/stateguard/stateguard/services/snapshotter/api/v1alpha1"
)

// TestRestoreTest restores the newest snapshot into a verification
// namespace twice, on the real cluster: csi-provisioner fills the scratch
// claim from the snapshot copy, the Job controller runs the verification
// Job and KWOK plays its pod, which succeeds the first time and fails the
// second (its command is `false`). Each time the scratch claim holds the
// files the volume had when the snapshot was taken, checksum for checksum,
// not the files written after it.
func TestRestoreTest(t *testing.T) {
	ns, vns := namespace(t), namespace(t)
	create(t, pvc(ns, "data", map[string]string{"app": "db"}))
	data := claimDir(t, ns, "data")
	p := policy(t, ns, "hourly")
	r := newRig(t, ns, p.CreationTimestamp.Time)

	for i, passed := range []bool{true, false} {
		writeFiles(t, data, map[string]string{
			"PG_VERSION":                  "17\n",
			"base/1/1259":                 strings.Repeat(fmt.Sprintf("relation pages of generation %d ", i), 2048),
			fmt.Sprintf("pg_wal/%08d", i): "wal segment",
		})
		atSnapshot := treeSums(t, data)
		r.clock.SetTime(nextHour(p.CreationTimestamp.Time, i+1))
		want := i + 1
		r.until("snapshot.completed", func() bool { return len(r.published(events.TypeSnapshotCompleted)) >= want })
		// Written after the snapshot: a restore must not have it.
		writeFiles(t, data, map[string]string{"base/1/1259": "overwritten after the snapshot"})

		command := []string{"pg_verifybackup", "/data"}
		if !passed {
			command = []string{"false"} // KWOK's node fails a Job pod running `false`
		}
		if err := kc.Get(t.Context(), client.ObjectKeyFromObject(p), p); err != nil {
			t.Fatal(err)
		}
		p.Spec.RestoreTest = &v1alpha1.RestoreTest{
			Schedule: "30 * * * *", Image: "ghcr.io/acme/verify:1", Command: command, VerificationNamespace: vns,
		}
		if err := kc.Update(t.Context(), p); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			// Restore tests start now, so that no restore slot falls
			// between the policy's creation and its first snapshot.
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
		if ctr.Image != "ghcr.io/acme/verify:1" || !cmp.Equal(ctr.Command, command) || ctr.VolumeMounts[0].MountPath != "/data" {
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
		var copyContent snapv1.VolumeSnapshotContent
		if err := kc.Get(t.Context(), client.ObjectKey{Name: job.Name}, &copyContent); err != nil {
			t.Fatal(err)
		}
		if copyContent.Spec.DeletionPolicy != snapv1.VolumeSnapshotContentRetain || copyContent.Spec.Source.SnapshotHandle == nil {
			t.Errorf("content copy %+v", copyContent.Spec)
		}

		// The Job controller and KWOK finish the Job; the scratch claim
		// holds the snapshot's files until the next pass cleans up.
		waitFor(t, "verification job "+job.Name+" finished", 90*time.Second, func() bool {
			var j batchv1.Job
			if err := kc.Get(t.Context(), client.ObjectKeyFromObject(&job), &j); err != nil {
				return false
			}
			return j.Status.Succeeded+j.Status.Failed > 0
		})
		restored := treeSums(t, claimDir(t, vns, job.Name))
		if diff := cmp.Diff(atSnapshot, restored); diff != "" {
			t.Errorf("restore %d: scratch claim's files (-at snapshot time +restored):\n%s", i, diff)
		}

		r.until("snapshot.verified", func() bool { return len(r.published(events.TypeSnapshotVerified)) >= want })
		verified := r.published(events.TypeSnapshotVerified)
		got := decode[events.SnapshotVerified](t, verified[i])
		if got.Passed != passed || got.Namespace != ns || got.PVC != "data" || got.Policy != "hourly" || got.Job.Name != job.Name || got.VolumeSnapshot == "" {
			t.Errorf("snapshot.verified %+v, want passed=%v", got, passed)
		}
		// Clean-up: the Job, the scratch claim and the copies go (the
		// controllers' finalizers keep them a moment).
		pollUntil(t, "the restore test's objects deleted", func() bool {
			for _, o := range []client.Object{&batchv1.Job{}, &corev1.PersistentVolumeClaim{}, &snapv1.VolumeSnapshot{}} {
				err := kc.Get(t.Context(), client.ObjectKey{Namespace: vns, Name: job.Name}, o)
				if err == nil && o.GetDeletionTimestamp() == nil {
					return false
				}
			}
			err := kc.Get(t.Context(), client.ObjectKey{Name: job.Name}, &snapv1.VolumeSnapshotContent{})
			return apierrors.IsNotFound(err)
		})
	}
	if n := len(r.published(events.TypeSnapshotCompleted)); n != 2 {
		t.Errorf("%d snapshot.completed events, want 2 (the copies are not reported)", n)
	}
}

// claimDir waits until claim ns/name is bound and returns the CSI driver's
// directory holding its data.
func claimDir(t *testing.T, ns, name string) string {
	t.Helper()
	var dir string
	waitFor(t, "claim "+ns+"/"+name+" bound", 90*time.Second, func() bool {
		d, err := cluster.ClaimDir(t.Context(), ns, name)
		dir = d
		return err == nil
	})
	return dir
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

func treeSums(t *testing.T, dir string) map[string]string {
	t.Helper()
	s, err := csidriver.TreeSums(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
