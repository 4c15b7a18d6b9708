package workload

import (
	"context"
	"fmt"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stateguard/stateguard/pkg/events"
)

// Pods returns the pods of namespace that mount pvc and have not finished,
// sorted by name.
func Pods(ctx context.Context, c client.Reader, namespace, pvc string) ([]corev1.Pod, error) {
	var list corev1.PodList
	if err := c.List(ctx, &list, client.InNamespace(namespace)); err != nil {
		return nil, fmt.Errorf("list pods in %s: %w", namespace, err)
	}
	var out []corev1.Pod
	for _, p := range list.Items {
		if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed || p.DeletionTimestamp != nil {
			continue
		}
		if Mounts(&p, pvc) {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(a, b corev1.Pod) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// Mounts reports whether pod has a volume backed by the claim pvc.
func Mounts(pod *corev1.Pod, pvc string) bool {
	for _, v := range pod.Spec.Volumes {
		if v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ClaimName == pvc {
			return true
		}
	}
	return false
}

// Describe turns pods into the workloads of a snapshot event. Owners that
// cannot be read are reported as the pod's direct owner.
func Describe(ctx context.Context, c client.Reader, pods []corev1.Pod) ([]events.VolumeWorkload, error) {
	out := make([]events.VolumeWorkload, 0, len(pods))
	for i := range pods {
		p := &pods[i]
		owner, err := Owner(ctx, c, p)
		if err != nil {
			return nil, err
		}
		out = append(out, events.VolumeWorkload{
			Pod:         p.Name,
			Owner:       owner,
			App:         p.Labels["app.kubernetes.io/name"],
			Version:     p.Labels["app.kubernetes.io/version"],
			Containers:  Containers(p),
			Annotations: JoinAnnotations(p.Annotations),
		})
	}
	return out, nil
}

// JoinAnnotations picks the annotations that join a SARIF upload to the
// pod (events.JoinAnnotations: the repository, SARIF category and commit,
// stateguard's or the OCI image spec's) from a pod's annotations, which
// come from its workload's pod template; nil when it has none. Values are
// cut to 512 bytes: they travel in every observation of the volume.
func JoinAnnotations(a map[string]string) map[string]string {
	var out map[string]string
	for _, k := range events.JoinAnnotations {
		v := strings.TrimSpace(a[k])
		if v == "" {
			continue
		}
		if out == nil {
			out = map[string]string{}
		}
		out[k] = v[:min(len(v), 512)]
	}
	return out
}

// Owner resolves the controller of pod: a ReplicaSet owned by a Deployment
// becomes the Deployment. A pod without a controller has no owner.
func Owner(ctx context.Context, c client.Reader, pod *corev1.Pod) (*events.ObjectRef, error) {
	ref := metav1.GetControllerOf(pod)
	if ref == nil {
		return nil, nil
	}
	owner := &events.ObjectRef{Kind: ref.Kind, Namespace: pod.Namespace, Name: ref.Name}
	if ref.Kind != "ReplicaSet" {
		return owner, nil
	}
	var rs appsv1.ReplicaSet
	if err := c.Get(ctx, client.ObjectKey{Namespace: pod.Namespace, Name: ref.Name}, &rs); err != nil {
		if apierrors.IsNotFound(err) {
			return owner, nil
		}
		return nil, fmt.Errorf("get replicaset %s/%s: %w", pod.Namespace, ref.Name, err)
	}
	if d := metav1.GetControllerOf(&rs); d != nil && d.Kind == "Deployment" {
		return &events.ObjectRef{Kind: "Deployment", Namespace: pod.Namespace, Name: d.Name}, nil
	}
	return owner, nil
}

// Containers lists pod's containers (init containers excluded) with the
// image ID the kubelet reports and the digest taken from it.
func Containers(pod *corev1.Pod) []events.Container {
	ids := map[string]string{}
	for _, s := range pod.Status.ContainerStatuses {
		ids[s.Name] = s.ImageID
	}
	out := make([]events.Container, 0, len(pod.Spec.Containers))
	for _, c := range pod.Spec.Containers {
		id := ids[c.Name]
		out = append(out, events.Container{Name: c.Name, Image: c.Image, ImageID: id, Digest: Digest(id)})
	}
	return out
}

// Digest extracts sha256:… from an image ID such as
// docker-pullable://repo@sha256:abc or sha256:abc; "" when there is none.
func Digest(imageID string) string {
	if i := strings.LastIndex(imageID, "@"); i >= 0 {
		imageID = imageID[i+1:]
	}
	if strings.HasPrefix(imageID, "sha256:") && len(imageID) > len("sha256:") {
		return imageID
	}
	return ""
}
