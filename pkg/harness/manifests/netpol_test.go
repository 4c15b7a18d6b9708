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

// TestMetricsAreFencedToTheMonitoringNamespace: every service's metrics
// port is admitted by metrics-scraping (from the monitoring namespace) and
// by no other ingress rule, so /metrics — served on that port alone — is
// out of reach of the API's clients.
func TestMetricsAreFencedToTheMonitoringNamespace(t *testing.T) {
	for _, overlay := range []string{"dev", "prod", "namespaced"} {
		scraped := map[string]bool{}
		for _, o := range build(t, overlay) {
			if o.GetKind() != "NetworkPolicy" {
				continue
			}
			np := convert[networkingv1.NetworkPolicy](t, o)
			for _, in := range np.Spec.Ingress {
				admits := len(in.Ports) == 0
				for _, p := range in.Ports {
					admits = admits || p.Port == nil || p.Port.IntValue() == metricsPort
				}
				if !admits {
					continue
				}
				if np.Name != "metrics-scraping" {
					t.Errorf("%s: NetworkPolicy %s admits the metrics port %d", overlay, np.Name, metricsPort)
					continue
				}
				for _, e := range np.Spec.PodSelector.MatchExpressions {
					for _, v := range e.Values {
						scraped[v] = true
					}
				}
			}
		}
		for _, s := range services {
			if !scraped[s.name] {
				t.Errorf("%s: metrics-scraping does not admit the monitoring namespace to %s's metrics port %d", overlay, s.name, metricsPort)
			}
		}
	}
}
