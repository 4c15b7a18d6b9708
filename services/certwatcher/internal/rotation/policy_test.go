package rotation

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestShouldRotate(t *testing.T) {
	optOut := map[string]string{OptOutAnnotation: " Disabled "}
	ns := func(ann map[string]string) *corev1.Namespace {
		return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop", Annotations: ann}}
	}
	secret := func(ann map[string]string) *corev1.Secret {
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "tls", Annotations: ann}}
	}
	tests := []struct {
		name   string
		ns     *corev1.Namespace
		secret *corev1.Secret
		want   bool
		reason string
	}{
		{"no annotations", ns(nil), secret(nil), true, ""},
		{"no namespace object", nil, secret(nil), true, ""},
		{"namespace opts out", ns(optOut), secret(nil), false, "on namespace shop"},
		{"secret opts out", ns(nil), secret(optOut), false, "on the secret"},
		{"another value is no opt-out", ns(map[string]string{OptOutAnnotation: "enabled"}), secret(nil), true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, reason := shouldRotate(tt.ns, tt.secret)
			if ok != tt.want || !strings.Contains(reason, tt.reason) || (ok && reason != "") {
				t.Errorf("shouldRotate = %v, %q; want %v, a reason containing %q", ok, reason, tt.want, tt.reason)
			}
		})
	}
}
