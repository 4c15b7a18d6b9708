package consistency_test

import (
	"testing"

	"github.com/stateguard/stateguard/services/snapshotter/api/v1alpha1"
	"github.com/stateguard/stateguard/services/snapshotter/internal/controller/consistency"
)

func TestToleratedFailures(t *testing.T) {
	tests := []struct {
		name  string
		h     v1alpha1.Hook
		phase string
		want  bool
	}{
		{"a pre hook that must succeed stops the snapshot", v1alpha1.Hook{OnError: v1alpha1.OnErrorFail}, consistency.Pre, false},
		{"a pre hook with no onError stops the snapshot", v1alpha1.Hook{}, consistency.Pre, false},
		{"a pre hook with onError: Continue is tolerated", v1alpha1.Hook{OnError: v1alpha1.OnErrorContinue}, consistency.Pre, true},
		{"a post hook is always tolerated (the snapshot exists)", v1alpha1.Hook{OnError: v1alpha1.OnErrorFail}, consistency.Post, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := consistency.Tolerated(tt.h, tt.phase); got != tt.want {
				t.Errorf("Tolerated = %v, want %v", got, tt.want)
			}
		})
	}
}
