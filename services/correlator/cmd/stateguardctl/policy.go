package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Well-known names of the snapshotter (services/snapshotter/api/v1alpha1),
// repeated here so the CLI does not link the snapshotter's module; the
// tests run the CLI against objects the snapshotter's CRD admits.
const (
	labelPolicy            = "stateguard.io/policy"
	labelPVC               = "stateguard.io/pvc"
	labelPinned            = "stateguard.io/pinned"
	annotationPinnedReason = "stateguard.io/pinned-reason"
	annotationSlot         = "stateguard.io/slot"
	annotationWorkloads    = "stateguard.io/workloads"
	annotationHookErrors   = "stateguard.io/hook-errors"
	// annotationSnapshotRequest asks the snapshotter for one on-demand
	// snapshot: "<pvc>@<RFC 3339 time>", carried out once per value.
	annotationSnapshotRequest = "stateguard.io/snapshot-request"
)

// policy is the part of a SnapshotPolicy the CLI reads.
type policy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		PVCSelector             metav1.LabelSelector `json:"pvcSelector"`
		Schedule                string               `json:"schedule"`
		TimeZone                string               `json:"timeZone"`
		VolumeSnapshotClassName string               `json:"volumeSnapshotClassName"`
		Retention               map[string]any       `json:"retention"`
		RestoreTest             *struct {
			Schedule string `json:"schedule"`
		} `json:"restoreTest"`
	} `json:"spec"`
	Status struct {
		LastRun         *metav1.Time       `json:"lastRun"`
		LastSnapshot    string             `json:"lastSnapshot"`
		NextRun         *metav1.Time       `json:"nextRun"`
		LastResult      string             `json:"lastResult"`
		LastRestoreTest *metav1.Time       `json:"lastRestoreTest"`
		Conditions      []metav1.Condition `json:"conditions"`
		LastRequest     *snapshotRequest   `json:"lastRequest"`
	} `json:"status"`
}

// snapshotRequest is status.lastRequest: the on-demand request the
// snapshotter carried out last.
type snapshotRequest struct {
	Request  string `json:"request"`
	Snapshot string `json:"snapshot,omitempty"`
	Error    string `json:"error,omitempty"`
}

func (p *policy) ready() metav1.Condition {
	for _, c := range p.Status.Conditions {
		if c.Type == "Ready" {
			return c
		}
	}
	return metav1.Condition{Status: "Unknown", Reason: "NotReconciled", Message: "the snapshotter has not read this policy yet"}
}

// selects says whether the policy's pvcSelector selects a PVC with lbls.
func (p *policy) selects(lbls map[string]string) (bool, error) {
	sel, err := metav1.LabelSelectorAsSelector(&p.Spec.PVCSelector)
	if err != nil {
		return false, err
	}
	return sel.Matches(labels.Set(lbls)), nil
}

func fromUnstructured(u *unstructured.Unstructured, into any) error {
	return runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, into)
}

// kubeErr gives an error of the Kubernetes API its exit code.
func kubeErr(err error) error {
	switch {
	case err == nil:
		return nil
	case apierrors.IsNotFound(err):
		return &codedError{code: exitNotFound, err: err}
	case apierrors.IsForbidden(err), apierrors.IsUnauthorized(err):
		return &codedError{code: exitDenied, err: err}
	}
	return err
}

// listPolicies lists the policies of ns ("" for all), or the one named.
func (o *options) listPolicies(ctx context.Context, ns, name string) ([]unstructured.Unstructured, []policy, error) {
	return listObjects[policy](ctx, o, gvrPolicy, "policy", ns, name)
}

// listObjects lists the objects of gvr in ns ("" for all), or the one
// named, sorted by namespace/name, each also decoded into a T.
func listObjects[T any](ctx context.Context, o *options, gvr schema.GroupVersionResource, kind, ns, name string) ([]unstructured.Unstructured, []T, error) {
	dyn, _, err := o.kube.clients()
	if err != nil {
		return nil, nil, err
	}
	var items []unstructured.Unstructured
	if name != "" {
		u, err := dyn.Resource(gvr).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return nil, nil, kubeErr(err)
		}
		items = []unstructured.Unstructured{*u}
	} else {
		l, err := dyn.Resource(gvr).Namespace(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, nil, kubeErr(err)
		}
		items = l.Items
	}
	slices.SortFunc(items, func(a, b unstructured.Unstructured) int {
		return strings.Compare(a.GetNamespace()+"/"+a.GetName(), b.GetNamespace()+"/"+b.GetName())
	})
	ts := make([]T, len(items))
	for i := range items {
		if err := fromUnstructured(&items[i], &ts[i]); err != nil {
			return nil, nil, fmt.Errorf("%s %s/%s: %w", kind, items[i].GetNamespace(), items[i].GetName(), err)
		}
	}
	return items, ts, nil
}

func policyCmd(o *options) *cobra.Command {
	get := &cobra.Command{
		Use:     "get [namespace[/name]]",
		Short:   "SnapshotPolicies with Ready, last result and next slot",
		Example: "  stateguardctl policy get\n  stateguardctl policy get shop -o wide",
		Args:    optionalRef("policy"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ns, name := scope(args)
			items, ps, err := o.listPolicies(cmd.Context(), ns, name)
			if err != nil {
				return err
			}
			return o.print(unstructuredList(items), func(out io.Writer, wide bool) error { return policyTable(out, ps, wide) })
		},
	}
	describe := &cobra.Command{
		Use:     "describe namespace/name",
		Short:   "A SnapshotPolicy in full: spec, status, the PVCs it selects, its snapshots and Events",
		Example: "  stateguardctl policy describe shop/db-hourly",
		Args:    exactRef("policy"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ns, name, _ := splitRef(args[0], "policy")
			items, ps, err := o.listPolicies(cmd.Context(), ns, name)
			if err != nil {
				return err
			}
			if o.output != outText && o.output != outWide {
				return o.print(items[0].Object, nil)
			}
			return o.describePolicy(cmd.Context(), &ps[0])
		},
	}
	return group("policy", "SnapshotPolicies: get, describe", get, describe)
}

// unstructuredList is what json and yaml print for a list of objects: a
// v1 List, as kubectl prints one.
func unstructuredList(items []unstructured.Unstructured) map[string]any {
	objs := make([]any, len(items))
	for i := range items {
		objs[i] = items[i].Object
	}
	return map[string]any{"apiVersion": "v1", "kind": "List", "items": objs}
}

func policyTable(out io.Writer, ps []policy, wide bool) error {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	head := "NAMESPACE\tNAME\tREADY\tREASON\tSCHEDULE\tLAST RESULT\tLAST SNAPSHOT\tNEXT RUN"
	if wide {
		head += "\tTIME ZONE\tLAST RUN\tSELECTOR\tMESSAGE"
	}
	fmt.Fprintln(w, head)
	for i := range ps {
		p := &ps[i]
		r := p.ready()
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s", p.Namespace, p.Name, r.Status, orDash(r.Reason), p.Spec.Schedule,
			orDash(p.Status.LastResult), orDash(p.Status.LastSnapshot), timeOrDash(p.Status.NextRun))
		if wide {
			fmt.Fprintf(w, "\t%s\t%s\t%s\t%s", or(p.Spec.TimeZone, "UTC"), timeOrDash(p.Status.LastRun),
				metav1.FormatLabelSelector(&p.Spec.PVCSelector), orDash(r.Message))
		}
		fmt.Fprintln(w)
	}
	return w.Flush()
}

func timeOrDash(t *metav1.Time) string {
	if t == nil || t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func (o *options) describePolicy(ctx context.Context, p *policy) error {
	dyn, core, err := o.kube.clients()
	if err != nil {
		return err
	}
	out := o.out
	pr := func(format string, args ...any) { fmt.Fprintf(out, format+"\n", args...) }
	r := p.ready()
	pr("policy %s/%s", p.Namespace, p.Name)
	pr("  ready:          %s (%s) %s", r.Status, orDash(r.Reason), r.Message)
	pr("  schedule:       %s (%s)", p.Spec.Schedule, or(p.Spec.TimeZone, "UTC"))
	pr("  pvc selector:   %s", metav1.FormatLabelSelector(&p.Spec.PVCSelector))
	if len(p.Spec.Retention) > 0 {
		var keys []string
		for k, v := range p.Spec.Retention {
			keys = append(keys, fmt.Sprintf("%s=%v", k, v))
		}
		slices.Sort(keys)
		pr("  retention:      %s", strings.Join(keys, " "))
	}
	if p.Spec.RestoreTest != nil {
		pr("  restore test:   %s (last %s)", p.Spec.RestoreTest.Schedule, timeOrDash(p.Status.LastRestoreTest))
	}
	pr("  last run:       %s: %s", timeOrDash(p.Status.LastRun), orDash(p.Status.LastResult))
	pr("  last snapshot:  %s", orDash(p.Status.LastSnapshot))
	pr("  next run:       %s", timeOrDash(p.Status.NextRun))
	if lr := p.Status.LastRequest; lr != nil {
		res := "snapshot " + lr.Snapshot
		if lr.Error != "" {
			res = "refused: " + lr.Error
		}
		pr("  last request:   %s: %s", lr.Request, res)
	}
	if req := p.Annotations[annotationSnapshotRequest]; req != "" && (p.Status.LastRequest == nil || p.Status.LastRequest.Request != req) {
		pr("  pending request: %s (not carried out yet)", req)
	}
	sel, err := metav1.LabelSelectorAsSelector(&p.Spec.PVCSelector)
	if err == nil {
		pvcs, err := core.CoreV1().PersistentVolumeClaims(p.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
		if err != nil {
			return kubeErr(err)
		}
		var names []string
		for _, c := range pvcs.Items {
			names = append(names, c.Name)
		}
		pr("  selects PVCs:   %s", orDash(strings.Join(names, ", ")))
	}
	if len(p.Name) <= 63 {
		snaps, err := dyn.Resource(gvrSnapshot).Namespace(p.Namespace).List(ctx, metav1.ListOptions{LabelSelector: labelPolicy + "=" + p.Name})
		if err != nil {
			return kubeErr(err)
		}
		rows := snapshotRows(snaps.Items, nil)
		pr("  snapshots:      %d", len(rows))
		for _, s := range rows {
			pr("    %s  pvc %s  ready %s  pinned %s  taken %s", s.Name, s.PVC, s.Ready, s.Pinned, s.Taken)
		}
	}
	evs, err := core.CoreV1().Events(p.Namespace).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.kind=SnapshotPolicy,involvedObject.name=" + p.Name})
	if err == nil && len(evs.Items) > 0 {
		pr("  events:")
		for _, e := range evs.Items {
			pr("    %s  %s  %s: %s", e.LastTimestamp.UTC().Format(time.RFC3339), e.Type, e.Reason, e.Message)
		}
	}
	return nil
}
