package demo

import (
	"context"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
)

// PlayDeploymentController finishes every Deployment rollout in namespace
// at once, as the deployment controller and a kubelet would: the control
// plane of `make run` runs neither. It returns when ctx ends.
func PlayDeploymentController(ctx context.Context, cs kubernetes.Interface, namespace string) error {
	for ctx.Err() == nil {
		w, err := cs.AppsV1().Deployments(namespace).Watch(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		for ev := range w.ResultChan() {
			if ev.Type != watch.Added && ev.Type != watch.Modified {
				continue
			}
			d, ok := ev.Object.(*appsv1.Deployment)
			if !ok || d.Status.ObservedGeneration == d.Generation {
				continue
			}
			n := int32(1)
			if d.Spec.Replicas != nil {
				n = *d.Spec.Replicas
			}
			d.Status.ObservedGeneration = d.Generation
			d.Status.Replicas, d.Status.UpdatedReplicas, d.Status.ReadyReplicas, d.Status.AvailableReplicas = n, n, n, n
			_, _ = cs.AppsV1().Deployments(namespace).UpdateStatus(ctx, d, metav1.UpdateOptions{})
		}
		w.Stop()
	}
	return nil
}
