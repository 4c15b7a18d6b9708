package manifests

import (
	"errors"
	"fmt"
	"path/filepath"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/stateguard/stateguard/pkg/harness/kubetest"
)

// Overlays are the kustomize overlays stateguard ships.
var Overlays = []string{"dev", "prod"}

// OverlayDir is the directory of an overlay in the repository.
func OverlayDir(overlay string) (string, error) {
	root, err := kubetest.RepoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "deploy", "kustomize", "overlays", overlay), nil
}

// Build renders the kustomization in dir, as `kubectl kustomize dir` does,
// and returns its objects in the order kustomize emits them (namespaces and
// CRDs first).
func Build(dir string) ([]*unstructured.Unstructured, error) {
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	rm, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return nil, fmt.Errorf("kustomize build %s: %w", dir, err)
	}
	objs := make([]*unstructured.Unstructured, 0, rm.Size())
	for _, r := range rm.Resources() {
		// Through JSON, so numbers are int64 as in objects from the API.
		data, err := r.MarshalJSON()
		if err != nil {
			return nil, fmt.Errorf("kustomize build %s: %s: %w", dir, r.CurId(), err)
		}
		o := &unstructured.Unstructured{}
		if err := o.UnmarshalJSON(data); err != nil {
			return nil, fmt.Errorf("kustomize build %s: %s: %w", dir, r.CurId(), err)
		}
		objs = append(objs, o)
	}
	if len(objs) == 0 {
		return nil, errors.New("kustomize build " + dir + ": no objects")
	}
	return objs, nil
}

// Find returns the object of that kind and name, or nil.
func Find(objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	return nil
}

// OfKind returns the objects of a kind, in order.
func OfKind(objs []*unstructured.Unstructured, kind string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == kind {
			out = append(out, o)
		}
	}
	return out
}
