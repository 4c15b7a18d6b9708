package manifests

import (
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
)

// TestEgressIsNarrowedToPorts: no egress rule of a stateguard policy opens
// every port (certwatcher's verify egress once allowed every port of every
// pod), and metrics ports are open to the monitoring namespace only.
func TestEgressIsNarrowedToPorts(t *testing.T) {
	for _, overlay := range []string{"dev", "prod", "namespaced"} {
		for _, o := range build(t, overlay) {
			if o.GetKind() != "NetworkPolicy" {
				continue
			}
			np := convert[networkingv1.NetworkPolicy](t, o)
			for i, e := range np.Spec.Egress {
				if len(e.Ports) == 0 {
					t.Errorf("%s: NetworkPolicy %s egress rule %d allows every port", overlay, np.Name, i)
				}
				for _, p := range e.Ports {
					if p.Port == nil {
						t.Errorf("%s: NetworkPolicy %s egress rule %d allows every port of a protocol", overlay, np.Name, i)
					}
				}
			}
			if np.Name != "metrics-scraping" {
				continue
			}
			for _, in := range np.Spec.Ingress {
				if len(in.From) == 0 {
					t.Errorf("%s: metrics-scraping is open to every source", overlay)
				}
				for _, f := range in.From {
					if f.NamespaceSelector == nil || f.NamespaceSelector.MatchLabels["kubernetes.io/metadata.name"] != "monitoring" || f.PodSelector != nil || f.IPBlock != nil {
						t.Errorf("%s: metrics-scraping admits %+v, not the monitoring namespace alone", overlay, f)
					}
				}
			}
		}
	}
}
