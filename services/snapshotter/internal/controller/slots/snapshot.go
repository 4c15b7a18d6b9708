package slots

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
	"github.com/stateguard/stateguard/services/snapshotter/internal/controller/managed"
	"github.com/stateguard/stateguard/services/snapshotter/internal/encryption"
	"github.com/stateguard/stateguard/services/snapshotter/internal/policy"
	"github.com/stateguard/stateguard/services/snapshotter/internal/schedule"
	"github.com/stateguard/stateguard/services/snapshotter/internal/workload"
)

// ErrHookFailed says a hook with onError: Fail failed.
var ErrHookFailed = errors.New("hook failed")

// Slot snapshots every PVC the policy selects for slot. It returns the
// result for the status, the name of the last snapshot created and the
// encryption findings of the claims it checked. An error
// means the slot must be run again (names are deterministic, so snapshots
// already taken are not taken twice).
func (c *Taker) Slot(ctx context.Context, p *v1alpha1.SnapshotPolicy, spec policy.Spec, slot time.Time) (string, string, map[string]encryption.Finding, error) {
	sel := spec.Selector
	var pvcs corev1.PersistentVolumeClaimList
	if err := c.Client.List(ctx, &pvcs, client.InNamespace(p.Namespace), client.MatchingLabelsSelector{Selector: sel}); err != nil {
		return "", "", nil, fmt.Errorf("list pvcs: %w", err)
	}
	var errs []error
	var failed, ok int
	var newest string
	findings := map[string]encryption.Finding{}
	for i := range pvcs.Items {
		pvc := &pvcs.Items[i]
		name, finding, err := c.takeSnapshot(ctx, p, spec, pvc, slot)
		if finding != nil {
			findings[pvc.Name] = *finding
		}
		switch {
		case errors.Is(err, ErrHookFailed), errors.Is(err, ErrNotEncrypted):
			failed++
		case err != nil:
			errs = append(errs, fmt.Errorf("pvc %s: %w", pvc.Name, err))
		default:
			ok++
			newest = name
		}
	}
	if len(errs) > 0 {
		return "", "", findings, errors.Join(errs...)
	}
	switch {
	case failed == 0:
		return v1alpha1.ResultSucceeded, newest, findings, nil
	case ok == 0:
		return v1alpha1.ResultFailed, newest, findings, nil
	default:
		return v1alpha1.ResultPartial, newest, findings, nil
	}
}

// takeSnapshot checks the claim's encryption at rest, runs the pre hooks,
// creates the VolumeSnapshot of pvc for slot, and runs the post hooks. When
// the snapshot exists already it does nothing (and returns no finding).
// A claim not known to be encrypted under encryption: Required publishes
// snapshot.failed and returns ErrNotEncrypted, before any hook runs; a pre
// hook that fails with onError: Fail publishes snapshot.failed and returns
// ErrHookFailed.
func (c *Taker) takeSnapshot(ctx context.Context, p *v1alpha1.SnapshotPolicy, spec policy.Spec, pvc *corev1.PersistentVolumeClaim, slot time.Time) (string, *encryption.Finding, error) {
	name := schedule.SnapshotName(p.Name, pvc.Name, slot)
	log := c.Log.With("namespace", p.Namespace, "policy", p.Name, "pvc", pvc.Name, "volume_snapshot", name)
	var existing snapv1.VolumeSnapshot
	err := c.Client.Get(ctx, client.ObjectKey{Namespace: p.Namespace, Name: name}, &existing)
	if err == nil {
		return name, nil, nil
	}
	if !apierrors.IsNotFound(err) {
		return "", nil, fmt.Errorf("get volume snapshot: %w", err)
	}
	finding := c.encryptionOf(ctx, p, pvc)
	if encryptionMode(p) == v1alpha1.EncryptionRequired && !finding.Encrypted() {
		if err := c.publishNotEncrypted(ctx, p, pvc.Name, name, slot, finding); err != nil {
			return "", &finding, err
		}
		log.Error("snapshot not taken: the policy requires encryption at rest", "encryption", finding.Status, "evidence", strings.Join(finding.Evidence, "; "))
		return "", &finding, ErrNotEncrypted
	}
	pods, err := workload.Pods(ctx, c.Client, p.Namespace, pvc.Name)
	if err != nil {
		return "", &finding, err
	}
	wls, err := workload.Describe(ctx, c.Client, pods)
	if err != nil {
		return "", &finding, err
	}
	wlJSON, err := json.Marshal(wls)
	if err != nil {
		return "", &finding, err
	}
	preErrs, fatal := c.hooks().Pre(ctx, log, p, spec, pods)
	if fatal != nil {
		// Undo whatever the pre hooks did (unfreeze) before giving up.
		c.hooks().Post(ctx, log, p, spec, pods, nil)
		if err := c.publishHookFailure(ctx, p, pvc.Name, name, slot, fatal); err != nil {
			return "", &finding, err
		}
		log.Error("snapshot not taken: pre hook failed", "error", fatal)
		return "", &finding, ErrHookFailed
	}
	labels := map[string]string{}
	maps.Copy(labels, p.Spec.Labels)
	labels[v1alpha1.LabelManagedBy] = v1alpha1.ManagedBy
	labels[v1alpha1.LabelPolicy] = schedule.LabelValue(p.Name)
	labels[v1alpha1.LabelPVC] = schedule.LabelValue(pvc.Name)
	annotations := map[string]string{
		v1alpha1.AnnotationSlot:       slot.UTC().Format(time.RFC3339),
		v1alpha1.AnnotationWorkloads:  string(wlJSON),
		v1alpha1.AnnotationEncryption: managed.EncryptionAnnotation(finding),
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
		c.hooks().Post(ctx, log, p, spec, pods, nil)
		return "", &finding, fmt.Errorf("create volume snapshot: %w", err)
	}
	log.Info("volume snapshot created", "slot", slot, "pods", len(pods))
	c.hooks().Post(ctx, log, p, spec, pods, vs)
	return name, &finding, nil
}

func (c *Taker) publishHookFailure(ctx context.Context, p *v1alpha1.SnapshotPolicy, pvc, name string, slot time.Time, cause error) error {
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
	c.Metrics.SnapshotFailed(p.Namespace, p.Name)
	return nil
}
