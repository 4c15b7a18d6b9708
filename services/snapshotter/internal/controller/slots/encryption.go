package slots

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	snapv1 "github.com/kubernetes-csi/external-snapshotter/client/v8/apis/volumesnapshot/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/services/snapshotter/api/v1alpha1"
	"github.com/stateguard/stateguard/services/snapshotter/internal/encryption"
)

// ErrNotEncrypted says a claim was not snapshotted because its policy
// requires encryption at rest and the claim is not known to be encrypted.
var ErrNotEncrypted = errors.New("encryption at rest required")

// annotationDefaultSnapshotClass marks the default VolumeSnapshotClass of a
// driver (the external-snapshotter's convention).
const annotationDefaultSnapshotClass = "snapshot.storage.kubernetes.io/is-default-class"

// encryptionMode is the policy's mode, Preferred when unset (a policy
// stored before the field existed).
func encryptionMode(p *v1alpha1.SnapshotPolicy) v1alpha1.Encryption {
	if p.Spec.Encryption == "" {
		return v1alpha1.EncryptionPreferred
	}
	return p.Spec.Encryption
}

// encryptionOf finds the classes of a snapshot of pvc under p and decides
// (encryption.Decide). A class it cannot read is evidence, not an error:
// the finding is then unknown, which a Required policy refuses and the
// others report.
func (c *Taker) encryptionOf(ctx context.Context, p *v1alpha1.SnapshotPolicy, pvc *corev1.PersistentVolumeClaim) encryption.Finding {
	var notes []string
	var sc *encryption.Class
	if name := ptrValue(pvc.Spec.StorageClassName); name != "" {
		var obj storagev1.StorageClass
		if err := c.Client.Get(ctx, client.ObjectKey{Name: name}, &obj); err != nil {
			notes = append(notes, fmt.Sprintf("StorageClass %s of the claim could not be read: %v", name, err))
		} else {
			sc = &encryption.Class{Kind: "StorageClass", Name: obj.Name, Driver: obj.Provisioner, Parameters: obj.Parameters}
		}
	}
	vsc, err := c.snapshotClass(ctx, p.Spec.VolumeSnapshotClassName, sc)
	if err != nil {
		notes = append(notes, err.Error())
	}
	f := encryption.Decide(sc, vsc, c.encryptionTable(), c.EncryptionAllow)
	if len(notes) > 0 && !f.Encrypted() {
		f.Evidence = append(f.Evidence, notes...)
	}
	return f
}

func (c *Taker) encryptionTable() []encryption.Driver {
	if c.EncryptionTable != nil {
		return c.EncryptionTable
	}
	return encryption.Documented
}

// snapshotClass is the policy's VolumeSnapshotClass, or the default one of
// the StorageClass's driver; nil when there is none.
func (c *Taker) snapshotClass(ctx context.Context, name string, sc *encryption.Class) (*encryption.Class, error) {
	toClass := func(v *snapv1.VolumeSnapshotClass) *encryption.Class {
		return &encryption.Class{Kind: "VolumeSnapshotClass", Name: v.Name, Driver: v.Driver, Parameters: v.Parameters}
	}
	if name != "" {
		var v snapv1.VolumeSnapshotClass
		if err := c.Client.Get(ctx, client.ObjectKey{Name: name}, &v); err != nil {
			return nil, fmt.Errorf("VolumeSnapshotClass %s of the policy could not be read: %w", name, err)
		}
		return toClass(&v), nil
	}
	if sc == nil {
		return nil, nil
	}
	var list snapv1.VolumeSnapshotClassList
	if err := c.Client.List(ctx, &list); err != nil {
		return nil, fmt.Errorf("VolumeSnapshotClasses could not be listed: %w", err)
	}
	for i := range list.Items {
		v := &list.Items[i]
		if v.Driver == sc.Driver && v.Annotations[annotationDefaultSnapshotClass] == "true" {
			return toClass(v), nil
		}
	}
	return nil, nil
}

func ptrValue(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// publishNotEncrypted publishes the snapshot.failed of a claim not
// snapshotted for want of encryption; its id derives from the snapshot's
// name (policy, claim, slot), so a second pass over the slot is one event.
func (c *Taker) publishNotEncrypted(ctx context.Context, p *v1alpha1.SnapshotPolicy, pvc, name string, slot time.Time, f encryption.Finding) error {
	ev, err := c.Events.NewEvent(events.TypeSnapshotFailed, "snapshot-not-encrypted-"+p.Namespace+"."+name, events.SnapshotFailed{
		Namespace: p.Namespace, PVC: pvc, Policy: p.Name, Slot: &slot,
		Reason: events.SnapshotFailedEncryptionRequired,
		Error:  fmt.Sprintf("%v: the claim is %s at rest, so no snapshot was taken: %s", ErrNotEncrypted, f.Status, strings.Join(f.Evidence, "; ")),
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

// encryptedCondition is the rule behind the Encrypted condition: True when
// every claim checked in the run is encrypted, False otherwise, NotEncrypted
// when a class says so and EncryptionUnknown when nothing says, with a
// message naming each claim that is not and why.
func encryptedCondition(mode v1alpha1.Encryption, findings map[string]encryption.Finding) metav1.Condition {
	var pvcs []string
	for pvc := range findings {
		pvcs = append(pvcs, pvc)
	}
	slices.Sort(pvcs)
	cond := metav1.Condition{Type: v1alpha1.ConditionEncrypted, Status: metav1.ConditionTrue, Reason: v1alpha1.ReasonEncrypted}
	var not []string
	for _, pvc := range pvcs {
		f := findings[pvc]
		if f.Encrypted() {
			continue
		}
		cond.Status = metav1.ConditionFalse
		if f.Status == events.EncryptionUnencrypted || cond.Reason == v1alpha1.ReasonEncrypted {
			cond.Reason = map[string]string{
				events.EncryptionUnencrypted: v1alpha1.ReasonNotEncrypted,
				events.EncryptionUnknown:     v1alpha1.ReasonEncryptionUnknown,
			}[f.Status]
		}
		not = append(not, fmt.Sprintf("claim %s is %s: %s", pvc, f.Status, strings.Join(f.Evidence, "; ")))
	}
	switch {
	case cond.Status == metav1.ConditionTrue:
		cond.Message = fmt.Sprintf("every claim of the last run is encrypted at rest (%s)", strings.Join(pvcs, ", "))
	case mode == v1alpha1.EncryptionRequired:
		cond.Message = "not snapshotted (encryption: Required): " + strings.Join(not, " | ")
	default:
		cond.Message = "snapshotted anyway (encryption: " + string(mode) + "): " + strings.Join(not, " | ")
	}
	if len(cond.Message) > 32768 {
		cond.Message = cond.Message[:32760] + " …"
	}
	return cond
}

// SetEncrypted records the findings of a run on p's status (the caller
// patches it), with a Kubernetes Event and a log line when the condition
// changes; encryption: Off removes the condition.
func (c *Taker) SetEncrypted(p *v1alpha1.SnapshotPolicy, findings map[string]encryption.Finding) {
	mode := encryptionMode(p)
	if mode == v1alpha1.EncryptionOff {
		meta.RemoveStatusCondition(&p.Status.Conditions, v1alpha1.ConditionEncrypted)
		return
	}
	if len(findings) == 0 {
		return
	}
	cond := encryptedCondition(mode, findings)
	cond.ObservedGeneration = p.Generation
	if !meta.SetStatusCondition(&p.Status.Conditions, cond) {
		return
	}
	if cond.Status == metav1.ConditionTrue {
		c.event(p, corev1.EventTypeNormal, cond.Reason, cond.Message)
		return
	}
	c.Log.Warn("claims not known to be encrypted at rest", "namespace", p.Namespace, "policy", p.Name,
		"mode", string(mode), "reason", cond.Reason, "detail", cond.Message)
	c.event(p, corev1.EventTypeWarning, cond.Reason, cond.Message)
}
