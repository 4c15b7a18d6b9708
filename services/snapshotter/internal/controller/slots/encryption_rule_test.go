package slots

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/stateguard/stateguard/pkg/events"
	"github.com/stateguard/stateguard/services/snapshotter/api/v1alpha1"
	"github.com/stateguard/stateguard/services/snapshotter/internal/encryption"
)

func TestEncryptedCondition(t *testing.T) {
	enc := encryption.Finding{Status: events.EncryptionEncrypted, Evidence: []string{"StorageClass a: encrypted=true"}}
	plain := encryption.Finding{Status: events.EncryptionUnencrypted, Evidence: []string{"StorageClass b: encrypted=false"}}
	unknown := encryption.Finding{Status: events.EncryptionUnknown, Evidence: []string{"driver x is not in the table"}}
	tests := []struct {
		name     string
		mode     v1alpha1.Encryption
		findings map[string]encryption.Finding
		status   metav1.ConditionStatus
		reason   string
		message  []string
	}{
		{"every claim encrypted", v1alpha1.EncryptionRequired, map[string]encryption.Finding{"a": enc, "b": enc}, metav1.ConditionTrue, v1alpha1.ReasonEncrypted, []string{"a, b"}},
		{"an unencrypted claim under Required", v1alpha1.EncryptionRequired, map[string]encryption.Finding{"a": enc, "b": plain}, metav1.ConditionFalse, v1alpha1.ReasonNotEncrypted,
			[]string{"not snapshotted (encryption: Required)", "claim b is unencrypted: StorageClass b: encrypted=false"}},
		{"unknown only", v1alpha1.EncryptionPreferred, map[string]encryption.Finding{"c": unknown}, metav1.ConditionFalse, v1alpha1.ReasonEncryptionUnknown,
			[]string{"snapshotted anyway (encryption: Preferred)", "claim c is unknown"}},
		{"unencrypted outweighs unknown, whatever the order", v1alpha1.EncryptionRequired, map[string]encryption.Finding{"a": unknown, "b": plain, "c": unknown}, metav1.ConditionFalse, v1alpha1.ReasonNotEncrypted,
			[]string{"claim a is unknown", "claim b is unencrypted", "claim c is unknown"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := encryptedCondition(tt.mode, tt.findings)
			if got.Type != v1alpha1.ConditionEncrypted || got.Status != tt.status || got.Reason != tt.reason {
				t.Fatalf("condition %s %s %s, want %s %s", got.Type, got.Status, got.Reason, tt.status, tt.reason)
			}
			for _, m := range tt.message {
				if !strings.Contains(got.Message, m) {
					t.Errorf("message %q lacks %q", got.Message, m)
				}
			}
		})
	}
}
