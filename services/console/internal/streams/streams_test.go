package streams

import (
	"testing"

	"github.com/stateguard/stateguard/pkg/events"
)

// TestRestorePhaseOfEachStep: every restore event of an incident's history
// names the phase the Restore reached, as its status.phase says it; a
// recommendation's revision names none.
func TestRestorePhaseOfEachStep(t *testing.T) {
	tests := []struct {
		step      Step
		phase     string
		wantLabel string
	}{
		{Step{Type: events.TypeRestoreRequested}, "Requested", "restore Requested"},
		{Step{Type: events.TypeRestoreStarted}, "Pending", "restore Pending"},
		{Step{Type: events.TypeRestoreProgressed, Phase: "ScalingDown"}, "ScalingDown", "restore ScalingDown"},
		{Step{Type: events.TypeRestoreCompleted}, "Completed", "restore Completed"},
		{Step{Type: events.TypeRestoreFailed, Phase: "Restoring", RolledBack: true}, "RolledBack", "restore RolledBack (failed in Restoring)"},
		{Step{Type: events.TypeRestoreFailed, Phase: "Pending"}, "Failed", "restore Failed (failed in Pending)"},
		{Step{Type: events.TypeRestoreRecommended, Revision: 2}, "", "restore.recommended"},
	}
	for _, tt := range tests {
		if got := tt.step.RestorePhase(); got != tt.phase {
			t.Errorf("%s %+v: phase %q, want %q", tt.step.Type, tt.step, got, tt.phase)
		}
		if got := tt.step.Label(); got != tt.wantLabel {
			t.Errorf("%s: label %q, want %q", tt.step.Type, got, tt.wantLabel)
		}
	}
}
