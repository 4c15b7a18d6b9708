package observer

import (
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/services/snapshotter/api/v1alpha1"
	"github.com/stateguard/stateguard/services/snapshotter/internal/workload"
)

// Selected reports whether any of policies (those of the PVC's namespace)
// selects pvc. A policy counts when its pvcSelector parses, even if
// another field of its spec does not: the volume is meant to be
// protected, and its timeline must not have a hole while the policy is
// being fixed.
func Selected(pvc *corev1.PersistentVolumeClaim, policies []v1alpha1.SnapshotPolicy) bool {
	for i := range policies {
		p := &policies[i]
		if p.Namespace != pvc.Namespace {
			continue
		}
		sel, err := metav1.LabelSelectorAsSelector(&p.Spec.PVCSelector)
		if err != nil {
			continue
		}
		if sel.Matches(labels.Set(pvc.Labels)) {
			return true
		}
	}
	return false
}

// Observe describes the started pods among pods (those mounting one PVC,
// as workload.Pods returns them) as the pods of a workload.observed event,
// sorted by name. owner
// resolves a pod's workload; tls reports whether a Secret of the pod's
// namespace is a kubernetes.io/tls Secret.
func Observe(pods []corev1.Pod, owner func(*corev1.Pod) *events.ObjectRef, tls func(namespace, name string) bool) []events.ObservedPod {
	out := make([]events.ObservedPod, 0, len(pods))
	for i := range pods {
		p := &pods[i]
		if !Started(p) {
			continue
		}
		op := events.ObservedPod{
			Pod:         p.Name,
			Owner:       owner(p),
			App:         p.Labels["app.kubernetes.io/name"],
			Version:     p.Labels["app.kubernetes.io/version"],
			Labels:      appLabels(p.Labels),
			Containers:  workload.Containers(p),
			Annotations: workload.JoinAnnotations(p.Annotations),
		}
		if st := p.Status.StartTime; st != nil {
			t := st.UTC()
			op.StartedAt = &t
		}
		for _, s := range SecretRefs(&p.Spec) {
			if tls(p.Namespace, s) {
				op.Secrets = append(op.Secrets, s)
			}
		}
		out = append(out, op)
	}
	slices.SortFunc(out, func(a, b events.ObservedPod) int { return strings.Compare(a.Pod, b.Pod) })
	return out
}

// Started reports whether a pod counts as writing to its volumes: it is
// Running (its containers were created from their images, whose digests
// the kubelet reports). A Pending pod has not written yet, and its digests
// are not known; it is observed once it runs.
func Started(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning }

// appLabels lists the app.kubernetes.io/* labels other than name and
// version, as key=value, sorted.
func appLabels(l map[string]string) []string {
	var out []string
	for k, v := range l {
		if !strings.HasPrefix(k, "app.kubernetes.io/") || k == "app.kubernetes.io/name" || k == "app.kubernetes.io/version" {
			continue
		}
		out = append(out, k+"="+v)
	}
	slices.Sort(out)
	return out
}

// SecretRefs returns the names of the Secrets a pod spec mounts or reads:
// secret and projected volumes, env secretKeyRef and envFrom secretRef of
// every container (init and ephemeral included). Sorted, without
// duplicates.
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
	var envs [][]corev1.EnvVar
	var froms [][]corev1.EnvFromSource
	for _, c := range slices.Concat(spec.InitContainers, spec.Containers) {
		envs, froms = append(envs, c.Env), append(froms, c.EnvFrom)
	}
	for _, c := range spec.EphemeralContainers {
		envs, froms = append(envs, c.Env), append(froms, c.EnvFrom)
	}
	for _, env := range envs {
		for _, e := range env {
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				out = append(out, e.ValueFrom.SecretKeyRef.Name)
			}
		}
	}
	for _, from := range froms {
		for _, e := range from {
			if e.SecretRef != nil {
				out = append(out, e.SecretRef.Name)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(slices.DeleteFunc(out, func(s string) bool { return s == "" }))
}

// Next is the publishing rule. prev is what was last published for the PVC
// (nil: nothing yet). When the pods differ from prev's (any field of any
// pod: a new pod, a new digest, a pod gone), the new set is observed at
// now. When they do not, a resync repeats prev unchanged (same
// observed_at, so the same event id) and anything else publishes nothing.
// A change found by a resync is a change: its resync flag is not set.
func Next(prev *events.WorkloadObserved, namespace, pvc string, pods []events.ObservedPod, now time.Time, resync bool) (events.WorkloadObserved, bool) {
	cur := events.WorkloadObserved{Namespace: namespace, PVC: pvc, ObservedAt: now.UTC(), Pods: pods}
	if cur.Pods == nil {
		cur.Pods = []events.ObservedPod{}
	}
	if prev == nil || !SameContent(*prev, cur) {
		return cur, true
	}
	if !resync {
		return *prev, false
	}
	again := *prev
	again.Resync = true
	return again, true
}

// SameContent reports whether two observations describe the same pods on
// the same PVC, whatever their observed_at and resync flag.
func SameContent(a, b events.WorkloadObserved) bool {
	a.ObservedAt, b.ObservedAt = time.Time{}, time.Time{}
	return events.ObservationID(a) == events.ObservationID(b)
}
