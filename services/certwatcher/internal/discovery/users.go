package discovery

import (
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/stateguard/stateguard/pkg/events"
)

// SecretRefs returns the names of the Secrets a pod spec mounts or
// references: secret and projected volumes, env secretKeyRef and envFrom
// secretRef, in all containers. Sorted, without duplicates.
func SecretRefs(spec *corev1.PodSpec) []string {
	var out []string
	for _, v := range spec.Volumes {
		if v.Secret != nil {
			out = append(out, v.Secret.SecretName)
		}
		if v.Projected != nil {
			for _, src := range v.Projected.Sources {
				if src.Secret != nil {
					out = append(out, src.Secret.Name)
				}
			}
		}
	}
	containers := slices.Concat(spec.InitContainers, spec.Containers)
	for _, e := range spec.EphemeralContainers {
		containers = append(containers, corev1.Container{Env: e.Env, EnvFrom: e.EnvFrom})
	}
	for _, c := range containers {
		for _, e := range c.Env {
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				out = append(out, e.ValueFrom.SecretKeyRef.Name)
			}
		}
		for _, e := range c.EnvFrom {
			if e.SecretRef != nil {
				out = append(out, e.SecretRef.Name)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(slices.DeleteFunc(out, func(s string) bool { return s == "" }))
}

// MountsSecret reports whether spec mounts or references the Secret.
func MountsSecret(spec *corev1.PodSpec, secret string) bool {
	_, ok := slices.BinarySearch(SecretRefs(spec), secret)
	return ok
}

// IngressTLSSecrets returns the Secrets named in an Ingress's spec.tls.
func IngressTLSSecrets(ing *networkingv1.Ingress) []string {
	var out []string
	for _, t := range ing.Spec.TLS {
		if t.SecretName != "" {
			out = append(out, t.SecretName)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// ReplicaSetOwner returns the controller of a ReplicaSet, if any.
type ReplicaSetOwner func(namespace, name string) *metav1.OwnerReference

// Workload resolves the workload that owns pod: a Deployment through its
// ReplicaSet, a StatefulSet, a DaemonSet, another controller kind as is, or
// the Pod itself when it has no controller.
func Workload(pod *corev1.Pod, rsOwner ReplicaSetOwner) events.WorkloadRef {
	ref := metav1.GetControllerOf(pod)
	if ref == nil {
		return events.WorkloadRef{Kind: "Pod", Namespace: pod.Namespace, Name: pod.Name}
	}
	if ref.Kind == "ReplicaSet" && strings.HasPrefix(ref.APIVersion, "apps/") && rsOwner != nil {
		if o := rsOwner(pod.Namespace, ref.Name); o != nil && o.Kind == "Deployment" {
			return events.WorkloadRef{Kind: "Deployment", Namespace: pod.Namespace, Name: o.Name}
		}
	}
	return events.WorkloadRef{Kind: ref.Kind, Namespace: pod.Namespace, Name: ref.Name}
}

// replicaSetOwner adapts a ReplicaSet lookup.
func replicaSetOwner(get func(namespace, name string) (*appsv1.ReplicaSet, error)) ReplicaSetOwner {
	return func(namespace, name string) *metav1.OwnerReference {
		rs, err := get(namespace, name)
		if err != nil {
			return nil
		}
		return metav1.GetControllerOf(rs)
	}
}

func sortRefs(refs []events.ObjectRef) []events.ObjectRef {
	slices.SortFunc(refs, func(a, b events.ObjectRef) int {
		return strings.Compare(a.Kind+"/"+a.Namespace+"/"+a.Name, b.Kind+"/"+b.Namespace+"/"+b.Name)
	})
	return slices.Compact(refs)
}
