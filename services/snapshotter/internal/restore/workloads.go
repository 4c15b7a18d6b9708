package restore

import (
	"context"
	"fmt"
	"slices"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/services/snapshotter/api/v1alpha1"
	"github.com/stateguard/stateguard/services/snapshotter/internal/workload"
)

// mountingPods are the pods of namespace that mount claim and may still
// use it: terminating pods count (their volume is still mounted), finished
// ones do not.
func mountingPods(ctx context.Context, c client.Reader, namespace, claim string) ([]string, error) {
	var list corev1.PodList
	if err := c.List(ctx, &list, client.InNamespace(namespace)); err != nil {
		return nil, fmt.Errorf("list pods: %w", err)
	}
	var out []string
	for i := range list.Items {
		p := &list.Items[i]
		if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		if workload.Mounts(p, claim) {
			out = append(out, p.Name)
		}
	}
	return out, nil
}

// discover finds the workloads whose pods mount claim: a pod's
// ReplicaSet's Deployment, its StatefulSet, or its ReplicaSet. A pod that
// nothing would start again (no controller), or whose controller cannot be
// scaled (DaemonSet, Job), is a failure naming it.
func discover(ctx context.Context, c client.Reader, namespace, claim string) ([]v1alpha1.WorkloadRef, error) {
	var list corev1.PodList
	if err := c.List(ctx, &list, client.InNamespace(namespace)); err != nil {
		return nil, fmt.Errorf("list pods: %w", err)
	}
	var out []v1alpha1.WorkloadRef
	for i := range list.Items {
		p := &list.Items[i]
		if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed || p.DeletionTimestamp != nil || !workload.Mounts(p, claim) {
			continue
		}
		owner, err := workload.Owner(ctx, c, p)
		if err != nil {
			return nil, err
		}
		if owner == nil {
			return nil, fail("BarePod", "pod %s mounts claim %s and has no controller: nothing would start it again after the restore; delete it (or run it from a Deployment or StatefulSet) and create the Restore again", p.Name, claim)
		}
		switch owner.Kind {
		case "Deployment", "StatefulSet", "ReplicaSet":
		default:
			return nil, fail("UnsupportedWorkload", "pod %s mounts claim %s and belongs to %s %s, which cannot be scaled down; stop it and create the Restore again", p.Name, claim, owner.Kind, owner.Name)
		}
		ref := v1alpha1.WorkloadRef{Kind: owner.Kind, Name: owner.Name}
		if !slices.Contains(out, ref) {
			out = append(out, ref)
		}
	}
	slices.SortFunc(out, func(a, b v1alpha1.WorkloadRef) int {
		if a.Kind != b.Kind {
			if a.Kind < b.Kind {
				return -1
			}
			return 1
		}
		if a.Name < b.Name {
			return -1
		}
		if a.Name > b.Name {
			return 1
		}
		return 0
	})
	return out, nil
}

// object returns an empty object of the workload's kind.
func object(w v1alpha1.WorkloadRef) (client.Object, error) {
	switch w.Kind {
	case "Deployment":
		return &appsv1.Deployment{}, nil
	case "StatefulSet":
		return &appsv1.StatefulSet{}, nil
	case "ReplicaSet":
		return &appsv1.ReplicaSet{}, nil
	}
	return nil, fail("UnsupportedWorkload", "workload kind %q cannot be scaled (Deployment, StatefulSet or ReplicaSet)", w.Kind)
}

// getWorkload reads a workload; a missing one is a failure.
func getWorkload(ctx context.Context, c client.Reader, namespace string, w v1alpha1.WorkloadRef) (client.Object, error) {
	obj, err := object(w)
	if err != nil {
		return nil, err
	}
	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: w.Name}, obj); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, fail("WorkloadNotFound", "%s %s/%s does not exist", w.Kind, namespace, w.Name)
		}
		return nil, fmt.Errorf("get %s %s: %w", w.Kind, w.Name, err)
	}
	return obj, nil
}

// replicasOf returns a workload's spec.replicas (1 when unset, as the API
// defaults it).
func replicasOf(obj client.Object) int32 {
	var r *int32
	switch o := obj.(type) {
	case *appsv1.Deployment:
		r = o.Spec.Replicas
	case *appsv1.StatefulSet:
		r = o.Spec.Replicas
	case *appsv1.ReplicaSet:
		r = o.Spec.Replicas
	}
	if r == nil {
		return 1
	}
	return *r
}

// scale sets a workload's replicas with a merge patch carrying its
// resourceVersion; it does nothing when they are already n.
func scale(ctx context.Context, c client.Client, namespace string, w v1alpha1.WorkloadRef, n int32) error {
	obj, err := getWorkload(ctx, c, namespace, w)
	if err != nil {
		return err
	}
	if replicasOf(obj) == n {
		return nil
	}
	orig := obj.DeepCopyObject().(client.Object)
	switch o := obj.(type) {
	case *appsv1.Deployment:
		o.Spec.Replicas = &n
	case *appsv1.StatefulSet:
		o.Spec.Replicas = &n
	case *appsv1.ReplicaSet:
		o.Spec.Replicas = &n
	}
	if err := c.Patch(ctx, obj, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{})); err != nil {
		return fmt.Errorf("scale %s %s to %d: %w", w.Kind, w.Name, n, err)
	}
	return nil
}

// rolledOut reports whether a workload runs its replicas, all ready, on
// its current spec.
func rolledOut(obj client.Object) bool {
	switch o := obj.(type) {
	case *appsv1.Deployment:
		n := replicasOf(o)
		return o.Status.ObservedGeneration >= o.Generation && o.Status.UpdatedReplicas == n && o.Status.AvailableReplicas == n && o.Status.Replicas == n
	case *appsv1.StatefulSet:
		n := replicasOf(o)
		return o.Status.ObservedGeneration >= o.Generation && o.Status.ReadyReplicas == n && o.Status.Replicas == n
	case *appsv1.ReplicaSet:
		n := replicasOf(o)
		return o.Status.ObservedGeneration >= o.Generation && o.Status.ReadyReplicas == n && o.Status.Replicas == n
	}
	return false
}

// refs turns workloads into event object references.
func refs(namespace string, ws []v1alpha1.RestoreWorkload) []events.ObjectRef {
	out := make([]events.ObjectRef, 0, len(ws))
	for _, w := range ws {
		out = append(out, events.ObjectRef{Kind: w.Kind, Namespace: namespace, Name: w.Name})
	}
	return out
}
