package manifests

import (
	"path/filepath"
	"slices"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// TestProdServesHTTPS: in the prod overlay every service reads its serving
// certificate, key and client CA from a mounted Secret that a cert-manager
// Certificate issues for the service's DNS names, its probes speak HTTPS,
// and Prometheus is told the scheme; dev stays plain HTTP.
func TestProdServesHTTPS(t *testing.T) {
	objs := build(t, "prod")
	common := convert[corev1.ConfigMap](t, generated(objs, "ConfigMap", "stateguard-common"))
	certFile, keyFile, caFile := common.Data["TLS_CERT_FILE"], common.Data["TLS_KEY_FILE"], common.Data["TLS_CLIENT_CA_FILE"]
	if certFile == "" || keyFile == "" || caFile == "" {
		t.Fatalf("stateguard-common lacks the TLS files: %v", common.Data)
	}
	dir := filepath.Dir(certFile)
	if filepath.Dir(keyFile) != dir || filepath.Dir(caFile) != dir {
		t.Fatalf("TLS files in different directories: %s %s %s", certFile, keyFile, caFile)
	}
	for _, s := range services {
		t.Run(s.name, func(t *testing.T) {
			cert := Find(objs, "Certificate", s.name+"-https")
			if cert == nil {
				t.Fatalf("no Certificate %s-https", s.name)
			}
			spec, _ := cert.Object["spec"].(map[string]any)
			if spec["secretName"] != s.name+"-https" {
				t.Errorf("Certificate %s-https writes Secret %v", s.name, spec["secretName"])
			}
			var dns []string
			for _, d := range spec["dnsNames"].([]any) {
				dns = append(dns, d.(string))
			}
			for _, want := range []string{s.name, s.name + ".stateguard.svc", s.name + ".stateguard.svc.cluster.local"} {
				if !slices.Contains(dns, want) {
					t.Errorf("Certificate %s-https lacks DNS name %s: %v", s.name, want, dns)
				}
			}
			if Find(objs, "Service", s.name) == nil {
				t.Errorf("no Service %s for the certificate's names", s.name)
			}

			d := convert[appsv1.Deployment](t, Find(objs, "Deployment", s.name))
			pod := d.Spec.Template.Spec
			c := pod.Containers[0]
			if !slices.ContainsFunc(c.EnvFrom, func(e corev1.EnvFromSource) bool {
				return e.ConfigMapRef != nil && e.ConfigMapRef.Name == common.Name
			}) {
				t.Errorf("%s does not read %s", s.name, common.Name)
			}
			mount := slices.IndexFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.MountPath == dir })
			if mount < 0 {
				t.Fatalf("%s mounts nothing at %s", s.name, dir)
			}
			vol := slices.IndexFunc(pod.Volumes, func(v corev1.Volume) bool { return v.Name == c.VolumeMounts[mount].Name })
			if vol < 0 || pod.Volumes[vol].Secret == nil || pod.Volumes[vol].Secret.SecretName != s.name+"-https" {
				t.Errorf("%s: %s is not the Secret %s-https", s.name, dir, s.name)
			}
			for name, p := range map[string]*corev1.Probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
				if p == nil || p.HTTPGet == nil || p.HTTPGet.Scheme != corev1.URISchemeHTTPS {
					t.Errorf("%s %s probe is not HTTPS: %+v", s.name, name, p)
				}
			}
			if got := d.Spec.Template.Annotations["prometheus.io/scheme"]; got != "https" {
				t.Errorf("%s prometheus.io/scheme = %q, want https", s.name, got)
			}
		})
	}
	if Find(objs, "Certificate", "metrics-scraper") == nil {
		t.Error("no Certificate metrics-scraper for Prometheus")
	}

	dev := build(t, "dev")
	devCommon := convert[corev1.ConfigMap](t, generated(dev, "ConfigMap", "stateguard-common"))
	if f := devCommon.Data["TLS_CERT_FILE"]; f != "" {
		t.Errorf("dev sets TLS_CERT_FILE=%s; it stays plain HTTP", f)
	}
}
