package restoretests_test

import (
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/stateguard/stateguard/services/snapshotter/api/v1alpha1"
	"github.com/stateguard/stateguard/services/snapshotter/internal/controller/restoretests"
)

func TestJobResult(t *testing.T) {
	cond := func(typ batchv1.JobConditionType, status corev1.ConditionStatus, reason, msg string) batchv1.JobStatus {
		return batchv1.JobStatus{Conditions: []batchv1.JobCondition{{Type: typ, Status: status, Reason: reason, Message: msg}}}
	}
	tests := []struct {
		name         string
		st           batchv1.JobStatus
		done, passed bool
		msgHas       string
	}{
		{"running", batchv1.JobStatus{Active: 1}, false, false, ""},
		{"complete", cond(batchv1.JobComplete, corev1.ConditionTrue, "", "ok"), true, true, "ok"},
		{"failed names the reason", cond(batchv1.JobFailed, corev1.ConditionTrue, "DeadlineExceeded", "too slow"), true, false, "DeadlineExceeded: too slow"},
		{"a condition not true yet is not an outcome", cond(batchv1.JobFailed, corev1.ConditionFalse, "x", "y"), false, false, ""},
		{"succeeded pods without conditions", batchv1.JobStatus{Succeeded: 1}, true, true, ""},
		{"failed pods without conditions", batchv1.JobStatus{Failed: 1}, true, false, "verification pod failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			done, passed, msg := restoretests.JobResult(&batchv1.Job{Status: tt.st})
			if done != tt.done || passed != tt.passed || !strings.Contains(msg, tt.msgHas) {
				t.Errorf("JobResult = %v %v %q, want %v %v containing %q", done, passed, msg, tt.done, tt.passed, tt.msgHas)
			}
		})
	}
}

func TestNameIsStablePerPolicyAndSlotAndAValidName(t *testing.T) {
	slot := time.Date(2026, 12, 7, 6, 0, 0, 0, time.UTC)
	p := &v1alpha1.SnapshotPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "hourly"}}
	other := &v1alpha1.SnapshotPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: "shop2", Name: "hourly"}}
	a, b := restoretests.Name(p, slot), restoretests.Name(p, slot)
	if a != b {
		t.Errorf("Name is not deterministic: %s, %s", a, b)
	}
	if restoretests.Name(other, slot) == a || restoretests.Name(p, slot.Add(time.Hour)) == a {
		t.Error("two policies or two slots share a restore test name")
	}
	if len(a) > 63 || !strings.HasPrefix(a, "restore-test-") || !strings.HasSuffix(a, "202612070600") {
		t.Errorf("Name = %q: want restore-test-<hash>-<slot>, at most 63 characters", a)
	}
}
