package manifests

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// TestWorkloadsAreLockedDown checks every pod template of both overlays for
// the restrictions the issue asks for: non-root, read-only root filesystem,
// seccomp RuntimeDefault, no privilege escalation, no capabilities, requests
// and limits, probes; and no ServiceAccount token where no Kubernetes access
// is needed.
func TestWorkloadsAreLockedDown(t *testing.T) {
	needsToken := map[string]bool{"certwatcher": true, "snapshotter": true}
	for _, overlay := range Overlays {
		objs := build(t, overlay)
		type pod struct {
			name   string
			spec   corev1.PodSpec
			health bool // serves /healthz and /readyz
		}
		var pods []pod
		for _, o := range OfKind(objs, "Deployment") {
			d := convert[appsv1.Deployment](t, o)
			pods = append(pods, pod{d.Name, d.Spec.Template.Spec, true})
		}
		for _, o := range OfKind(objs, "StatefulSet") {
			s := convert[appsv1.StatefulSet](t, o)
			pods = append(pods, pod{s.Name, s.Spec.Template.Spec, false})
		}
		if len(pods) != 6 {
			t.Fatalf("%s: %d workloads, want 6 (five services and NATS)", overlay, len(pods))
		}
		for _, p := range pods {
			t.Run(overlay+"/"+p.name, func(t *testing.T) {
				ps := p.spec.SecurityContext
				if ps == nil || ps.RunAsNonRoot == nil || !*ps.RunAsNonRoot {
					t.Error("pod securityContext.runAsNonRoot is not true")
				}
				if ps == nil || ps.SeccompProfile == nil || ps.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
					t.Error("pod seccompProfile is not RuntimeDefault")
				}
				mounted := p.spec.AutomountServiceAccountToken == nil || *p.spec.AutomountServiceAccountToken
				if mounted != needsToken[p.name] {
					t.Errorf("ServiceAccount token mounted = %v, want %v", mounted, needsToken[p.name])
				}
				if p.health && p.spec.ServiceAccountName != p.name {
					t.Errorf("serviceAccountName = %q, want %q", p.spec.ServiceAccountName, p.name)
				}
				for _, c := range p.spec.Containers {
					sc := c.SecurityContext
					switch {
					case sc == nil:
						t.Fatalf("container %s has no securityContext", c.Name)
					case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
						t.Errorf("container %s: readOnlyRootFilesystem is not true", c.Name)
					case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
						t.Errorf("container %s: allowPrivilegeEscalation is not false", c.Name)
					case sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" || len(sc.Capabilities.Add) != 0:
						t.Errorf("container %s: capabilities are not drop [ALL]", c.Name)
					case sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault:
						t.Errorf("container %s: seccompProfile is not RuntimeDefault", c.Name)
					}
					for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
						if _, ok := c.Resources.Requests[r]; !ok {
							t.Errorf("container %s: no %s request", c.Name, r)
						}
						if _, ok := c.Resources.Limits[r]; !ok {
							t.Errorf("container %s: no %s limit", c.Name, r)
						}
					}
					if c.ReadinessProbe == nil || c.LivenessProbe == nil {
						t.Fatalf("container %s: readiness or liveness probe missing", c.Name)
					}
					if p.health {
						if got := c.ReadinessProbe.HTTPGet; got == nil || got.Path != "/readyz" {
							t.Errorf("container %s: readiness probe %+v, want GET /readyz", c.Name, got)
						}
						if got := c.LivenessProbe.HTTPGet; got == nil || got.Path != "/healthz" {
							t.Errorf("container %s: liveness probe %+v, want GET /healthz", c.Name, got)
						}
					}
				}
			})
		}
	}
}
