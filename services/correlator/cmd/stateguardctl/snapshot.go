package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/stateguard/stateguard/services/correlator/internal/api"
)

// snapshotRow is one VolumeSnapshot as `snapshot get` shows it: the
// cluster's facts and the correlator's verdict.
type snapshotRow struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	PVC       string `json:"pvc"`
	Policy    string `json:"policy,omitempty"`
	Ready     string `json:"ready"`
	Pinned    string `json:"pinned"`
	PinReason string `json:"pin_reason,omitempty"`
	// Verdict is the correlator's class of the snapshot (clean, tainted,
	// unknown), per app when several ran on the PVC; "?" when the
	// correlator could not be asked, "-" when it knows nothing of it.
	Verdict   string `json:"verdict"`
	KnownGood bool   `json:"known_good"`
	Taken     string `json:"taken"`
	Size      string `json:"restore_size,omitempty"`
	Error     string `json:"error,omitempty"`
}

// verdict is what the correlator says of one snapshot: its class for each
// app that ran on its PVC.
type verdict struct {
	apps, classes []string
	knownGood     bool
}

// String is the class, or app=class for each app when several ran.
func (v verdict) String() string {
	if len(v.classes) == 1 {
		return v.classes[0]
	}
	out := make([]string, len(v.classes))
	for i := range v.classes {
		out[i] = v.apps[i] + "=" + v.classes[i]
	}
	return orDash(strings.Join(out, ","))
}

// vsObject is the part of a VolumeSnapshot the CLI reads.
type vsObject struct {
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Source struct {
			PersistentVolumeClaimName *string `json:"persistentVolumeClaimName"`
		} `json:"source"`
		VolumeSnapshotClassName *string `json:"volumeSnapshotClassName"`
	} `json:"spec"`
	Status *struct {
		ReadyToUse   *bool        `json:"readyToUse"`
		CreationTime *metav1.Time `json:"creationTime"`
		RestoreSize  *string      `json:"restoreSize"`
		Error        *struct {
			Message *string `json:"message"`
		} `json:"error"`
		BoundVolumeSnapshotContentName *string `json:"boundVolumeSnapshotContentName"`
	} `json:"status"`
}

func snapshotRows(items []unstructured.Unstructured, verdicts map[string]verdict) []snapshotRow {
	rows := make([]snapshotRow, 0, len(items))
	for i := range items {
		var vs vsObject
		if err := fromUnstructured(&items[i], &vs); err != nil {
			continue
		}
		r := snapshotRow{Namespace: vs.Namespace, Name: vs.Name, Policy: vs.Labels[labelPolicy], Ready: "-", Pinned: "-",
			PinReason: vs.Annotations[annotationPinnedReason], Verdict: "?", Taken: vs.CreationTimestamp.UTC().Format(time.RFC3339)}
		if c := vs.Spec.Source.PersistentVolumeClaimName; c != nil {
			r.PVC = *c
		}
		if vs.Labels[labelPinned] == "true" {
			r.Pinned = "yes"
		}
		if st := vs.Status; st != nil {
			if st.ReadyToUse != nil {
				r.Ready = fmt.Sprint(*st.ReadyToUse)
			}
			if st.CreationTime != nil {
				r.Taken = st.CreationTime.UTC().Format(time.RFC3339)
			}
			if st.RestoreSize != nil {
				r.Size = *st.RestoreSize
			}
			if st.Error != nil && st.Error.Message != nil {
				r.Error = *st.Error.Message
			}
		}
		if verdicts != nil {
			v, ok := verdicts[vs.Namespace+"/"+vs.Name]
			r.Verdict, r.KnownGood = v.String(), ok && v.knownGood
		}
		rows = append(rows, r)
	}
	slices.SortFunc(rows, func(a, b snapshotRow) int {
		return strings.Compare(a.Namespace+"/"+a.PVC+"/"+a.Taken+a.Name, b.Namespace+"/"+b.PVC+"/"+b.Taken+b.Name)
	})
	return rows
}

// verdicts asks the correlator for the class of every snapshot of the
// apps of ns ("" for all): one request for the apps and one per app.
func (o *options) verdicts(ctx context.Context, ns string) (map[string]verdict, error) {
	var apps []api.AppSummary
	if err := o.get(ctx, "/v1/apps", &apps); err != nil {
		return nil, err
	}
	out := map[string]verdict{}
	for _, a := range apps {
		if ns != "" && a.Namespace != ns {
			continue
		}
		var p api.Posture
		if err := o.get(ctx, "/v1/apps/"+url.PathEscape(a.Namespace)+"/"+url.PathEscape(a.App), &p); err != nil {
			return nil, err
		}
		for _, s := range p.Snapshots {
			k := a.Namespace + "/" + s.Name
			v := out[k]
			v.apps, v.classes = append(v.apps, a.App), append(v.classes, s.Class)
			v.knownGood = v.knownGood || slices.Contains(p.KnownGood[s.PVC], s.Name)
			out[k] = v
		}
	}
	return out, nil
}

func snapshotCmd(o *options) *cobra.Command {
	get := &cobra.Command{
		Use:   "get [namespace[/name]]",
		Short: "VolumeSnapshots with readiness, pin, and the correlator's verdict",
		Long: `Lists VolumeSnapshots with their PVC, policy, readiness and pin (the stateguard.io/pinned label), and what the
correlator says of each: its class (clean, tainted, unknown; per app when several ran on the PVC) and whether it
is the app's known-good restore point. When the correlator cannot be asked the verdict is "?" and a warning
says why.`,
		Example: "  stateguardctl snapshot get shop\n  stateguardctl snapshot get -o wide",
		Args:    optionalRef("snapshot"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ns, name := scope(args)
			dyn, _, err := o.kube.clients()
			if err != nil {
				return err
			}
			var items []unstructured.Unstructured
			if name != "" {
				u, err := dyn.Resource(gvrSnapshot).Namespace(ns).Get(cmd.Context(), name, metav1.GetOptions{})
				if err != nil {
					return kubeErr(err)
				}
				items = append(items, *u)
			} else {
				l, err := dyn.Resource(gvrSnapshot).Namespace(ns).List(cmd.Context(), metav1.ListOptions{})
				if err != nil {
					return kubeErr(err)
				}
				items = l.Items
			}
			verdicts, err := o.verdicts(cmd.Context(), ns)
			if err != nil {
				fmt.Fprintf(o.errOut, "warning: no verdicts from the correlator: %v\n", err)
			}
			rows := snapshotRows(items, verdicts)
			return o.print(rows, func(out io.Writer, wide bool) error { return snapshotTable(out, rows, wide) })
		},
	}
	describe := &cobra.Command{
		Use:     "describe namespace/name",
		Short:   "A VolumeSnapshot in full, with the correlator's reasons",
		Example: "  stateguardctl snapshot describe shop/db-hourly-data-202612070300",
		Args:    exactRef("snapshot"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ns, name, _ := splitRef(args[0], "snapshot")
			return o.describeSnapshot(cmd.Context(), ns, name)
		},
	}
	return group("snapshot", "VolumeSnapshots: get, describe, create", get, describe, createSnapshotCmd(o))
}

func snapshotTable(out io.Writer, rows []snapshotRow, wide bool) error {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	head := "NAMESPACE\tNAME\tPVC\tREADY\tPINNED\tVERDICT\tKNOWN-GOOD\tTAKEN"
	if wide {
		head += "\tPOLICY\tSIZE\tPIN REASON\tERROR"
	}
	fmt.Fprintln(w, head)
	for _, r := range rows {
		kg := "-"
		if r.KnownGood {
			kg = "yes"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s", r.Namespace, r.Name, orDash(r.PVC), r.Ready, r.Pinned, r.Verdict, kg, r.Taken)
		if wide {
			fmt.Fprintf(w, "\t%s\t%s\t%s\t%s", orDash(r.Policy), orDash(r.Size), orDash(r.PinReason), orDash(r.Error))
		}
		fmt.Fprintln(w)
	}
	return w.Flush()
}

func (o *options) describeSnapshot(ctx context.Context, ns, name string) error {
	dyn, _, err := o.kube.clients()
	if err != nil {
		return err
	}
	u, err := dyn.Resource(gvrSnapshot).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return kubeErr(err)
	}
	var why *api.Why
	var whyErr error
	var w api.Why
	if whyErr = o.get(ctx, whyPath(ns, name), &w); whyErr == nil {
		why = &w
	}
	if o.output != outText && o.output != outWide {
		doc := map[string]any{"volumeSnapshot": u.Object, "correlator": why}
		if whyErr != nil {
			doc["correlatorError"] = whyErr.Error()
		}
		return o.print(doc, nil)
	}
	var vs vsObject
	if err := fromUnstructured(u, &vs); err != nil {
		return err
	}
	row := snapshotRows([]unstructured.Unstructured{*u}, nil)[0]
	pr := func(format string, args ...any) { fmt.Fprintf(o.out, format+"\n", args...) }
	pr("volume snapshot %s/%s", ns, name)
	pr("  pvc:        %s", orDash(row.PVC))
	pr("  policy:     %s", orDash(row.Policy))
	pr("  slot:       %s", orDash(vs.Annotations[annotationSlot]))
	pr("  taken:      %s", row.Taken)
	pr("  ready:      %s", row.Ready)
	if row.Size != "" {
		pr("  size:       %s", row.Size)
	}
	if row.Error != "" {
		pr("  error:      %s", row.Error)
	}
	pin := "no"
	if row.Pinned == "yes" {
		pin = "yes: " + orDash(row.PinReason)
	}
	pr("  pinned:     %s", pin)
	if he := vs.Annotations[annotationHookErrors]; he != "" {
		pr("  hook errors: %s", he)
	}
	if wl := vs.Annotations[annotationWorkloads]; wl != "" {
		var wls []map[string]any
		if json.Unmarshal([]byte(wl), &wls) == nil {
			pr("  workloads when taken:")
			for _, x := range wls {
				pr("    %v/%v %v", x["kind"], x["name"], x["images"])
			}
		}
	}
	switch {
	case why != nil:
		pr("  correlator:")
		return printWhy(o.out, *why, "    ")
	case exitCode(whyErr) == exitNotFound:
		pr("  correlator: knows nothing of this snapshot (no snapshot.completed for it yet)")
	default:
		pr("  correlator: not asked: %v", whyErr)
	}
	return nil
}

func createSnapshotCmd(o *options) *cobra.Command {
	var policyName string
	var waitFor time.Duration
	c := &cobra.Command{
		Use:   "create namespace/pvc [--policy name] [--wait 2m]",
		Short: "Take an on-demand snapshot of a PVC through its SnapshotPolicy",
		Long: `Asks the snapshotter for one snapshot of the PVC now, carried out like a slot of the SnapshotPolicy that
selects the PVC: its hooks, labels, class, the workloads recorded, snapshot.completed published, retention
applied. The request is the annotation stateguard.io/snapshot-request ("<pvc>@<time>") on the policy; the
snapshotter carries out each value once and records it in the policy's status.lastRequest. Needs the right to
patch snapshotpolicies in the namespace. With --wait the command waits for the snapshot to be created and
ready (0: return once requested).`,
		Example: "  stateguardctl snapshot create shop/data-db-0\n  stateguardctl snapshot create shop/data-db-0 --policy db-hourly --wait 5m",
		Args:    exactRef("pvc"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ns, pvc, _ := splitRef(args[0], "pvc")
			return o.createSnapshot(cmd.Context(), ns, pvc, policyName, waitFor, time.Now())
		},
	}
	c.Flags().StringVar(&policyName, "policy", "", "the SnapshotPolicy to carry it out (default: the one that selects the PVC)")
	c.Flags().DurationVar(&waitFor, "wait", 2*time.Minute, "how long to wait for the snapshot to be ready (0: do not wait)")
	return c
}

// requestResult is what `snapshot create` prints.
type requestResult struct {
	Namespace string `json:"namespace"`
	Policy    string `json:"policy"`
	PVC       string `json:"pvc"`
	Request   string `json:"request"`
	Snapshot  string `json:"snapshot,omitempty"`
	Ready     bool   `json:"ready"`
	State     string `json:"state"`
}

func (o *options) createSnapshot(ctx context.Context, ns, pvcName, policyName string, waitFor time.Duration, now time.Time) error {
	dyn, core, err := o.kube.clients()
	if err != nil {
		return err
	}
	pvc, err := core.CoreV1().PersistentVolumeClaims(ns).Get(ctx, pvcName, metav1.GetOptions{})
	if err != nil {
		return kubeErr(err)
	}
	_, ps, err := o.listPolicies(ctx, ns, "")
	if err != nil {
		return err
	}
	var match []string
	for i := range ps {
		if ok, err := ps[i].selects(pvc.Labels); err == nil && ok && (policyName == "" || ps[i].Name == policyName) {
			match = append(match, ps[i].Name)
		}
	}
	switch {
	case len(match) == 0 && policyName != "":
		return notFoundErrorf("SnapshotPolicy %s/%s does not exist or does not select PVC %s", ns, policyName, pvcName)
	case len(match) == 0:
		return notFoundErrorf("no SnapshotPolicy in namespace %s selects PVC %s: an on-demand snapshot is carried out by a policy", ns, pvcName)
	case len(match) > 1:
		return usageErrorf("SnapshotPolicies %s select PVC %s: choose one with --policy", strings.Join(match, ", "), pvcName)
	}
	res := requestResult{Namespace: ns, Policy: match[0], PVC: pvcName, Request: pvcName + "@" + now.UTC().Format(time.RFC3339), State: "requested"}
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{annotationSnapshotRequest: res.Request}}})
	if _, err := dyn.Resource(gvrPolicy).Namespace(ns).Patch(ctx, res.Policy, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		return kubeErr(err)
	}
	if waitFor > 0 {
		err = o.waitForRequest(ctx, &res, waitFor)
	}
	perr := o.print(res, func(out io.Writer, _ bool) error {
		switch res.State {
		case "requested":
			fmt.Fprintf(out, "snapshot of %s/%s requested from policy %s (%s)\n", ns, pvcName, res.Policy, res.Request)
		case "refused":
		default:
			fmt.Fprintf(out, "volume snapshot %s/%s %s (policy %s, request %s)\n", ns, res.Snapshot, res.State, res.Policy, res.Request)
		}
		return nil
	})
	return errors.Join(err, perr)
}

// waitForRequest polls the policy until the snapshotter carried out the
// request, then the snapshot until it is ready, for at most d.
func (o *options) waitForRequest(ctx context.Context, res *requestResult, d time.Duration) error {
	dyn, _, _ := o.kube.clients()
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var refused error
	err := wait.PollUntilContextCancel(ctx, 500*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		if res.Snapshot == "" {
			u, err := dyn.Resource(gvrPolicy).Namespace(res.Namespace).Get(ctx, res.Policy, metav1.GetOptions{})
			if err != nil {
				return false, kubeErr(err)
			}
			var p policy
			if err := fromUnstructured(u, &p); err != nil {
				return false, err
			}
			lr := p.Status.LastRequest
			if lr == nil || lr.Request != res.Request {
				return false, nil
			}
			if lr.Error != "" {
				res.State = "refused"
				refused = fmt.Errorf("the snapshotter refused request %s of policy %s/%s: %s", res.Request, res.Namespace, res.Policy, lr.Error)
				return true, nil
			}
			res.Snapshot, res.State = lr.Snapshot, "created"
		}
		u, err := dyn.Resource(gvrSnapshot).Namespace(res.Namespace).Get(ctx, res.Snapshot, metav1.GetOptions{})
		if err != nil {
			return false, nil // not visible yet: poll again
		}
		row := snapshotRows([]unstructured.Unstructured{*u}, nil)[0]
		if row.Error != "" {
			res.State = "failed"
			refused = fmt.Errorf("volume snapshot %s/%s failed: %s", res.Namespace, res.Snapshot, row.Error)
			return true, nil
		}
		if row.Ready == "true" {
			res.Ready, res.State = true, "ready"
			return true, nil
		}
		return false, nil
	})
	if refused != nil {
		return refused
	}
	if err != nil {
		return fmt.Errorf("waiting for request %s (state %s): %w", res.Request, res.State, err)
	}
	return nil
}
