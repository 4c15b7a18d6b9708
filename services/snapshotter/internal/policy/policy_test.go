package policy_test

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/stateguard/stateguard/services/snapshotter/api/v1alpha1"
	"github.com/stateguard/stateguard/services/snapshotter/internal/hooks"
	"github.com/stateguard/stateguard/services/snapshotter/internal/policy"
)

func spec(mod func(*v1alpha1.SnapshotPolicySpec)) *v1alpha1.SnapshotPolicy {
	p := &v1alpha1.SnapshotPolicy{Spec: v1alpha1.SnapshotPolicySpec{
		PVCSelector: metav1.LabelSelector{MatchLabels: map[string]string{"app": "db"}},
		Schedule:    "0 * * * *",
	}}
	mod(&p.Spec)
	return p
}

func TestParseRefusesWhatCannotRun(t *testing.T) {
	tests := []struct {
		name         string
		mod          func(*v1alpha1.SnapshotPolicySpec)
		reason, want string
	}{
		{"maxAge in days", func(s *v1alpha1.SnapshotPolicySpec) { s.Retention.MaxAge = "3 days" },
			v1alpha1.ReasonInvalidRetention, `spec.retention.maxAge: time: unknown unit " days" in duration "3 days"`},
		{"negative maxAge", func(s *v1alpha1.SnapshotPolicySpec) { s.Retention.MaxAge = "-1h" },
			v1alpha1.ReasonInvalidRetention, `spec.retention.maxAge: duration "-1h" is negative`},
		{"maxAge that overflows", func(s *v1alpha1.SnapshotPolicySpec) { s.Retention.MaxAge = "9999999999h" },
			v1alpha1.ReasonInvalidRetention, `spec.retention.maxAge: time: invalid duration "9999999999h"`},
		{"second post hook's timeout", func(s *v1alpha1.SnapshotPolicySpec) {
			s.Hooks.Post = []v1alpha1.Hook{{Command: []string{"a"}}, {Command: []string{"b"}, Timeout: "30 seconds"}}
		}, v1alpha1.ReasonInvalidHookTimeout, `spec.hooks.post[1].timeout: time: unknown unit " seconds" in duration "30 seconds"`},
		{"unknown time zone", func(s *v1alpha1.SnapshotPolicySpec) { s.TimeZone = "Mars/Olympus_Mons" },
			v1alpha1.ReasonInvalidTimeZone, `spec.timeZone: time zone "Mars/Olympus_Mons": unknown time zone Mars/Olympus_Mons`},
		{"the machine's zone", func(s *v1alpha1.SnapshotPolicySpec) { s.TimeZone = "Local" },
			v1alpha1.ReasonInvalidTimeZone, `spec.timeZone: time zone "Local": not an IANA time zone name`},
		{"minute out of range", func(s *v1alpha1.SnapshotPolicySpec) { s.Schedule = "61 * * * *" },
			v1alpha1.ReasonInvalidSchedule, `spec.schedule: schedule "61 * * * *": end of range (61) above maximum (59): 61`},
		{"restore test schedule", func(s *v1alpha1.SnapshotPolicySpec) {
			s.RestoreTest = &v1alpha1.RestoreTest{Schedule: "0 0 32 * *", Image: "busybox"}
		}, v1alpha1.ReasonInvalidRestoreTest, `spec.restoreTest.schedule: schedule "0 0 32 * *": end of range (32) above maximum (31): 32`},
		{"selector operator", func(s *v1alpha1.SnapshotPolicySpec) {
			s.PVCSelector = metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "app", Operator: "Near"}}}
		}, v1alpha1.ReasonInvalidSelector, `spec.pvcSelector: "Near" is not a valid label selector operator`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := policy.Parse(spec(tt.mod))
			invalid, ok := errors.AsType[*policy.InvalidError](err)
			if !ok {
				t.Fatalf("error %v, want an *InvalidError", err)
			}
			if diff := cmp.Diff([]string{tt.reason, tt.want}, []string{invalid.Reason, invalid.Error()}); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseReadsDurations(t *testing.T) {
	p := spec(func(s *v1alpha1.SnapshotPolicySpec) {
		s.TimeZone = "Europe/Berlin"
		s.Retention = v1alpha1.Retention{KeepLast: 2, Daily: 7, MaxAge: "2160h30m"}
		s.Hooks.Pre = []v1alpha1.Hook{{Command: []string{"a"}, Timeout: "5s"}, {Command: []string{"b"}}, {Command: []string{"c"}, Timeout: "0"}}
		s.RestoreTest = &v1alpha1.RestoreTest{Schedule: "@weekly", Image: "busybox"}
	})
	got, err := policy.Parse(p)
	if err != nil {
		t.Fatal(err)
	}
	if got.Retention.MaxAge != 2160*time.Hour+30*time.Minute || got.Retention.KeepLast != 2 || got.Retention.Daily != 7 {
		t.Errorf("retention %+v", got.Retention)
	}
	if got.Retention.Location.String() != "Europe/Berlin" || got.Schedule.Location().String() != "Europe/Berlin" {
		t.Errorf("zones %v %v, want Europe/Berlin", got.Retention.Location, got.Schedule.Location())
	}
	if diff := cmp.Diff([]time.Duration{5 * time.Second, hooks.DefaultTimeout, hooks.DefaultTimeout}, got.PreTimeouts); diff != "" {
		t.Errorf("pre timeouts (-want +got):\n%s", diff)
	}
	if got.RestoreTest == nil || got.Selector.String() != "app=db" {
		t.Errorf("restore test %v, selector %v", got.RestoreTest, got.Selector)
	}
}
