package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/duration"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/stateguard/stateguard/services/correlator/internal/api"
)

// gvrRestore is the snapshotter's Restore (stateguard.io/v1alpha1,
// services/snapshotter/api/v1alpha1/restore_types.go), read as an
// unstructured object like the policies.
var gvrRestore = schema.GroupVersionResource{Group: "stateguard.io", Version: "v1alpha1", Resource: "restores"}

// labelRestore names the Restore that made an object (its safety
// snapshot, its claim, its verification Job and the Job's pods); the
// value is the Restore's name cut to 63 characters.
const labelRestore = "stateguard.io/restore"

// The phases of a Restore that end it.
const (
	phaseCompleted  = "Completed"
	phaseRolledBack = "RolledBack"
	phaseFailed     = "Failed"
)

// restoreObject is the part of a Restore the CLI reads.
type restoreObject struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		VolumeSnapshot string `json:"volumeSnapshot"`
		Incident       string `json:"incident"`
		PVC            string `json:"pvc"`
		Workloads      []struct {
			Kind string `json:"kind"`
			Name string `json:"name"`
		} `json:"workloads"`
		SafetySnapshot *bool `json:"safetySnapshot"`
		Verification   *struct {
			Template map[string]any `json:"template"`
			Timeout  string         `json:"timeout"`
		} `json:"verification"`
		Deadline  string `json:"deadline"`
		RequestID string `json:"requestID"`
		Actor     string `json:"actor"`
		Reason    string `json:"reason"`
	} `json:"spec"`
	Status struct {
		Phase          string `json:"phase"`
		Message        string `json:"message"`
		PVC            string `json:"pvc"`
		SafetySnapshot string `json:"safetySnapshot"`
		VolumeSnapshot string `json:"volumeSnapshot"`
		Recommendation *struct {
			Revision int    `json:"revision"`
			EventID  string `json:"eventID"`
		} `json:"recommendation"`
		SafetySnapshotExpiresAt *metav1.Time `json:"safetySnapshotExpiresAt"`
		OldPV                   string       `json:"oldPV"`
		NewPV                   string       `json:"newPV"`
		Workloads               []struct {
			Kind     string `json:"kind"`
			Name     string `json:"name"`
			Replicas int32  `json:"replicas"`
		} `json:"workloads"`
		FailedPhase    string             `json:"failedPhase"`
		FailureReason  string             `json:"failureReason"`
		StartTime      *metav1.Time       `json:"startTime"`
		CompletionTime *metav1.Time       `json:"completionTime"`
		Phases         []phaseTime        `json:"phases"`
		Conditions     []metav1.Condition `json:"conditions"`
	} `json:"status"`
}

// phaseTime is when a Restore entered a phase.
type phaseTime struct {
	Phase   string      `json:"phase"`
	At      metav1.Time `json:"at"`
	Message string      `json:"message,omitempty"`
}

// pvc is the claim the Restore restores: the status's once the
// snapshotter resolved it, else the spec's ("" until then when the spec
// left it to the snapshot).
func (r *restoreObject) pvc() string { return or(r.Status.PVC, r.Spec.PVC) }

// snapshot is the snapshot the Restore restores: the status's once the
// snapshotter resolved it (from the spec, or from the incident's current
// recommendation), else the spec's ("" while it follows an incident).
func (r *restoreObject) snapshot() string { return or(r.Status.VolumeSnapshot, r.Spec.VolumeSnapshot) }

// phase is the current phase; a Restore the snapshotter has not read yet
// has none.
func (r *restoreObject) phase() string { return or(r.Status.Phase, "-") }

// failure is why a Restore failed, as one line: the phase that failed,
// the reason and the message.
func (r *restoreObject) failure() string {
	what := r.Status.Phase
	if r.Status.FailedPhase != "" {
		what += " (failed in " + r.Status.FailedPhase
		if r.Status.FailureReason != "" {
			what += ": " + r.Status.FailureReason
		}
		what += ")"
	} else if r.Status.FailureReason != "" {
		what += " (" + r.Status.FailureReason + ")"
	}
	if r.Status.Message != "" {
		what += ": " + r.Status.Message
	}
	return what
}

// restoreLabelValue is the value of labelRestore for a Restore (the
// snapshotter's restore.labelValue).
func restoreLabelValue(name string) string {
	if len(name) > 63 {
		name = strings.TrimRight(name[:63], "-_.")
	}
	return name
}

func restoreCmd(o *options) *cobra.Command {
	get := &cobra.Command{
		Use:     "get [namespace[/name]]",
		Short:   "Restores with their claim, snapshot and phase",
		Example: "  stateguardctl restore get shop\n  stateguardctl restore get shop/restore-5f1c0a9e2b7d4c36 -o wide",
		Args:    optionalRef("restore"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ns, name := scope(args)
			items, rs, err := o.listRestores(cmd.Context(), ns, name)
			if err != nil {
				return err
			}
			now := time.Now()
			return o.print(unstructuredList(items), func(out io.Writer, wide bool) error { return restoreTable(out, rs, wide, now) })
		},
	}
	describe := &cobra.Command{
		Use:     "describe namespace/name",
		Short:   "A Restore in full: spec, phases with their times, safety snapshot, volumes, workloads, conditions, failure",
		Example: "  stateguardctl restore describe shop/restore-5f1c0a9e2b7d4c36",
		Args:    exactRef("restore"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ns, name, _ := splitRef(args[0], "restore")
			items, rs, err := o.listRestores(cmd.Context(), ns, name)
			if err != nil {
				return err
			}
			if o.output != outText && o.output != outWide {
				return o.print(items[0].Object, nil)
			}
			describeRestore(o.out, &rs[0])
			return nil
		},
	}
	logs := &cobra.Command{
		Use:   "logs namespace/name",
		Short: "The Kubernetes Events of a Restore and of its verification Job and pods",
		Long: `Prints the Kubernetes Events of the Restore, of its verification Job and of the Job's pods (the objects
labelled stateguard.io/restore=<name>), oldest first. The API server keeps Events for an hour by default;
the phases a Restore went through stay in its status (restore describe).`,
		Example: "  stateguardctl restore logs shop/restore-5f1c0a9e2b7d4c36",
		Args:    exactRef("restore"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ns, name, _ := splitRef(args[0], "restore")
			return o.restoreLogs(cmd.Context(), ns, name)
		},
	}
	return group("restore", "Restores: create (operator token), get, describe, logs", createRestoreCmd(o), get, describe, logs)
}

// listRestores lists the Restores of ns ("" for all), or the one named.
func (o *options) listRestores(ctx context.Context, ns, name string) ([]unstructured.Unstructured, []restoreObject, error) {
	return listObjects[restoreObject](ctx, o, gvrRestore, "restore", ns, name)
}

func restoreTable(out io.Writer, rs []restoreObject, wide bool, now time.Time) error {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	head := "NAMESPACE\tNAME\tPVC\tSNAPSHOT\tPHASE\tAGE"
	if wide {
		head += "\tINCIDENT\tSAFETY SNAPSHOT\tNEW PV\tMESSAGE"
	}
	fmt.Fprintln(w, head)
	for i := range rs {
		r := &rs[i]
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s", r.Namespace, r.Name, orDash(r.pvc()), orDash(r.snapshot()), r.phase(),
			duration.HumanDuration(now.Sub(r.CreationTimestamp.Time)))
		if wide {
			fmt.Fprintf(w, "\t%s\t%s\t%s\t%s", orDash(r.Spec.Incident), orDash(r.Status.SafetySnapshot), orDash(r.Status.NewPV), orDash(r.Status.Message))
		}
		fmt.Fprintln(w)
	}
	return w.Flush()
}

// describeRestore prints a Restore as `velero restore describe` does: what
// was asked, then where it stands and how it got there.
func describeRestore(out io.Writer, r *restoreObject) {
	pr := func(format string, args ...any) { fmt.Fprintf(out, format+"\n", args...) }
	pr("restore %s/%s", r.Namespace, r.Name)
	pr("  phase:            %s", r.phase())
	if r.Status.Message != "" {
		pr("  message:          %s", r.Status.Message)
	}
	snap := r.snapshot()
	switch {
	case r.Status.Recommendation != nil:
		snap += fmt.Sprintf(" (incident %s's recommendation, revision %d, event %s)", r.Spec.Incident, r.Status.Recommendation.Revision, r.Status.Recommendation.EventID)
	case snap == "":
		snap = "(the incident's current recommendation, once the snapshotter reads it)"
	}
	pr("  snapshot:         %s", snap)
	pvc := r.pvc()
	if pvc == "" {
		pvc = "(the snapshot's source claim)"
	}
	pr("  pvc:              %s", pvc)
	pr("  incident:         %s", orDash(r.Spec.Incident))
	pr("  requested by:     %s", orDash(r.Spec.Actor))
	pr("  reason:           %s", orDash(r.Spec.Reason))
	if r.Spec.RequestID != "" {
		pr("  request:          %s", r.Spec.RequestID)
	}
	safety := "yes"
	if r.Spec.SafetySnapshot != nil && !*r.Spec.SafetySnapshot {
		safety = "no (spec.safetySnapshot: false)"
	}
	pr("  safety snapshot:  %s", safety)
	if r.Spec.Verification != nil {
		pr("  verification:     a Job, timeout %s", or(r.Spec.Verification.Timeout, "10m"))
	} else {
		pr("  verification:     none")
	}
	pr("  deadline:         %s", or(r.Spec.Deadline, "30m"))
	var want []string
	for _, w := range r.Spec.Workloads {
		want = append(want, w.Kind+"/"+w.Name)
	}
	pr("  workloads asked:  %s", or(strings.Join(want, ", "), "(every workload mounting the claim)"))
	pr("")
	pr("  started:          %s", timeOrDash(r.Status.StartTime))
	completed := timeOrDash(r.Status.CompletionTime)
	if st, ct := r.Status.StartTime, r.Status.CompletionTime; st != nil && ct != nil {
		completed += " (took " + ct.Sub(st.Time).Round(time.Second).String() + ")"
	}
	pr("  completed:        %s", completed)
	pr("  phases:")
	if len(r.Status.Phases) == 0 {
		pr("    none yet: the snapshotter has not started this restore")
	}
	for i, p := range r.Status.Phases {
		took := ""
		if i+1 < len(r.Status.Phases) {
			took = " (" + r.Status.Phases[i+1].At.Sub(p.At.Time).Round(time.Second).String() + ")"
		}
		line := fmt.Sprintf("    %-15s %s%s", p.Phase, p.At.UTC().Format(time.RFC3339), took)
		if p.Message != "" {
			line += "  " + p.Message
		}
		pr("%s", line)
	}
	if r.Status.SafetySnapshot != "" {
		pinned := "pinned while the Restore runs"
		if t := r.Status.SafetySnapshotExpiresAt; t != nil {
			pinned = "pinned until " + t.UTC().Format(time.RFC3339)
		}
		pr("  safety snapshot:  %s (%s; holds the claim's data from before the restore)", r.Status.SafetySnapshot, pinned)
	}
	pr("  old PV:           %s", or(r.Status.OldPV, "-"))
	pr("  new PV:           %s", or(r.Status.NewPV, "-"))
	if len(r.Status.Workloads) > 0 {
		pr("  workloads:")
		for _, w := range r.Status.Workloads {
			pr("    %s/%s  replicas %d", w.Kind, w.Name, w.Replicas)
		}
	}
	if len(r.Status.Conditions) > 0 {
		pr("  conditions:")
		for _, c := range r.Status.Conditions {
			pr("    %s=%s  %s  %s  %s", c.Type, c.Status, c.Reason, c.LastTransitionTime.UTC().Format(time.RFC3339), c.Message)
		}
	}
	if r.Status.Phase == phaseFailed || r.Status.Phase == phaseRolledBack {
		pr("  failure:          %s", r.failure())
		if r.Status.Phase == phaseRolledBack {
			pr("                    the claim is bound to its old volume %s again: the old data is intact", orDash(r.Status.OldPV))
		}
	}
}

// eventRow is one Kubernetes Event as `restore logs` prints it.
type eventRow struct {
	Time    time.Time `json:"time"`
	Type    string    `json:"type"`
	Object  string    `json:"object"`
	Reason  string    `json:"reason"`
	Message string    `json:"message"`
	Count   int32     `json:"count,omitempty"`
}

// restoreLogs prints the Events of the Restore, of the Jobs and pods it
// labelled (its verification).
func (o *options) restoreLogs(ctx context.Context, ns, name string) error {
	dyn, core, err := o.kube.clients()
	if err != nil {
		return err
	}
	if _, err := dyn.Resource(gvrRestore).Namespace(ns).Get(ctx, name, metav1.GetOptions{}); err != nil {
		return kubeErr(err)
	}
	objects := [][2]string{{"Restore", name}}
	sel := metav1.ListOptions{LabelSelector: labelRestore + "=" + restoreLabelValue(name)}
	jobs, err := core.BatchV1().Jobs(ns).List(ctx, sel)
	if err != nil {
		return kubeErr(err)
	}
	for _, j := range jobs.Items {
		objects = append(objects, [2]string{"Job", j.Name})
	}
	pods, err := core.CoreV1().Pods(ns).List(ctx, sel)
	if err != nil {
		return kubeErr(err)
	}
	for _, p := range pods.Items {
		objects = append(objects, [2]string{"Pod", p.Name})
	}
	var rows []eventRow
	for _, obj := range objects {
		evs, err := core.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.kind=" + obj[0] + ",involvedObject.name=" + obj[1]})
		if err != nil {
			return kubeErr(err)
		}
		for i := range evs.Items {
			rows = append(rows, eventRowOf(&evs.Items[i]))
		}
	}
	slices.SortStableFunc(rows, func(a, b eventRow) int { return a.Time.Compare(b.Time) })
	return o.print(rows, func(out io.Writer, _ bool) error {
		if len(rows) == 0 {
			fmt.Fprintf(out, "no Events for restore %s/%s or its verification (the API server keeps Events for an hour by default; see restore describe)\n", ns, name)
			return nil
		}
		w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "TIME\tTYPE\tOBJECT\tREASON\tMESSAGE")
		for _, r := range rows {
			msg := r.Message
			if r.Count > 1 {
				msg += fmt.Sprintf(" (x%d)", r.Count)
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", r.Time.UTC().Format(time.RFC3339), r.Type, r.Object, r.Reason, msg)
		}
		return w.Flush()
	})
}

// eventRowOf is an Event's row: its last time (or its event time, for
// Events written through events.k8s.io).
func eventRowOf(e *corev1.Event) eventRow {
	t := e.LastTimestamp.Time
	if t.IsZero() {
		t = e.EventTime.Time
	}
	if t.IsZero() {
		t = e.FirstTimestamp.Time
	}
	if t.IsZero() {
		t = e.CreationTimestamp.Time
	}
	return eventRow{Time: t, Type: e.Type, Object: e.InvolvedObject.Kind + "/" + e.InvolvedObject.Name, Reason: e.Reason, Message: e.Message, Count: e.Count}
}

func createRestoreCmd(o *options) *cobra.Command {
	var incident, snapshot, pvc, reason string
	var follow bool
	var waitFor time.Duration
	c := &cobra.Command{
		Use:   "create (--incident ID | --snapshot namespace/name) [--pvc P] [--reason R] [--wait]",
		Short: "Restore a claim in place from an incident's restore point or a snapshot (operator token)",
		Long: `Asks the correlator (POST /v1/restores, an operator token) to restore a claim in place: from the restore
point of an incident (--incident, --pvc when it has restore points for several claims), or from a
VolumeSnapshot (--snapshot namespace/name, with or without an incident). The correlator publishes
restore.requested and answers the name of the Restore (stateguard.io/v1alpha1) the snapshotter creates for it;
the snapshotter takes a safety snapshot of the claim, stops the workloads mounting it, replaces the claim by
one filled from the snapshot, verifies it (before the workloads run) and starts them again; a failure puts
the old volume back (RolledBack).
The same request again (same reason) names the same Restore and restores once.

With --wait the command follows the Restore through the kubeconfig, one line per phase, and exits 0 when it
Completed, 1 when it Failed or RolledBack (with the reason), or when --wait-timeout passes first.`,
		Example: `  stateguardctl restore create --incident inc-5557ed131b462d2dfb83f618 --wait
  stateguardctl restore create --snapshot shop/db-hourly-data-202612070300 --pvc data --reason "bad migration at 03:10"`,
		Args: exactArgs(0, "no argument: name the restore with --incident or --snapshot"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			req, err := restoreRequest(incident, snapshot, pvc, reason)
			if err != nil {
				return err
			}
			if follow {
				// Without a cluster to follow it on, ask for nothing.
				if _, _, err := o.kube.clients(); err != nil {
					return fmt.Errorf("--wait follows the Restore through the kubeconfig: %w", err)
				}
			}
			var acc api.RestoreAccepted
			if err := o.post(cmd.Context(), "/v1/restores", req, &acc); err != nil {
				return err
			}
			if !follow {
				return o.print(acc, func(out io.Writer, _ bool) error {
					printAccepted(out, &acc)
					fmt.Fprintf(out, "follow it: stateguardctl restore describe %s/%s\n", acc.Namespace, acc.Restore)
					return nil
				})
			}
			progress := o.out
			if o.output != outText && o.output != outWide {
				progress = o.errOut // stdout holds only the document
			}
			printAccepted(progress, &acc)
			r, werr := o.followRestore(cmd.Context(), progress, acc.Namespace, acc.Restore, waitFor)
			if o.output != outText && o.output != outWide && r != nil {
				if err := o.print(r.Object, nil); err != nil {
					return err
				}
			}
			return werr
		},
	}
	f := c.Flags()
	f.StringVar(&incident, "incident", "", "the incident whose restore point to restore")
	f.StringVar(&snapshot, "snapshot", "", "the VolumeSnapshot to restore, namespace/name (instead of the incident's restore point)")
	f.StringVar(&pvc, "pvc", "", "the claim to restore (default: the snapshot's source claim, or the incident's only one)")
	f.StringVar(&reason, "reason", "", "why (default: names the incident or the snapshot); recorded in the events and the Restore")
	f.BoolVar(&follow, "wait", false, "follow the Restore until it ends: exit 0 when Completed, 1 when Failed or RolledBack")
	f.DurationVar(&waitFor, "wait-timeout", 45*time.Minute, "how long --wait follows the Restore (a Restore's own deadline is 30m by default)")
	return c
}

// restoreRequest is the body of POST /v1/restores for the flags of
// restore create.
func restoreRequest(incident, snapshot, pvc, reason string) (api.RestoreRequest, error) {
	req := api.RestoreRequest{IncidentID: incident, PVC: pvc, Reason: strings.TrimSpace(reason)}
	if incident == "" && snapshot == "" {
		return req, usageErrorf("name what to restore: --incident ID (its restore point) or --snapshot namespace/name")
	}
	if snapshot != "" {
		ns, name, err := splitRef(snapshot, "snapshot")
		if err != nil {
			return req, err
		}
		req.Namespace, req.Snapshot = ns, name
	}
	if req.Reason == "" {
		switch {
		case incident != "" && snapshot != "":
			req.Reason = "restore snapshot " + snapshot + " for incident " + incident
		case incident != "":
			req.Reason = "restore the restore point of incident " + incident
		default:
			req.Reason = "restore snapshot " + snapshot
		}
	}
	return req, nil
}

func printAccepted(out io.Writer, acc *api.RestoreAccepted) {
	what := "claim " + or(acc.PVC, "(the snapshot's source claim)")
	fmt.Fprintf(out, "restore %s/%s requested: %s from snapshot %s", acc.Namespace, acc.Restore, what, acc.Snapshot)
	if acc.IncidentID != "" {
		fmt.Fprintf(out, " (incident %s)", acc.IncidentID)
	}
	fmt.Fprintf(out, " by %s, request %s\n", acc.Actor, acc.RequestID)
}

// followRestore polls the Restore ns/name until it ends or d passes,
// printing one line for each phase it entered (from status.phases, so a
// phase shorter than a poll is not missed). It returns the last object
// read and an error unless the Restore Completed.
func (o *options) followRestore(ctx context.Context, out io.Writer, ns, name string, d time.Duration) (*unstructured.Unstructured, error) {
	dyn, _, err := o.kube.clients()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var last *unstructured.Unstructured
	var r restoreObject
	var readErr error
	printed, lastPhase, seen := 0, "", false
	err = wait.PollUntilContextCancel(ctx, time.Second, true, func(ctx context.Context) (bool, error) {
		u, err := dyn.Resource(gvrRestore).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			return false, nil // the snapshotter has not created it yet
		case apierrors.IsForbidden(err), apierrors.IsUnauthorized(err):
			return false, fmt.Errorf("follow restore %s/%s: %w", ns, name, kubeErr(err))
		case err != nil:
			readErr = err // the API server away for a moment: a restore takes minutes, poll on
			return false, nil
		}
		readErr = nil
		if err := fromUnstructured(u, &r); err != nil {
			return false, fmt.Errorf("restore %s/%s: %w", ns, name, err)
		}
		last = u
		if !seen {
			seen = true
			fmt.Fprintf(out, "%s  restore %s/%s created by the snapshotter\n", time.Now().UTC().Format(time.RFC3339), ns, name)
		}
		for ; printed < len(r.Status.Phases); printed++ {
			p := r.Status.Phases[printed]
			progressLine(out, p.At.Time, p.Phase, p.Message)
			lastPhase = p.Phase
		}
		if r.Status.Phase != "" && r.Status.Phase != lastPhase {
			progressLine(out, time.Now(), r.Status.Phase, r.Status.Message)
			lastPhase = r.Status.Phase
		}
		switch r.Status.Phase {
		case phaseCompleted, phaseFailed, phaseRolledBack:
			return true, nil
		}
		return false, nil
	})
	if err != nil {
		switch {
		case ctx.Err() != nil && readErr != nil:
			return last, fmt.Errorf("restore %s/%s: not read after %s: %w", ns, name, d, readErr)
		case ctx.Err() != nil && !seen:
			return last, fmt.Errorf("restore %s/%s: not created after %s: is the snapshotter running and consuming restore.requested? (stateguardctl check)", ns, name, d)
		case ctx.Err() != nil:
			return last, fmt.Errorf("restore %s/%s: still %s after %s: %s (follow it with stateguardctl restore describe %s/%s)", ns, name, r.phase(), d, orDash(r.Status.Message), ns, name)
		}
		return last, err
	}
	if r.Status.Phase == phaseCompleted {
		fmt.Fprintf(out, "restore %s/%s Completed: claim %s restored from snapshot %s (new PV %s; old PV %s retained; safety snapshot %s)\n",
			ns, name, orDash(r.pvc()), orDash(r.snapshot()), orDash(r.Status.NewPV), orDash(r.Status.OldPV), orDash(r.Status.SafetySnapshot))
		return last, nil
	}
	return last, errors.New("restore " + ns + "/" + name + " " + r.failure())
}

func progressLine(out io.Writer, at time.Time, phase, msg string) {
	line := fmt.Sprintf("%s  %-15s", at.UTC().Format(time.RFC3339), phase)
	if msg != "" {
		line += " " + msg
	}
	fmt.Fprintln(out, strings.TrimRight(line, " "))
}
