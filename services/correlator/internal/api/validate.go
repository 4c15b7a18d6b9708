package api

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// invalidError says which request identifier broke which rule; the API
// answers it with 400 and the reason before anything reaches the store.
type invalidError struct {
	param  string
	reason string
}

func (e *invalidError) Error() string { return e.param + ": " + e.reason }

// checkNamespace applies Kubernetes' rule for namespace names: a DNS-1123
// label, at most 63 characters.
func checkNamespace(ns string) error {
	return check("namespace", ns, validation.IsDNS1123Label(ns))
}

// checkApp accepts what an application is named after (model.AppOf): an
// app.kubernetes.io/name label value (at most 63 characters) or the name
// of the workload or pod (a DNS-1123 subdomain, at most 253).
func checkApp(app string) error {
	if app == "" {
		return check("app", app, []string{"must not be empty"})
	}
	if len(validation.IsValidLabelValue(app)) == 0 {
		return nil
	}
	return check("app", app, validation.IsDNS1123Subdomain(app))
}

// checkObjectName applies Kubernetes' rule for the names of most objects
// (VolumeSnapshots, PersistentVolumeClaims): a DNS-1123 subdomain, at most
// 253 characters.
func checkObjectName(param, name string) error {
	return check(param, name, validation.IsDNS1123Subdomain(name))
}

// checkStatus accepts the incident filters the API knows.
func checkStatus(status string) error {
	switch status {
	case "", "open", "closed":
		return nil
	}
	return &invalidError{param: "status", reason: fmt.Sprintf("%q is not a status: use open or closed, or leave it out", clip(status))}
}

func check(param, value string, errs []string) error {
	if len(errs) == 0 {
		return nil
	}
	return &invalidError{param: param, reason: fmt.Sprintf("%q (%d characters) is not valid: %s", clip(value), len(value), strings.Join(errs, "; "))}
}

// clip shortens a refused value for the answer: the reason says its
// length, the start is enough to recognise it.
func clip(s string) string {
	const n = 64
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
