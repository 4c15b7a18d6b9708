package kubeclient

import (
	"fmt"
	"log/slog"
	"sync"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
)

// Config loads the kubeconfig file at path, or, when path is empty, the
// default rules: $KUBECONFIG, ~/.kube/config, then the in-cluster service
// account.
func Config(path string) (*rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = path
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kubernetes config: %w", err)
	}
	return cfg, nil
}

var klogOnce sync.Once

// RouteKlog sends client-go's klog output to log, once per process: klog's
// logger is global and client-go reads it from every goroutine, so it is
// set before the first client exists and never again. A test that runs a
// service several times routes it first (to a discarding logger), which
// makes the service's own call a no-op.
func RouteKlog(log *slog.Logger) { klogOnce.Do(func() { klog.SetSlogLogger(log) }) }
