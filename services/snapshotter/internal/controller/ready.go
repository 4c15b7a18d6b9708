package controller

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/stateguard/stateguard/services/snapshotter/api/v1alpha1"
	"github.com/stateguard/stateguard/services/snapshotter/internal/policy"
)

// Reasons of stateguard_snapshotter_policy_errors_total for a valid policy
// whose run failed (an invalid policy counts its Ready reason).
const (
	reasonSnapshotFailed    = "SnapshotFailed"
	reasonRetentionFailed   = "RetentionFailed"
	reasonRestoreTestFailed = "RestoreTestFailed"
)

// markInvalid records that p's spec does not parse: Ready=False with the
// reason and message, no next run, the error counted on every pass, and
// a Warning Event and an error log line when the condition changes. The
// policy runs nothing (no snapshot, no retention, no restore test) until
// its spec is fixed.
func (c *Controller) markInvalid(ctx context.Context, p *v1alpha1.SnapshotPolicy, invalid *policy.InvalidError) error {
	c.countError(p, invalid.Reason)
	orig := p.DeepCopy()
	changed := setReady(p, metav1.ConditionFalse, invalid.Reason, invalid.Error())
	p.Status.NextRun = nil
	if changed {
		c.Log.Error("snapshot policy is invalid; it does not run until it is fixed",
			"namespace", p.Namespace, "policy", p.Name, "reason", invalid.Reason, "error", invalid.Error())
		c.event(p, corev1.EventTypeWarning, invalid.Reason, invalid.Error())
	}
	return c.patchStatus(ctx, orig, p)
}

// markReady sets Ready=True on p (the caller patches the status); a policy
// that was invalid before gets a Normal Event saying it runs again.
func (c *Controller) markReady(p *v1alpha1.SnapshotPolicy) {
	wasInvalid := meta.IsStatusConditionFalse(p.Status.Conditions, v1alpha1.ConditionReady)
	if setReady(p, metav1.ConditionTrue, v1alpha1.ReasonScheduled, "the spec is valid and the schedule runs") && wasInvalid {
		c.Log.Info("snapshot policy is valid again", "namespace", p.Namespace, "policy", p.Name)
		c.event(p, corev1.EventTypeNormal, v1alpha1.ReasonScheduled, "the spec is valid again and the schedule runs")
	}
}

// setReady sets p's Ready condition and observed generation and says
// whether the condition changed.
func setReady(p *v1alpha1.SnapshotPolicy, status metav1.ConditionStatus, reason, message string) bool {
	p.Status.ObservedGeneration = p.Generation
	return meta.SetStatusCondition(&p.Status.Conditions, metav1.Condition{
		Type: v1alpha1.ConditionReady, Status: status, Reason: reason, Message: message, ObservedGeneration: p.Generation,
	})
}

func (c *Controller) event(p *v1alpha1.SnapshotPolicy, typ, reason, message string) {
	if c.Recorder != nil {
		c.Recorder.Eventf(p, typ, reason, "%s", message)
	}
}

func (c *Controller) countError(p *v1alpha1.SnapshotPolicy, reason string) {
	c.metrics().PolicyErrors.WithLabelValues(p.Namespace, p.Name, reason).Inc()
}
