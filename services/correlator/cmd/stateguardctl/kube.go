package main

import (
	"fmt"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// The resources the CLI reads and writes. They are read as unstructured
// objects so that the CLI does not link the snapshotter's module.
var (
	gvrPolicy   = schema.GroupVersionResource{Group: "stateguard.io", Version: "v1alpha1", Resource: "snapshotpolicies"}
	gvrSnapshot = schema.GroupVersionResource{Group: "snapshot.storage.k8s.io", Version: "v1", Resource: "volumesnapshots"}
	gvrCRD      = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
)

// kubeOptions select the cluster: a kubeconfig file and a context.
type kubeOptions struct {
	kubeconfig string
	context    string

	config *rest.Config
	dyn    dynamic.Interface
	core   kubernetes.Interface
}

func (k *kubeOptions) register(pf *pflag.FlagSet, env func(string) string) {
	pf.StringVar(&k.kubeconfig, "kubeconfig", env("KUBECONFIG"), "kubeconfig file, for policy, snapshot, restore and check (env KUBECONFIG; empty: ~/.kube/config or in-cluster)")
	pf.StringVar(&k.context, "context", "", "kubeconfig context to use")
}

// clients builds the Kubernetes clients once.
func (k *kubeOptions) clients() (dynamic.Interface, kubernetes.Interface, error) {
	if k.dyn != nil {
		return k.dyn, k.core, nil
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if k.kubeconfig != "" {
		rules.ExplicitPath = k.kubeconfig
	}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: k.context}).ClientConfig()
	if err != nil {
		return nil, nil, fmt.Errorf("kubeconfig: %w", err)
	}
	cfg.UserAgent = "stateguardctl"
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, nil, err
	}
	core, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, nil, err
	}
	k.config, k.dyn, k.core = cfg, dyn, core
	return dyn, core, nil
}
