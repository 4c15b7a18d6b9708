package rotation

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/stateguard/stateguard/pkg/events"

	"github.com/stateguard/stateguard/services/certwatcher/internal/discovery"
)

// RestartedAtAnnotation is the pod-template annotation `kubectl rollout
// restart` sets.
const RestartedAtAnnotation = "kubectl.kubernetes.io/restartedAt"

// workload is a Deployment, StatefulSet or DaemonSet that mounts the Secret.
type workload struct {
	ref      events.WorkloadRef
	paused   bool
	template corev1.PodTemplateSpec
}

// findWorkloads lists the workloads in namespace whose pod template mounts
// or references secret. Templates are the truth for rolling: a workload
// scaled to zero still gets the new certificate on its next pod.
func findWorkloads(ctx context.Context, cs kubernetes.Interface, namespace, secret string) ([]workload, error) {
	var out []workload
	deps, err := cs.AppsV1().Deployments(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list deployments: %w", err)
	}
	for _, d := range deps.Items {
		if discovery.MountsSecret(&d.Spec.Template.Spec, secret) {
			out = append(out, workload{ref: events.WorkloadRef{Kind: "Deployment", Namespace: namespace, Name: d.Name}, paused: d.Spec.Paused, template: d.Spec.Template})
		}
	}
	sts, err := cs.AppsV1().StatefulSets(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list statefulsets: %w", err)
	}
	for _, s := range sts.Items {
		if discovery.MountsSecret(&s.Spec.Template.Spec, secret) {
			out = append(out, workload{ref: events.WorkloadRef{Kind: "StatefulSet", Namespace: namespace, Name: s.Name}, template: s.Spec.Template})
		}
	}
	dss, err := cs.AppsV1().DaemonSets(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list daemonsets: %w", err)
	}
	for _, d := range dss.Items {
		if discovery.MountsSecret(&d.Spec.Template.Spec, secret) {
			out = append(out, workload{ref: events.WorkloadRef{Kind: "DaemonSet", Namespace: namespace, Name: d.Name}, template: d.Spec.Template})
		}
	}
	slices.SortFunc(out, func(a, b workload) int { return strings.Compare(a.ref.Kind+"/"+a.ref.Name, b.ref.Kind+"/"+b.ref.Name) })
	return out, nil
}

// restartPatch is the strategic merge patch `kubectl rollout restart`
// sends. The same value twice is a no-op, so a resumed rotation does not
// roll twice.
func restartPatch(restartedAt string) []byte {
	p := map[string]any{"spec": map[string]any{"template": map[string]any{"metadata": map[string]any{
		"annotations": map[string]string{RestartedAtAnnotation: restartedAt},
	}}}}
	b, _ := json.Marshal(p)
	return b
}

func roll(ctx context.Context, cs kubernetes.Interface, w workload, restartedAt string) error {
	patch := restartPatch(restartedAt)
	var err error
	switch w.ref.Kind {
	case "Deployment":
		_, err = cs.AppsV1().Deployments(w.ref.Namespace).Patch(ctx, w.ref.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{FieldManager: "certwatcher"})
	case "StatefulSet":
		_, err = cs.AppsV1().StatefulSets(w.ref.Namespace).Patch(ctx, w.ref.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{FieldManager: "certwatcher"})
	case "DaemonSet":
		_, err = cs.AppsV1().DaemonSets(w.ref.Namespace).Patch(ctx, w.ref.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{FieldManager: "certwatcher"})
	default:
		return fmt.Errorf("cannot roll %s", w.ref.Kind)
	}
	if err != nil {
		return fmt.Errorf("roll %s/%s: %w", w.ref.Kind, w.ref.Name, err)
	}
	return nil
}

// DeploymentRolledOut reports whether the controller has acted on the
// latest spec and every replica runs it and is available.
func DeploymentRolledOut(d *appsv1.Deployment) bool {
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	s := d.Status
	return s.ObservedGeneration >= d.Generation && s.UpdatedReplicas >= want && s.Replicas == s.UpdatedReplicas && s.AvailableReplicas >= want
}

// StatefulSetRolledOut reports whether every replica runs the update
// revision and is ready.
func StatefulSetRolledOut(s *appsv1.StatefulSet) bool {
	want := int32(1)
	if s.Spec.Replicas != nil {
		want = *s.Spec.Replicas
	}
	st := s.Status
	return st.ObservedGeneration >= s.Generation && st.UpdatedReplicas >= want && st.ReadyReplicas >= want &&
		(st.UpdateRevision == "" || st.CurrentRevision == st.UpdateRevision)
}

// DaemonSetRolledOut reports whether every node runs the updated pod and
// it is available.
func DaemonSetRolledOut(d *appsv1.DaemonSet) bool {
	s := d.Status
	return s.ObservedGeneration >= d.Generation && s.UpdatedNumberScheduled >= s.DesiredNumberScheduled && s.NumberAvailable >= s.DesiredNumberScheduled
}

func rolledOut(ctx context.Context, cs kubernetes.Interface, ref events.WorkloadRef) (bool, error) {
	switch ref.Kind {
	case "Deployment":
		d, err := cs.AppsV1().Deployments(ref.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return DeploymentRolledOut(d), nil
	case "StatefulSet":
		s, err := cs.AppsV1().StatefulSets(ref.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return StatefulSetRolledOut(s), nil
	case "DaemonSet":
		d, err := cs.AppsV1().DaemonSets(ref.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return DaemonSetRolledOut(d), nil
	}
	return true, nil
}

// servicesFor returns the Services in namespace whose selector matches the
// pod-template labels of any of the workloads.
func servicesFor(ctx context.Context, cs kubernetes.Interface, namespace string, ws []workload) ([]corev1.Service, error) {
	svcs, err := cs.CoreV1().Services(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list services: %w", err)
	}
	var out []corev1.Service
	for _, s := range svcs.Items {
		if len(s.Spec.Selector) == 0 {
			continue
		}
		sel := labels.SelectorFromSet(s.Spec.Selector)
		for _, w := range ws {
			if sel.Matches(labels.Set(w.template.Labels)) {
				out = append(out, s)
				break
			}
		}
	}
	return out, nil
}
