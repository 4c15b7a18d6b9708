package observer_test

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/services/snapshotter/internal/observer"
)

func TestNext(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	t1 := t0.Add(time.Hour)
	v1 := []events.ObservedPod{{Pod: "db-1", Version: "1", Containers: []events.Container{{Name: "db", Digest: "sha256:1"}}}}
	v2 := []events.ObservedPod{{Pod: "db-1", Version: "1", Containers: []events.Container{{Name: "db", Digest: "sha256:2"}}}}
	prev := &events.WorkloadObserved{Namespace: "shop", PVC: "data", ObservedAt: t0, Pods: v1}
	for _, tc := range []struct {
		name    string
		prev    *events.WorkloadObserved
		pods    []events.ObservedPod
		resync  bool
		want    events.WorkloadObserved
		publish bool
	}{
		{"first sight is published at now", nil, v1, false,
			events.WorkloadObserved{Namespace: "shop", PVC: "data", ObservedAt: t1, Pods: v1}, true},
		{"first sight of an idle volume lists no pods", nil, nil, false,
			events.WorkloadObserved{Namespace: "shop", PVC: "data", ObservedAt: t1, Pods: []events.ObservedPod{}}, true},
		{"an unchanged set is not published again", prev, v1, false, *prev, false},
		{"a resync repeats the unchanged set with its first time", prev, v1, true,
			events.WorkloadObserved{Namespace: "shop", PVC: "data", ObservedAt: t0, Pods: v1, Resync: true}, true},
		{"a new digest is a change at now", prev, v2, false,
			events.WorkloadObserved{Namespace: "shop", PVC: "data", ObservedAt: t1, Pods: v2}, true},
		{"a change found by a resync is a change, not a resync", prev, v2, true,
			events.WorkloadObserved{Namespace: "shop", PVC: "data", ObservedAt: t1, Pods: v2}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, publish := observer.Next(tc.prev, "shop", "data", tc.pods, t1, tc.resync)
			if publish != tc.publish {
				t.Errorf("publish %v, want %v", publish, tc.publish)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
		})
	}
	again, _ := observer.Next(prev, "shop", "data", v1, t1, true)
	if events.ObservationID(again) != events.ObservationID(*prev) {
		t.Error("a resync changed the event id")
	}
}

func TestSecretRefs(t *testing.T) {
	spec := &corev1.PodSpec{
		Volumes: []corev1.Volume{
			{Name: "a", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "vol"}}},
			{Name: "b", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
				{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "projected"}}},
			}}}},
		},
		InitContainers: []corev1.Container{{Env: []corev1.EnvVar{{Name: "X", ValueFrom: &corev1.EnvVarSource{
			SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "env"}, Key: "k"},
		}}}}},
		Containers: []corev1.Container{{EnvFrom: []corev1.EnvFromSource{
			{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "envfrom"}}},
			{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "vol"}}},
		}}},
	}
	if diff := cmp.Diff([]string{"env", "envfrom", "projected", "vol"}, observer.SecretRefs(spec)); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}
}
