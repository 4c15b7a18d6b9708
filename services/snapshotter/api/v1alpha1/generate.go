package v1alpha1

// The deepcopy functions and the CRD under deploy/kustomize/base/crds are
// generated from the markers in types.go:
//go:generate go run sigs.k8s.io/controller-tools/cmd/controller-gen@v0.23.0 object paths=.
//go:generate go run sigs.k8s.io/controller-tools/cmd/controller-gen@v0.23.0 crd paths=. output:crd:dir=../../../../deploy/kustomize/base/crds
