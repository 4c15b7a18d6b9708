package policy

import (
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/stateguard/stateguard/services/snapshotter/api/v1alpha1"
	"github.com/stateguard/stateguard/services/snapshotter/internal/hooks"
	"github.com/stateguard/stateguard/services/snapshotter/internal/retention"
	"github.com/stateguard/stateguard/services/snapshotter/internal/schedule"
)

// InvalidError says why a policy's spec cannot run.
type InvalidError struct {
	// Reason is the Ready condition's reason (v1alpha1.ReasonInvalid*).
	Reason string
	// Field is the JSON path of the offending field, such as
	// spec.retention.maxAge.
	Field string
	// Err is the parse error.
	Err error
}

func (e *InvalidError) Error() string { return e.Field + ": " + e.Err.Error() }

func (e *InvalidError) Unwrap() error { return e.Err }

// Spec is a policy's spec as the controller runs it.
type Spec struct {
	// Schedule is the snapshot schedule in the policy's time zone.
	Schedule schedule.Schedule
	// Selector selects the PVCs.
	Selector labels.Selector
	// Retention is the retention plan's policy.
	Retention retention.Policy
	// PreTimeouts and PostTimeouts bound each hook, in the order of
	// spec.hooks.pre and spec.hooks.post.
	PreTimeouts, PostTimeouts []time.Duration
	// RestoreTest is the restore-test schedule; nil without spec.restoreTest.
	RestoreTest *schedule.Schedule
}

// Parse reads p's spec. The first field that does not parse, in the order
// of the spec, is returned as an *InvalidError.
func Parse(p *v1alpha1.SnapshotPolicy) (Spec, error) {
	var s Spec
	var err error
	if _, err := schedule.Location(p.Spec.TimeZone); err != nil {
		return Spec{}, &InvalidError{Reason: v1alpha1.ReasonInvalidTimeZone, Field: "spec.timeZone", Err: err}
	}
	if s.Schedule, err = schedule.Parse(string(p.Spec.Schedule), p.Spec.TimeZone); err != nil {
		return Spec{}, &InvalidError{Reason: v1alpha1.ReasonInvalidSchedule, Field: "spec.schedule", Err: err}
	}
	if s.Selector, err = metav1.LabelSelectorAsSelector(&p.Spec.PVCSelector); err != nil {
		return Spec{}, &InvalidError{Reason: v1alpha1.ReasonInvalidSelector, Field: "spec.pvcSelector", Err: err}
	}
	if s.Retention, err = retentionPolicy(p.Spec.Retention, s.Schedule.Location()); err != nil {
		return Spec{}, err
	}
	if s.PreTimeouts, err = hookTimeouts("spec.hooks.pre", p.Spec.Hooks.Pre); err != nil {
		return Spec{}, err
	}
	if s.PostTimeouts, err = hookTimeouts("spec.hooks.post", p.Spec.Hooks.Post); err != nil {
		return Spec{}, err
	}
	if rt := p.Spec.RestoreTest; rt != nil {
		sched, err := schedule.Parse(string(rt.Schedule), p.Spec.TimeZone)
		if err != nil {
			return Spec{}, &InvalidError{Reason: v1alpha1.ReasonInvalidRestoreTest, Field: "spec.restoreTest.schedule", Err: err}
		}
		s.RestoreTest = &sched
	}
	return s, nil
}

// ParseDuration reads a Duration; the empty string is zero.
func ParseDuration(d v1alpha1.Duration) (time.Duration, error) {
	if d == "" {
		return 0, nil
	}
	v, err := time.ParseDuration(string(d))
	if err != nil {
		return 0, err
	}
	if v < 0 {
		return 0, fmt.Errorf("duration %q is negative", d)
	}
	return v, nil
}

func retentionPolicy(r v1alpha1.Retention, loc *time.Location) (retention.Policy, error) {
	maxAge, err := ParseDuration(r.MaxAge)
	if err != nil {
		return retention.Policy{}, &InvalidError{Reason: v1alpha1.ReasonInvalidRetention, Field: "spec.retention.maxAge", Err: err}
	}
	return retention.Policy{
		KeepLast: r.KeepLast, Hourly: r.Hourly, Daily: r.Daily, Weekly: r.Weekly, Monthly: r.Monthly, Yearly: r.Yearly,
		MaxAge: maxAge, Location: loc,
	}, nil
}

// hookTimeouts returns the timeout of each hook: its own, or
// hooks.DefaultTimeout when it sets none (or zero).
func hookTimeouts(field string, hs []v1alpha1.Hook) ([]time.Duration, error) {
	out := make([]time.Duration, len(hs))
	for i, h := range hs {
		d, err := ParseDuration(h.Timeout)
		if err != nil {
			return nil, &InvalidError{Reason: v1alpha1.ReasonInvalidHookTimeout, Field: fmt.Sprintf("%s[%d].timeout", field, i), Err: err}
		}
		if d == 0 {
			d = hooks.DefaultTimeout
		}
		out[i] = d
	}
	return out, nil
}
