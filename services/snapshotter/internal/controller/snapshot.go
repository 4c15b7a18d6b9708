package controller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strings"
	"time"

	snapv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/services/snapshotter/api/v1alpha1"
	"github.com/stateguard/stateguard/services/snapshotter/internal/policy"
	"github.com/stateguard/stateguard/services/snapshotter/internal/schedule"
	"github.com/stateguard/stateguard/services/snapshotter/internal/workload"
)

// ErrHookFailed says a hook with onError: Fail failed.
var ErrHookFailed = errors.New("hook failed")

// runSlot snapshots every PVC the policy selects for slot. It returns the
// result for the status and the name of the last snapshot created. An error
// means the slot must be run again (names are deterministic, so snapshots
// already taken are not taken twice).
func (c *Controller) runSlot(ctx context.Context, p *v1alpha1.SnapshotPolicy, spec policy.Spec, slot time.Time) (string, string, error) {
	sel := spec.Selector
	var pvcs corev1.PersistentVolumeClaimList
	if err := c.Client.List(ctx, &pvcs, client.InNamespace(p.Namespace), client.MatchingLabelsSelector{Selector: sel}); err != nil {
		return "", "", fmt.Errorf("list pvcs: %w", err)
	}
	var errs []error
	var failed, ok int
	var newest string
	for i := range pvcs.Items {
		pvc := &pvcs.Items[i]
		name, err := c.takeSnapshot(ctx, p, spec, pvc, slot)
		switch {
		case errors.Is(err, ErrHookFailed):
			failed++
		case err != nil:
			errs = append(errs, fmt.Errorf("pvc %s: %w", pvc.Name, err))
		default:
			ok++
			newest = name
		}
	}
	if len(errs) > 0 {
		return "", "", errors.Join(errs...)
	}
	switch {
	case failed == 0:
		return v1alpha1.ResultSucceeded, newest, nil
	case ok == 0:
		return v1alpha1.ResultFailed, newest, nil
	default:
		return v1alpha1.ResultPartial, newest, nil
	}
}

// takeSnapshot runs the pre hooks, creates the VolumeSnapshot of pvc for
// slot, and runs the post hooks. When the snapshot exists already it does
// nothing. A pre hook that fails with onError: Fail publishes
// snapshot.failed and returns ErrHookFailed.
func (c *Controller) takeSnapshot(ctx context.Context, p *v1alpha1.SnapshotPolicy, spec policy.Spec, pvc *corev1.PersistentVolumeClaim, slot time.Time) (string, error) {
	name := schedule.SnapshotName(p.Name, pvc.Name, slot)
	log := c.Log.With("namespace", p.Namespace, "policy", p.Name, "pvc", pvc.Name, "volume_snapshot", name)
	var existing snapv1.VolumeSnapshot
	err := c.Client.Get(ctx, client.ObjectKey{Namespace: p.Namespace, Name: name}, &existing)
	if err == nil {
		return name, nil
	}
	if !apierrors.IsNotFound(err) {
		return "", fmt.Errorf("get volume snapshot: %w", err)
	}
	pods, err := workload.Pods(ctx, c.Client, p.Namespace, pvc.Name)
	if err != nil {
		return "", err
	}
	wls, err := workload.Describe(ctx, c.Client, pods)
	if err != nil {
		return "", err
	}
	wlJSON, err := json.Marshal(wls)
	if err != nil {
		return "", err
	}
	preErrs, fatal := c.runHooks(ctx, log, p, "pre", p.Spec.Hooks.Pre, spec.PreTimeouts, pods)
	if fatal != nil {
		// Undo whatever the pre hooks did (unfreeze) before giving up.
		c.postHooks(ctx, log, p, spec, pods, nil)
		if err := c.publishHookFailure(ctx, p, pvc.Name, name, slot, fatal); err != nil {
			return "", err
		}
		log.Error("snapshot not taken: pre hook failed", "error", fatal)
		return "", ErrHookFailed
	}
	labels := map[string]string{}
	maps.Copy(labels, p.Spec.Labels)
	labels[v1alpha1.LabelManagedBy] = v1alpha1.ManagedBy
	labels[v1alpha1.LabelPolicy] = schedule.LabelValue(p.Name)
	labels[v1alpha1.LabelPVC] = schedule.LabelValue(pvc.Name)
	annotations := map[string]string{
		v1alpha1.AnnotationSlot:      slot.UTC().Format(time.RFC3339),
		v1alpha1.AnnotationWorkloads: string(wlJSON),
	}
	if len(preErrs) > 0 {
		annotations[v1alpha1.AnnotationHookErrors] = strings.Join(preErrs, "; ")
	}
	claim := pvc.Name
	vs := &snapv1.VolumeSnapshot{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: p.Namespace, Labels: labels, Annotations: annotations},
		Spec:       snapv1.VolumeSnapshotSpec{Source: snapv1.VolumeSnapshotSource{PersistentVolumeClaimName: &claim}},
	}
	if cls := p.Spec.VolumeSnapshotClassName; cls != "" {
		vs.Spec.VolumeSnapshotClassName = &cls
	}
	if err := c.Client.Create(ctx, vs); err != nil && !apierrors.IsAlreadyExists(err) {
		c.postHooks(ctx, log, p, spec, pods, nil)
		return "", fmt.Errorf("create volume snapshot: %w", err)
	}
	log.Info("volume snapshot created", "slot", slot, "pods", len(pods))
	c.postHooks(ctx, log, p, spec, pods, vs)
	return name, nil
}

// postHooks runs the post hooks. Their failures never fail the snapshot
// (it exists already): they are logged and, when vs is given, appended to
// its hook-errors annotation.
func (c *Controller) postHooks(ctx context.Context, log *slog.Logger, p *v1alpha1.SnapshotPolicy, spec policy.Spec, pods []corev1.Pod, vs *snapv1.VolumeSnapshot) {
	failures, _ := c.runHooks(ctx, log, p, "post", p.Spec.Hooks.Post, spec.PostTimeouts, pods) // post hooks never return a fatal error
	if len(failures) == 0 || vs == nil {
		return
	}
	orig := vs.DeepCopy()
	if prev := vs.Annotations[v1alpha1.AnnotationHookErrors]; prev != "" {
		failures = append([]string{prev}, failures...)
	}
	if vs.Annotations == nil {
		vs.Annotations = map[string]string{}
	}
	vs.Annotations[v1alpha1.AnnotationHookErrors] = strings.Join(failures, "; ")
	if err := c.Client.Patch(ctx, vs, client.MergeFrom(orig)); err != nil {
		log.Warn("record post hook failures", "error", err)
	}
}

// runHooks runs hs in every running pod, each bounded by its timeout. It returns the failures that were ignored
// (onError: Continue) and the first failure that was not.
func (c *Controller) runHooks(ctx context.Context, log *slog.Logger, p *v1alpha1.SnapshotPolicy, phase string, hs []v1alpha1.Hook, timeouts []time.Duration, pods []corev1.Pod) ([]string, error) {
	var ignored []string
	for i := range pods {
		pod := &pods[i]
		if pod.Status.Phase != corev1.PodRunning {
			continue // no running container to quiesce
		}
		for i, h := range hs {
			hctx, cancel := context.WithTimeout(ctx, timeouts[i])
			start := c.Clock.Now()
			err := c.Hooks.Exec(hctx, pod, h.Container, h.Command)
			cancel()
			outcome := "ok"
			if err != nil {
				outcome = "error"
			}
			c.metrics().HookDuration.WithLabelValues(p.Namespace, p.Name, phase, outcome).Observe(c.Clock.Since(start).Seconds())
			if err == nil {
				continue
			}
			err = fmt.Errorf("%s hook %q in pod %s: %w", phase, strings.Join(h.Command, " "), pod.Name, err)
			if h.OnError == v1alpha1.OnErrorContinue || phase == "post" {
				log.Warn("hook failed; continuing", "phase", phase, "pod", pod.Name, "error", err)
				ignored = append(ignored, err.Error())
				continue
			}
			return ignored, err
		}
	}
	return ignored, nil
}

func (c *Controller) publishHookFailure(ctx context.Context, p *v1alpha1.SnapshotPolicy, pvc, name string, slot time.Time, cause error) error {
	ev, err := c.Events.NewEvent(events.TypeSnapshotFailed, "snapshot-failed-"+p.Namespace+"."+name, events.SnapshotFailed{
		Namespace: p.Namespace, PVC: pvc, Policy: p.Name, Slot: &slot,
		Error: fmt.Sprintf("%v: %v", ErrHookFailed, cause),
	})
	if err != nil {
		return err
	}
	if err := c.Events.Publish(ctx, ev); err != nil {
		return fmt.Errorf("publish snapshot failed: %w", err)
	}
	c.metrics().SnapshotFailed(p.Namespace, p.Name)
	return nil
}
